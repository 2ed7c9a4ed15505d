//! Route tables: the table-level rules (names, the system table first, the quota) and each
//! table's custom entries (canonical destinations, none a system entry's, none twice, the quota).

use std::collections::{BTreeSet, HashSet};

use ipnet::Ipv4Net;

use super::{
    fields::{check_description, check_name, parse_cidr},
    next_hop::{self, HopScope},
};
use crate::model::{
    Invalid,
    constants::{CLOUD_SERVICES, SYSTEM_TABLE},
    error::{Problems, code},
    quotas::Quotas,
    spec::{RouteSpec, RouteTableSpec, TopologySpec, VpcSpec},
    topology::{Route, RouteTable, VSwitch, Vpc},
};

/// The VPC's route table names after the table-level rules: names valid and unique, the system
/// table first, no more than the quota.
pub(super) fn validate_names(at: &str, spec: &VpcSpec, quotas: &Quotas, problems: &mut Problems) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, table) in spec.route_tables.iter().enumerate() {
        let field = format!("{at}.route_tables[{i}]");
        if table.name == SYSTEM_TABLE && i != 0 {
            problems.add(
                code::ROUTE_TABLE_RESERVED_NAME,
                format!("{field}.name"),
                format!("'{SYSTEM_TABLE}' names the VPC's one system route table"),
            );
        } else if table.name != SYSTEM_TABLE {
            check_name(problems, format!("{field}.name"), &table.name);
        }
        check_description(problems, format!("{field}.description"), &table.description);
        if !out.insert(table.name.clone()) {
            problems.add(
                code::NAME_DUPLICATE,
                format!("{field}.name"),
                format!("route table name '{}' is used twice in VPC '{}'", table.name, spec.name),
            );
        }
    }
    if spec.route_tables.len() > quotas.route_tables_per_vpc as usize {
        problems.add(
            code::QUOTA_ROUTE_TABLE,
            format!("{at}.route_tables"),
            format!(
                "{} route tables exceed the limit of {} per VPC (the system table counts)",
                spec.route_tables.len(),
                quotas.route_tables_per_vpc
            ),
        );
    }
    out
}

/// Validate route table `spec`: its entries' next hops resolve in `scope`.
pub(super) fn validate(
    at: &str,
    vswitches: &[VSwitch],
    scope: &HopScope<'_>,
    spec: &RouteTableSpec,
    quotas: &Quotas,
    problems: &mut Problems,
) -> RouteTable {
    let system = system_destinations(vswitches);
    let mut dsts = BTreeSet::new();
    let mut routes = Vec::new();
    for (i, r) in spec.routes.iter().enumerate() {
        routes.extend(validate_entry(at, i, r, &system, |dst| !dsts.insert(dst), &spec.name, scope, problems));
    }
    check_entry_quota(at, spec.routes.len(), quotas, problems);
    RouteTable {
        id: spec.id.clone().unwrap_or_default(),
        name: spec.name.clone(),
        description: spec.description.clone(),
        is_system: spec.name == SYSTEM_TABLE,
        routes,
    }
}

/// The destinations a custom entry may not have: the system entries'. A set: every entry (up to
/// 100,000) is checked against it.
fn system_destinations(vswitches: &[VSwitch]) -> HashSet<Ipv4Net> {
    std::iter::once(CLOUD_SERVICES.parse().expect("constant CIDR")).chain(vswitches.iter().map(|v| v.cidr)).collect()
}

/// Custom entry `i` of table `table` at `at`; `taken(dst)` says whether an entry before it has
/// that destination already.
#[allow(clippy::too_many_arguments)]
fn validate_entry(
    at: &str,
    i: usize,
    r: &RouteSpec,
    system: &HashSet<Ipv4Net>,
    taken: impl FnOnce(Ipv4Net) -> bool,
    table: &str,
    scope: &HopScope<'_>,
    problems: &mut Problems,
) -> Option<Route> {
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
            return None;
        }
    };
    let at = at();
    if system.contains(&dst) {
        problems.add(
            code::ROUTE_CONFLICTS_WITH_SYSTEM,
            format!("{at}.dst"),
            format!("{dst} is a system route entry's destination; use a more specific prefix to override it"),
        );
        return None;
    }
    if taken(dst) {
        problems.add(code::ROUTE_DUPLICATE, format!("{at}.dst"), format!("route table '{table}' already has an entry for {dst}"));
        return None;
    }
    let next_hop = next_hop::validate(&format!("{at}.next_hop"), &r.next_hop, scope, problems)?;
    Some(Route { id: r.id.clone().unwrap_or_default(), dst, next_hop, name: r.name.clone(), description: r.description.clone() })
}

fn check_entry_quota(at: &str, entries: usize, quotas: &Quotas, problems: &mut Problems) {
    if entries > quotas.route_entries_per_table as usize {
        problems.add(
            code::QUOTA_ROUTE_ENTRY,
            format!("{at}.routes"),
            format!("{entries} custom entries exceed the quota of {} per route table", quotas.route_entries_per_table),
        );
    }
}

/// One custom entry appended to table `table` of VPC `vpc` (both at their index in the valid
/// document `doc`), checked by the same rules and giving the same problems as validating the
/// whole document with it would: the rest of the document is valid, so only the entry and
/// the table's quota can break.
pub fn validate_appended(
    doc: &TopologySpec,
    vpc: &Vpc,
    (i, j): (usize, usize),
    table: &RouteTable,
    route: &RouteSpec,
    quotas: &Quotas,
) -> Result<Route, Invalid> {
    let mut problems = Problems::default();
    let at = format!("vpcs[{i}].route_tables[{j}]");
    let all_vpcs: Vec<&str> = doc.vpcs.iter().map(|v| v.name.as_str()).collect();
    let scope = HopScope::new(&vpc.name, &all_vpcs, &vpc.enis, &vpc.gateways);
    let count = doc.vpcs[i].route_tables[j].routes.len();
    let taken = |dst: Ipv4Net| table.routes.iter().any(|r| r.dst == dst);
    let entry = validate_entry(&at, count, route, &system_destinations(&vpc.vswitches), taken, &table.name, &scope, &mut problems);
    check_entry_quota(&at, count + 1, quotas, &mut problems);
    problems.finish(())?;
    Ok(entry.expect("no problems: the entry validated"))
}
