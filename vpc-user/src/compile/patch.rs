//! A few map entries written alone: what the incremental change path hands the data path
//! instead of a whole `MapEntries` to compare with what the maps hold.

use std::{collections::BTreeSet, sync::Arc};

use vpc_common::Route;

use super::{LpmKey, MapEntries, sg::SgContent};
use crate::model::ids::SgPlace;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// `ROUTES` entries written, then the ones deleted.
    pub put_routes: Vec<(LpmKey, Route)>,
    pub delete_routes: Vec<LpmKey>,
    /// Security-group rule sets, each written to its new place and then switched to.
    pub sg_sets: Vec<(u16, Arc<SgContent>, SgPlace)>,
    /// Rule counters no set used before: they start from zero.
    pub fresh_counters: Vec<u32>,
}

impl Patch {
    /// A patch replacing rule sets: `sets` (number, content, place) over what `entries` holds.
    pub fn sg_sets(entries: &MapEntries, sets: Vec<(u16, Arc<SgContent>, SgPlace)>) -> Patch {
        let used: BTreeSet<u32> = entries.sg.sets.values().flat_map(|c| c.rules.iter().map(|r| r.counter)).collect();
        let wanted: BTreeSet<u32> = sets.iter().flat_map(|(_, c, _)| c.rules.iter().map(|r| r.counter)).collect();
        Patch { fresh_counters: wanted.difference(&used).copied().collect(), sg_sets: sets, ..Default::default() }
    }

    /// `entries` as they are once the patch is written.
    pub fn apply_to(&self, entries: &mut MapEntries) {
        entries.routes.extend(self.put_routes.iter().copied());
        for key in &self.delete_routes {
            entries.routes.remove(key);
        }
        for (set, content, place) in &self.sg_sets {
            entries.sg.sets.insert(*set, content.clone());
            entries.sg.places.insert(*set, *place);
        }
    }
}
