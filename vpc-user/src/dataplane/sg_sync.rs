//! Write compiled security groups into the arrays. A changed set is written to its new place
//! (free space, see `compile::sg::place`) and then switched to by one update of its `SgSet`, so
//! packets read the old set or the new one whole. Port tables are written after their sets
//! exist, and before anything else of a sync: a port is never live without its groups.

use std::sync::Arc;

use anyhow::Context as _;
use aya::maps::{Array, MapData};
use vpc_common::{
    maps as names,
    sg::{CHUNK_WORDS, NODE_FANOUT, PortGroups, SgRule, SgSet},
};

use super::sync::{Changes, MapSource};
use crate::{
    compile::{SgEntries, sg::SgContent},
    model::ids::SgPlace,
};

type Chunk = [u64; CHUNK_WORDS as usize];

/// The five arrays, opened from an object's or the pinned maps.
pub struct SgMaps<'a> {
    pub sets: Array<&'a mut MapData, SgSet>,
    pub nodes: Array<&'a mut MapData, [u32; NODE_FANOUT]>,
    pub words: Array<&'a mut MapData, Chunk>,
    pub rules: Array<&'a mut MapData, SgRule>,
    pub ports: Array<&'a mut MapData, PortGroups>,
}

impl<'a> SgMaps<'a> {
    pub fn open(maps: &'a mut impl MapSource) -> anyhow::Result<Self> {
        let [sets, nodes, words, rules, ports] =
            maps.maps([names::SG_SETS, names::SG_NODES, names::SG_WORDS, names::SG_RULES, names::PORT_GROUPS])?;
        Ok(SgMaps {
            sets: Array::try_from(sets)?,
            nodes: Array::try_from(nodes)?,
            words: Array::try_from(words)?,
            rules: Array::try_from(rules)?,
            ports: Array::try_from(ports)?,
        })
    }

    /// What the arrays hold: every present set (read back whole) and every guarded port.
    pub fn current(&self) -> anyhow::Result<SgEntries> {
        let mut out = SgEntries::default();
        for index in 0..self.sets.len() {
            let set = self.sets.get(&index, 0).context("reading SG_SETS")?;
            if set.rule_words == 0 {
                continue;
            }
            let place = SgPlace {
                nodes: (set.nodes, set.node_count),
                chunks: (set.words / CHUNK_WORDS, set.chunk_count),
                rules: (set.rules, set.count),
            };
            let nodes = (0..set.node_count).map(|i| self.nodes.get(&(set.nodes + i), 0)).collect::<Result<Vec<_>, _>>()?;
            let chunks = (0..set.chunk_count).map(|i| self.words.get(&(place.chunks.0 + i), 0)).collect::<Result<Vec<_>, _>>()?;
            let rules = (0..set.count).map(|i| self.rules.get(&(set.rules + i), 0)).collect::<Result<Vec<_>, _>>()?;
            let content = SgContent { set: SgSet { nodes: 0, words: 0, rules: 0, ..set }, nodes, words: chunks.concat(), rules };
            out.sets.insert(index as u16, Arc::new(content));
            out.places.insert(index as u16, place);
        }
        for port in 0..self.ports.len() {
            let groups = self.ports.get(&port, 0).context("reading PORT_GROUPS")?;
            if groups.count > 0 {
                out.port_groups.insert(port, groups);
            }
        }
        Ok(out)
    }

    /// Write `set` at `place` unless `current` (what the arrays hold) has it so already,
    /// counting it as added or changed.
    pub(super) fn put(
        &mut self,
        set: u16,
        content: &SgContent,
        place: &SgPlace,
        current: &SgEntries,
        changes: &mut Changes,
    ) -> anyhow::Result<()> {
        if current.sets.get(&set).is_some_and(|c| **c == *content) && current.places.get(&set) == Some(place) {
            return Ok(());
        }
        match current.sets.contains_key(&set) {
            true => changes.changed += 1,
            false => changes.added += 1,
        }
        self.write(set, content, place)
    }

    fn write(&mut self, set: u16, content: &SgContent, place: &SgPlace) -> anyhow::Result<()> {
        for (i, node) in content.nodes.iter().enumerate() {
            self.nodes.set(place.nodes.0 + i as u32, node, 0).context("writing SG_NODES")?;
        }
        for (i, chunk) in content.words.chunks(CHUNK_WORDS as usize).enumerate() {
            let chunk: Chunk = chunk.try_into().context("a partial bitmap chunk")?;
            self.words.set(place.chunks.0 + i as u32, chunk, 0).context("writing SG_WORDS")?;
        }
        for (i, rule) in content.rules.iter().enumerate() {
            self.rules.set(place.rules.0 + i as u32, rule, 0).context("writing SG_RULES")?;
        }
        // The switch: one update of the set's descriptor.
        self.sets.set(u32::from(set), content.placed(place), 0).context("writing SG_SETS")
    }
}

/// Sets and ports to clear once nothing refers to them (phase two).
#[derive(Default)]
pub struct Pending {
    sets: Vec<u16>,
    ports: Vec<u32>,
    /// Rule counters no set used before: they start from zero.
    pub fresh_counters: Vec<u32>,
    pub changes: Changes,
}

/// Phase one: write changed sets, then the port tables. `known` is what the arrays hold when
/// the caller wrote them last; otherwise they are read.
pub fn upsert(maps: &mut SgMaps<'_>, want: &SgEntries, known: Option<&SgEntries>) -> anyhow::Result<Pending> {
    let read;
    let current = match known {
        Some(known) => known,
        None => {
            read = maps.current()?;
            &read
        }
    };
    let mut pending = Pending::default();
    for (set, content) in &want.sets {
        let place = want.places.get(set).with_context(|| format!("security-group set {set} has no place"))?;
        maps.put(*set, content, place, current, &mut pending.changes)?;
    }
    for (port, groups) in &want.port_groups {
        if current.port_groups.get(port) != Some(groups) {
            maps.ports.set(*port, groups, 0).context("writing PORT_GROUPS")?;
        }
    }
    let counters = |entries: &SgEntries| -> std::collections::BTreeSet<u32> {
        entries.sets.values().flat_map(|c| c.rules.iter().map(|r| r.counter)).collect()
    };
    let before = counters(current);
    pending.fresh_counters = counters(want).difference(&before).copied().collect();
    pending.sets = current.sets.keys().filter(|s| !want.sets.contains_key(s)).copied().collect();
    pending.ports = current.port_groups.keys().filter(|p| !want.port_groups.contains_key(p)).copied().collect();
    pending.changes.removed = pending.sets.len();
    Ok(pending)
}

/// Phase two: clear the ports that left and the sets no port uses any more.
pub fn remove(maps: &mut SgMaps<'_>, pending: &Pending) -> anyhow::Result<()> {
    for port in &pending.ports {
        maps.ports.set(*port, PortGroups::default(), 0).context("clearing PORT_GROUPS")?;
    }
    for set in &pending.sets {
        maps.sets.set(u32::from(*set), SgSet::default(), 0).context("clearing SG_SETS")?;
    }
    Ok(())
}
