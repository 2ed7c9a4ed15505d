//! The validated topology: typed resources, every reference resolved, every rule of the guide
//! checked. `Topology::from_spec` takes a normalized document (IDs filled in); `from_yaml`
//! normalizes a file on its own, for tools and tests that have no stored state.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use ipnet::Ipv4Net;
use serde::Serialize;

use super::{
    addr,
    error::{code, Invalid, Problem, Problems},
    ids::SYSTEM_TABLE,
    names,
    normalize::{normalize, DEFAULT_VPC_CIDR},
    spec::{EniSpec, NextHopSpec, RouteTableSpec, TopologySpec, VSwitchSpec, VpcSpec},
};

/// The private ranges a VPC CIDR must equal or lie inside.
pub const PRIVATE_RANGES: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/// The system route entry every table has for the cloud-services range.
pub const CLOUD_SERVICES: &str = "100.64.0.0/10";

/// Resource quotas. The guide gives the route-table limit (10 per VPC); the others follow the
/// cloud's published defaults and are meant to be raised with `--quota`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Quotas {
    /// VPCs in the region, not counting the default VPC.
    pub vpcs: u32,
    /// VSwitches per VPC, not counting default VSwitches.
    pub vswitches_per_vpc: u32,
    /// Route tables per VPC, the system table included.
    pub route_tables_per_vpc: u32,
    /// Custom route entries per route table.
    pub route_entries_per_table: u32,
    /// ENIs in the region.
    pub enis: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas { vpcs: 10, vswitches_per_vpc: 150, route_tables_per_vpc: 10, route_entries_per_table: 10_000, enis: 4096 }
    }
}

impl Quotas {
    /// No limits (reading back a state committed under larger quotas).
    pub fn unlimited() -> Quotas {
        Quotas { vpcs: u32::MAX, vswitches_per_vpc: u32::MAX, route_tables_per_vpc: u32::MAX, route_entries_per_table: u32::MAX, enis: u32::MAX }
    }

    /// Set one quota from `name=value` (as given to `--quota`).
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (name, value) = assignment.split_once('=').ok_or_else(|| format!("'{assignment}' is not NAME=VALUE"))?;
        let value: u32 = value.trim().parse().map_err(|_| format!("quota value '{value}' is not a number"))?;
        let slot = match name.trim().replace('_', "-").as_str() {
            "vpcs" => &mut self.vpcs,
            "vswitches-per-vpc" => &mut self.vswitches_per_vpc,
            "route-tables-per-vpc" => &mut self.route_tables_per_vpc,
            "route-entries-per-table" => &mut self.route_entries_per_table,
            "enis" => &mut self.enis,
            other => {
                return Err(format!(
                    "unknown quota '{other}' (vpcs, vswitches-per-vpc, route-tables-per-vpc, route-entries-per-table, enis)"
                ));
            }
        };
        *slot = value;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub vpcs: Vec<Vpc>,
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
    /// Drop and count.
    Blackhole,
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
}

impl Topology {
    /// Parse, normalize (against nothing stored) and validate a topology file.
    pub fn from_yaml(text: &str) -> Result<Topology, Invalid> {
        let spec = TopologySpec::from_yaml(text).map_err(|e| {
            let field = e.location().map(|l| format!("line {} column {}", l.line(), l.column())).unwrap_or_default();
            Invalid(vec![Problem { code: code::YAML_SYNTAX.into(), field, message: e.to_string() }])
        })?;
        Topology::from_spec(&normalize(&TopologySpec::default(), spec), &Quotas::default())
    }

    /// Check every rule and resolve every reference of the normalized document `spec`.
    pub fn from_spec(spec: &TopologySpec, quotas: &Quotas) -> Result<Topology, Invalid> {
        let mut problems = Problems::default();
        let mut ids = BTreeSet::new();
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
            if let Some(vpc) = vpc(&at, vpc_spec, quotas, &mut problems) {
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
        problems.finish(Topology { vpcs })
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

    /// The entries every route table of the VPC has: the cloud-services range and each VSwitch.
    pub fn system_routes(&self) -> Vec<(Ipv4Net, NextHop)> {
        let mut out = vec![(CLOUD_SERVICES.parse().expect("constant CIDR"), NextHop::Host)];
        out.extend(self.vswitches.iter().map(|v| (v.cidr, NextHop::Local)));
        out
    }

    /// System and custom entries of `table`, as the data path sees them.
    pub fn effective_routes(&self, table: &RouteTable) -> Vec<(Ipv4Net, NextHop)> {
        let mut out = self.system_routes();
        out.extend(table.routes.iter().map(|r| (r.dst, r.next_hop.clone())));
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
fn check_ids(spec: &TopologySpec, seen: &mut BTreeSet<String>, problems: &mut Problems) {
    let mut check = |field: String, id: &Option<String>, prefix: &str| match id {
        Some(id) if id.strip_prefix(prefix).and_then(|s| s.strip_prefix('-')).is_some_and(|s| {
            !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        }) =>
        {
            if !seen.insert(id.clone()) {
                problems.add(code::ID_DUPLICATE, field, format!("ID {id} is used twice"));
            }
        }
        Some(id) => problems.add(code::ID_MALFORMED, field, format!("'{id}' is not an ID like {prefix}-abc123")),
        None => problems.add(code::ID_MALFORMED, field, format!("missing ID (expected {prefix}-...)")),
    };
    for (i, vpc) in spec.vpcs.iter().enumerate() {
        check(format!("vpcs[{i}].id"), &vpc.id, "vpc");
        for (j, s) in vpc.vswitches.iter().enumerate() {
            check(format!("vpcs[{i}].vswitches[{j}].id"), &s.id, "vsw");
        }
        for (j, t) in vpc.route_tables.iter().enumerate() {
            check(format!("vpcs[{i}].route_tables[{j}].id"), &t.id, "vtb");
            for (k, r) in t.routes.iter().enumerate() {
                check(format!("vpcs[{i}].route_tables[{j}].routes[{k}].id"), &r.id, "rte");
            }
        }
        for (j, e) in vpc.enis.iter().enumerate() {
            check(format!("vpcs[{i}].enis[{j}].id"), &e.id, "eni");
        }
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

fn vpc(at: &str, spec: &VpcSpec, quotas: &Quotas, problems: &mut Problems) -> Option<Vpc> {
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
    if spec.default && spec.cidr != DEFAULT_VPC_CIDR {
        problems.add(code::DEFAULT_VPC_CIDR, format!("{at}.cidr"), format!("the default VPC's CIDR is {DEFAULT_VPC_CIDR}, not {cidr}"));
    }

    let tables = route_table_names(at, spec, quotas, problems);
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
        let Some(eni) = eni(&at, &spec.name, &vswitches, &declared, eni_spec, problems) else { continue };
        if let Some(other) = used.insert(eni.ip, &eni_spec.name) {
            problems.add(code::IP_IN_USE, format!("{at}.ip"), format!("address {} is already ENI '{other}''s", eni.ip));
            continue;
        }
        enis.push(eni);
    }
    let route_tables = spec
        .route_tables
        .iter()
        .enumerate()
        .map(|(i, t)| route_table(&format!("{at}.route_tables[{i}]"), &vswitches, &enis, t, quotas, problems))
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
    })
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

fn route_table(
    at: &str,
    vswitches: &[VSwitch],
    enis: &[Eni],
    spec: &RouteTableSpec,
    quotas: &Quotas,
    problems: &mut Problems,
) -> RouteTable {
    let system: Vec<Ipv4Net> =
        std::iter::once(CLOUD_SERVICES.parse().expect("constant CIDR")).chain(vswitches.iter().map(|v| v.cidr)).collect();
    let mut dsts = BTreeSet::new();
    let mut routes = Vec::new();
    for (i, r) in spec.routes.iter().enumerate() {
        let at = format!("{at}.routes[{i}]");
        check_description(problems, format!("{at}.description"), &r.description);
        if let Some(name) = &r.name {
            check_name(problems, format!("{at}.name"), name);
        }
        let Some(dst) = parse_cidr(problems, format!("{at}.dst"), &r.dst) else { continue };
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
        let next_hop = match &r.next_hop {
            NextHopSpec::Eni { eni } => {
                if !enis.iter().any(|e| &e.name == eni) {
                    problems.add(code::NEXT_HOP_NOT_FOUND, format!("{at}.next_hop.eni"), format!("no ENI '{eni}' in this VPC"));
                    continue;
                }
                NextHop::Eni { eni: eni.clone() }
            }
            NextHopSpec::Blackhole => NextHop::Blackhole,
        };
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
    if !(16..=29).contains(&cidr.prefix_len()) {
        problems.add(code::VSWITCH_CIDR_MASK, format!("{at}.cidr"), format!("VSwitch mask /{} is outside /16 to /29", cidr.prefix_len()));
        return None;
    }
    if !vpc_cidr.contains(&cidr) {
        problems.add(code::VSWITCH_CIDR_NOT_IN_VPC, format!("{at}.cidr"), format!("VSwitch CIDR {cidr} is not inside the VPC CIDR {vpc_cidr}"));
        return None;
    }
    if spec.default && !vpc.default {
        problems.add(code::DEFAULT_VSWITCH_NOT_IN_DEFAULT_VPC, format!("{at}.default"), "a default VSwitch belongs to the default VPC");
    }
    if spec.default && cidr.prefix_len() != 20 {
        problems.add(code::DEFAULT_VSWITCH_CIDR, format!("{at}.cidr"), format!("a default VSwitch is a /20, not /{}", cidr.prefix_len()));
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
