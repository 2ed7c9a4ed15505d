//! The validated topology: typed resources, every reference resolved, every rule of the guide
//! checked. `Topology::from_spec` takes a normalized document (IDs filled in); `from_yaml`
//! normalizes a file on its own, for tools and tests that have no stored state.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use ipnet::Ipv4Net;
use serde::Serialize;

// Kept at their old path for callers that import them from here.
pub use super::constants::{CLOUD_SERVICES, MAX_CONNTRACK_LIMIT, MAX_MTU, MIN_MTU, PRIVATE_RANGES};
pub use super::quotas::Quotas;
use super::{
    addr,
    constants::{DEFAULT_VPC_CIDR, DEFAULT_VSWITCH_PREFIX, MAX_VSWITCH_PREFIX, MIN_VSWITCH_PREFIX, SYSTEM_TABLE},
    error::{code, Invalid, Problems},
    names,
    normalize::normalize,
    security::{self, SecurityGroup},
    spec::{EniSpec, NextHopSpec, RouteTableSpec, TopologySpec, VSwitchSpec, VpcSpec},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub vpcs: Vec<Vpc>,
    pub cens: Vec<Cen>,
    pub flow_logs: Vec<super::flowlog::FlowLog>,
}

/// A named group of VPCs that learn each other's VSwitch CIDRs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cen {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Member VPC names.
    pub vpcs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vpc {
    pub id: String,
    pub name: String,
    pub cidr: Ipv4Net,
    pub description: Option<String>,
    pub is_default: bool,
    pub vswitches: Vec<VSwitch>,
    /// The system table first, then custom tables.
    pub route_tables: Vec<RouteTable>,
    pub enis: Vec<Eni>,
    pub gateways: Vec<Gateway>,
    pub security_groups: Vec<SecurityGroup>,
    pub multicast_groups: Vec<super::multicast::McastGroup>,
    /// Connections each ENI may track unless it says otherwise.
    pub conntrack_limit: u32,
}

/// A port to a network outside the VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gateway {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub networks: Vec<Ipv4Net>,
    /// The far-side router's address (ARP health checks).
    pub ip: Option<Ipv4Addr>,
    /// The far-side router's MAC: the only source MAC accepted from the gateway.
    pub mac: [u8; 6],
    /// The VPC side's MAC on the gateway link (answers ARP, sources delivered frames).
    pub local_mac: [u8; 6],
    pub interface: Option<String>,
    /// The largest IP packet the link takes.
    pub mtu: u16,
    /// Connection-table entries it may hold; 0: no limit of its own.
    pub conntrack_limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VSwitch {
    pub id: String,
    pub name: String,
    pub cidr: Ipv4Net,
    pub zone: String,
    pub description: Option<String>,
    pub is_default: bool,
    /// Name of the associated route table (`system` unless a custom one is bound).
    pub route_table: String,
    /// Third-from-last address of the CIDR.
    pub gateway: Ipv4Addr,
    /// Stable per VSwitch, derived from its ID.
    pub gateway_mac: [u8; 6],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteTable {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_system: bool,
    /// Custom entries; system entries are `Vpc::system_routes`.
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub id: String,
    pub dst: Ipv4Net,
    pub next_hop: NextHop,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// What a route entry does with matching traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NextHop {
    /// System entry for a VSwitch CIDR: deliver to the ENI owning the destination address.
    Local,
    /// System entry for 100.64.0.0/10: hand to the host's own network stack.
    Host,
    /// Deliver to this ENI (by name) whatever the destination.
    Eni { eni: String },
    /// Deliver to this gateway (by name).
    Gateway { gateway: String },
    /// Continue in this VPC's (by name) system table.
    Vpc { vpc: String },
    /// ECMP or active/standby over hops of the VPC.
    Group(HopGroup),
    /// Drop and count.
    Blackhole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopGroup {
    /// Two hops with weights 100 and 0, health-checked; otherwise ECMP.
    pub active_standby: bool,
    pub hops: Vec<Hop>,
    pub health_check: HealthCheck,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    pub target: HopTarget,
    pub weight: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HopTarget {
    Eni(String),
    Gateway(String),
}

impl HopTarget {
    pub fn name(&self) -> &str {
        match self {
            HopTarget::Eni(n) | HopTarget::Gateway(n) => n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthMethod {
    /// Ask the hop for its address (ARP) and expect an answer.
    Arp,
    /// The carrier of the hop's interface.
    Link,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub method: HealthMethod,
    pub interval_ms: u32,
    /// Consecutive failures that make the hop down, and successes that bring it back.
    pub threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck { method: HealthMethod::Arp, interval_ms: 200, threshold: 3 }
    }
}

/// Where an entry of a route table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Origin {
    /// Maintained automatically: 100.64.0.0/10 and the VSwitch CIDRs.
    System,
    /// Learned from a CEN: another member's VSwitch CIDR.
    Cen,
    /// Added by the user.
    Custom,
}

/// One entry of a route table as the data path sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteView {
    /// The entry's number in its table (1, 2, ...), shared by compile and the model.
    pub number: u32,
    pub dst: Ipv4Net,
    pub next_hop: NextHop,
    pub origin: Origin,
    /// The custom entry's ID.
    pub id: Option<String>,
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
}

impl Topology {
    /// Parse, normalize (against nothing stored) and validate a topology file.
    pub fn from_yaml(text: &str) -> Result<Topology, Invalid> {
        let spec = TopologySpec::from_yaml(text).map_err(|e| Invalid(vec![TopologySpec::syntax_problem(&e)]))?;
        Topology::from_spec(&normalize(&TopologySpec::default(), spec), &Quotas::default())
    }

    /// The entries of `table` of `vpc`: system, learned from CENs, custom (a custom entry with a
    /// learned entry's destination overrides it), numbered in that order.
    pub fn routes(&self, vpc: &Vpc, table: &RouteTable) -> Vec<RouteView> {
        let mut out: Vec<RouteView> = Vec::new();
        let mut push = |dst: Ipv4Net, next_hop: NextHop, origin: Origin, id: Option<String>| {
            out.push(RouteView { number: 0, dst, next_hop, origin, id });
        };
        for (dst, hop) in vpc.system_routes() {
            push(dst, hop, Origin::System, None);
        }
        let custom: BTreeSet<Ipv4Net> = table.routes.iter().map(|r| r.dst).collect();
        for (dst, peer) in self.learned_routes(vpc) {
            if !custom.contains(&dst) {
                push(dst, NextHop::Vpc { vpc: peer }, Origin::Cen, None);
            }
        }
        for r in &table.routes {
            push(r.dst, r.next_hop.clone(), Origin::Custom, Some(r.id.clone()));
        }
        for (i, r) in out.iter_mut().enumerate() {
            r.number = i as u32 + 1;
        }
        out
    }

    /// The VSwitch CIDRs `vpc` learns from the other members of its CEN, with their VPC.
    pub fn learned_routes(&self, vpc: &Vpc) -> Vec<(Ipv4Net, String)> {
        let Some(cen) = self.cens.iter().find(|c| c.vpcs.contains(&vpc.name)) else { return Vec::new() };
        cen.vpcs
            .iter()
            .filter(|m| **m != vpc.name)
            .filter_map(|m| self.vpc(m))
            .flat_map(|peer| peer.vswitches.iter().map(|s| (s.cidr, peer.name.clone())))
            .collect()
    }

    /// Check every rule and resolve every reference of the normalized document `spec`.
    pub fn from_spec(spec: &TopologySpec, quotas: &Quotas) -> Result<Topology, Invalid> {
        let mut problems = Problems::default();
        let mut ids = std::collections::HashSet::new();
        let mut vpc_names = BTreeSet::new();
        let mut eni_names = BTreeSet::new();
        let mut macs = BTreeMap::new();
        let mut interfaces = BTreeSet::new();
        let mut vpcs = Vec::new();
        let all_vpcs: Vec<&str> = spec.vpcs.iter().map(|v| v.name.as_str()).collect();
        for (i, vpc_spec) in spec.vpcs.iter().enumerate() {
            let at = format!("vpcs[{i}]");
            if !vpc_names.insert(vpc_spec.name.as_str()) {
                problems.add(code::NAME_DUPLICATE, format!("{at}.name"), format!("VPC name '{}' is used twice", vpc_spec.name));
            }
            if let Some(vpc) = vpc(&at, vpc_spec, &all_vpcs, quotas, &mut problems) {
                for (j, gw) in vpc.gateways.iter().enumerate() {
                    let at = format!("{at}.gateways[{j}]");
                    if !eni_names.insert(gw.name.clone()) {
                        problems.add(code::NAME_DUPLICATE, format!("{at}.name"), format!("'{}' already names an ENI or gateway", gw.name));
                    }
                    if let Some(other) = macs.insert(gw.mac, gw.name.clone()) {
                        problems.add(code::MAC_DUPLICATE, format!("{at}.mac"), format!("MAC {} is also '{other}''s", addr::format_mac(&gw.mac)));
                    }
                    if let Some(name) = &gw.interface
                        && !interfaces.insert(name.clone())
                    {
                        problems.add(code::INTERFACE_DUPLICATE, format!("{at}.interface"), format!("interface '{name}' is given twice"));
                    }
                }
                for (j, eni) in vpc.enis.iter().enumerate() {
                    let at = format!("{at}.enis[{j}]");
                    if !eni_names.insert(eni.name.clone()) {
                        problems.add(code::NAME_DUPLICATE, format!("{at}.name"), format!("ENI name '{}' is used twice", eni.name));
                    }
                    if let Some(other) = macs.insert(eni.mac, eni.name.clone()) {
                        problems.add(
                            code::MAC_DUPLICATE,
                            format!("{at}.mac"),
                            format!("MAC {} of ENI '{}' is also ENI '{other}''s", addr::format_mac(&eni.mac), eni.name),
                        );
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
        check_ids(spec, &mut ids, &mut problems);
        let defaults = spec.vpcs.iter().enumerate().filter(|(_, v)| v.default).map(|(i, _)| i).collect::<Vec<_>>();
        for &i in defaults.iter().skip(1) {
            problems.add(code::DEFAULT_VPC_EXISTS, format!("vpcs[{i}].default"), "there is already a default VPC (at most one per region)");
        }
        let counted = spec.vpcs.iter().filter(|v| !v.default).count();
        if counted > quotas.vpcs as usize {
            problems.add(code::QUOTA_VPC, "vpcs", format!("{counted} VPCs exceed the quota of {} (the default VPC does not count)", quotas.vpcs));
        }
        let enis = spec.vpcs.iter().map(|v| v.enis.len()).sum::<usize>();
        if enis > quotas.enis as usize {
            problems.add(code::QUOTA_ENI, "enis", format!("{enis} ENIs exceed the quota of {}", quotas.enis));
        }
        if !spec.enis.is_empty() {
            problems.add(code::VSWITCH_NOT_FOUND, "enis", "zone-placed ENIs were not normalized into a default VSwitch");
        }
        let cens = cens(spec, &vpcs, &mut problems);
        let flow_logs = super::flowlog::flow_logs(spec, &vpcs, quotas.flow_logs, &mut problems);
        problems.finish(Topology { vpcs, cens, flow_logs })
    }

    /// Rules about change rather than state: a VPC's or VSwitch's CIDR never changes.
    pub fn check_transition(old: &Topology, new: &Topology) -> Result<(), Invalid> {
        let mut problems = Problems::default();
        for (i, vpc) in new.vpcs.iter().enumerate() {
            let Some(before) = old.vpcs.iter().find(|v| v.id == vpc.id) else { continue };
            if before.cidr != vpc.cidr {
                problems.add(
                    code::CIDR_IMMUTABLE,
                    format!("vpcs[{i}].cidr"),
                    format!("VPC {} has CIDR {}; a VPC's CIDR cannot change (to {})", vpc.id, before.cidr, vpc.cidr),
                );
            }
            for (j, vsw) in vpc.vswitches.iter().enumerate() {
                let Some(b) = before.vswitches.iter().find(|s| s.id == vsw.id) else { continue };
                if b.cidr != vsw.cidr {
                    problems.add(
                        code::CIDR_IMMUTABLE,
                        format!("vpcs[{i}].vswitches[{j}].cidr"),
                        format!("VSwitch {} has CIDR {}; a VSwitch's CIDR cannot change (to {})", vsw.id, b.cidr, vsw.cidr),
                    );
                }
            }
        }
        problems.finish(())
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

    pub fn route_table(&self, name: &str) -> Option<&RouteTable> {
        self.route_tables.iter().find(|t| t.name == name)
    }

    pub fn eni(&self, name: &str) -> Option<&Eni> {
        self.enis.iter().find(|e| e.name == name)
    }

    pub fn gateway(&self, name: &str) -> Option<&Gateway> {
        self.gateways.iter().find(|g| g.name == name)
    }

    pub fn security_group(&self, name: &str) -> Option<&SecurityGroup> {
        self.security_groups.iter().find(|g| g.name == name)
    }

    /// The addresses of the ENIs in group `name`.
    pub fn members(&self, name: &str) -> Vec<Ipv4Addr> {
        self.enis.iter().filter(|e| e.security_groups.iter().any(|g| g == name)).map(|e| e.ip).collect()
    }

    pub fn system_table(&self) -> &RouteTable {
        self.route_tables.first().expect("normalized: the system table comes first")
    }

    /// The entries every route table of the VPC has: the cloud-services range and each VSwitch.
    pub fn system_routes(&self) -> Vec<(Ipv4Net, NextHop)> {
        let mut out = vec![(CLOUD_SERVICES.parse().expect("constant CIDR"), NextHop::Host)];
        out.extend(self.vswitches.iter().map(|v| (v.cidr, NextHop::Local)));
        out
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

/// Every resource has a well-formed ID with its kind's prefix, unique in the region.
fn check_ids<'a>(spec: &'a TopologySpec, seen: &mut std::collections::HashSet<&'a str>, problems: &mut Problems) {
    let mut check = |field: &dyn Fn() -> String, id: &'a Option<String>, prefix: &str| match id {
        Some(id) if id.strip_prefix(prefix).and_then(|s| s.strip_prefix('-')).is_some_and(|s| {
            !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        }) =>
        {
            if !seen.insert(id.as_str()) {
                problems.add(code::ID_DUPLICATE, field(), format!("ID {id} is used twice"));
            }
        }
        Some(id) => problems.add(code::ID_MALFORMED, field(), format!("'{id}' is not an ID like {prefix}-abc123")),
        None => problems.add(code::ID_MALFORMED, field(), format!("missing ID (expected {prefix}-...)")),
    };
    for (i, vpc) in spec.vpcs.iter().enumerate() {
        check(&|| format!("vpcs[{i}].id"), &vpc.id, "vpc");
        for (j, s) in vpc.vswitches.iter().enumerate() {
            check(&|| format!("vpcs[{i}].vswitches[{j}].id"), &s.id, "vsw");
        }
        for (j, t) in vpc.route_tables.iter().enumerate() {
            check(&|| format!("vpcs[{i}].route_tables[{j}].id"), &t.id, "vtb");
            for (k, r) in t.routes.iter().enumerate() {
                check(&|| format!("vpcs[{i}].route_tables[{j}].routes[{k}].id"), &r.id, "rte");
            }
        }
        for (j, e) in vpc.enis.iter().enumerate() {
            check(&|| format!("vpcs[{i}].enis[{j}].id"), &e.id, "eni");
        }
        for (j, g) in vpc.gateways.iter().enumerate() {
            check(&|| format!("vpcs[{i}].gateways[{j}].id"), &g.id, "gw");
        }
        for (j, g) in vpc.multicast_groups.iter().enumerate() {
            check(&|| format!("vpcs[{i}].multicast_groups[{j}].id"), &g.id, "mcg");
        }
        for (j, g) in vpc.security_groups.iter().enumerate() {
            check(&|| format!("vpcs[{i}].security_groups[{j}].id"), &g.id, "sg");
            for (k, r) in g.rules.iter().enumerate() {
                check(&|| format!("vpcs[{i}].security_groups[{j}].rules[{k}].id"), &r.id, "sgr");
            }
        }
    }
    for (i, f) in spec.flow_logs.iter().enumerate() {
        check(&|| format!("flow_logs[{i}].id"), &f.id, "fl");
    }
    for (i, c) in spec.cens.iter().enumerate() {
        check(&|| format!("cens[{i}].id"), &c.id, "cen");
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

fn vpc(at: &str, spec: &VpcSpec, all_vpcs: &[&str], quotas: &Quotas, problems: &mut Problems) -> Option<Vpc> {
    check_name(problems, format!("{at}.name"), &spec.name);
    check_description(problems, format!("{at}.description"), &spec.description);
    let cidr = parse_cidr(problems, format!("{at}.cidr"), &spec.cidr)?;
    let private: Vec<Ipv4Net> = PRIVATE_RANGES.iter().map(|r| r.parse().expect("constant CIDR")).collect();
    if !private.iter().any(|range| range.contains(&cidr)) {
        problems.add(
            code::VPC_CIDR_NOT_PRIVATE,
            format!("{at}.cidr"),
            format!("VPC CIDR {cidr} must be {} or a subset of one of them", PRIVATE_RANGES.join(", ")),
        );
    }
    if spec.default && spec.cidr != DEFAULT_VPC_CIDR {
        problems.add(code::DEFAULT_VPC_CIDR, format!("{at}.cidr"), format!("the default VPC's CIDR is {DEFAULT_VPC_CIDR}, not {cidr}"));
    }

    let tables = route_table_names(at, spec, quotas, problems);
    let conntrack_limit = check_conntrack_limit(problems, format!("{at}.conntrack_limit"), spec.conntrack_limit).unwrap_or(vpc_common::maps::DEFAULT_CT_LIMIT);
    let mut vswitches: Vec<VSwitch> = Vec::new();
    let mut names = BTreeSet::new();
    let mut default_zones = BTreeSet::new();
    for (i, vsw_spec) in spec.vswitches.iter().enumerate() {
        let at = format!("{at}.vswitches[{i}]");
        if !names.insert(vsw_spec.name.as_str()) {
            problems.add(code::NAME_DUPLICATE, format!("{at}.name"), format!("VSwitch name '{}' is used twice in VPC '{}'", vsw_spec.name, spec.name));
        }
        let Some(vsw) = vswitch(&at, spec, cidr, &tables, vsw_spec, problems) else { continue };
        if vsw.is_default && !default_zones.insert(vsw.zone.clone()) {
            problems.add(code::DEFAULT_VSWITCH_EXISTS, format!("{at}.default"), format!("zone '{}' already has a default VSwitch", vsw.zone));
        }
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
    let counted = spec.vswitches.iter().filter(|v| !v.default).count();
    if counted > quotas.vswitches_per_vpc as usize {
        problems.add(
            code::QUOTA_VSWITCH,
            format!("{at}.vswitches"),
            format!("{counted} VSwitches exceed the quota of {} per VPC (default VSwitches do not count)", quotas.vswitches_per_vpc),
        );
    }

    let mut enis = Vec::new();
    let mut used: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
    let declared: Vec<&str> = spec.vswitches.iter().map(|v| v.name.as_str()).collect();
    for (i, eni_spec) in spec.enis.iter().enumerate() {
        let at = format!("{at}.enis[{i}]");
        let Some(mut eni) = eni(&at, &spec.name, &vswitches, &declared, eni_spec, problems) else { continue };
        if eni.conntrack_limit == 0 {
            eni.conntrack_limit = conntrack_limit;
        }
        if let Some(other) = used.insert(eni.ip, &eni_spec.name) {
            problems.add(code::IP_IN_USE, format!("{at}.ip"), format!("address {} is already ENI '{other}''s", eni.ip));
            continue;
        }
        enis.push(eni);
    }
    let gateways: Vec<Gateway> =
        spec.gateways.iter().enumerate().filter_map(|(i, g)| gateway(&format!("{at}.gateways[{i}]"), g, problems)).collect();
    let security_groups =
        security::groups(at, &spec.security_groups, quotas.security_groups_per_vpc, quotas.rules_per_security_group, problems);
    for (i, eni_spec) in spec.enis.iter().enumerate() {
        security::check_membership(&format!("{at}.enis[{i}]"), &eni_spec.security_groups, &security_groups, problems);
    }
    let multicast_groups = super::multicast::groups(at, &spec.multicast_groups, &enis, problems);
    let scope = HopScope { vpc: &spec.name, all_vpcs, enis: &enis, gateways: &gateways };
    let route_tables = spec
        .route_tables
        .iter()
        .enumerate()
        .map(|(i, t)| route_table(&format!("{at}.route_tables[{i}]"), &vswitches, &scope, t, quotas, problems))
        .collect();
    Some(Vpc {
        id: spec.id.clone().unwrap_or_default(),
        name: spec.name.clone(),
        cidr,
        description: spec.description.clone(),
        is_default: spec.default,
        vswitches,
        route_tables,
        enis,
        gateways,
        security_groups,
        multicast_groups,
        conntrack_limit,
    })
}

/// An MTU from a file or a call (default when omitted).
fn check_mtu(problems: &mut Problems, field: String, mtu: Option<u32>) -> u16 {
    match mtu {
        None => vpc_common::DEFAULT_MTU,
        Some(m) if (MIN_MTU..=MAX_MTU).contains(&m) => m as u16,
        Some(m) => {
            problems.add(code::MTU_MALFORMED, field, format!("MTU {m} is not between {MIN_MTU} and {MAX_MTU}"));
            vpc_common::DEFAULT_MTU
        }
    }
}

/// A connection limit from a file or a call (`None` when omitted).
fn check_conntrack_limit(problems: &mut Problems, field: String, limit: Option<u32>) -> Option<u32> {
    match limit {
        Some(l) if !(1..=MAX_CONNTRACK_LIMIT).contains(&l) => {
            problems.add(code::CONNTRACK_LIMIT_MALFORMED, field, format!("connection limit {l} is not between 1 and {MAX_CONNTRACK_LIMIT}"));
            None
        }
        other => other,
    }
}

/// The VPC's route table names after the table-level rules: names valid and unique, the system
/// table first, no more than the quota.
fn route_table_names(at: &str, spec: &VpcSpec, quotas: &Quotas, problems: &mut Problems) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, table) in spec.route_tables.iter().enumerate() {
        let field = format!("{at}.route_tables[{i}]");
        if table.name == SYSTEM_TABLE && i != 0 {
            problems.add(code::ROUTE_TABLE_RESERVED_NAME, format!("{field}.name"), "'system' names the VPC's one system route table");
        } else if table.name != SYSTEM_TABLE {
            check_name(problems, format!("{field}.name"), &table.name);
        }
        check_description(problems, format!("{field}.description"), &table.description);
        if !out.insert(table.name.clone()) {
            problems.add(code::NAME_DUPLICATE, format!("{field}.name"), format!("route table name '{}' is used twice in VPC '{}'", table.name, spec.name));
        }
    }
    if spec.route_tables.len() > quotas.route_tables_per_vpc as usize {
        problems.add(
            code::QUOTA_ROUTE_TABLE,
            format!("{at}.route_tables"),
            format!("{} route tables exceed the limit of {} per VPC (the system table counts)", spec.route_tables.len(), quotas.route_tables_per_vpc),
        );
    }
    out
}

/// What next hops of a VPC's routes may refer to.
struct HopScope<'a> {
    vpc: &'a str,
    all_vpcs: &'a [&'a str],
    enis: &'a [Eni],
    gateways: &'a [Gateway],
}

fn route_table(
    at: &str,
    vswitches: &[VSwitch],
    scope: &HopScope<'_>,
    spec: &RouteTableSpec,
    quotas: &Quotas,
    problems: &mut Problems,
) -> RouteTable {
    let system: Vec<Ipv4Net> =
        std::iter::once(CLOUD_SERVICES.parse().expect("constant CIDR")).chain(vswitches.iter().map(|v| v.cidr)).collect();
    let mut dsts = BTreeSet::new();
    let mut routes = Vec::new();
    for (i, r) in spec.routes.iter().enumerate() {
        // Formatting field paths for 100,000 entries costs; only entries with a problem get one.
        let at = || format!("{at}.routes[{i}]");
        if r.description.is_some() {
            check_description(problems, format!("{}.description", at()), &r.description);
        }
        if let Some(name) = &r.name {
            check_name(problems, format!("{}.name", at()), name);
        }
        let dst = match r.dst.parse::<Ipv4Net>() {
            Ok(net) if net.trunc() == net => net,
            _ => {
                parse_cidr(problems, format!("{}.dst", at()), &r.dst);
                continue;
            }
        };
        let at = at();
        if system.contains(&dst) {
            problems.add(
                code::ROUTE_CONFLICTS_WITH_SYSTEM,
                format!("{at}.dst"),
                format!("{dst} is a system route entry's destination; use a more specific prefix to override it"),
            );
            continue;
        }
        if !dsts.insert(dst) {
            problems.add(code::ROUTE_DUPLICATE, format!("{at}.dst"), format!("route table '{}' already has an entry for {dst}", spec.name));
            continue;
        }
        let Some(next_hop) = next_hop(&format!("{at}.next_hop"), &r.next_hop, scope, problems) else { continue };
        routes.push(Route { id: r.id.clone().unwrap_or_default(), dst, next_hop, name: r.name.clone(), description: r.description.clone() });
    }
    if spec.routes.len() > quotas.route_entries_per_table as usize {
        problems.add(
            code::QUOTA_ROUTE_ENTRY,
            format!("{at}.routes"),
            format!("{} custom entries exceed the quota of {} per route table", spec.routes.len(), quotas.route_entries_per_table),
        );
    }
    RouteTable {
        id: spec.id.clone().unwrap_or_default(),
        name: spec.name.clone(),
        description: spec.description.clone(),
        is_system: spec.name == SYSTEM_TABLE,
        routes,
    }
}

fn vswitch(
    at: &str,
    vpc: &VpcSpec,
    vpc_cidr: Ipv4Net,
    tables: &BTreeSet<String>,
    spec: &VSwitchSpec,
    problems: &mut Problems,
) -> Option<VSwitch> {
    check_name(problems, format!("{at}.name"), &spec.name);
    check_description(problems, format!("{at}.description"), &spec.description);
    if spec.zone.trim().is_empty() {
        problems.add(code::ZONE_MISSING, format!("{at}.zone"), "a VSwitch needs a zone");
    }
    let route_table = spec.route_table.clone().unwrap_or_else(|| SYSTEM_TABLE.to_string());
    if !tables.contains(&route_table) {
        problems.add(code::ROUTE_TABLE_NOT_FOUND, format!("{at}.route_table"), format!("VPC '{}' has no route table '{route_table}'", vpc.name));
    }
    let cidr = parse_cidr(problems, format!("{at}.cidr"), &spec.cidr)?;
    if !(MIN_VSWITCH_PREFIX..=MAX_VSWITCH_PREFIX).contains(&cidr.prefix_len()) {
        problems.add(
            code::VSWITCH_CIDR_MASK,
            format!("{at}.cidr"),
            format!("VSwitch mask /{} is outside /{MIN_VSWITCH_PREFIX} to /{MAX_VSWITCH_PREFIX}", cidr.prefix_len()),
        );
        return None;
    }
    if !vpc_cidr.contains(&cidr) {
        problems.add(code::VSWITCH_CIDR_NOT_IN_VPC, format!("{at}.cidr"), format!("VSwitch CIDR {cidr} is not inside the VPC CIDR {vpc_cidr}"));
        return None;
    }
    if spec.default && !vpc.default {
        problems.add(code::DEFAULT_VSWITCH_NOT_IN_DEFAULT_VPC, format!("{at}.default"), "a default VSwitch belongs to the default VPC");
    }
    if spec.default && cidr.prefix_len() != DEFAULT_VSWITCH_PREFIX {
        problems.add(
            code::DEFAULT_VSWITCH_CIDR,
            format!("{at}.cidr"),
            format!("a default VSwitch is a /{DEFAULT_VSWITCH_PREFIX}, not /{}", cidr.prefix_len()),
        );
    }
    let id = spec.id.clone().unwrap_or_default();
    Some(VSwitch {
        name: spec.name.clone(),
        cidr,
        zone: spec.zone.clone(),
        description: spec.description.clone(),
        is_default: spec.default,
        route_table,
        gateway: addr::gateway(cidr),
        gateway_mac: addr::derived_mac(0xee, &id),
        id,
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
    let Some(ip_text) = &spec.ip else {
        problems.add(code::IP_NO_FREE, format!("{at}.ip"), format!("VSwitch '{}' ({}) has no free address left", vsw.name, vsw.cidr));
        return None;
    };
    let Ok(ip) = ip_text.parse::<Ipv4Addr>() else {
        problems.add(code::IP_MALFORMED, format!("{at}.ip"), format!("'{ip_text}' is not an IPv4 address"));
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
        None => addr::derived_mac(0x02, spec.id.as_deref().unwrap_or(&spec.name)),
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
        problems.add(
            code::INTERFACE_MALFORMED,
            format!("{at}.interface"),
            format!("'{name}' is not a Linux interface name (1-15 characters, no '/', ':' or space)"),
        );
    }
    Some(Eni {
        id: spec.id.clone().unwrap_or_default(),
        name: spec.name.clone(),
        vswitch: spec.vswitch.clone(),
        ip,
        mac,
        interface: spec.interface.clone(),
        source_dest_check: spec.source_dest_check.unwrap_or(true),
        security_groups: spec.security_groups.clone(),
        mtu: check_mtu(problems, format!("{at}.mtu"), spec.mtu),
        // 0 until the VPC's default applies.
        conntrack_limit: check_conntrack_limit(problems, format!("{at}.conntrack_limit"), spec.conntrack_limit).unwrap_or(0),
    })
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
            ("MTU too big for XDP on a veth", Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, mtu: 9000}")), code::MTU_MALFORMED, "vpcs[0].enis[1].mtu"),
            ("MTU below what IPv4 hosts take", Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, mtu: 500}")), code::MTU_MALFORMED, "vpcs[0].enis[1].mtu"),
            ("a connection limit of 0", Box::new(|b| b.replace("ip: 192.168.2.10}", "ip: 192.168.2.10, conntrack_limit: 0}")), code::CONNTRACK_LIMIT_MALFORMED, "vpcs[0].enis[1].conntrack_limit"),
            ("a VPC's connection limit beyond the maximum", Box::new(|b| b.replace("cidr: 192.168.0.0/16", "cidr: 192.168.0.0/16\n    conntrack_limit: 99999999")), code::CONNTRACK_LIMIT_MALFORMED, "vpcs[0].conntrack_limit"),
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

fn next_hop(at: &str, spec: &NextHopSpec, scope: &HopScope<'_>, problems: &mut Problems) -> Option<NextHop> {
    let eni = |name: &str, field: String, problems: &mut Problems| {
        let found = scope.enis.iter().any(|e| e.name == name);
        if !found {
            problems.add(code::NEXT_HOP_NOT_FOUND, field, format!("no ENI '{name}' in VPC '{}'", scope.vpc));
        }
        found
    };
    let gateway = |name: &str, field: String, problems: &mut Problems| {
        let found = scope.gateways.iter().any(|g| g.name == name);
        if !found {
            problems.add(code::NEXT_HOP_NOT_FOUND, field, format!("no gateway '{name}' in VPC '{}'", scope.vpc));
        }
        found
    };
    match spec {
        NextHopSpec::Eni { eni: name } => eni(name, format!("{at}.eni"), problems).then(|| NextHop::Eni { eni: name.clone() }),
        NextHopSpec::Gateway { gateway: name } => {
            gateway(name, format!("{at}.gateway"), problems).then(|| NextHop::Gateway { gateway: name.clone() })
        }
        NextHopSpec::Vpc { vpc } => {
            if vpc == scope.vpc {
                problems.add(code::NEXT_HOP_SELF, format!("{at}.vpc"), format!("a route of VPC '{vpc}' cannot lead to '{vpc}' itself"));
                None
            } else if !scope.all_vpcs.contains(&vpc.as_str()) {
                problems.add(code::NEXT_HOP_NOT_FOUND, format!("{at}.vpc"), format!("no VPC '{vpc}'"));
                None
            } else {
                Some(NextHop::Vpc { vpc: vpc.clone() })
            }
        }
        NextHopSpec::Blackhole => Some(NextHop::Blackhole),
        NextHopSpec::Ecmp { hops } => {
            if !(2..=4).contains(&hops.len()) {
                problems.add(code::NEXT_HOP_COUNT, format!("{at}.hops"), format!("ECMP takes 2 to 4 hops, not {}", hops.len()));
                return None;
            }
            let hops = group_hops(at, hops, &eni, &gateway, 100, problems)?;
            if let Some(h) = hops.iter().find(|h| h.weight == 0) {
                problems.add(code::NEXT_HOP_WEIGHT, format!("{at}.hops"), format!("hop '{}' has weight 0; ECMP weights are 1 to 255", h.target.name()));
                return None;
            }
            Some(NextHop::Group(HopGroup { active_standby: false, hops, health_check: HealthCheck::default() }))
        }
        NextHopSpec::ActiveStandby { hops, health_check } => {
            if hops.len() != 2 {
                problems.add(code::NEXT_HOP_COUNT, format!("{at}.hops"), format!("active/standby takes exactly 2 hops, not {}", hops.len()));
                return None;
            }
            let mut resolved = group_hops(at, hops, &eni, &gateway, 100, problems)?;
            if hops[1].weight.is_none() {
                resolved[1].weight = 0;
            }
            if (resolved[0].weight, resolved[1].weight) != (100, 0) {
                problems.add(
                    code::NEXT_HOP_WEIGHT,
                    format!("{at}.hops"),
                    format!("active/standby weights are 100 (active) and 0 (standby), not {} and {}", resolved[0].weight, resolved[1].weight),
                );
                return None;
            }
            let health_check = health(&format!("{at}.health_check"), health_check.as_ref(), problems)?;
            Some(NextHop::Group(HopGroup { active_standby: true, hops: resolved, health_check }))
        }
    }
}

fn group_hops(
    at: &str,
    hops: &[crate::model::spec::HopSpec],
    eni: &dyn Fn(&str, String, &mut Problems) -> bool,
    gateway: &dyn Fn(&str, String, &mut Problems) -> bool,
    default_weight: u32,
    problems: &mut Problems,
) -> Option<Vec<Hop>> {
    let mut out = Vec::new();
    for (i, hop) in hops.iter().enumerate() {
        let field = format!("{at}.hops[{i}]");
        let target = match (&hop.eni, &hop.gateway) {
            (Some(name), None) => eni(name, format!("{field}.eni"), problems).then(|| HopTarget::Eni(name.clone()))?,
            (None, Some(name)) => gateway(name, format!("{field}.gateway"), problems).then(|| HopTarget::Gateway(name.clone()))?,
            _ => {
                problems.add(code::NEXT_HOP_MALFORMED, field, "a hop names exactly one of `eni` or `gateway`");
                return None;
            }
        };
        let weight = hop.weight.unwrap_or(default_weight);
        if weight > 255 {
            problems.add(code::NEXT_HOP_WEIGHT, format!("{field}.weight"), format!("weight {weight} is above 255"));
            return None;
        }
        if out.iter().any(|h: &Hop| h.target == target) {
            problems.add(code::NEXT_HOP_MALFORMED, field, format!("'{}' is listed twice", target.name()));
            return None;
        }
        out.push(Hop { target, weight: weight as u8 });
    }
    Some(out)
}

/// `200ms`, `1s`, `1.5s` -> milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<u32> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.trim().parse().ok();
    }
    if let Some(m) = text.strip_suffix('m') {
        return m.trim().parse::<u32>().ok()?.checked_mul(60_000);
    }
    let secs: f64 = text.strip_suffix('s')?.trim().parse().ok()?;
    (secs >= 0.0 && secs < 4_000_000.0).then(|| (secs * 1000.0).round() as u32)
}

fn health(at: &str, spec: Option<&crate::model::spec::HealthCheckSpec>, problems: &mut Problems) -> Option<HealthCheck> {
    let mut check = HealthCheck::default();
    let Some(spec) = spec else { return Some(check) };
    match spec.method.as_deref() {
        None | Some("arp") => {}
        Some("link") => check.method = HealthMethod::Link,
        Some(other) => {
            problems.add(code::HEALTH_CHECK_MALFORMED, format!("{at}.method"), format!("method '{other}' is not arp or link"));
            return None;
        }
    }
    if let Some(text) = &spec.interval {
        match parse_duration_ms(text) {
            Some(ms) if (50..=60_000).contains(&ms) => check.interval_ms = ms,
            _ => {
                problems.add(code::HEALTH_CHECK_MALFORMED, format!("{at}.interval"), format!("interval '{text}' is not a duration from 50ms to 60s"));
                return None;
            }
        }
    }
    if let Some(n) = spec.threshold {
        if !(1..=10).contains(&n) {
            problems.add(code::HEALTH_CHECK_MALFORMED, format!("{at}.threshold"), format!("threshold {n} is outside 1 to 10"));
            return None;
        }
        check.threshold = n;
    }
    Some(check)
}

fn gateway(at: &str, spec: &crate::model::spec::GatewaySpec, problems: &mut Problems) -> Option<Gateway> {
    check_name(problems, format!("{at}.name"), &spec.name);
    check_description(problems, format!("{at}.description"), &spec.description);
    let mut networks = Vec::new();
    for (i, n) in spec.networks.iter().enumerate() {
        networks.push(parse_cidr(problems, format!("{at}.networks[{i}]"), n)?);
    }
    let ip = match &spec.ip {
        None => None,
        Some(text) => match text.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                problems.add(code::IP_MALFORMED, format!("{at}.ip"), format!("'{text}' is not an IPv4 address"));
                return None;
            }
        },
    };
    let mac = match spec.mac.as_deref().map(addr::parse_mac) {
        Some(Some(mac)) if mac[0] & 1 == 0 && mac != [0; 6] => mac,
        Some(_) => {
            problems.add(code::MAC_MALFORMED, format!("{at}.mac"), format!("'{}' is not a unicast MAC", spec.mac.clone().unwrap_or_default()));
            return None;
        }
        None => addr::derived_mac(0x06, spec.id.as_deref().unwrap_or(&spec.name)),
    };
    if let Some(name) = &spec.interface
        && (name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']))
    {
        problems.add(code::INTERFACE_MALFORMED, format!("{at}.interface"), format!("'{name}' is not a Linux interface name"));
    }
    let id = spec.id.clone().unwrap_or_default();
    Some(Gateway {
        local_mac: addr::derived_mac(0xee, &format!("{id}/local")),
        id,
        name: spec.name.clone(),
        description: spec.description.clone(),
        networks,
        ip,
        mac,
        interface: spec.interface.clone(),
        mtu: check_mtu(problems, format!("{at}.mtu"), spec.mtu),
        conntrack_limit: check_conntrack_limit(problems, format!("{at}.conntrack_limit"), spec.conntrack_limit).unwrap_or(0),
    })
}

fn cens(spec: &TopologySpec, vpcs: &[Vpc], problems: &mut Problems) -> Vec<Cen> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    let mut attached: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, c) in spec.cens.iter().enumerate() {
        let at = format!("cens[{i}]");
        check_name(problems, format!("{at}.name"), &c.name);
        check_description(problems, format!("{at}.description"), &c.description);
        if !names.insert(c.name.as_str()) {
            problems.add(code::NAME_DUPLICATE, format!("{at}.name"), format!("CEN name '{}' is used twice", c.name));
        }
        let mut members: Vec<&Vpc> = Vec::new();
        for (j, name) in c.vpcs.iter().enumerate() {
            let field = format!("{at}.vpcs[{j}]");
            let Some(vpc) = vpcs.iter().find(|v| &v.name == name) else {
                problems.add(code::CEN_VPC_NOT_FOUND, field, format!("no VPC '{name}'"));
                continue;
            };
            if let Some(other) = attached.insert(name, &c.name) {
                problems.add(code::CEN_VPC_ATTACHED, field, format!("VPC '{name}' is already attached to CEN '{other}'"));
                continue;
            }
            for member in &members {
                for a in &vpc.vswitches {
                    if let Some(b) = member.vswitches.iter().find(|b| a.cidr.contains(&b.cidr) || b.cidr.contains(&a.cidr)) {
                        problems.add(
                            code::CEN_CIDR_OVERLAP,
                            field.clone(),
                            format!(
                                "VPC '{name}' VSwitch {} ({}) overlaps VPC '{}' VSwitch {} ({}): CEN members must not overlap",
                                a.name, a.cidr, member.name, b.name, b.cidr
                            ),
                        );
                    }
                }
            }
            members.push(vpc);
        }
        out.push(Cen { id: c.id.clone().unwrap_or_default(), name: c.name.clone(), description: c.description.clone(), vpcs: c.vpcs.clone() });
    }
    out
}
