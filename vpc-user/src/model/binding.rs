//! A topology bound to one host: its persistent numbers and the ifindex of every ENI's interface.

use std::collections::{BTreeMap, BTreeSet};

use super::ids::Ids;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    pub ids: Ids,
    /// ENI or gateway ID -> ifindex of its host-side interface (those without are not attached).
    pub ifindex: BTreeMap<String, u32>,
    /// Hops the agent's health checks found down: (route entry ID, hop index).
    pub down: BTreeSet<(String, usize)>,
    /// The other hosts of a cluster (none on a single host).
    pub cluster: Cluster,
}

/// The cluster as this host sees it. On a single host `me` is none and every ENI is local,
/// whatever its `host:` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    /// This host's name: ENIs placed on another host are reached through the overlay.
    pub me: Option<String>,
    /// Every host by name, this one included.
    pub hosts: BTreeMap<String, HostInfo>,
    /// This host's underlay interface (none: nothing is sent to or taken from other hosts).
    pub underlay: Option<UnderlayInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostInfo {
    /// Its number in the cluster (>= 1).
    pub number: u32,
    /// Its underlay address.
    pub ip: std::net::Ipv4Addr,
    /// The MAC of the next hop towards it on the underlay.
    pub mac: [u8; 6],
    /// Alive (its lease held) and its next hop resolved.
    pub up: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnderlayInfo {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub mtu: u16,
    /// XDP cannot transmit on it: what goes to other hosts leaves through TC
    /// (`UNDERLAY_TC_XMIT`).
    pub tc_xmit: bool,
}

/// A cluster host's name: a DNS label.
pub fn is_host_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Cluster {
    /// The other host ENI `eni` is on (none: it is on this one).
    pub fn remote_host<'a>(&self, eni: &'a super::Eni) -> Option<&'a str> {
        self.remote(eni.host.as_deref())
    }

    /// The other host gateway `gw` is on (none: it is on this one, or on every one).
    pub fn remote_gateway<'a>(&self, gw: &'a super::kinds::gateway::Gateway) -> Option<&'a str> {
        self.remote(gw.host.as_deref())
    }

    /// `host`, if it is another host than this one (none on a single host).
    fn remote<'a>(&self, host: Option<&'a str>) -> Option<&'a str> {
        let me = self.me.as_deref()?;
        host.filter(|host| *host != me)
    }

    /// The other hosts holding members of `group` of `vpc`, by number (ascending): a sender
    /// here sends each one encapsulated copy (none without an underlay).
    pub fn member_hosts(&self, vpc: &super::Vpc, group: &super::multicast::McastGroup) -> Vec<u32> {
        if self.underlay.is_none() {
            return Vec::new();
        }
        let numbers: BTreeSet<u32> = group
            .members
            .iter()
            .filter_map(|name| vpc.eni(name))
            .filter_map(|eni| self.hosts.get(self.remote_host(eni)?))
            .map(|host| host.number)
            .collect();
        numbers.into_iter().collect()
    }

    /// This host's underlay address, when it has an underlay.
    pub fn my_ip(&self) -> Option<std::net::Ipv4Addr> {
        self.underlay?;
        self.hosts.get(self.me.as_deref()?).map(|h| h.ip)
    }

    /// The largest inner packet the overlay carries to another host (none: no underlay).
    pub fn tunnel_mtu(&self) -> Option<u16> {
        self.underlay.map(|u| u.mtu.saturating_sub(vpc_common::tunnel::MTU_RESERVE))
    }
}

impl Binding {
    /// Whether the ENI or gateway `id` (on `host`, for an ENI placed on one) can be delivered
    /// to: its interface is here, or it is on another host that is up.
    pub fn reachable(&self, id: &str, host: Option<&str>) -> bool {
        if let Some(host) = self.cluster.remote(host) {
            return self.cluster.hosts.get(host).is_some_and(|h| h.up);
        }
        self.ifindex.contains_key(id)
    }

    /// The ID of the ENI or gateway whose interface has `ifindex`.
    pub fn eni_at(&self, ifindex: u32) -> Option<&str> {
        self.ifindex.iter().find(|(_, i)| **i == ifindex).map(|(n, _)| n.as_str())
    }
}
