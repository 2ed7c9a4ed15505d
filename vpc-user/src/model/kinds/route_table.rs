//! Route tables: a VPC's system table and its custom tables, with their custom entries (in
//! `route_entry`). Validated in `validate::route_table`.

use serde::{Deserialize, Serialize};

use super::route_entry::{Route, RouteSpec};
use crate::model::change::Change;

/// What every route table ID starts with.
pub const ID_PREFIX: &str = "vtb";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteTableSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Custom route entries (system entries are maintained automatically).
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
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

/// New route tables of VPC `vpc` (a new VPC's system table only when it has entries), and kept
/// ones whose entries changed (`old`: the VPC's tables before, when it was there).
pub fn diff_added_or_changed(out: &mut Vec<Change>, vpc: &str, old: Option<&[RouteTable]>, new: &[RouteTable]) {
    for table in new {
        let name = format!("{}/{}", vpc, table.name);
        match old.and_then(|o| o.iter().find(|t| t.name == table.name)) {
            // A new VPC's system table comes with it; say so only when it has entries.
            None if table.is_system && table.routes.is_empty() => {}
            None => out.push(Change::Add { kind: "route table", name: format!("{name} ({} entries)", table.routes.len()) }),
            Some(before) => {
                let was: std::collections::BTreeMap<_, _> = before.routes.iter().map(|r| (r.dst, &r.next_hop)).collect();
                let now: std::collections::BTreeMap<_, _> = table.routes.iter().map(|r| (r.dst, &r.next_hop)).collect();
                let added = now.keys().filter(|d| !was.contains_key(d)).count();
                let removed = was.keys().filter(|d| !now.contains_key(d)).count();
                let changed = now.iter().filter(|(d, h)| was.get(d).is_some_and(|w| w != *h)).count();
                if added + removed + changed > 0 {
                    out.push(Change::Modify { kind: "route table", name, what: format!("entries +{added} -{removed} ~{changed}") });
                }
            }
        }
    }
}

/// Custom route tables of VPC `vpc` that are gone (`new`: the VPC's tables now, when it is still
/// there); the system table goes only with its VPC, unsaid.
pub fn diff_removed(out: &mut Vec<Change>, vpc: &str, old: &[RouteTable], new: Option<&[RouteTable]>) {
    for table in old.iter().filter(|t| !t.is_system) {
        if new.and_then(|n| n.iter().find(|t| t.name == table.name)).is_none() {
            out.push(Change::Remove { kind: "route table", name: format!("{}/{}", vpc, table.name) });
        }
    }
}
