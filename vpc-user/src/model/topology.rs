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
        let Some(eni) = eni(&at, &spec.name, &vswitches, eni_spec, problems) else { continue };
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

fn eni(at: &str, vpc_name: &str, vswitches: &[VSwitch], spec: &EniSpec, problems: &mut Problems) -> Option<Eni> {
    check_name(problems, format!("{at}.name"), &spec.name);
    let Some(vsw) = vswitches.iter().find(|v| v.name == spec.vswitch) else {
        problems.add(code::VSWITCH_NOT_FOUND, format!("{at}.vswitch"), format!("VPC '{vpc_name}' has no VSwitch '{}'", spec.vswitch));
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
