//! A VPC: its CIDR, then what it holds -- route table names first (VSwitches refer to them),
//! VSwitches, ENIs, gateways, security and multicast groups, and the route tables' entries last
//! (their next hops refer to ENIs and gateways).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use ipnet::Ipv4Net;

use super::{
    eni,
    fields::{check_conntrack_limit, check_description, check_name, parse_cidr},
    gateway, multicast,
    next_hop::HopScope,
    route_table, vswitch,
};
use crate::model::{
    constants::{DEFAULT_VPC_CIDR, PRIVATE_RANGES},
    error::{Problems, code},
    quotas::Quotas,
    security,
    spec::VpcSpec,
    topology::{Gateway, VSwitch, Vpc},
};

/// Validate the VPC `spec` at field path `at`; `all_vpcs` names every VPC of the document.
pub(super) fn validate(at: &str, spec: &VpcSpec, all_vpcs: &[&str], quotas: &Quotas, problems: &mut Problems) -> Option<Vpc> {
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

    let tables = route_table::validate_names(at, spec, quotas, problems);
    let conntrack_limit = check_conntrack_limit(problems, format!("{at}.conntrack_limit"), spec.conntrack_limit)
        .unwrap_or(vpc_common::maps::DEFAULT_CT_LIMIT);
    let mut vswitches: Vec<VSwitch> = Vec::new();
    let mut names = BTreeSet::new();
    let mut default_zones = BTreeSet::new();
    for (i, vsw_spec) in spec.vswitches.iter().enumerate() {
        let at = format!("{at}.vswitches[{i}]");
        if !names.insert(vsw_spec.name.as_str()) {
            problems.add(
                code::NAME_DUPLICATE,
                format!("{at}.name"),
                format!("VSwitch name '{}' is used twice in VPC '{}'", vsw_spec.name, spec.name),
            );
        }
        let Some(vsw) = vswitch::validate(&at, spec, cidr, &tables, vsw_spec, problems) else { continue };
        if vsw.is_default && !default_zones.insert(vsw.zone.clone()) {
            problems.add(
                code::DEFAULT_VSWITCH_EXISTS,
                format!("{at}.default"),
                format!("zone '{}' already has a default VSwitch", vsw.zone),
            );
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
        let Some(mut eni) = eni::validate(&at, &spec.name, &vswitches, &declared, eni_spec, problems) else { continue };
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
        spec.gateways.iter().enumerate().filter_map(|(i, g)| gateway::validate(&format!("{at}.gateways[{i}]"), g, problems)).collect();
    let security_groups =
        security::groups(at, &spec.security_groups, quotas.security_groups_per_vpc, quotas.rules_per_security_group, problems);
    for (i, eni_spec) in spec.enis.iter().enumerate() {
        security::check_membership(&format!("{at}.enis[{i}]"), &eni_spec.security_groups, &security_groups, problems);
    }
    let multicast_groups = multicast::validate_groups(at, &spec.multicast_groups, &enis, problems);
    let scope = HopScope::new(&spec.name, all_vpcs, &enis, &gateways);
    let route_tables = spec
        .route_tables
        .iter()
        .enumerate()
        .map(|(i, t)| route_table::validate(&format!("{at}.route_tables[{i}]"), &vswitches, &scope, t, quotas, problems))
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
