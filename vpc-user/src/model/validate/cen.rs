//! CENs: names, members that exist and are in no other CEN, members whose VSwitches do not
//! overlap.

use std::collections::{BTreeMap, BTreeSet};

use super::fields::{check_description, check_name};
use crate::model::{
    error::{Problems, code},
    spec::TopologySpec,
    topology::{Cen, Vpc},
};

/// Validate the document's CENs against its valid `vpcs`.
pub(super) fn validate_all(spec: &TopologySpec, vpcs: &[Vpc], problems: &mut Problems) -> Vec<Cen> {
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
        out.push(Cen {
            id: c.id.clone().unwrap_or_default(),
            name: c.name.clone(),
            description: c.description.clone(),
            vpcs: c.vpcs.clone(),
        });
    }
    out
}
