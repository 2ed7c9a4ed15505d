//! A VSwitch: zone, route table, a CIDR inside its VPC's with an allowed mask, the default
//! VSwitch's rules; its gateway address and MAC are derived here.

use std::collections::BTreeSet;

use ipnet::Ipv4Net;

use super::fields::{check_description, check_name, parse_cidr};
use crate::model::{
    addr,
    constants::{DEFAULT_VSWITCH_PREFIX, MAX_VSWITCH_PREFIX, MIN_VSWITCH_PREFIX, SYSTEM_TABLE},
    error::{Problems, code},
    spec::{VSwitchSpec, VpcSpec},
    topology::VSwitch,
};

/// Validate VSwitch `spec` of VPC `vpc` (CIDR `vpc_cidr`, route tables `tables`).
pub(super) fn validate(
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
        problems.add(
            code::ROUTE_TABLE_NOT_FOUND,
            format!("{at}.route_table"),
            format!("VPC '{}' has no route table '{route_table}'", vpc.name),
        );
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
        problems.add(
            code::VSWITCH_CIDR_NOT_IN_VPC,
            format!("{at}.cidr"),
            format!("VSwitch CIDR {cidr} is not inside the VPC CIDR {vpc_cidr}"),
        );
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
