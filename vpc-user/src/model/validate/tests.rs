//! Each rule of `Topology::from_spec` reports its code at its field, every problem is reported.

use std::net::Ipv4Addr;

use crate::model::{
    Topology,
    error::{Invalid, code},
};

const BASE: &str = "
vpcs:
  - name: prod
    cidr: 192.168.0.0/16
    vswitches:
      - {name: web, cidr: 192.168.1.0/24, zone: zone-a}
      - {name: db, cidr: 192.168.2.0/24, zone: zone-b}
    enis:
      - {name: web1, vswitch: web, ip: 192.168.1.10}
      - {name: db1, vswitch: db, ip: 192.168.2.10}
";

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Apply `edit` to the base file and return the (code, field) of every problem.
fn problems(edit: impl Fn(&str) -> String) -> Vec<(&'static str, String)> {
    match Topology::from_yaml(&edit(BASE)) {
        Ok(_) => Vec::new(),
        Err(Invalid(list)) => list.into_iter().map(|p| (leak(p.code), p.field)).collect(),
    }
}

#[test]
fn the_base_file_is_valid() {
    let t = Topology::from_yaml(BASE).unwrap();
    assert_eq!(t.vpcs[0].vswitches[0].gateway, Ipv4Addr::new(192, 168, 1, 253));
    assert_eq!(t.enis().count(), 2);
    let (_, vsw, eni) = t.eni("db1").unwrap();
    assert_eq!((vsw.name.as_str(), eni.ip), ("db", Ipv4Addr::new(192, 168, 2, 10)));
    assert_eq!(eni.mac[0], 0x02);
    assert_ne!(t.vpcs[0].vswitches[0].gateway_mac, t.vpcs[0].vswitches[1].gateway_mac);
}

#[test]
fn every_rule_reports_its_code_and_field() {
    let table: Vec<(&str, Box<dyn Fn(&str) -> String>, &str, &str)> = vec![
        (
            "VPC CIDR outside the private ranges",
            Box::new(|b| b.replace("cidr: 192.168.0.0/16", "cidr: 8.8.0.0/16")),
            code::VPC_CIDR_NOT_PRIVATE,
            "vpcs[0].cidr",
        ),
        (
            "VPC CIDR with host bits",
            Box::new(|b| b.replace("cidr: 192.168.0.0/16", "cidr: 192.168.0.1/16")),
            code::CIDR_MALFORMED,
            "vpcs[0].cidr",
        ),
        ("VPC CIDR garbage", Box::new(|b| b.replace("cidr: 192.168.0.0/16", "cidr: nonsense")), code::CIDR_MALFORMED, "vpcs[0].cidr"),
        ("VPC name too short", Box::new(|b| b.replace("name: prod", "name: p")), code::NAME_MALFORMED, "vpcs[0].name"),
        ("VPC name starting with a digit", Box::new(|b| b.replace("name: prod", "name: 1prod")), code::NAME_MALFORMED, "vpcs[0].name"),
        (
            "VSwitch mask too wide",
            Box::new(|b| b.replace("192.168.1.0/24", "192.168.0.0/15")),
            code::VSWITCH_CIDR_MASK,
            "vpcs[0].vswitches[0].cidr",
        ),
        (
            "VSwitch mask too narrow",
            Box::new(|b| b.replace("192.168.1.0/24", "192.168.1.0/30")),
            code::VSWITCH_CIDR_MASK,
            "vpcs[0].vswitches[0].cidr",
        ),
        (
            "VSwitch outside the VPC",
            Box::new(|b| b.replace("192.168.2.0/24", "10.0.2.0/24")),
            code::VSWITCH_CIDR_NOT_IN_VPC,
            "vpcs[0].vswitches[1].cidr",
        ),
        (
            "VSwitches overlap",
            Box::new(|b| b.replace("192.168.2.0/24", "192.168.0.0/22")),
            code::VSWITCH_CIDR_OVERLAP,
            "vpcs[0].vswitches[1].cidr",
        ),
        ("VSwitch without zone", Box::new(|b| b.replace("zone: zone-b", "zone: ''")), code::ZONE_MISSING, "vpcs[0].vswitches[1].zone"),
        ("VSwitch name twice", Box::new(|b| b.replace("name: db,", "name: web,")), code::NAME_DUPLICATE, "vpcs[0].vswitches[1].name"),
        (
            "VSwitch description as a URL",
            Box::new(|b| b.replace("zone: zone-a}", "zone: zone-a, description: 'http://x'}")),
            code::DESCRIPTION_MALFORMED,
            "vpcs[0].vswitches[0].description",
        ),
        (
            "ENI in an unknown VSwitch",
            Box::new(|b| b.replace("vswitch: db,", "vswitch: dbx,")),
            code::VSWITCH_NOT_FOUND,
            "vpcs[0].enis[1].vswitch",
        ),
        (
            "ENI address outside its VSwitch",
            Box::new(|b| b.replace("ip: 192.168.2.10", "ip: 192.168.3.10")),
            code::IP_NOT_IN_VSWITCH,
            "vpcs[0].enis[1].ip",
        ),
        (
            "ENI on the network address",
            Box::new(|b| b.replace("ip: 192.168.2.10", "ip: 192.168.2.0")),
            code::IP_RESERVED,
            "vpcs[0].enis[1].ip",
        ),
        ("ENI on the gateway", Box::new(|b| b.replace("ip: 192.168.2.10", "ip: 192.168.2.253")), code::IP_RESERVED, "vpcs[0].enis[1].ip"),
        (
            "ENI on the broadcast address",
            Box::new(|b| b.replace("ip: 192.168.2.10", "ip: 192.168.2.255")),
            code::IP_RESERVED,
            "vpcs[0].enis[1].ip",
        ),
        ("ENI address garbage", Box::new(|b| b.replace("ip: 192.168.2.10", "ip: 192.168.2")), code::IP_MALFORMED, "vpcs[0].enis[1].ip"),
        (
            "two ENIs on one address",
            Box::new(|b| b.replace("{name: db1, vswitch: db, ip: 192.168.2.10}", "{name: db1, vswitch: web, ip: 192.168.1.10}")),
            code::IP_IN_USE,
            "vpcs[0].enis[1].ip",
        ),
        ("ENI name twice", Box::new(|b| b.replace("name: db1", "name: web1")), code::NAME_DUPLICATE, "vpcs[0].enis[1].name"),
        (
            "multicast MAC",
            Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, mac: '01:00:5e:00:00:01'}")),
            code::MAC_MALFORMED,
            "vpcs[0].enis[1].mac",
        ),
        (
            "MAC garbage",
            Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, mac: 'zz'}")),
            code::MAC_MALFORMED,
            "vpcs[0].enis[1].mac",
        ),
        (
            "MAC used twice",
            Box::new(|b| {
                b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, mac: '02:00:00:00:00:01'}")
                    .replace("ip: 192.168.1.10}", "ip: 192.168.1.10, mac: '02:00:00:00:00:01'}")
            }),
            code::MAC_DUPLICATE,
            "vpcs[0].enis[1].mac",
        ),
        (
            "interface name too long",
            Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, interface: abcdefghijklmnop}")),
            code::INTERFACE_MALFORMED,
            "vpcs[0].enis[1].interface",
        ),
        (
            "interface used twice",
            Box::new(|b| {
                b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, interface: tap0}")
                    .replace("ip: 192.168.1.10}", "ip: 192.168.1.10, interface: tap0}")
            }),
            code::INTERFACE_DUPLICATE,
            "vpcs[0].enis[1].interface",
        ),
        ("VPC name twice", Box::new(|b| format!("{b}  - {{name: prod, cidr: 10.0.0.0/8}}\n")), code::NAME_DUPLICATE, "vpcs[1].name"),
        (
            "MTU too big for XDP on a veth",
            Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, mtu: 9000}")),
            code::MTU_MALFORMED,
            "vpcs[0].enis[1].mtu",
        ),
        (
            "MTU below what IPv4 hosts take",
            Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, mtu: 500}")),
            code::MTU_MALFORMED,
            "vpcs[0].enis[1].mtu",
        ),
        (
            "a connection limit of 0",
            Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, conntrack_limit: 0}")),
            code::CONNTRACK_LIMIT_MALFORMED,
            "vpcs[0].enis[1].conntrack_limit",
        ),
        (
            "a VPC's connection limit beyond the maximum",
            Box::new(|b| b.replace("cidr: 192.168.0.0/16", "cidr: 192.168.0.0/16\n    conntrack_limit: 99999999")),
            code::CONNTRACK_LIMIT_MALFORMED,
            "vpcs[0].conntrack_limit",
        ),
        ("unknown key", Box::new(|b| b.replace("zone: zone-a}", "zone: zone-a, colour: red}")), code::YAML_SYNTAX, ""),
    ];
    for (what, edit, want_code, want_field) in table {
        let got = problems(&edit);
        assert!(
            got.iter().any(|(c, f)| *c == want_code && (want_field.is_empty() || f == want_field)),
            "{what}: expected {want_code} at {want_field}, got {got:?}"
        );
    }
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let got = problems(|b| {
        b.replace("cidr: 192.168.0.0/16", "cidr: 192.168.0.0/16\n    description: x")
            .replace("ip: 192.168.2.10", "ip: 192.168.2.255")
            .replace("zone: zone-a", "zone: ' '")
    });
    let codes: Vec<&str> = got.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes.len(), 3, "{got:?}");
    assert!(codes.contains(&code::DESCRIPTION_MALFORMED) && codes.contains(&code::IP_RESERVED) && codes.contains(&code::ZONE_MISSING));
}

#[test]
fn same_cidr_in_two_vpcs_is_fine_and_a_vswitch_may_equal_its_vpc() {
    let two = format!(
        "{BASE}  - name: dev\n    cidr: 192.168.0.0/16\n    vswitches: [{{name: all, cidr: 192.168.0.0/16, zone: z}}]\n    enis: [{{name: d1, vswitch: all, ip: 192.168.1.10}}]\n"
    );
    let t = Topology::from_yaml(&two).unwrap();
    assert_eq!(t.vpcs.len(), 2);
    // Equal to the VPC: then it must be the only VSwitch.
    let got = problems(|b| b.replace("192.168.2.0/24", "192.168.0.0/16"));
    assert!(got.iter().any(|(c, _)| *c == code::VSWITCH_CIDR_OVERLAP), "{got:?}");
}
