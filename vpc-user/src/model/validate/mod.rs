//! Validation of a normalized document into a `Topology`: every rule of the guide, each kind's
//! in its own file, every problem reported with its field path, not just the first.
//!
//! VPC by VPC first (`vpc` walks what each holds), then what spans VPCs: ENI and gateway names,
//! MACs and interfaces unique in the region, resource IDs, one default VPC, the region's quotas,
//! CENs and flow logs.

mod cen;
mod eni;
mod fields;
mod flow_log;
mod gateway;
mod multicast;
mod next_hop;
mod resource_ids;
mod route_table;
pub use route_table::validate_appended;
#[cfg(test)]
mod tests;
mod transition;
mod vpc;
mod vswitch;

use std::collections::{BTreeMap, BTreeSet};

use super::{
    addr,
    error::{Invalid, Problems, code},
    normalize::normalize,
    quotas::Quotas,
    spec::TopologySpec,
    topology::Topology,
};

impl Topology {
    /// Parse, normalize (against nothing stored) and validate a topology file.
    pub fn from_yaml(text: &str) -> Result<Topology, Invalid> {
        let spec = TopologySpec::from_yaml(text).map_err(|e| Invalid(vec![TopologySpec::syntax_problem(&e)]))?;
        Topology::from_spec(&normalize(&TopologySpec::default(), spec), &Quotas::default())
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
            if let Some(vpc) = vpc::validate(&at, vpc_spec, &all_vpcs, quotas, &mut problems) {
                for (j, gw) in vpc.gateways.iter().enumerate() {
                    let at = format!("{at}.gateways[{j}]");
                    if !eni_names.insert(gw.name.clone()) {
                        problems.add(code::NAME_DUPLICATE, format!("{at}.name"), format!("'{}' already names an ENI or gateway", gw.name));
                    }
                    if let Some(other) = macs.insert(gw.mac, gw.name.clone()) {
                        problems.add(
                            code::MAC_DUPLICATE,
                            format!("{at}.mac"),
                            format!("MAC {} is also '{other}''s", addr::format_mac(&gw.mac)),
                        );
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
                        problems.add(
                            code::INTERFACE_DUPLICATE,
                            format!("{at}.interface"),
                            format!("interface '{name}' is given to two ENIs"),
                        );
                    }
                }
                vpcs.push(vpc);
            }
        }
        resource_ids::check(spec, &mut ids, &mut problems);
        let defaults = spec.vpcs.iter().enumerate().filter(|(_, v)| v.default).map(|(i, _)| i).collect::<Vec<_>>();
        for &i in defaults.iter().skip(1) {
            problems.add(code::DEFAULT_VPC_EXISTS, format!("vpcs[{i}].default"), "there is already a default VPC (at most one per region)");
        }
        let counted = spec.vpcs.iter().filter(|v| !v.default).count();
        if counted > quotas.vpcs as usize {
            problems.add(
                code::QUOTA_VPC,
                "vpcs",
                format!("{counted} VPCs exceed the quota of {} (the default VPC does not count)", quotas.vpcs),
            );
        }
        let enis = spec.vpcs.iter().map(|v| v.enis.len()).sum::<usize>();
        if enis > quotas.enis as usize {
            problems.add(code::QUOTA_ENI, "enis", format!("{enis} ENIs exceed the quota of {}", quotas.enis));
        }
        if !spec.enis.is_empty() {
            problems.add(code::VSWITCH_NOT_FOUND, "enis", "zone-placed ENIs were not normalized into a default VSwitch");
        }
        let cens = cen::validate_all(spec, &vpcs, &mut problems);
        let flow_logs = flow_log::validate_all(spec, &vpcs, quotas.flow_logs, &mut problems);
        problems.finish(Topology { vpcs, cens, flow_logs })
    }
}
