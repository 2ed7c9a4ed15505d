//! CENs: named groups of VPCs that learn each other's VSwitch CIDRs. Validated in `validate::cen`.

use serde::{Deserialize, Serialize};

use crate::model::change::Change;

/// What every CEN ID starts with.
pub const ID_PREFIX: &str = "cen";

/// A named group of VPCs: each member learns every other member's VSwitch CIDRs as `vpc` routes.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CenSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Member VPCs, by name.
    #[serde(default)]
    pub vpcs: Vec<String>,
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

/// New CENs, and kept ones whose members changed.
pub fn diff_added_or_changed(out: &mut Vec<Change>, old: &[Cen], new: &[Cen]) {
    for cen in new {
        match old.iter().find(|c| c.name == cen.name) {
            None => out.push(Change::Add { kind: "cen", name: cen.name.clone() }),
            Some(o) if o.vpcs != cen.vpcs => out.push(Change::Modify {
                kind: "cen",
                name: cen.name.clone(),
                what: format!("members {} -> {}", o.vpcs.join(","), cen.vpcs.join(",")),
            }),
            Some(_) => {}
        }
    }
}

/// CENs that are gone.
pub fn diff_removed(out: &mut Vec<Change>, old: &[Cen], new: &[Cen]) {
    for cen in old {
        if !new.iter().any(|c| c.name == cen.name) {
            out.push(Change::Remove { kind: "cen", name: cen.name.clone() });
        }
    }
}
