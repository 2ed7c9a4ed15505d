//! ENIs: a guest's port in a VSwitch, with its address, MAC and security groups. Validated in
//! `validate::eni`.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::model::{
    addr::format_mac,
    change::{Change, changed_fields},
};

/// What every ENI ID starts with.
pub const ID_PREFIX: &str = "eni";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EniSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Unique across the file; also names the ENI's lab namespace.
    pub name: String,
    pub vswitch: String,
    /// The next free address of the VSwitch when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Guest MAC; generated when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Host-side interface (veth or tap) the guest is plugged into; the lab's name when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// `false` lets the ENI send and receive addresses that are not its own (NAT, firewall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_dest_check: Option<bool>,
    /// Names of 1-5 security groups of the VPC; the VPC's default group when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// The largest IP packet delivered to the ENI (576-3500; 1500 when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Connection-table entries the ENI may hold (its VPC's `conntrack_limit` when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack_limit: Option<u32>,
    /// The host the ENI's guest runs on, in a cluster (the agent's own when omitted); other
    /// hosts reach it through the overlay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// An ENI placed by zone (top-level `enis:`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ZonalEniSpec {
    pub name: String,
    pub zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eni {
    pub id: String,
    pub name: String,
    pub vswitch: String,
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// Host-side interface, when the file names one (otherwise the lab's naming applies).
    pub interface: Option<String>,
    /// Anti-spoof on (the default); off for NAT and firewall instances.
    pub source_dest_check: bool,
    /// Names of its security groups (1-5), in the order given.
    pub security_groups: Vec<String>,
    /// The largest IP packet delivered to it.
    pub mtu: u16,
    /// Connection-table entries it may hold (its own or its VPC's limit).
    pub conntrack_limit: u32,
    /// The host it is on (none: every agent's own, as on a single host).
    pub host: Option<String>,
}

/// ENI `eni` of VPC `vpc`: new, or changed from `old` (its VPC's name and itself before).
pub fn diff_added_or_changed(out: &mut Vec<Change>, old: Option<(&str, &Eni)>, vpc: &str, eni: &Eni) {
    match old {
        None => out.push(Change::Add { kind: "eni", name: eni.name.clone() }),
        Some((old_vpc, o)) => {
            let mut what = Vec::new();
            if old_vpc != vpc || o.vswitch != eni.vswitch {
                what.push(format!("vswitch {}/{} -> {}/{}", old_vpc, o.vswitch, vpc, eni.vswitch));
            }
            if o.ip != eni.ip {
                what.push(format!("ip {} -> {}", o.ip, eni.ip));
            }
            if o.mac != eni.mac {
                what.push(format!("mac {} -> {}", format_mac(&o.mac), format_mac(&eni.mac)));
            }
            if o.interface != eni.interface {
                what.push(format!("interface {:?} -> {:?}", o.interface, eni.interface));
            }
            if o.host != eni.host {
                what.push(format!("host {} -> {}", o.host.as_deref().unwrap_or("-"), eni.host.as_deref().unwrap_or("-")));
            }
            if o.security_groups != eni.security_groups {
                what.push(format!("security groups {} -> {}", o.security_groups.join(","), eni.security_groups.join(",")));
            }
            what.extend(changed_fields(o, eni, &["id", "name", "vswitch", "ip", "mac", "interface", "security_groups", "host"]));
            if !what.is_empty() {
                out.push(Change::Modify { kind: "eni", name: eni.name.clone(), what: what.join(", ") });
            }
        }
    }
}

/// An ENI that is gone.
pub fn removed(out: &mut Vec<Change>, eni: &Eni) {
    out.push(Change::Remove { kind: "eni", name: eni.name.clone() });
}
