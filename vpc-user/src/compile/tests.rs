use std::collections::BTreeMap;

use vpc_common::{addr_raw, route_kind, AddrKey, Route, ENI_F_NO_SRC_DST_CHECK};

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
    let ifindex: BTreeMap<String, u32> =
        topology.enis().enumerate().filter(|(_, (_, _, e))| e.name != "tweb1").map(|(i, (_, _, e))| (e.id.clone(), 100 + i as u32)).collect();
    (topology, Binding { ids, ifindex })
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
    let local = Route { kind: route_kind::LOCAL, arg: prod, hop: Port::default() };
    let host = Route { kind: route_kind::HOST, arg: 0, hop: Port::default() };
    let (_, web, nat1) = t.eni("nat1").unwrap();
    let to_nat1 = Route { kind: route_kind::ENI, arg: 0, hop: Port { port: port(&t, &b, "nat1"), flags: 0, mac: nat1.mac, gw_mac: web.gateway_mac } };
    for table in [system, edge] {
        assert_eq!(entries.routes[&lpm_key(table, [100, 64, 0, 0], 10)], host, "100.64.0.0/10 goes to the host");
        assert_eq!(entries.routes[&lpm_key(table, [192, 168, 1, 0], 24)], local);
        assert_eq!(entries.routes[&lpm_key(table, [192, 168, 2, 0], 24)], local);
    }
    assert_eq!(entries.routes[&lpm_key(system, [10, 0, 0, 0], 24)], to_nat1);
    assert_eq!(entries.routes[&lpm_key(edge, [0, 0, 0, 0], 0)], to_nat1);
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
