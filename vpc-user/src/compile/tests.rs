use std::collections::BTreeMap;

use vpc_common::{AddrKey, ENI_F_NO_SRC_DST_CHECK, Route, addr_raw, route_kind};

use super::*;
use crate::model::ids::Ids;

const TWO_VPCS: &str = "
vpcs:
  - name: prod
    cidr: 192.168.0.0/16
    vswitches:
      - {name: web, cidr: 192.168.1.0/24, zone: zone-a}
      - {name: db, cidr: 192.168.2.0/24, zone: zone-b, route_table: edge}
    route_tables:
      - name: system
        routes: [{dst: 10.0.0.0/24, next_hop: {type: eni, eni: nat1}}]
      - name: edge
        routes:
          - {dst: 0.0.0.0/0, next_hop: {type: eni, eni: nat1}}
          - {dst: 192.168.1.128/25, next_hop: {type: blackhole}}
    enis:
      - {name: web1, vswitch: web, ip: 192.168.1.10}
      - {name: nat1, vswitch: web, ip: 192.168.1.5, source_dest_check: false}
      - {name: db1, vswitch: db, ip: 192.168.2.10, mac: '02:00:00:00:00:0d'}
  - name: test
    cidr: 192.168.0.0/16
    vswitches:
      - {name: web, cidr: 192.168.1.0/24, zone: zone-a}
    enis:
      - {name: tweb1, vswitch: web, ip: 192.168.1.10}
";

fn bound(yaml: &str) -> (Topology, Binding) {
    let topology = Topology::from_yaml(yaml).unwrap();
    let mut ids = Ids::default();
    ids.assign(&topology, 64).unwrap();
    let ifindex: BTreeMap<String, u32> = topology
        .enis()
        .enumerate()
        .filter(|(_, (_, _, e))| e.name != "tweb1")
        .map(|(i, (_, _, e))| (e.id.clone(), 100 + i as u32))
        .collect();
    (topology, Binding { ids, ifindex, ..Default::default() })
}

fn table_id(t: &Topology, b: &Binding, vpc: &str, table: &str) -> u32 {
    b.ids.route_table(&t.vpc(vpc).unwrap().route_table(table).unwrap().id)
}

fn vpc_id(t: &Topology, b: &Binding, vpc: &str) -> u32 {
    b.ids.vpc(&t.vpc(vpc).unwrap().id)
}

fn port(t: &Topology, b: &Binding, eni: &str) -> u32 {
    b.ids.port(&t.eni(eni).unwrap().2.id)
}

#[test]
fn every_table_has_the_system_entries_and_its_custom_ones() {
    let (t, b) = bound(TWO_VPCS);
    let entries = compile(&t, &b);
    let system = table_id(&t, &b, "prod", "system");
    let edge = table_id(&t, &b, "prod", "edge");
    let test = table_id(&t, &b, "test", "system");
    assert_eq!(BTreeMap::from_iter([system, edge, test].map(|x| (x, ()))).len(), 3, "tables have distinct numbers");
    let prod = vpc_id(&t, &b, "prod");
    let local = |id| Route { kind: route_kind::LOCAL, arg: prod, id, hop: Port::default() };
    let host = Route { kind: route_kind::HOST, arg: 0, id: 1, hop: Port::default() };
    let (_, web, nat1) = t.eni("nat1").unwrap();
    let nat1_port = Port { port: port(&t, &b, "nat1"), mtu: 1500, flags: 0, mac: nat1.mac, gw_mac: web.gateway_mac };
    for table in [system, edge] {
        assert_eq!(entries.routes[&lpm_key(table, [100, 64, 0, 0], 10)], host, "100.64.0.0/10 goes to the host");
        assert_eq!(entries.routes[&lpm_key(table, [192, 168, 1, 0], 24)], local(2));
        assert_eq!(entries.routes[&lpm_key(table, [192, 168, 2, 0], 24)], local(3));
    }
    assert_eq!(entries.routes[&lpm_key(system, [10, 0, 0, 0], 24)], Route { kind: route_kind::PORT, arg: 0, id: 4, hop: nat1_port });
    assert_eq!(entries.routes[&lpm_key(edge, [0, 0, 0, 0], 0)], Route { kind: route_kind::PORT, arg: 0, id: 4, hop: nat1_port });
    assert_eq!(entries.routes[&lpm_key(edge, [192, 168, 1, 128], 25)].kind, route_kind::BLACKHOLE);
    assert!(!entries.routes.contains_key(&lpm_key(system, [0, 0, 0, 0], 0)), "custom entries stay in their table");
    assert_eq!(entries.routes.len(), 3 + 1 + 3 + 2 + 2, "prod system 3+1, prod edge 3+2, test 2");
    assert_eq!(lpm_key(1, [10, 0, 0, 0], 8).prefix_len, 40, "prefix counts the 32 table bits");
}

#[test]
fn enis_use_their_vswitch_table_and_flags() {
    let (t, b) = bound(TWO_VPCS);
    let entries = compile(&t, &b);
    let eni = |name: &str| entries.enis[&b.ifindex[&t.eni(name).unwrap().2.id]];
    assert_eq!(eni("web1").route_table, table_id(&t, &b, "prod", "system"));
    assert_eq!(eni("db1").route_table, table_id(&t, &b, "prod", "edge"));
    assert_eq!(eni("nat1").flags, ENI_F_NO_SRC_DST_CHECK);
    assert_eq!(eni("web1").flags, 0);
}

#[test]
fn same_address_in_two_vpcs_is_two_entries_and_unattached_enis_have_no_port() {
    let (t, b) = bound(TWO_VPCS);
    let entries = compile(&t, &b);
    let addr = addr_raw([192, 168, 1, 10]);
    let prod = entries.addrs[&AddrKey { vpc_id: vpc_id(&t, &b, "prod"), addr }];
    let test = entries.addrs[&AddrKey { vpc_id: vpc_id(&t, &b, "test"), addr }];
    assert_eq!(prod.port, port(&t, &b, "web1"));
    assert_eq!(test.port, port(&t, &b, "tweb1"));
    assert_eq!(entries.addrs.len(), 4);
    // tweb1 has no interface: its address is known, but it has no ENI entry and no DEVMAP port.
    assert!(!entries.ports.contains_key(&port(&t, &b, "tweb1")));
    assert_eq!(entries.enis.len(), 3);
    assert_eq!(entries.ports.len(), 3);
}

#[test]
fn eni_entry_carries_identity_gateway_and_table() {
    let (t, b) = bound(TWO_VPCS);
    let entries = compile(&t, &b);
    let (_, db, db1) = t.eni("db1").unwrap();
    let ifindex = b.ifindex[&db1.id];
    let eni = entries.enis[&ifindex];
    assert_eq!(eni.ip, addr_raw([192, 168, 2, 10]));
    assert_eq!(eni.gw_ip, addr_raw([192, 168, 2, 253]));
    assert_eq!(eni.mac, [2, 0, 0, 0, 0, 0x0d]);
    assert_eq!(eni.gw_mac, db.gateway_mac);
    assert_eq!(eni.vpc_net, addr_raw([192, 168, 0, 0]));
    assert_eq!(eni.vpc_mask, addr_raw([255, 255, 0, 0]));
    assert_eq!(eni.port, port(&t, &b, "db1"));
    assert_eq!(entries.ports[&eni.port], ifindex);
    let p = entries.addrs[&AddrKey { vpc_id: eni.vpc_id, addr: eni.ip }];
    assert_eq!((p.mac, p.gw_mac), (eni.mac, eni.gw_mac));
}

#[test]
fn compile_is_deterministic() {
    let (t, b) = bound(TWO_VPCS);
    assert_eq!(compile(&t, &b), compile(&t, &b));
}

const ROUTED: &str = "
vpcs:
  - name: prod
    cidr: 192.168.0.0/16
    vswitches: [{name: web, cidr: 192.168.1.0/24, zone: a}]
    gateways: [{name: idc, networks: [10.0.0.0/8]}, {name: vpn, networks: [172.20.0.0/16]}]
    route_tables:
      - name: system
        routes:
          - {dst: 10.0.0.0/8, next_hop: {type: gateway, gateway: idc}}
          - {dst: 172.16.0.0/12, next_hop: {type: vpc, vpc: peer}}
          - {dst: 0.0.0.0/0, next_hop: {type: ecmp, hops: [{eni: n1}, {eni: n2, weight: 50}, {gateway: vpn}]}}
          - {dst: 10.99.0.0/16, next_hop: {type: active_standby, hops: [{eni: n1}, {eni: n2}]}}
    enis:
      - {name: n1, vswitch: web, ip: 192.168.1.5, source_dest_check: false}
      - {name: n2, vswitch: web, ip: 192.168.1.6, source_dest_check: false}
  - name: peer
    cidr: 172.16.0.0/12
    vswitches: [{name: app, cidr: 172.16.1.0/24, zone: a}]
  - name: third
    cidr: 10.50.0.0/16
    vswitches: [{name: app, cidr: 10.50.1.0/24, zone: a}]
cens: [{name: cen1, vpcs: [peer, third]}]
";

fn bound_all(yaml: &str) -> (Topology, Binding) {
    let topology = Topology::from_yaml(yaml).unwrap();
    let mut ids = Ids::default();
    ids.assign(&topology, 64).unwrap();
    let mut ifindex: BTreeMap<String, u32> = topology.enis().enumerate().map(|(i, (_, _, e))| (e.id.clone(), 100 + i as u32)).collect();
    for (i, g) in topology.vpcs.iter().flat_map(|v| &v.gateways).enumerate() {
        ifindex.insert(g.id.clone(), 200 + i as u32);
    }
    (topology, Binding { ids, ifindex, ..Default::default() })
}

#[test]
fn gateways_peering_groups_and_cens() {
    let (t, mut b) = bound_all(ROUTED);
    let entries = compile(&t, &b);
    let prod = t.vpc("prod").unwrap();
    let system = b.ids.route_table(&prod.system_table().id);
    let idc = prod.gateway("idc").unwrap();
    // A gateway is a sender (any source address, its router's MAC) routed by the system table ...
    let sender = entries.enis[&b.ifindex[&idc.id]];
    assert_eq!((sender.flags, sender.mac, sender.route_table, sender.ip), (ENI_F_NO_SRC_DST_CHECK, idc.mac, system, 0));
    // ... and a next hop: to its router's MAC, from the link's VPC side.
    let to_idc = entries.routes[&lpm_key(system, [10, 0, 0, 0], 8)];
    assert_eq!(to_idc.kind, route_kind::PORT);
    assert_eq!((to_idc.hop.mac, to_idc.hop.gw_mac, to_idc.hop.port), (idc.mac, idc.local_mac, b.ids.port(&idc.id)));
    // A VPC next hop continues in the peer's system table.
    let peer_system = b.ids.route_table(&t.vpc("peer").unwrap().system_table().id);
    let crossing = entries.routes[&lpm_key(system, [172, 16, 0, 0], 12)];
    assert_eq!((crossing.kind, crossing.arg), (route_kind::VPC, peer_system));
    // CEN members learn each other's VSwitch CIDRs as VPC routes; prod is not a member.
    let third_system = b.ids.route_table(&t.vpc("third").unwrap().system_table().id);
    assert_eq!(entries.routes[&lpm_key(peer_system, [10, 50, 1, 0], 24)].arg, third_system);
    assert_eq!(entries.routes[&lpm_key(third_system, [172, 16, 1, 0], 24)].arg, peer_system);
    assert!(!entries.routes.contains_key(&lpm_key(system, [10, 50, 1, 0], 24)));
    // ECMP: hops and slots by weight.
    let ecmp = entries.routes[&lpm_key(system, [0, 0, 0, 0], 0)];
    assert_eq!(ecmp.kind, route_kind::GROUP);
    let group = entries.groups[&ecmp.arg];
    let share = |g: &vpc_common::Group, h: u8| g.slots.iter().filter(|s| **s == h).count();
    assert_eq!((share(&group, 0), share(&group, 1), share(&group, 2)), (103, 51, 102));
    assert_eq!(group.hops[2].mac, prod.gateway("vpn").unwrap().mac);
    // Active/standby: everything to the active hop; its health check failing moves it all.
    let route_id = prod.system_table().routes.iter().find(|r| r.dst.to_string() == "10.99.0.0/16").unwrap().id.clone();
    let standby = entries.routes[&lpm_key(system, [10, 99, 0, 0], 16)];
    assert_eq!(share(&entries.groups[&standby.arg], 0), 256);
    b.down.insert((route_id, 0));
    let failed = compile(&t, &b);
    assert_eq!(share(&failed.groups[&standby.arg], 1), 256);
    assert_eq!(failed.groups[&ecmp.arg], group, "other groups are untouched");
    // An ENI hop without an interface is down too.
    let n2 = prod.eni("n2").unwrap().id.clone();
    b.ifindex.remove(&n2);
    let without = compile(&t, &b);
    assert_eq!(share(&without.groups[&ecmp.arg], 1), 0);
    assert!(without.groups[&standby.arg].slots.iter().all(|s| *s == vpc_common::NO_HOP), "both hops down");
}

#[test]
fn renumbering_entries_equals_compiling_with_renumbered_tables() {
    let (t, b) = bound_all(ROUTED);
    let entries = compile(&t, &b);
    // Renumber the peer's system table (target of VPC crossings and CEN routes) and prod's.
    let mut renumbered_ids = b.ids.clone();
    let avoid: std::collections::BTreeSet<u32> = entries.routes.keys().map(|k| k.key.table).collect();
    let mut renumbered = BTreeMap::new();
    for vpc in ["peer", "prod"] {
        let id = t.vpc(vpc).unwrap().system_table().id.clone();
        let old = b.ids.route_table(&id);
        renumbered.insert(old, renumbered_ids.renumber_table(&id, &avoid));
    }
    assert!(renumbered.iter().all(|(old, new)| old != new && !avoid.contains(new)));
    let expected = compile(&t, &Binding { ids: renumbered_ids, ..b.clone() });
    assert_ne!(expected, entries);
    assert_eq!(entries.renumber_tables(&renumbered), expected);
}

#[test]
fn connection_limits_and_mtus_reach_every_port() {
    let (t, b) = bound(
        "
vpcs:
  - name: prod
    cidr: 10.0.0.0/16
    conntrack_limit: 500
    vswitches: [{name: web, cidr: 10.0.1.0/24, zone: a}]
    gateways:
      - {name: idc, networks: [10.9.0.0/16], conntrack_limit: 100000, mtu: 1400}
      - {name: vpn, networks: [10.8.0.0/16]}
    route_tables:
      - name: system
        routes: [{dst: 10.9.0.0/16, next_hop: {type: gateway, gateway: idc}}]
    enis:
      - {name: e1, vswitch: web, ip: 10.0.1.10}
      - {name: e2, vswitch: web, ip: 10.0.1.11, conntrack_limit: 7, mtu: 1200}
  - name: dev
    cidr: 172.16.0.0/16
    vswitches: [{name: web, cidr: 172.16.1.0/24, zone: a}]
    enis: [{name: e3, vswitch: web, ip: 172.16.1.10}]
",
    );
    let entries = compile(&t, &b);
    let port = |name: &str| match t.eni(name) {
        Some((_, _, e)) => b.ids.port(&e.id),
        None => b.ids.port(&t.vpcs[0].gateway(name).unwrap().id),
    };
    let groups = |name: &str| entries.sg.port_groups.get(&port(name)).copied();
    assert_eq!(groups("e1").unwrap().ct_limit, 500, "the VPC's limit");
    assert_eq!(groups("e2").unwrap().ct_limit, 7, "the ENI's own");
    assert_eq!(groups("e3").unwrap().ct_limit, vpc_common::maps::DEFAULT_CT_LIMIT, "the default");
    let open = vpc_common::sg::PORT_OPEN;
    assert_eq!(groups("idc").map(|g| (g.ct_limit, g.count, g.flags)), Some((100_000, 0, open)), "a gateway with a limit, open, no groups");
    assert_eq!(groups("vpn").map(|g| (g.ct_limit, g.count, g.flags)), Some((0, 0, open)), "a gateway without a limit: open, no limit");
    for eni in ["e1", "e2", "e3"] {
        let g = groups(eni).unwrap();
        assert!(g.count > 0 && g.flags & open == 0, "{eni}: an ENI is never open, it has groups");
    }
    let delivery = |name: &str| *entries.addrs.values().find(|p| p.port == port(name)).unwrap();
    assert_eq!((delivery("e1").mtu, delivery("e2").mtu), (1500, 1200));
    let to_idc = entries.routes.values().find(|r| r.kind == route_kind::PORT).unwrap();
    assert_eq!((to_idc.hop.port, to_idc.hop.mtu), (port("idc"), 1400));
}

/// Two hosts: web1 and nat1 here (h1), db1 on h2; nat1 is also reached by routes.
const ON_TWO_HOSTS: &str = "
vpcs:
  - name: prod
    cidr: 192.168.0.0/16
    vswitches:
      - {name: web, cidr: 192.168.1.0/24, zone: zone-a}
      - {name: db, cidr: 192.168.2.0/24, zone: zone-b}
    route_tables:
      - name: system
        routes: [{dst: 10.0.0.0/24, next_hop: {type: eni, eni: db1}}]
    security_groups:
      - name: sg
        rules: [{direction: ingress, policy: accept, protocol: tcp, ports: 22/22, peer: 0.0.0.0/0, priority: 1}]
    enis:
      - {name: web1, vswitch: web, ip: 192.168.1.10, host: h1}
      - {name: db1, vswitch: db, ip: 192.168.2.10, host: h2, mtu: 3000, conntrack_limit: 500, security_groups: [sg]}
      - {name: nat1, vswitch: web, ip: 192.168.1.5, source_dest_check: false}
";

fn clustered(me: &str) -> (Topology, Binding) {
    clustered_from(ON_TWO_HOSTS, me)
}

fn clustered_from(yaml: &str, me: &str) -> (Topology, Binding) {
    use crate::model::binding::{Cluster, HostInfo, UnderlayInfo};
    let (topology, mut binding) = bound(yaml);
    let host = |n: u8| HostInfo { number: u32::from(n), ip: std::net::Ipv4Addr::new(10, 9, 0, n), mac: [2, 9, 0, 0, 0, n], up: true };
    binding.cluster = Cluster {
        me: Some(me.into()),
        hosts: [("h1".to_string(), host(1)), ("h2".to_string(), host(2))].into(),
        underlay: Some(UnderlayInfo { ifindex: 7, mac: [2, 9, 0, 0, 0, 0xee], mtu: 1500, tc_xmit: false }),
    };
    // Only the ENIs on this host have interfaces.
    binding.ifindex.retain(|id, _| topology.enis().any(|(_, _, e)| &e.id == id && e.host.as_deref().unwrap_or("h1") == me));
    (topology, binding)
}

#[test]
fn an_eni_on_another_host_is_a_tunnel_port() {
    let (t, b) = clustered("h1");
    let out = compile(&t, &b);
    let (vpc, _, db1) = t.eni("db1").unwrap();
    let db1_port = port(&t, &b, "db1");
    let prod = b.ids.vpc(&vpc.id);
    // Its address leads into the overlay, at the MTU the overlay leaves (not its own 9000).
    let addr = out.addrs[&AddrKey { vpc_id: prod, addr: addr_raw([192, 168, 2, 10]) }];
    assert_eq!((addr.port, addr.flags, addr.mtu, addr.mac), (db1_port, PORT_F_TUNNEL, 1500 - 58, db1.mac));
    // So does a route to it.
    let route = out.routes[&lpm_key(table_id(&t, &b, "prod", "system"), [10, 0, 0, 0], 24)];
    assert_eq!(route.hop, addr);
    // Its DEVMAP slot is the underlay; it sends nothing here; its side is open with its limit.
    assert_eq!(out.ports[&db1_port], 7);
    assert!(out.enis.values().all(|e| e.port != db1_port));
    let groups = out.sg.port_groups[&db1_port];
    assert_eq!((groups.count, groups.flags, groups.ct_limit), (0, vpc_common::sg::PORT_OPEN, 500));
    // What arrives from it is taken as from it: its address and VPC, no route table, no gateway.
    let tunnel = out.overlay.tunnels[&db1_port];
    assert_eq!(tunnel.host, 2);
    assert_eq!((tunnel.eni.ip, tunnel.eni.vpc_id, tunnel.eni.port), (addr_raw([192, 168, 2, 10]), prod, db1_port));
    assert_eq!((tunnel.eni.route_table, tunnel.eni.gw_ip, tunnel.eni.flags, tunnel.eni.ifindex), (0, 0, ENI_F_TUNNEL, 0));
    assert_eq!(out.overlay.tunnels.len(), 1);
    // The local ENIs are deliverable from the overlay; the other host and the underlay are known.
    let local: Vec<u32> = out.overlay.delivery.keys().copied().collect();
    assert_eq!(local, {
        let mut p = vec![port(&t, &b, "web1"), port(&t, &b, "nat1")];
        p.sort();
        p
    });
    assert_eq!(out.overlay.hosts[&2], Host { ip: addr_raw([10, 9, 0, 2]), mac: [2, 9, 0, 0, 0, 2], flags: HOST_UP });
    assert_eq!(out.overlay.hosts.len(), 1, "this host is not among the others");
    assert_eq!(out.overlay.host_of_ip, [(addr_raw([10, 9, 0, 2]), 2)].into());
    assert_eq!(
        out.overlay.underlay[&0],
        Underlay { ifindex: 7, ip: addr_raw([10, 9, 0, 1]), mac: [2, 9, 0, 0, 0, 0xee], mtu: 1500, host: 1, flags: 0 }
    );
}

#[test]
fn an_underlay_xdp_cannot_transmit_on_is_flagged_for_tc() {
    let (t, plain) = clustered("h1");
    let mut b = plain.clone();
    b.cluster.underlay.as_mut().unwrap().tc_xmit = true;
    let out = compile(&t, &b);
    assert_eq!(out.overlay.underlay[&0].flags, vpc_common::tunnel::UNDERLAY_TC_XMIT);
    // Nothing else changes: the tunnel port's slot is still the underlay (the TC program's
    // redirect target is read from the same entry).
    let before = compile(&t, &plain);
    assert_eq!(before.overlay.underlay[&0].flags, 0);
    assert_eq!(out.ports, before.ports);
    assert_eq!(out.overlay.tunnels, before.overlay.tunnels);
}

#[test]
fn each_host_compiles_its_own_side() {
    let (t, b) = clustered("h2");
    let out = compile(&t, &b);
    let db1 = port(&t, &b, "db1");
    // Here db1 is local, with its own groups and MTU; web1 is a tunnel to h1. nat1, placed on
    // no host, is every host's own, and has no interface here: nothing delivers to it.
    assert_eq!(out.sg.port_groups[&db1].count, 1);
    let db1_addr = out.addrs[&AddrKey { vpc_id: 1, addr: addr_raw([192, 168, 2, 10]) }];
    assert_eq!((db1_addr.flags, db1_addr.mtu), (0, 3000));
    assert_eq!(out.overlay.delivery.keys().copied().collect::<Vec<_>>(), vec![db1]);
    let tunnels: Vec<(u32, u32)> = out.overlay.tunnels.iter().map(|(p, t)| (*p, t.host)).collect();
    assert_eq!(tunnels, vec![(port(&t, &b, "web1"), 1)]);
    assert!(!out.ports.contains_key(&port(&t, &b, "nat1")));
}

#[test]
fn a_multicast_group_copies_to_its_members_here_and_once_to_each_other_host_with_members() {
    let yaml =
        format!("{ON_TWO_HOSTS}    multicast_groups:\n      - {{group: 239.1.1.1, senders: [web1, db1], members: [web1, db1, nat1]}}\n");
    let key = vpc_common::mcast::McastKey { vpc: 1, group: addr_raw([239, 1, 1, 1]) };
    let group = |me: &str| {
        let (t, b) = clustered_from(&yaml, me);
        let g = compile(&t, &b).mcast_groups[&key];
        let members: Vec<u32> = g.members[..g.count as usize].iter().map(|m| m.port).collect();
        let mut want: Vec<String> =
            ["web1", "db1", "nat1"].iter().filter(|n| b.ifindex.contains_key(&t.eni(n).unwrap().2.id)).map(|n| n.to_string()).collect();
        want.sort();
        let mut named: Vec<String> =
            members.iter().map(|p| t.enis().find(|(_, _, e)| b.ids.port(&e.id) == *p).unwrap().2.name.clone()).collect();
        named.sort();
        assert_eq!(named, want, "on {me}: the members with an interface here");
        g.hosts[..g.host_count as usize].to_vec()
    };
    // h1 holds web1 and nat1 (placed on no host: every host's own, with an interface only
    // here), h2 holds db1: each sends the other host one copy.
    assert_eq!(group("h1"), vec![2]);
    assert_eq!(group("h2"), vec![1]);
    // Without an underlay nothing goes to other hosts.
    let (t, mut b) = clustered_from(&yaml, "h1");
    b.cluster.underlay = None;
    assert_eq!(compile(&t, &b).mcast_groups[&key].host_count, 0);
}

#[test]
fn a_gateway_on_another_host_is_a_tunnel_port_that_takes_any_source() {
    let routes = "routes: [{dst: 10.0.0.0/24, next_hop: {type: eni, eni: db1}}]";
    assert!(ON_TWO_HOSTS.contains(routes));
    let with_gateway = ON_TWO_HOSTS.replace(
        routes,
        "routes: [{dst: 10.0.0.0/24, next_hop: {type: eni, eni: db1}}, {dst: 172.16.0.0/12, next_hop: {type: gateway, gateway: idc}}]",
    );
    let yaml = format!("{with_gateway}    gateways: [{{name: idc, networks: [172.16.0.0/12], host: h2, conntrack_limit: 900}}]\n");
    let (t, b) = clustered_from(&yaml, "h1");
    let out = compile(&t, &b);
    let port = b.ids.port(&t.vpcs[0].gateway("idc").unwrap().id);
    // A route to it leads into the overlay, at the overlay's MTU; its DEVMAP slot is the underlay.
    let route = out.routes[&lpm_key(table_id(&t, &b, "prod", "system"), [172, 16, 0, 0], 12)];
    assert_eq!((route.hop.port, route.hop.flags, route.hop.mtu), (port, PORT_F_TUNNEL, 1500 - 58));
    assert_eq!(out.ports[&port], 7);
    assert!(out.enis.values().all(|e| e.port != port), "no link here");
    // What arrives from it is taken from any address, from h2 only; its side is open, with its limit.
    let tunnel = out.overlay.tunnels[&port];
    assert_eq!((tunnel.host, tunnel.eni.ip, tunnel.eni.flags), (2, 0, ENI_F_TUNNEL | vpc_common::ENI_F_NO_SRC_DST_CHECK));
    assert_eq!(out.sg.port_groups[&port].ct_limit, 900);
}

#[test]
fn a_single_host_ignores_where_enis_are_placed() {
    let (t, mut b) = bound(ON_TWO_HOSTS);
    let single = compile(&t, &b);
    assert_eq!(single.overlay, OverlayEntries::default());
    assert!(single.addrs.values().all(|p| p.flags == 0));
    // A host down takes its ENIs out of ECMP and standby groups, as an unplugged interface does.
    b.cluster.me = Some("h1".into());
    assert!(!b.reachable(&t.eni("db1").unwrap().2.id, t.eni("db1").unwrap().2.host.as_deref()), "on an unknown host");
}
