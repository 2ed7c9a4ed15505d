//! Compile: a pure function from the validated model (bound to this host) to the exact entries
//! every data-path map must hold. No I/O here; `dataplane::sync` makes the kernel maps equal to it.

mod patch;
pub mod sg;

use std::{collections::BTreeMap, sync::Arc};

use vpc_common::{
    AddrKey, ENI_F_NO_SRC_DST_CHECK, ENI_F_TUNNEL, Eni, Group, PORT_F_TUNNEL, Port, ROUTE_TABLE_BITS, Route, RouteKey, addr_raw,
    route_kind,
    sg::{MAX_ENI_GROUPS, PortGroups},
    tunnel::{HOST_UP, Host, Tunnel, Underlay},
};

use crate::model::{
    self, Topology,
    binding::Binding,
    ecmp,
    ids::SgPlace,
    security::Direction,
    topology::{HopGroup, HopTarget, NextHop},
};
pub use patch::Patch;

/// An LPM trie key: prefix length (counting the table bits) and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LpmKey {
    pub prefix_len: u32,
    pub key: RouteKey,
}

/// The desired content of every config map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapEntries {
    /// `ENIS`: ifindex -> sender (ENIs and gateways).
    pub enis: BTreeMap<u32, Eni>,
    /// `ENI_ADDRS`: (VPC, address) -> port.
    pub addrs: BTreeMap<AddrKey, Port>,
    /// `ROUTES`.
    pub routes: BTreeMap<LpmKey, Route>,
    /// `TX_PORTS`: port -> ifindex.
    pub ports: BTreeMap<u32, u32>,
    /// `GROUPS`: group -> ECMP / active-standby hops and slots.
    pub groups: BTreeMap<u32, Group>,
    /// Security groups: `SG_SETS`, `SG_NODES`, `SG_WORDS`, `SG_RULES`, `PORT_GROUPS`.
    pub sg: SgEntries,
    /// `MCAST_GROUPS`: (VPC, group address) -> members.
    pub mcast_groups: BTreeMap<vpc_common::mcast::McastKey, vpc_common::mcast::McastGroup>,
    /// `MCAST_SENDERS`: (VPC, group address, port) of every sender.
    pub mcast_senders: BTreeMap<vpc_common::mcast::McastSenderKey, u32>,
    /// Every member counter allocated (members that left keep theirs): a number not in the
    /// previous set starts from zero.
    pub mcast_member_counters: std::collections::BTreeSet<u32>,
    /// The overlay to the other hosts of a cluster (empty on a single host).
    pub overlay: OverlayEntries,
}

/// The overlay's maps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverlayEntries {
    /// `TUNNELS`: port -> an ENI on another host.
    pub tunnels: BTreeMap<u32, Tunnel>,
    /// `HOSTS`: host number -> the other hosts.
    pub hosts: BTreeMap<u32, Host>,
    /// `HOST_OF_IP`: underlay address -> host number.
    pub host_of_ip: BTreeMap<u32, u32>,
    /// `DELIVERY`: port -> delivery to a local ENI or gateway.
    pub delivery: BTreeMap<u32, Port>,
    /// `UNDERLAY`: 0 -> this host's underlay.
    pub underlay: BTreeMap<u32, Underlay>,
}

/// The compiled security groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SgEntries {
    /// Rule set -> its content (shared: large sets are not copied when entries are).
    pub sets: BTreeMap<u16, Arc<sg::SgContent>>,
    /// Rule set -> where it lies in the arrays (from `Ids::sg_places`; see `sg::place`).
    pub places: BTreeMap<u16, SgPlace>,
    /// ENI port -> the sets it is classified by. Ports without an entry (gateways) read as
    /// having no groups: the sync zeroes the entry of a port that leaves.
    pub port_groups: BTreeMap<u32, PortGroups>,
}

impl MapEntries {
    /// The same entries with route tables renumbered (`old -> new`), as `compile` would give
    /// after `Ids::renumber_table`: route keys, ENIs' tables and VPC-crossing targets move.
    pub fn renumber_tables(self, renumbered: &BTreeMap<u32, u32>) -> MapEntries {
        let new = |table: u32| renumbered.get(&table).copied().unwrap_or(table);
        let routes = self
            .routes
            .into_iter()
            .map(|(mut key, mut route)| {
                key.key.table = new(key.key.table);
                if route.kind == route_kind::VPC {
                    route.arg = new(route.arg);
                }
                (key, route)
            })
            .collect();
        let enis = self
            .enis
            .into_iter()
            .map(|(ifindex, mut eni)| {
                eni.route_table = new(eni.route_table);
                (ifindex, eni)
            })
            .collect();
        MapEntries { routes, enis, ..self }
    }
}

/// Build every map entry for `topology` as bound by `binding`.
pub fn compile(topology: &Topology, binding: &Binding) -> MapEntries {
    let ids = &binding.ids;
    let mut out = MapEntries::default();
    out.mcast_member_counters = ids.mcast_members.values().copied().collect();
    for vpc in &topology.vpcs {
        let vpc_id = ids.vpc(&vpc.id);
        let system_table = ids.route_table(&vpc.system_table().id);
        for table in &vpc.route_tables {
            let table_id = ids.route_table(&table.id);
            for view in topology.routes(vpc, table) {
                let (key, route) = route_entry(topology, vpc, table_id, &view, binding, &mut out.groups);
                out.routes.insert(key, route);
            }
        }
        for eni in &vpc.enis {
            let vswitch = vpc.vswitch(&eni.vswitch).expect("validated reference");
            let port = eni_port(vpc, &eni.name, binding);
            out.addrs.insert(AddrKey { vpc_id, addr: addr_raw(eni.ip.octets()) }, port);
            let table = vpc.route_table(&vswitch.route_table).expect("validated reference");
            let sender = Eni {
                ip: addr_raw(eni.ip.octets()),
                gw_ip: addr_raw(vswitch.gateway.octets()),
                vpc_net: addr_raw(vpc.cidr.network().octets()),
                vpc_mask: addr_raw(vpc.cidr.netmask().octets()),
                vpc_id,
                vswitch_id: ids.vswitch(&vswitch.id),
                route_table: ids.route_table(&table.id),
                port: port.port,
                flags: if eni.source_dest_check { 0 } else { ENI_F_NO_SRC_DST_CHECK },
                mac: eni.mac,
                gw_mac: vswitch.gateway_mac,
                ifindex: 0,
            };
            if let Some(host) = binding.cluster.remote_host(eni) {
                // No gateway address: the gateway answers it nothing (its own host did); and
                // `ct::ARRIVED`: the sending host resolved the route.
                let remote = Eni { gw_ip: 0, route_table: 0, flags: sender.flags | ENI_F_TUNNEL, ..sender };
                tunnel(remote, eni.conntrack_limit, host, binding, &mut out);
                continue;
            }
            let Some(&ifindex) = binding.ifindex.get(&eni.id) else { continue };
            if binding.cluster.me.is_some() {
                out.overlay.delivery.insert(port.port, port);
            }
            out.ports.insert(port.port, ifindex);
            out.enis.insert(ifindex, Eni { ifindex, ..sender });
        }
        // Security groups: two rule sets each, and every ENI's port classified by its groups'.
        for group in &vpc.security_groups {
            for (direction, dir) in [(Direction::Ingress, 0), (Direction::Egress, 1)] {
                out.sg.sets.insert(ids.sg_set(&group.id, dir), Arc::new(sg::compile_set(vpc, group, direction, ids)));
            }
        }
        for eni in vpc.enis.iter().filter(|e| binding.cluster.remote_host(e).is_none()) {
            let mut groups = PortGroups::default();
            for (i, name) in eni.security_groups.iter().take(MAX_ENI_GROUPS).enumerate() {
                let group = vpc.security_group(name).expect("validated reference");
                groups.sets[0][i] = ids.sg_set(&group.id, 0);
                groups.sets[1][i] = ids.sg_set(&group.id, 1);
                groups.count += 1;
            }
            if topology.flow_logs.iter().any(|f| f.active && f.covers(&vpc.name, &eni.vswitch, &eni.name)) {
                groups.flags |= vpc_common::flowlog::PORT_FLOW_LOG;
            }
            groups.ct_limit = eni.conntrack_limit;
            out.sg.port_groups.insert(ids.port(&eni.id), groups);
        }
        // Gateways have no groups: open, with their connection limit. (A port without an entry
        // denies.)
        for gw in &vpc.gateways {
            let groups = PortGroups { ct_limit: gw.conntrack_limit, flags: vpc_common::sg::PORT_OPEN, ..Default::default() };
            out.sg.port_groups.insert(ids.port(&gw.id), groups);
        }
        // Multicast: each group's members (those with an interface), the other hosts with
        // members, and who may send to it.
        for group in &vpc.multicast_groups {
            use vpc_common::mcast::{McastGroup, McastKey, McastMember, McastSenderKey};
            let addr = addr_raw(group.group.octets());
            let mut value = McastGroup { counter: ids.mcast_groups[&group.id], ..Default::default() };
            for name in &group.members {
                let Some(eni) = vpc.eni(name) else { continue };
                let Some(&ifindex) = binding.ifindex.get(&eni.id) else { continue };
                let counter = ids.mcast_members[&crate::model::ids::mcast_member(&group.id, &eni.id)];
                value.members[value.count as usize] = McastMember { port: ids.port(&eni.id), ifindex, counter, mtu: u32::from(eni.mtu) };
                value.count += 1;
            }
            for number in binding.cluster.member_hosts(vpc, group) {
                value.hosts[value.host_count as usize] = number;
                value.host_count += 1;
            }
            out.mcast_groups.insert(McastKey { vpc: vpc_id, group: addr }, value);
            for name in &group.senders {
                if let Some(eni) = vpc.eni(name) {
                    out.mcast_senders.insert(McastSenderKey { vpc: vpc_id, group: addr, port: ids.port(&eni.id) }, 1);
                }
            }
        }
        // Gateways: traffic entering from the remote network is routed by the system table; any
        // source address is allowed, only the remote router's MAC. No security groups.
        for gw in &vpc.gateways {
            let port = gateway_port(vpc, &gw.name, binding);
            let sender = Eni {
                ip: 0,
                gw_ip: 0,
                vpc_net: addr_raw(vpc.cidr.network().octets()),
                vpc_mask: addr_raw(vpc.cidr.netmask().octets()),
                vpc_id,
                vswitch_id: 0,
                route_table: system_table,
                port: port.port,
                flags: ENI_F_NO_SRC_DST_CHECK,
                mac: gw.mac,
                gw_mac: gw.local_mac,
                ifindex: 0,
            };
            if let Some(host) = binding.cluster.remote_gateway(gw) {
                // From its host, which routed it (`ct::ARRIVED`).
                let remote = Eni { route_table: 0, flags: ENI_F_TUNNEL | ENI_F_NO_SRC_DST_CHECK, ..sender };
                tunnel(remote, gw.conntrack_limit, host, binding, &mut out);
                continue;
            }
            let Some(&ifindex) = binding.ifindex.get(&gw.id) else { continue };
            out.ports.insert(port.port, ifindex);
            if binding.cluster.me.is_some() {
                out.overlay.delivery.insert(port.port, port);
            }
            out.enis.insert(ifindex, Eni { ifindex, ..sender });
        }
    }
    hosts(binding, &mut out.overlay);
    out.sg.places = ids.sg_places.iter().filter(|(set, _)| out.sg.sets.contains_key(set)).map(|(s, p)| (*s, *p)).collect();
    out
}

/// Delivery to ENI `name` of `vpc`: its port, its MAC, from its VSwitch gateway's MAC.
/// The `ROUTES` entry of `view` in table number `table`; an ECMP / active-standby hop adds its
/// group to `groups`. Shared by the full compile and the incremental path (`agent::incremental`).
pub fn route_entry(
    topology: &Topology,
    vpc: &model::Vpc,
    table: u32,
    view: &model::route::RouteView,
    binding: &Binding,
    groups: &mut BTreeMap<u32, Group>,
) -> (LpmKey, Route) {
    let ids = &binding.ids;
    let mut route = Route { kind: route_kind::BLACKHOLE, arg: 0, id: view.number, hop: Port::default() };
    match &view.next_hop {
        NextHop::Local => (route.kind, route.arg) = (route_kind::LOCAL, ids.vpc(&vpc.id)),
        NextHop::Host => route.kind = route_kind::HOST,
        NextHop::Blackhole => {}
        NextHop::Eni { eni } => (route.kind, route.hop) = (route_kind::PORT, eni_port(vpc, eni, binding)),
        NextHop::Gateway { gateway } => (route.kind, route.hop) = (route_kind::PORT, gateway_port(vpc, gateway, binding)),
        NextHop::Vpc { vpc: peer } => {
            let peer = topology.vpc(peer).expect("validated reference");
            (route.kind, route.arg) = (route_kind::VPC, ids.route_table(&peer.system_table().id));
        }
        NextHop::Group(group) => {
            let id = view.id.clone().expect("group routes are custom");
            let number = ids.group(&id);
            groups.insert(number, hop_group(vpc, &id, group, binding));
            (route.kind, route.arg) = (route_kind::GROUP, number);
        }
    }
    (lpm_key(table, view.dst.network().octets(), view.dst.prefix_len()), route)
}

fn eni_port(vpc: &model::Vpc, name: &str, binding: &Binding) -> Port {
    let eni = vpc.eni(name).expect("validated reference");
    let vswitch = vpc.vswitch(&eni.vswitch).expect("validated reference");
    let port = Port { port: binding.ids.port(&eni.id), mtu: eni.mtu, flags: 0, mac: eni.mac, gw_mac: vswitch.gateway_mac };
    if binding.cluster.remote_host(eni).is_none() {
        return port;
    }
    // On another host: through the overlay, whose headers take from the underlay's MTU.
    let mtu = binding.cluster.tunnel_mtu().map_or(port.mtu, |limit| port.mtu.min(limit));
    Port { mtu, flags: PORT_F_TUNNEL, ..port }
}

/// An ENI or gateway on another host (`host`), as `sender` at its port here: its port leads
/// into the overlay (the DEVMAP slot is the underlay), what arrives from it is taken as from
/// `sender`, and its side of a connection is open here (its own host judges it), with its
/// connection limit.
fn tunnel(sender: Eni, ct_limit: u32, host: &str, binding: &Binding, out: &mut MapEntries) {
    let groups = PortGroups { ct_limit, flags: vpc_common::sg::PORT_OPEN, ..Default::default() };
    out.sg.port_groups.insert(sender.port, groups);
    let Some(underlay) = binding.cluster.underlay else { return };
    out.ports.insert(sender.port, underlay.ifindex);
    let Some(host) = binding.cluster.hosts.get(host) else { return };
    out.overlay.tunnels.insert(sender.port, Tunnel { eni: sender, host: host.number, _pad: 0 });
}

/// The other hosts and this host's underlay.
fn hosts(binding: &Binding, out: &mut OverlayEntries) {
    let cluster = &binding.cluster;
    let Some(me) = cluster.me.as_deref() else { return };
    for (name, host) in &cluster.hosts {
        if name == me {
            continue;
        }
        let ip = addr_raw(host.ip.octets());
        out.hosts.insert(host.number, Host { ip, mac: host.mac, flags: if host.up { HOST_UP } else { 0 } });
        out.host_of_ip.insert(ip, host.number);
    }
    if let (Some(underlay), Some(mine)) = (cluster.underlay, cluster.hosts.get(me)) {
        let ip = addr_raw(mine.ip.octets());
        let flags = if underlay.tc_xmit { vpc_common::tunnel::UNDERLAY_TC_XMIT } else { 0 };
        out.underlay.insert(0, Underlay { ifindex: underlay.ifindex, ip, mac: underlay.mac, mtu: underlay.mtu, host: mine.number, flags });
    }
}

/// Delivery to gateway `name` of `vpc`: to the remote router's MAC, from the link's VPC side
/// (on another host: through the overlay, whose headers take from the underlay's MTU).
fn gateway_port(vpc: &model::Vpc, name: &str, binding: &Binding) -> Port {
    let gw = vpc.gateway(name).expect("validated reference");
    let port = Port { port: binding.ids.port(&gw.id), mtu: gw.mtu, flags: 0, mac: gw.mac, gw_mac: gw.local_mac };
    if binding.cluster.remote_gateway(gw).is_none() {
        return port;
    }
    let mtu = binding.cluster.tunnel_mtu().map_or(port.mtu, |limit| port.mtu.min(limit));
    Port { mtu, flags: PORT_F_TUNNEL, ..port }
}

/// The group of route `route_id`: its hops and which slots go where, given which hops are up.
fn hop_group(vpc: &model::Vpc, route_id: &str, group: &HopGroup, binding: &Binding) -> Group {
    let mut out = Group::default();
    let mut live = Vec::new();
    for (i, hop) in group.hops.iter().enumerate() {
        let (port, reachable) = match &hop.target {
            HopTarget::Eni(name) => {
                let eni = vpc.eni(name).expect("validated");
                (eni_port(vpc, name, binding), binding.reachable(&eni.id, eni.host.as_deref()))
            }
            HopTarget::Gateway(name) => {
                let gw = vpc.gateway(name).expect("validated");
                (gateway_port(vpc, name, binding), binding.reachable(&gw.id, gw.host.as_deref()))
            }
        };
        out.hops[i] = port;
        live.push(reachable && !binding.down.contains(&(route_id.to_string(), i)));
    }
    let weights: Vec<u8> = group.hops.iter().map(|h| h.weight).collect();
    out.slots = ecmp::slots(&weights, &live);
    out
}

/// The LPM key of `addr/prefix_len` in route table `table`.
pub fn lpm_key(table: u32, addr: [u8; 4], prefix_len: u8) -> LpmKey {
    LpmKey { prefix_len: ROUTE_TABLE_BITS + u32::from(prefix_len), key: RouteKey { table, addr: addr_raw(addr) } }
}

#[cfg(test)]
mod tests;
