//! The incremental change path. A change that describes itself (`Edit`: one custom route entry
//! added or removed, security-group rules authorized or revoked) is validated where it touches
//! and compiled to the few map entries it changes, instead of re-validating and re-compiling
//! the whole document (0.7 s at 100,000 routes). Whatever this path cannot decide on its own
//! goes to the full transaction (`Agent::commit_document`), which stays the reference: `tests`
//! checks both agree.
//!
//! Falls back to the full path: a dry run before the document was validated under the current
//! quotas, an agent that has not written the data path itself yet, and what `routes` and
//! `security_group` name.

mod routes;
mod security_group;

use super::{Agent, Applied, ChangeError};
use crate::{
    compile::{MapEntries, Patch, sg::Capacity},
    model::{
        Invalid, Topology,
        binding::Binding,
        diff::Change,
        ids::Ids,
        security::SecurityGroup,
        spec::{RouteSpec, SgRuleSpec, TopologySpec},
        topology::{self, Quotas},
    },
    store::{Delta, RowChange},
};

/// A change that says what it touches. Indices are positions in the stored document.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Append custom entry `route` to table `table` of VPC `vpc`.
    AddRoute { vpc: usize, table: usize, route: RouteSpec },
    /// Remove custom entry `route` of table `table` of VPC `vpc`.
    RemoveRoute { vpc: usize, table: usize, route: usize },
    /// Append `rule` (with its ID) to security group `group` of VPC `vpc`.
    AddSgRule { vpc: usize, group: usize, rule: SgRuleSpec },
    /// Remove the rules with IDs `rules` from security group `group` of VPC `vpc`.
    RemoveSgRules { vpc: usize, group: usize, rules: Vec<String> },
}

impl Edit {
    /// The same edit on a whole document (what the full path validates).
    pub fn apply(&self, doc: &mut TopologySpec) {
        match self {
            Edit::AddRoute { vpc, table, route } => doc.vpcs[*vpc].route_tables[*table].routes.push(route.clone()),
            Edit::RemoveRoute { vpc, table, route } => {
                doc.vpcs[*vpc].route_tables[*table].routes.remove(*route);
            }
            Edit::AddSgRule { vpc, group, rule } => doc.vpcs[*vpc].security_groups[*group].rules.push(rule.clone()),
            Edit::RemoveSgRules { vpc, group, rules } => {
                doc.vpcs[*vpc].security_groups[*group].rules.retain(|r| !r.id.as_ref().is_some_and(|id| rules.contains(id)))
            }
        }
    }
}

/// An edit decided by the incremental path: what it does to each part of the state.
#[derive(Debug, Clone)]
pub struct Planned {
    edit: Edit,
    /// What the edit makes of the validated topology.
    part: Part,
    /// The map entries it writes.
    patch: Patch,
    /// The host's numbers after it, when it changes them.
    ids: Option<Ids>,
    /// What `diff` reports for it.
    pub change: Change,
}

/// The piece of the validated topology an edit changes.
#[derive(Debug, Clone)]
enum Part {
    /// The entry an `AddRoute` appends to its table.
    AddedRoute(topology::Route),
    /// The entry a `RemoveRoute` names is gone.
    RemovedRoute,
    /// The security group as it is after the edit.
    Group(SecurityGroup),
}

/// The state an edit reads and changes (the agent's, or a test's).
pub struct State<'a> {
    pub doc: &'a TopologySpec,
    pub topology: &'a Topology,
    pub binding: &'a Binding,
    pub entries: &'a MapEntries,
    /// Room for security-group rule sets in the data path's arrays.
    pub sg_capacity: Capacity,
}

/// What deciding an edit gives: `Ok(Ok(planned))` to apply, `Ok(Err(invalid))` for the
/// problems the full validation would give, `Err(edit)` when only the full path can decide.
pub type Decided = Result<Result<Planned, Invalid>, Edit>;

/// Decide `edit` on `state` alone.
pub fn plan(state: &State<'_>, quotas: &Quotas, edit: Edit) -> Decided {
    match edit {
        Edit::AddRoute { .. } | Edit::RemoveRoute { .. } => routes::plan(state, quotas, edit),
        Edit::AddSgRule { .. } | Edit::RemoveSgRules { .. } => security_group::plan(state, quotas, edit),
    }
}

/// The one edit that turns `doc` into what another writer committed, when the rows it wrote
/// (`delta`) say so: a route entry appended to a table or removed, rules appended to a group
/// or removed from it (those after them moved up). Anything else: none.
pub fn edit_of(doc: &TopologySpec, delta: &Delta) -> Option<Edit> {
    let table_of = |id: &str| {
        doc.vpcs.iter().enumerate().find_map(|(v, vpc)| Some((v, vpc.route_tables.iter().position(|t| t.id.as_deref() == Some(id))?)))
    };
    let group_of = |id: &str| {
        doc.vpcs.iter().enumerate().find_map(|(v, vpc)| Some((v, vpc.security_groups.iter().position(|g| g.id.as_deref() == Some(id))?)))
    };
    if delta.others > 0 {
        return None;
    }
    match (delta.routes.as_slice(), delta.sg_rules.as_slice(), delta.gone.as_slice()) {
        ([(table_id, pos, route)], [], []) => {
            let (vpc, table) = table_of(table_id)?;
            let routes = &doc.vpcs[vpc].route_tables[table].routes;
            (*pos == routes.len() && routes.iter().all(|r| r.id != route.id)).then(|| Edit::AddRoute { vpc, table, route: route.clone() })
        }
        ([], [(group_id, pos, rule)], []) => {
            let (vpc, group) = group_of(group_id)?;
            let rules = &doc.vpcs[vpc].security_groups[group].rules;
            (*pos == rules.len() && rules.iter().all(|r| r.id != rule.id)).then(|| Edit::AddSgRule { vpc, group, rule: rule.clone() })
        }
        ([], moved, gone) if !gone.is_empty() => {
            // A route entry gone (alone), or rules of one group.
            for (vpc, v) in doc.vpcs.iter().enumerate() {
                for (table, t) in v.route_tables.iter().enumerate() {
                    if let Some(route) = t.routes.iter().position(|r| r.id.as_deref() == Some(gone[0].as_str())) {
                        return (gone.len() == 1 && moved.is_empty()).then_some(Edit::RemoveRoute { vpc, table, route });
                    }
                }
                for (group, g) in v.security_groups.iter().enumerate() {
                    let ours = |id: &str| g.rules.iter().any(|r| r.id.as_deref() == Some(id));
                    if ours(&gone[0]) {
                        let here = g.id.as_deref().unwrap_or_default();
                        let whole = gone.iter().all(|id| ours(id)) && moved.iter().all(|(parent, _, _)| parent == here);
                        return whole.then(|| Edit::RemoveSgRules { vpc, group, rules: gone.to_vec() });
                    }
                }
            }
            None
        }
        _ => None,
    }
}

impl Planned {
    /// The numbers after it (none: it leaves them as they are).
    pub fn ids(&self) -> Option<&Ids> {
        self.ids.as_ref()
    }

    /// The map entries it writes.
    pub fn patch(&self) -> &Patch {
        &self.patch
    }

    /// Make the change in place: the document, the topology, the numbers and the entries the
    /// kernel holds.
    pub fn apply_to(self, doc: &mut TopologySpec, topology: &mut Topology, ids: &mut Ids, entries: &mut MapEntries) {
        self.edit.apply(doc);
        match (&self.edit, self.part) {
            (Edit::AddRoute { vpc, table, .. }, Part::AddedRoute(added)) => topology.vpcs[*vpc].route_tables[*table].routes.push(added),
            (Edit::RemoveRoute { vpc, table, route }, _) => {
                topology.vpcs[*vpc].route_tables[*table].routes.remove(*route);
            }
            (Edit::AddSgRule { vpc, group, .. } | Edit::RemoveSgRules { vpc, group, .. }, Part::Group(after)) => {
                topology.vpcs[*vpc].security_groups[*group] = after
            }
            (edit, part) => unreachable!("{edit:?} planned as {part:?}"),
        }
        self.patch.apply_to(entries);
        if let Some(after) = self.ids {
            *ids = after;
        }
    }

    /// The store rows it writes or removes, in `doc` as it is before the change.
    fn rows<'d>(&'d self, doc: &'d TopologySpec) -> Vec<RowChange<'d>> {
        let mut rows = match &self.edit {
            Edit::AddRoute { vpc, table, route } => {
                let table = &doc.vpcs[*vpc].route_tables[*table];
                vec![RowChange::PutRoute { table: table.id.as_deref().unwrap_or_default(), pos: table.routes.len(), route }]
            }
            Edit::RemoveRoute { vpc, table, route } => {
                let id = doc.vpcs[*vpc].route_tables[*table].routes[*route].id.as_deref();
                id.map(RowChange::Remove).into_iter().collect()
            }
            Edit::AddSgRule { vpc, group, rule } => {
                let group = &doc.vpcs[*vpc].security_groups[*group];
                vec![RowChange::PutSgRule { group: group.id.as_deref().unwrap_or_default(), pos: group.rules.len(), rule }]
            }
            Edit::RemoveSgRules { vpc, group, rules } => {
                let group = &doc.vpcs[*vpc].security_groups[*group];
                let group_id = group.id.as_deref().unwrap_or_default();
                let gone = |r: &SgRuleSpec| r.id.as_ref().is_some_and(|id| rules.contains(id));
                let mut out: Vec<RowChange<'d>> =
                    group.rules.iter().filter(|r| gone(r)).filter_map(|r| r.id.as_deref()).map(RowChange::Remove).collect();
                // The rules after a removed one move up.
                let kept = group.rules.iter().enumerate().filter(|(_, r)| !gone(r));
                out.extend(kept.enumerate().filter(|(now, (was, _))| now != was).map(|(pos, (_, rule))| RowChange::PutSgRule {
                    group: group_id,
                    pos,
                    rule,
                }));
                out
            }
        };
        rows.extend(self.ids.as_ref().map(RowChange::Ids));
        rows
    }
}

impl Agent {
    /// Make `edit` the new state: on the incremental path when it can decide it, else as a
    /// whole-document transaction. Either way the result is the same (see `tests`).
    pub fn change(&mut self, dry_run: bool, edit: Edit) -> Result<Applied, ChangeError> {
        self.catch_up()?;
        let edit = if self.quotas_checked {
            let state = self.incremental_state();
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

    /// What an edit on the incremental path is decided on: this agent's state.
    pub(super) fn incremental_state(&self) -> State<'_> {
        State {
            doc: &self.stored.doc,
            topology: &self.topology,
            binding: &self.binding,
            entries: &self.entries,
            sg_capacity: self.opts.limits.sg_capacity(),
        }
    }

    /// The data path is this agent's and it knows what the maps hold (it wrote them).
    pub(super) fn writes_incrementally(&self) -> bool {
        !self.adopted && self.loaded.as_ref().is_some_and(|l| l.knows_entries())
    }

    fn commit_planned(&mut self, planned: Planned) -> Result<Applied, ChangeError> {
        let clock = std::time::Instant::now();
        let loaded = self.loaded.as_mut().expect("checked by writes_incrementally");
        let report = match loaded.apply_patch(&planned.patch) {
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
        let numbered = planned.ids.is_some();
        planned.apply_to(&mut self.stored.doc, &mut self.topology, &mut self.stored.ids, &mut self.entries);
        if numbered {
            self.binding.ids = self.stored.ids.clone();
        }
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
