//! Security-group rules authorized or revoked: the group's rule sets of the directions they
//! touch are compiled again and placed in free space (`compile::sg::place`), their new rule
//! counters start from zero. The other groups' sets are not compiled.
//!
//! Falls back to the full path: a rule whose key the group already has (the full path gives
//! it the existing rule's ID first), an ID already taken, a revoke naming no rule or one the
//! group does not have, and sets that do not fit the arrays (the full path's error).

use std::{collections::BTreeMap, sync::Arc};

use super::{Decided, Edit, Part, Planned, State};
use crate::{
    compile::{Patch, sg},
    model::{
        diff::Change,
        security::{Direction, rule_key, validate_appended_rule},
        topology::Quotas,
    },
};

pub(super) fn plan(state: &State<'_>, quotas: &Quotas, edit: Edit) -> Decided {
    let (i, j) = match &edit {
        Edit::AddSgRule { vpc, group, .. } | Edit::RemoveSgRules { vpc, group, .. } => (*vpc, *group),
        _ => return Err(edit),
    };
    let (Some(spec), Some(vpc)) = (state.doc.vpcs.get(i), state.topology.vpcs.get(i)) else { return Err(edit) };
    let (Some(group_spec), Some(group)) = (spec.security_groups.get(j), vpc.security_groups.get(j)) else { return Err(edit) };
    // The topology is the document's, position for position.
    if spec.name != vpc.name || group_spec.name != group.name || group_spec.rules.len() != group.rules.len() {
        return Err(edit);
    }
    let mut ids = state.binding.ids.clone();
    let mut after = group.clone();
    let (touched, added, removed): (Vec<Direction>, usize, usize) = match &edit {
        Edit::AddSgRule { rule, .. } => {
            let Some(id) = rule.id.clone() else { return Err(edit) };
            let key = rule_key(rule);
            let id_taken = ids.sg_rules.contains_key(&id)
                || state.doc.vpcs.iter().flat_map(|v| &v.security_groups).flat_map(|g| &g.rules).any(|r| r.id == rule.id);
            if id_taken || group_spec.rules.iter().any(|r| rule_key(r) == key) {
                return Err(edit);
            }
            let checked = match validate_appended_rule((i, j), spec, rule, quotas.rules_per_security_group) {
                Ok(checked) => checked,
                Err(invalid) => return Ok(Err(invalid)),
            };
            // The lowest free counter, as numbering the whole document would give it.
            let taken: std::collections::BTreeSet<u32> = ids.sg_rules.values().copied().collect();
            let counter = (0..).find(|n| !taken.contains(n)).expect("a free counter");
            if counter >= state.sg_capacity.rules {
                return Err(edit);
            }
            ids.sg_rules.insert(id, counter);
            let direction = checked.direction;
            after.rules.push(checked);
            (vec![direction], 1, 0)
        }
        Edit::RemoveSgRules { rules, .. } => {
            let named: Vec<_> = rules.iter().map(|id| group.rules.iter().find(|r| &r.id == id)).collect();
            if rules.is_empty() || named.iter().any(Option::is_none) {
                return Err(edit);
            }
            let mut touched: Vec<Direction> = named.iter().flatten().map(|r| r.direction).collect();
            touched.sort();
            touched.dedup();
            after.rules.retain(|r| !rules.contains(&r.id));
            for id in rules {
                ids.sg_rules.remove(id);
            }
            (touched, 0, group.rules.len() - after.rules.len())
        }
        _ => return Err(edit),
    };
    let sets: BTreeMap<u16, Arc<sg::SgContent>> = touched
        .iter()
        .map(|&direction| {
            let dir = match direction {
                Direction::Ingress => 0,
                Direction::Egress => 1,
            };
            (ids.sg_set(&group.id, dir), Arc::new(sg::compile_set(vpc, &after, direction, &ids)))
        })
        .collect();
    let Ok(places) = sg::place(&sets, &state.entries.sg.sets, &ids.sg_places, state.sg_capacity) else { return Err(edit) };
    ids.sg_places.extend(places.iter().map(|(set, place)| (*set, *place)));
    let patch = Patch::sg_sets(state.entries, sets.into_iter().map(|(set, content)| (set, content, places[&set])).collect());
    let change =
        Change::Modify { kind: "security group", name: format!("{}/{}", vpc.name, group.name), what: format!("rules +{added} -{removed}") };
    Ok(Ok(Planned { edit, part: Part::Group(after), patch, ids: Some(ids), change }))
}
