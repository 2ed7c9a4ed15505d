use std::collections::BTreeMap;

use vpc_common::{addr_raw, route_kind, AddrKey, Route};

use super::*;
use crate::model::ids::Ids;

const TWO_VPCS: &str = "
vpcs:
  - name: prod
    cidr: 192.168.0.0/16
    vswitches:
      - {name: web, cidr: 192.168.1.0/24, zone: zone-a}
      - {name: db, cidr: 192.168.2.0/24, zone: zone-b}
    enis:
      - {name: web1, vswitch: web, ip: 192.168.1.10}
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
        topology.enis().enumerate().map(|(i, (_, _, e))| (e.name.clone(), 100 + i as u32)).collect();
    (topology, Binding { ids, ifindex })
}

#[test]
fn system_table_has_one_local_route_per_vswitch() {
    let (topology, binding) = bound(TWO_VPCS);
    let entries = compile(&topology, &binding);
    let prod_table = binding.ids.route_table("prod", SYSTEM_TABLE);
    let test_table = binding.ids.route_table("test", SYSTEM_TABLE);
    assert_ne!(prod_table, test_table);
    let prod = binding.ids.vpc("prod");
    let test = binding.ids.vpc("test");
    let expected: BTreeMap<LpmKey, Route> = [
        (lpm_key(prod_table, [192, 168, 1, 0], 24), Route { kind: route_kind::LOCAL, arg: prod }),
        (lpm_key(prod_table, [192, 168, 2, 0], 24), Route { kind: route_kind::LOCAL, arg: prod }),
        (lpm_key(test_table, [192, 168, 1, 0], 24), Route { kind: route_kind::LOCAL, arg: test }),
    ]
    .into();
    assert_eq!(entries.routes, expected);
    assert_eq!(lpm_key(1, [10, 0, 0, 0], 8).prefix_len, 40, "prefix counts the 32 table bits");
}

#[test]
fn same_address_in_two_vpcs_is_two_entries() {
    let (topology, binding) = bound(TWO_VPCS);
    let entries = compile(&topology, &binding);
    let addr = addr_raw([192, 168, 1, 10]);
    let prod = entries.addrs[&AddrKey { vpc_id: binding.ids.vpc("prod"), addr }];
    let test = entries.addrs[&AddrKey { vpc_id: binding.ids.vpc("test"), addr }];
    assert_eq!(prod.port, binding.ids.port("web1"));
    assert_eq!(test.port, binding.ids.port("tweb1"));
    assert_ne!(prod.port, test.port);
    assert_eq!(entries.addrs.len(), 3);
}

#[test]
fn eni_entry_carries_identity_gateway_and_table() {
    let (topology, binding) = bound(TWO_VPCS);
    let entries = compile(&topology, &binding);
    let ifindex = binding.ifindex["db1"];
    let eni = entries.enis[&ifindex];
    let (_, db, _) = topology.eni("db1").unwrap();
    assert_eq!(eni.ip, addr_raw([192, 168, 2, 10]));
    assert_eq!(eni.gw_ip, addr_raw([192, 168, 2, 253]));
    assert_eq!(eni.mac, [2, 0, 0, 0, 0, 0x0d]);
    assert_eq!(eni.gw_mac, db.gateway_mac);
    assert_eq!(eni.vpc_net, addr_raw([192, 168, 0, 0]));
    assert_eq!(eni.vpc_mask, addr_raw([255, 255, 0, 0]));
    assert_eq!(eni.route_table, binding.ids.route_table("prod", SYSTEM_TABLE));
    assert_eq!(eni.port, binding.ids.port("db1"));
    assert_eq!(entries.ports[&eni.port], ifindex);
    assert_eq!(entries.ports.len(), 3);
    // Port entries point at the destination ENI's own MAC and its VSwitch gateway.
    let port = entries.addrs[&AddrKey { vpc_id: eni.vpc_id, addr: eni.ip }];
    assert_eq!((port.mac, port.gw_mac), (eni.mac, eni.gw_mac));
}

#[test]
fn compile_is_deterministic() {
    let (topology, binding) = bound(TWO_VPCS);
    assert_eq!(compile(&topology, &binding), compile(&topology, &binding));
}
