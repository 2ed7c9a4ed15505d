//! Resource IDs: every resource has a well-formed ID with its kind's prefix, unique in the region.

use crate::model::{
    error::{Problems, code},
    spec::TopologySpec,
};

/// Check the IDs of `spec`, remembering each in `seen`.
pub(super) fn check<'a>(spec: &'a TopologySpec, seen: &mut std::collections::HashSet<&'a str>, problems: &mut Problems) {
    let mut check = |field: &dyn Fn() -> String, id: &'a Option<String>, prefix: &str| match id {
        Some(id)
            if id
                .strip_prefix(prefix)
                .and_then(|s| s.strip_prefix('-'))
                .is_some_and(|s| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())) =>
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
