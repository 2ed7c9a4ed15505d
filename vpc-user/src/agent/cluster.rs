//! The hosts of a cluster as this agent sees them: its own name and underlay interface, and
//! the others' underlay addresses, given on the command line until a shared store holds them.
//! Read again every rebind: the underlay's MAC, MTU and address, and each other host's next-hop
//! MAC from the neighbour table (a host whose neighbour is not resolved is down: nothing is
//! sent to it, and resolution is asked for).

use std::{collections::BTreeMap, net::Ipv4Addr};

use crate::{
    dataplane::{self, iface},
    model::binding::{Cluster, HostInfo, UnderlayInfo},
};

/// `vpc daemon --host NAME --underlay IFACE --peer NAME=ADDR...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    pub me: String,
    pub underlay: String,
    /// The other hosts: name -> underlay address.
    pub peers: BTreeMap<String, Ipv4Addr>,
}

impl ClusterOptions {
    /// Parse `NAME=ADDR` peers and check the names.
    pub fn new(me: String, underlay: String, peers: &[String]) -> anyhow::Result<ClusterOptions> {
        let valid = crate::model::binding::is_host_name;
        anyhow::ensure!(valid(&me), "--host '{me}' is not a host name (lowercase letters, digits and '-')");
        let mut out = BTreeMap::new();
        for peer in peers {
            let (name, addr) = peer.split_once('=').ok_or_else(|| anyhow::anyhow!("--peer '{peer}' is not NAME=ADDRESS"))?;
            anyhow::ensure!(valid(name), "--peer '{peer}': '{name}' is not a host name");
            anyhow::ensure!(name != me, "--peer '{peer}' names this host");
            let addr: Ipv4Addr = addr.parse().map_err(|_| anyhow::anyhow!("--peer '{peer}': '{addr}' is not an IPv4 address"))?;
            anyhow::ensure!(out.insert(name.to_string(), addr).is_none(), "--peer names {name} twice");
        }
        Ok(ClusterOptions { me, underlay, peers: out })
    }

    /// The cluster now. `registered`: the hosts alive in a shared store (none: no shared store,
    /// the peers given are all there is); a host is up while it is registered (if there is a
    /// store) and its underlay neighbour resolves. `known` holds each host seen so far, with
    /// its number and last address: numbers are this host's own (no other host sees them) and
    /// never change while the agent runs -- a host joining gets the next one, a host whose
    /// registration lapsed stays known, down -- so no frame is ever sent by a number that
    /// meant another host a moment ago. Without its underlay interface (or its address) this
    /// host reaches no other.
    pub fn view(&self, registered: Option<&BTreeMap<String, Ipv4Addr>>, known: &mut BTreeMap<String, (u32, Ipv4Addr)>) -> Cluster {
        let mut peers = self.peers.clone();
        for (name, ip) in registered.into_iter().flatten().filter(|(name, _)| **name != self.me) {
            peers.insert(name.clone(), *ip);
        }
        // Known before, gone from the store: down, at its last address.
        for (name, (_, ip)) in known.iter().filter(|(name, _)| **name != self.me) {
            peers.entry(name.clone()).or_insert(*ip);
        }
        let mut names: Vec<&str> = peers.keys().map(String::as_str).chain([self.me.as_str()]).collect();
        names.sort();
        for name in names {
            let next = known.values().map(|(n, _)| *n).max().unwrap_or(0) + 1;
            let ip = peers.get(name).copied().unwrap_or(Ipv4Addr::UNSPECIFIED);
            known.entry(name.to_string()).and_modify(|(_, last)| *last = ip).or_insert((next, ip));
        }
        let number = |name: &str| known.get(name).map_or(0, |(n, _)| *n);
        let underlay = dataplane::ifindex(&self.underlay).and_then(|ifindex| {
            Some((
                UnderlayInfo {
                    ifindex,
                    mac: iface::mac(&self.underlay).ok()?,
                    mtu: iface::mtu(&self.underlay).ok()?,
                    // Unknown (an older kernel): XDP, as before the kernel said.
                    tc_xmit: dataplane::netlink::xdp_xmit(ifindex) == Some(false),
                },
                iface::ipv4(&self.underlay).ok()?,
            ))
        });
        let mut hosts = BTreeMap::new();
        if let Some((underlay, ip)) = underlay {
            hosts.insert(self.me.clone(), HostInfo { number: number(&self.me), ip, mac: underlay.mac, up: true });
        }
        let neighbours = neighbours(&self.underlay);
        let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        for (name, &ip) in &peers {
            // On a routed underlay the frame goes to the router towards it.
            let mac = neighbours.get(&next_hop(&routes, &self.underlay, ip)).copied();
            if mac.is_none() {
                ask(ip);
            }
            let alive = registered.is_none_or(|r| r.contains_key(name));
            hosts.insert(name.clone(), HostInfo { number: number(name), ip, mac: mac.unwrap_or_default(), up: alive && mac.is_some() });
        }
        Cluster { me: Some(self.me.clone()), hosts, underlay: underlay.map(|(u, _)| u) }
    }
}

/// Resolved IPv4 neighbours on `ifname` (this network namespace's `/proc/net/arp`): address ->
/// MAC.
fn neighbours(ifname: &str) -> BTreeMap<Ipv4Addr, [u8; 6]> {
    let table = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
    table.lines().skip(1).filter_map(|line| parse_arp_line(line, ifname)).collect()
}

/// One row of `/proc/net/arp`: "IP address  HW type  Flags  HW address  Mask  Device", complete
/// (flag 0x2) and on `ifname`.
fn parse_arp_line(line: &str, ifname: &str) -> Option<(Ipv4Addr, [u8; 6])> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [ip, _, flags, mac, _, device] = fields.as_slice() else { return None };
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
    if *device != ifname || flags & 0x2 == 0 {
        return None;
    }
    Some((ip.parse().ok()?, crate::model::addr::parse_mac(mac)?))
}

/// The next hop towards `ip` out of `ifname`, by `routes` (`/proc/net/route`: this namespace's
/// main table): the gateway of the most specific route through `ifname` that covers it, or
/// `ip` itself when that route is on-link (or there is none).
fn next_hop(routes: &str, ifname: &str, ip: Ipv4Addr) -> Ipv4Addr {
    // Addresses there are hexadecimal in the kernel's (little-endian) byte order.
    let addr = |hex: &str| u32::from_str_radix(hex, 16).ok().map(|v| Ipv4Addr::from(v.to_le_bytes()));
    let target = u32::from(ip);
    let best = routes
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (device, dst, gateway, mask) = (fields.first()?, addr(fields.get(1)?)?, addr(fields.get(2)?)?, addr(fields.get(7)?)?);
            let mask = u32::from(mask);
            (*device == ifname && target & mask == u32::from(dst) & mask).then_some((mask.count_ones(), gateway))
        })
        .max_by_key(|(len, _)| *len);
    match best {
        Some((_, gateway)) if !gateway.is_unspecified() => gateway,
        _ => ip,
    }
}

/// Make the kernel resolve `ip`'s neighbour entry: a datagram to its discard port (9), whose
/// ARP request is what counts (the datagram itself is dropped there or answered "port
/// unreachable").
fn ask(ip: Ipv4Addr) {
    if let Ok(socket) = std::net::UdpSocket::bind("0.0.0.0:0") {
        let _ = socket.send_to(&[], (ip, 9));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_numbers_stay_as_hosts_come_and_go() {
        let opts = super::ClusterOptions::new("h2".into(), "vpc-no-such-if".into(), &[]).unwrap();
        let alive = |names: &[&str]| -> std::collections::BTreeMap<String, std::net::Ipv4Addr> {
            names.iter().map(|n| (n.to_string(), std::net::Ipv4Addr::new(10, 0, 0, n.as_bytes()[1] - b'0'))).collect()
        };
        let mut known = Default::default();
        let numbers = |c: &crate::model::binding::Cluster| -> Vec<(String, u32, bool)> {
            c.hosts.iter().map(|(n, h)| (n.clone(), h.number, h.up || n == "h2")).collect()
        };
        // First seen in name order (no underlay here, so nobody is up and this host not listed).
        let first = opts.view(Some(&alive(&["h1", "h2", "h3"])), &mut known);
        assert_eq!(numbers(&first), vec![("h1".into(), 1, false), ("h3".into(), 3, false)]);
        // h0 joins: the next number, nobody renumbered; h1 leaves: known still, at its number.
        let later = opts.view(Some(&alive(&["h0", "h2", "h3"])), &mut known);
        assert_eq!(numbers(&later), vec![("h0".into(), 4, false), ("h1".into(), 1, false), ("h3".into(), 3, false)]);
        assert_eq!(later.hosts["h1"].ip, std::net::Ipv4Addr::new(10, 0, 0, 1), "at its last address");
        assert_eq!(known["h2"].0, 2, "this host's own number too");
    }

    use super::*;

    #[test]
    fn the_next_hop_is_the_router_of_the_most_specific_route_or_the_peer_on_link() {
        // 10.255.0.0/24 on und0, 10.255.1.0/24 via 10.255.0.254, a default via 10.255.0.9,
        // and a route of another device that must not count.
        let routes = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
und0\t0000FF0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
und0\t0001FF0A\tFE00FF0A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
und0\t00000000\t0900FF0A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth9\t0002FF0A\t0100000A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
        let hop = |ip: [u8; 4]| next_hop(routes, "und0", Ipv4Addr::from(ip));
        assert_eq!(hop([10, 255, 0, 2]), Ipv4Addr::new(10, 255, 0, 2), "on-link");
        assert_eq!(hop([10, 255, 1, 3]), Ipv4Addr::new(10, 255, 0, 254), "through the router");
        assert_eq!(hop([10, 255, 2, 3]), Ipv4Addr::new(10, 255, 0, 9), "the default: eth9's route is not the underlay's");
        assert_eq!(next_hop("", "und0", Ipv4Addr::new(10, 9, 9, 9)), Ipv4Addr::new(10, 9, 9, 9), "no table: on-link");
    }

    #[test]
    fn peers_are_name_equals_address() {
        let o = ClusterOptions::new("h1".into(), "u1".into(), &["h2=10.0.0.2".into(), "h3=10.0.0.3".into()]).unwrap();
        assert_eq!(o.peers, [("h2".to_string(), Ipv4Addr::new(10, 0, 0, 2)), ("h3".to_string(), Ipv4Addr::new(10, 0, 0, 3))].into());
        for bad in ["h2", "h2=10.0.0", "H2=10.0.0.2", "h1=10.0.0.9"] {
            assert!(ClusterOptions::new("h1".into(), "u1".into(), &[bad.to_string()]).is_err(), "{bad}");
        }
        assert!(ClusterOptions::new("h1".into(), "u1".into(), &["h2=10.0.0.2".into(), "h2=10.0.0.3".into()]).is_err());
    }

    #[test]
    fn arp_rows_on_the_underlay_that_are_complete() {
        let row = "10.255.0.2       0x1         0x2         02:fe:00:00:00:02     *        u1";
        assert_eq!(parse_arp_line(row, "u1"), Some((Ipv4Addr::new(10, 255, 0, 2), [2, 0xfe, 0, 0, 0, 2])));
        assert_eq!(parse_arp_line(row, "u2"), None);
        let incomplete = "10.255.0.3       0x1         0x0         00:00:00:00:00:00     *        u1";
        assert_eq!(parse_arp_line(incomplete, "u1"), None);
    }
}
