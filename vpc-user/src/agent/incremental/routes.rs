//! Custom route entries added to or removed from a table.
//!
//! Falls back to the full path: VPCs in a CEN (learned entries give way to custom ones), ECMP
//! and active/standby hops (groups and their numbers), and removing any entry but a table's
//! last (the numbers of the entries after it move: a new table generation).

use super::{Decided, Edit, Part, Planned, State};
use crate::{
    compile::{self, Patch},
    model::{
        diff::Change,
        route::RouteView,
        spec::NextHopSpec,
        topology::{self, Origin, Quotas},
        validate::validate_appended,
    },
};

pub(super) fn plan(state: &State<'_>, quotas: &Quotas, edit: Edit) -> Decided {
    let (i, j) = match &edit {
        Edit::AddRoute { vpc, table, .. } | Edit::RemoveRoute { vpc, table, .. } => (*vpc, *table),
        _ => return Err(edit),
    };
    let (Some(spec), Some(vpc)) = (state.doc.vpcs.get(i), state.topology.vpcs.get(i)) else { return Err(edit) };
    let (Some(table_spec), Some(table)) = (spec.route_tables.get(j), vpc.route_tables.get(j)) else { return Err(edit) };
    // The topology is the document's, position for position; learned entries are not handled.
    let in_cen = state.topology.cens.iter().any(|c| c.vpcs.contains(&vpc.name));
    let Some(&table_number) = state.binding.ids.route_tables.get(&table.id) else { return Err(edit) };
    if spec.name != vpc.name || table_spec.name != table.name || table_spec.routes.len() != table.routes.len() || in_cen {
        return Err(edit);
    }
    let name = format!("{}/{}", vpc.name, table.name);
    let modified = |added: usize, removed: usize| Change::Modify {
        kind: "route table",
        name: name.clone(),
        what: format!("entries +{added} -{removed} ~0"),
    };
    match &edit {
        Edit::AddRoute { route, .. } => {
            let simple = matches!(route.next_hop, NextHopSpec::Eni { .. } | NextHopSpec::Gateway { .. } | NextHopSpec::Blackhole);
            // A fresh ID is never taken; one that is makes the full validation's problem.
            let id_taken =
                route.id.is_none() || state.doc.vpcs.iter().flat_map(|v| &v.route_tables).flat_map(|t| &t.routes).any(|r| r.id == route.id);
            if !simple || id_taken {
                return Err(edit);
            }
            let added = match validate_appended(state.doc, vpc, (i, j), table, route, quotas) {
                Ok(added) => added,
                Err(invalid) => return Ok(Err(invalid)),
            };
            // Custom entries are numbered after the system ones (no learned ones here).
            let number = (vpc.system_routes().len() + table.routes.len() + 1) as u32;
            let view =
                RouteView { number, dst: added.dst, next_hop: added.next_hop.clone(), origin: Origin::Custom, id: Some(added.id.clone()) };
            let mut groups = Default::default();
            let (key, value) = compile::route_entry(state.topology, vpc, table_number, &view, state.binding, &mut groups);
            if state.entries.routes.contains_key(&key) {
                return Err(edit);
            }
            let patch = Patch { put_routes: vec![(key, value)], ..Default::default() };
            Ok(Ok(Planned { edit, part: Part::AddedRoute(added), patch, ids: None, change: modified(1, 0) }))
        }
        Edit::RemoveRoute { route, .. } => {
            let Some(gone) = table.routes.get(*route) else { return Err(edit) };
            let last = *route + 1 == table.routes.len();
            if !last || matches!(gone.next_hop, topology::NextHop::Group(_)) {
                return Err(edit);
            }
            let key = compile::lpm_key(table_number, gone.dst.network().octets(), gone.dst.prefix_len());
            if !state.entries.routes.contains_key(&key) {
                return Err(edit);
            }
            let patch = Patch { delete_routes: vec![key], ..Default::default() };
            Ok(Ok(Planned { edit, part: Part::RemovedRoute, patch, ids: None, change: modified(0, 1) }))
        }
        _ => Err(edit),
    }
}
