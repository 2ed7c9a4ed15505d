//! The incremental change path. A change that describes itself (`Edit`: one custom route entry
//! added or removed) is validated where it touches and compiled to the few map entries it
//! changes, instead of re-validating and re-compiling the whole document (0.7 s at 100,000
//! routes). Whatever this path cannot decide on its own goes to the full transaction
//! (`Agent::commit_document`), which stays the reference: `tests` checks both agree.
//!
//! Falls back to the full path: a dry run before the document was validated under the current
//! quotas, VPCs in a CEN (learned entries give way to custom ones), ECMP and active/standby
//! hops (groups and their numbers), removing any entry but a table's last (the numbers of the
//! entries after it move: a new table generation), and an agent that has not written the data
//! path itself yet.

use vpc_common::Route;

use super::{Agent, Applied, ChangeError};
use crate::{
    compile::{self, LpmKey, MapEntries},
    model::{
        Invalid, Topology,
        binding::Binding,
        diff::Change,
        route::RouteView,
        spec::{NextHopSpec, RouteSpec, TopologySpec},
        topology::{self, Origin, Quotas},
        validate::validate_appended,
    },
    store::RowChange,
};

/// A change that says what it touches. Indices are positions in the stored document.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Append custom entry `route` to table `table` of VPC `vpc`.
    AddRoute { vpc: usize, table: usize, route: RouteSpec },
    /// Remove custom entry `route` of table `table` of VPC `vpc`.
    RemoveRoute { vpc: usize, table: usize, route: usize },
}

impl Edit {
    /// The same edit on a whole document (what the full path validates).
    pub fn apply(&self, doc: &mut TopologySpec) {
        match self {
            Edit::AddRoute { vpc, table, route } => doc.vpcs[*vpc].route_tables[*table].routes.push(route.clone()),
            Edit::RemoveRoute { vpc, table, route } => {
                doc.vpcs[*vpc].route_tables[*table].routes.remove(*route);
            }
        }
    }
}

/// An edit decided by the incremental path: what it does to each part of the state.
#[derive(Debug, Clone)]
pub struct Planned {
    edit: Edit,
    /// The validated entry an `AddRoute` appends to the table in the `Topology`.
    added: Option<topology::Route>,
    /// The `ROUTES` entry written, and the one deleted.
    put: Option<(LpmKey, Route)>,
    delete: Option<LpmKey>,
    /// What `diff` reports for it.
    pub change: Change,
}

/// The state an edit reads and changes (the agent's, or a test's).
pub struct State<'a> {
    pub doc: &'a TopologySpec,
    pub topology: &'a Topology,
    pub binding: &'a Binding,
    pub entries: &'a MapEntries,
}

/// Decide `edit` on `state` alone: `Ok(Ok(planned))` to apply, `Ok(Err(invalid))` for the
/// problems the full validation would give, `Err(edit)` when only the full path can decide.
pub fn plan(state: &State<'_>, quotas: &Quotas, edit: Edit) -> Result<Result<Planned, Invalid>, Edit> {
    let (i, j) = match &edit {
        Edit::AddRoute { vpc, table, .. } | Edit::RemoveRoute { vpc, table, .. } => (*vpc, *table),
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
            Ok(Ok(Planned { edit, added: Some(added), put: Some((key, value)), delete: None, change: modified(1, 0) }))
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
            Ok(Ok(Planned { edit, added: None, put: None, delete: Some(key), change: modified(0, 1) }))
        }
    }
}

impl Planned {
    /// Make the change in place: the document, the topology and the entries the kernel holds.
    pub fn apply_to(self, doc: &mut TopologySpec, topology: &mut Topology, entries: &mut MapEntries) {
        self.edit.apply(doc);
        match self.edit {
            Edit::AddRoute { vpc, table, .. } => topology.vpcs[vpc].route_tables[table].routes.extend(self.added),
            Edit::RemoveRoute { vpc, table, route } => {
                topology.vpcs[vpc].route_tables[table].routes.remove(route);
            }
        }
        entries.routes.extend(self.put);
        if let Some(key) = self.delete {
            entries.routes.remove(&key);
        }
    }

    /// The store rows it writes or removes, in `doc` as it is before the change.
    fn rows<'d>(&'d self, doc: &'d TopologySpec) -> Vec<RowChange<'d>> {
        match &self.edit {
            Edit::AddRoute { vpc, table, route } => {
                let table = &doc.vpcs[*vpc].route_tables[*table];
                vec![RowChange::PutRoute { table: table.id.as_deref().unwrap_or_default(), pos: table.routes.len(), route }]
            }
            Edit::RemoveRoute { vpc, table, route } => {
                let id = doc.vpcs[*vpc].route_tables[*table].routes[*route].id.as_deref();
                id.map(RowChange::Remove).into_iter().collect()
            }
        }
    }
}

impl Agent {
    /// Make `edit` the new state: on the incremental path when it can decide it, else as a
    /// whole-document transaction. Either way the result is the same (see `tests`).
    pub fn change(&mut self, dry_run: bool, edit: Edit) -> Result<Applied, ChangeError> {
        let edit = if self.quotas_checked {
            let state = State { doc: &self.stored.doc, topology: &self.topology, binding: &self.binding, entries: &self.entries };
            match plan(&state, &self.opts.quotas, edit) {
                Ok(planned) if dry_run => return Ok(Applied { changes: vec![planned?.change], report: Default::default() }),
                Ok(planned) if self.writes_incrementally() => return self.commit_planned(planned?),
                Ok(Err(invalid)) => return Err(invalid.into()),
                Ok(Ok(planned)) => planned.edit,
                Err(edit) => edit,
            }
        } else {
            edit
        };
        let mut doc = self.stored.doc.clone();
        edit.apply(&mut doc);
        self.commit_document(doc, dry_run)
    }

    /// The data path is this agent's and it knows what the maps hold (it wrote them).
    fn writes_incrementally(&self) -> bool {
        !self.adopted && self.loaded.as_ref().is_some_and(|l| l.knows_entries())
    }

    fn commit_planned(&mut self, planned: Planned) -> Result<Applied, ChangeError> {
        let clock = std::time::Instant::now();
        let loaded = self.loaded.as_mut().expect("checked by writes_incrementally");
        let report = match loaded.apply_routes(planned.put.as_slice(), planned.delete.as_slice()) {
            Ok(report) => report,
            Err(err) => {
                let previous = self.entries.clone();
                return Err(self.restore(&previous, err.context("updating the data path")));
            }
        };
        let committed = self.store.commit_rows(self.revision, &planned.rows(&self.stored.doc));
        match committed {
            Ok(revision) => self.revision = revision,
            Err(err) => {
                let previous = self.entries.clone();
                return Err(self.restore(&previous, err.context(format!("committing to {}", self.store.describe()))));
            }
        }
        let change = planned.change.clone();
        planned.apply_to(&mut self.stored.doc, &mut self.topology, &mut self.entries);
        self.generation += 1;
        // The copy follows within a second (`flush_backup`): writing the whole document here
        // would cost more than the change.
        self.backup_due = true;
        log::debug!("transaction: incremental, done after {:?}", clock.elapsed());
        Ok(Applied { changes: vec![change], report })
    }
}

#[cfg(test)]
mod tests;
