//! The validated topology: typed resources, every reference resolved, every rule checked.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use ipnet::Ipv4Net;
use serde::Serialize;

use super::{
    addr,
    error::{code, Invalid, Problems},
    names,
    spec::{EniSpec, TopologySpec, VSwitchSpec, VpcSpec},
};

/// The private ranges a VPC CIDR must equal or lie inside.
pub const PRIVATE_RANGES: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub vpcs: Vec<Vpc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vpc {
    pub name: String,
    pub cidr: Ipv4Net,
    pub description: Option<String>,
    pub vswitches: Vec<VSwitch>,
    pub enis: Vec<Eni>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VSwitch {
    pub name: String,
    pub cidr: Ipv4Net,
    pub zone: String,
    pub description: Option<String>,
    /// Third-from-last address of the CIDR.
    pub gateway: Ipv4Addr,
    /// Stable per VSwitch, derived from the VPC and VSwitch names.
    pub gateway_mac: [u8; 6],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eni {
    pub name: String,
    pub vswitch: String,
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// Host-side interface, when the file names one (otherwise the lab's naming applies).
    pub interface: Option<String>,
}

impl Topology {
    /// Parse and validate a topology file.
    pub fn from_yaml(text: &str) -> Result<Topology, Invalid> {
        let spec = TopologySpec::from_yaml(text).map_err(|e| {
            let field = e.location().map(|l| format!("line {} column {}", l.line(), l.column())).unwrap_or_default();
            Invalid(vec![super::error::Problem { code: code::YAML_SYNTAX, field, message: e.to_string() }])
        })?;
        Topology::from_spec(&spec)
    }

    /// Check every rule and resolve every reference of `spec`.
    pub fn from_spec(spec: &TopologySpec) -> Result<Topology, Invalid> {
        let mut problems = Problems::default();
        let mut vpc_names = BTreeSet::new();
        let mut eni_names = BTreeSet::new();
        let mut macs = BTreeMap::new();
        let mut interfaces = BTreeSet::new();
        let mut vpcs = Vec::new();
        for (i, vpc_spec) in spec.vpcs.iter().enumerate() {
            let at = format!("vpcs[{i}]");
            if !vpc_names.insert(vpc_spec.name.as_str()) {
                problems.add(code::NAME_DUPLICATE, format!("{at}.name"), format!("VPC name '{}' is used twice", vpc_spec.name));
            }
            if let Some(vpc) = vpc(&at, vpc_spec, &mut problems) {
                for (j, eni) in vpc.enis.iter().enumerate() {
                    let at = format!("{at}.enis[{j}]");
                    if !eni_names.insert(eni.name.clone()) {
                        problems.add(code::NAME_DUPLICATE, format!("{at}.name"), format!("ENI name '{}' is used twice in the file", eni.name));
                    }
                    if let Some(other) = macs.insert(eni.mac, eni.name.clone()) {
                        problems.add(code::MAC_DUPLICATE, format!("{at}.mac"), format!("MAC {} of ENI '{}' is also ENI '{other}''s", addr::format_mac(&eni.mac), eni.name));
                    }
                    if let Some(name) = &eni.interface
                        && !interfaces.insert(name.clone())
                    {
                        problems.add(code::INTERFACE_DUPLICATE, format!("{at}.interface"), format!("interface '{name}' is given to two ENIs"));
                    }
                }
                vpcs.push(vpc);
            }
        }
        problems.finish(Topology { vpcs })
    }

    pub fn vpc(&self, name: &str) -> Option<&Vpc> {
        self.vpcs.iter().find(|v| v.name == name)
    }

    /// Every ENI with its VPC and VSwitch.
    pub fn enis(&self) -> impl Iterator<Item = (&Vpc, &VSwitch, &Eni)> {
        self.vpcs.iter().flat_map(|vpc| {
            vpc.enis.iter().filter_map(move |eni| vpc.vswitch(&eni.vswitch).map(|vsw| (vpc, vsw, eni)))
        })
    }

    pub fn eni(&self, name: &str) -> Option<(&Vpc, &VSwitch, &Eni)> {
        self.enis().find(|(_, _, e)| e.name == name)
    }
}

impl Vpc {
    pub fn vswitch(&self, name: &str) -> Option<&VSwitch> {
        self.vswitches.iter().find(|v| v.name == name)
    }
}

fn check_name(problems: &mut Problems, field: String, name: &str) {
    if let Err(message) = names::check_name(name) {
        problems.add(code::NAME_MALFORMED, field, message);
    }
}

fn check_description(problems: &mut Problems, field: String, text: &Option<String>) {
    if let Some(text) = text
        && let Err(message) = names::check_description(text)
    {
        problems.add(code::DESCRIPTION_MALFORMED, field, message);
    }
}

/// A CIDR in canonical form (no host bits).
fn parse_cidr(problems: &mut Problems, field: String, text: &str) -> Option<Ipv4Net> {
    match text.parse::<Ipv4Net>() {
        Ok(net) if net.trunc() == net => Some(net),
        Ok(net) => {
            problems.add(code::CIDR_MALFORMED, field, format!("'{text}' has host bits set; did you mean {}?", net.trunc()));
            None
        }
        Err(_) => {
            problems.add(code::CIDR_MALFORMED, field, format!("'{text}' is not an IPv4 CIDR block like 192.168.0.0/16"));
            None
        }
    }
}

fn vpc(at: &str, spec: &VpcSpec, problems: &mut Problems) -> Option<Vpc> {
    check_name(problems, format!("{at}.name"), &spec.name);
    check_description(problems, format!("{at}.description"), &spec.description);
    let cidr = parse_cidr(problems, format!("{at}.cidr"), &spec.cidr)?;
    let private: Vec<Ipv4Net> = PRIVATE_RANGES.iter().map(|r| r.parse().expect("constant CIDR")).collect();
    if !private.iter().any(|range| range.contains(&cidr)) {
        problems.add(
            code::VPC_CIDR_NOT_PRIVATE,
            format!("{at}.cidr"),
            format!("VPC CIDR {cidr} must be 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or a subset of one of them"),
        );
    }

    let mut vswitches: Vec<VSwitch> = Vec::new();
    let mut names = BTreeSet::new();
    for (i, vsw_spec) in spec.vswitches.iter().enumerate() {
        let at = format!("{at}.vswitches[{i}]");
        if !names.insert(vsw_spec.name.as_str()) {
            problems.add(code::NAME_DUPLICATE, format!("{at}.name"), format!("VSwitch name '{}' is used twice in VPC '{}'", vsw_spec.name, spec.name));
        }
        let Some(vsw) = vswitch(&at, &spec.name, cidr, vsw_spec, problems) else { continue };
        if let Some(other) = vswitches.iter().find(|o| o.cidr.contains(&vsw.cidr) || vsw.cidr.contains(&o.cidr)) {
            problems.add(
                code::VSWITCH_CIDR_OVERLAP,
                format!("{at}.cidr"),
                format!("VSwitch CIDR {} overlaps VSwitch '{}' ({})", vsw.cidr, other.name, other.cidr),
            );
            continue;
        }
        vswitches.push(vsw);
    }

    let mut enis = Vec::new();
    let mut used: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
    for (i, eni_spec) in spec.enis.iter().enumerate() {
        let at = format!("{at}.enis[{i}]");
        let declared: Vec<&str> = spec.vswitches.iter().map(|v| v.name.as_str()).collect();
        let Some(eni) = eni(&at, &spec.name, &vswitches, &declared, eni_spec, problems) else { continue };
        if let Some(other) = used.insert(eni.ip, &eni_spec.name) {
            problems.add(code::IP_IN_USE, format!("{at}.ip"), format!("address {} is already ENI '{other}''s", eni.ip));
            continue;
        }
        enis.push(eni);
    }
    Some(Vpc { name: spec.name.clone(), cidr, description: spec.description.clone(), vswitches, enis })
}

fn vswitch(at: &str, vpc_name: &str, vpc_cidr: Ipv4Net, spec: &VSwitchSpec, problems: &mut Problems) -> Option<VSwitch> {
    check_name(problems, format!("{at}.name"), &spec.name);
    check_description(problems, format!("{at}.description"), &spec.description);
    if spec.zone.trim().is_empty() {
        problems.add(code::ZONE_MISSING, format!("{at}.zone"), "a VSwitch needs a zone");
    }
    let cidr = parse_cidr(problems, format!("{at}.cidr"), &spec.cidr)?;
    if !(16..=29).contains(&cidr.prefix_len()) {
        problems.add(code::VSWITCH_CIDR_MASK, format!("{at}.cidr"), format!("VSwitch mask /{} is outside /16 to /29", cidr.prefix_len()));
        return None;
    }
    if !vpc_cidr.contains(&cidr) {
        problems.add(code::VSWITCH_CIDR_NOT_IN_VPC, format!("{at}.cidr"), format!("VSwitch CIDR {cidr} is not inside the VPC CIDR {vpc_cidr}"));
        return None;
    }
    Some(VSwitch {
        name: spec.name.clone(),
        cidr,
        zone: spec.zone.clone(),
        description: spec.description.clone(),
        gateway: addr::gateway(cidr),
        gateway_mac: addr::derived_mac(0xee, &format!("{vpc_name}/{}", spec.name)),
    })
}

fn eni(
    at: &str,
    vpc_name: &str,
    vswitches: &[VSwitch],
    declared: &[&str],
    spec: &EniSpec,
    problems: &mut Problems,
) -> Option<Eni> {
    check_name(problems, format!("{at}.name"), &spec.name);
    let Some(vsw) = vswitches.iter().find(|v| v.name == spec.vswitch) else {
        if !declared.contains(&spec.vswitch.as_str()) {
            problems.add(code::VSWITCH_NOT_FOUND, format!("{at}.vswitch"), format!("VPC '{vpc_name}' has no VSwitch '{}'", spec.vswitch));
        }
        // A declared but invalid VSwitch already has its own problem reported.
        return None;
    };
    let Ok(ip) = spec.ip.parse::<Ipv4Addr>() else {
        problems.add(code::IP_MALFORMED, format!("{at}.ip"), format!("'{}' is not an IPv4 address", spec.ip));
        return None;
    };
    if !vsw.cidr.contains(&ip) {
        problems.add(code::IP_NOT_IN_VSWITCH, format!("{at}.ip"), format!("{ip} is not inside VSwitch '{}' ({})", vsw.name, vsw.cidr));
        return None;
    }
    if addr::is_reserved(vsw.cidr, ip) {
        problems.add(
            code::IP_RESERVED,
            format!("{at}.ip"),
            format!("{ip} is reserved in {} (the first address and the last three are the system's)", vsw.cidr),
        );
        return None;
    }
    let mac = match &spec.mac {
        None => addr::derived_mac(0x02, &spec.name),
        Some(text) => match addr::parse_mac(text) {
            Some(mac) if mac[0] & 1 == 0 && mac != [0; 6] => mac,
            _ => {
                problems.add(code::MAC_MALFORMED, format!("{at}.mac"), format!("'{text}' is not a unicast MAC like 02:00:00:00:00:01"));
                return None;
            }
        },
    };
    if let Some(name) = &spec.interface
        && (name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']))
    {
        problems.add(code::INTERFACE_MALFORMED, format!("{at}.interface"), format!("'{name}' is not a Linux interface name (1-15 characters, no '/', ':' or space)"));
    }
    Some(Eni { name: spec.name.clone(), vswitch: spec.vswitch.clone(), ip, mac, interface: spec.interface.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Apply `edit` to the base file and return the (code, field) of every problem.
    fn problems(edit: impl Fn(&str) -> String) -> Vec<(&'static str, String)> {
        match Topology::from_yaml(&edit(BASE)) {
            Ok(_) => Vec::new(),
            Err(Invalid(list)) => list.into_iter().map(|p| (p.code, p.field)).collect(),
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
            ("VPC CIDR outside the private ranges", Box::new(|b| b.replace("cidr: 192.168.0.0/16", "cidr: 8.8.0.0/16")), code::VPC_CIDR_NOT_PRIVATE, "vpcs[0].cidr"),
            ("VPC CIDR with host bits", Box::new(|b| b.replace("cidr: 192.168.0.0/16", "cidr: 192.168.0.1/16")), code::CIDR_MALFORMED, "vpcs[0].cidr"),
            ("VPC CIDR garbage", Box::new(|b| b.replace("cidr: 192.168.0.0/16", "cidr: nonsense")), code::CIDR_MALFORMED, "vpcs[0].cidr"),
            ("VPC name too short", Box::new(|b| b.replace("name: prod", "name: p")), code::NAME_MALFORMED, "vpcs[0].name"),
            ("VPC name starting with a digit", Box::new(|b| b.replace("name: prod", "name: 1prod")), code::NAME_MALFORMED, "vpcs[0].name"),
            ("VSwitch mask too wide", Box::new(|b| b.replace("192.168.1.0/24", "192.168.0.0/15")), code::VSWITCH_CIDR_MASK, "vpcs[0].vswitches[0].cidr"),
            ("VSwitch mask too narrow", Box::new(|b| b.replace("192.168.1.0/24", "192.168.1.0/30")), code::VSWITCH_CIDR_MASK, "vpcs[0].vswitches[0].cidr"),
            ("VSwitch outside the VPC", Box::new(|b| b.replace("192.168.2.0/24", "10.0.2.0/24")), code::VSWITCH_CIDR_NOT_IN_VPC, "vpcs[0].vswitches[1].cidr"),
            ("VSwitches overlap", Box::new(|b| b.replace("192.168.2.0/24", "192.168.0.0/22")), code::VSWITCH_CIDR_OVERLAP, "vpcs[0].vswitches[1].cidr"),
            ("VSwitch without zone", Box::new(|b| b.replace("zone: zone-b", "zone: ''")), code::ZONE_MISSING, "vpcs[0].vswitches[1].zone"),
            ("VSwitch name twice", Box::new(|b| b.replace("name: db,", "name: web,")), code::NAME_DUPLICATE, "vpcs[0].vswitches[1].name"),
            ("VSwitch description as a URL", Box::new(|b| b.replace("zone: zone-a}", "zone: zone-a, description: 'http://x'}")), code::DESCRIPTION_MALFORMED, "vpcs[0].vswitches[0].description"),
            ("ENI in an unknown VSwitch", Box::new(|b| b.replace("vswitch: db,", "vswitch: dbx,")), code::VSWITCH_NOT_FOUND, "vpcs[0].enis[1].vswitch"),
            ("ENI address outside its VSwitch", Box::new(|b| b.replace("ip: 192.168.2.10", "ip: 192.168.3.10")), code::IP_NOT_IN_VSWITCH, "vpcs[0].enis[1].ip"),
            ("ENI on the network address", Box::new(|b| b.replace("ip: 192.168.2.10", "ip: 192.168.2.0")), code::IP_RESERVED, "vpcs[0].enis[1].ip"),
            ("ENI on the gateway", Box::new(|b| b.replace("ip: 192.168.2.10", "ip: 192.168.2.253")), code::IP_RESERVED, "vpcs[0].enis[1].ip"),
            ("ENI on the broadcast address", Box::new(|b| b.replace("ip: 192.168.2.10", "ip: 192.168.2.255")), code::IP_RESERVED, "vpcs[0].enis[1].ip"),
            ("ENI address garbage", Box::new(|b| b.replace("ip: 192.168.2.10", "ip: 192.168.2")), code::IP_MALFORMED, "vpcs[0].enis[1].ip"),
            ("two ENIs on one address", Box::new(|b| b.replace("{name: db1, vswitch: db, ip: 192.168.2.10}", "{name: db1, vswitch: web, ip: 192.168.1.10}")), code::IP_IN_USE, "vpcs[0].enis[1].ip"),
            ("ENI name twice", Box::new(|b| b.replace("name: db1", "name: web1")), code::NAME_DUPLICATE, "vpcs[0].enis[1].name"),
            ("multicast MAC", Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, mac: '01:00:5e:00:00:01'}")), code::MAC_MALFORMED, "vpcs[0].enis[1].mac"),
            ("MAC garbage", Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, mac: 'zz'}")), code::MAC_MALFORMED, "vpcs[0].enis[1].mac"),
            ("MAC used twice", Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, mac: '02:00:00:00:00:01'}").replace("ip: 192.168.1.10}", "ip: 192.168.1.10, mac: '02:00:00:00:00:01'}")), code::MAC_DUPLICATE, "vpcs[0].enis[1].mac"),
            ("interface name too long", Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, interface: abcdefghijklmnop}")), code::INTERFACE_MALFORMED, "vpcs[0].enis[1].interface"),
            ("interface used twice", Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, interface: tap0}").replace("ip: 192.168.1.10}", "ip: 192.168.1.10, interface: tap0}")), code::INTERFACE_DUPLICATE, "vpcs[0].enis[1].interface"),
            ("VPC name twice", Box::new(|b| format!("{b}  - {{name: prod, cidr: 10.0.0.0/8}}\n")), code::NAME_DUPLICATE, "vpcs[1].name"),
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
        let got = problems(|b| b.replace("cidr: 192.168.0.0/16", "cidr: 192.168.0.0/16\n    description: x").replace("ip: 192.168.2.10", "ip: 192.168.2.255").replace("zone: zone-a", "zone: ' '"));
        let codes: Vec<&str> = got.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes.len(), 3, "{got:?}");
        assert!(codes.contains(&code::DESCRIPTION_MALFORMED) && codes.contains(&code::IP_RESERVED) && codes.contains(&code::ZONE_MISSING));
    }

    #[test]
    fn same_cidr_in_two_vpcs_is_fine_and_a_vswitch_may_equal_its_vpc() {
        let two = format!("{BASE}  - name: dev\n    cidr: 192.168.0.0/16\n    vswitches: [{{name: all, cidr: 192.168.0.0/16, zone: z}}]\n    enis: [{{name: d1, vswitch: all, ip: 192.168.1.10}}]\n");
        let t = Topology::from_yaml(&two).unwrap();
        assert_eq!(t.vpcs.len(), 2);
        // Equal to the VPC: then it must be the only VSwitch.
        let got = problems(|b| b.replace("192.168.2.0/24", "192.168.0.0/16"));
        assert!(got.iter().any(|(c, _)| *c == code::VSWITCH_CIDR_OVERLAP), "{got:?}");
    }
}
