//! `ENI_INDEX` and `ENI_SLOTS`: the sender of a frame found by two array loads instead of a
//! hash lookup (see `vpc_common::maps`). `ENIS` stays the whole truth and the data path's
//! fallback; this is kept equal to it for the interfaces below the index's size.
//!
//! An array slot is written in place, without RCU, so a slot the index points at is never
//! written: a changed ENI goes whole to the other slot of its port's pair, then the index
//! switches to it in one 4-byte update. A reader that catches the switch half done reaches a
//! slot whose ifindex is another interface's (and takes the hash) or this interface's previous
//! whole value.

use std::collections::BTreeMap;

use aya::maps::{Array, MapData};
use vpc_common::{ENI_SLOT_VALID, Eni, maps as names};

use super::sync::MapSource;

pub struct EniIndex<'a> {
    index: Array<&'a mut MapData, u32>,
    slots: Array<&'a mut MapData, Eni>,
}

impl<'a> EniIndex<'a> {
    pub fn open(maps: &'a mut impl MapSource) -> anyhow::Result<Self> {
        let [index, slots] = maps.maps([names::ENI_INDEX, names::ENI_SLOTS])?;
        Ok(EniIndex { index: Array::try_from(index)?, slots: Array::try_from(slots)? })
    }

    /// The slot `ifindex` points at, if any.
    fn slot(&self, ifindex: u32) -> anyhow::Result<Option<u32>> {
        let value = self.index.get(&ifindex, 0)?;
        Ok((value & ENI_SLOT_VALID != 0).then_some(value & !ENI_SLOT_VALID))
    }

    /// Point every interface of `want` the index covers at its ENI. `trusted`: the index holds
    /// what `current` says (this instance wrote both), so ENIs equal to `current`'s are left.
    pub fn upsert(&mut self, want: &BTreeMap<u32, Eni>, current: &BTreeMap<u32, Eni>, trusted: bool) -> anyhow::Result<()> {
        let size = self.index.len();
        for (&ifindex, eni) in want.range(..size) {
            if trusted && current.get(&ifindex) == Some(eni) {
                continue;
            }
            let own = self.slot(ifindex)?;
            if let Some(slot) = own
                && self.slots.get(&slot, 0)? == *eni
            {
                continue;
            }
            // The pair of the ENI's port, less the slots an index points at: this interface's
            // own, and another interface's that had the port until now.
            let mut taken: Vec<u32> = own.into_iter().collect();
            for (&other, _) in current.range(..size).filter(|(i, e)| **i != ifindex && e.port == eni.port) {
                taken.extend(self.slot(other)?);
            }
            let pair = [2 * eni.port, 2 * eni.port + 1];
            match pair.into_iter().find(|s| !taken.contains(s) && *s < self.slots.len()) {
                Some(free) => {
                    self.slots.set(free, eni, 0)?;
                    self.index.set(ifindex, ENI_SLOT_VALID | free, 0)?;
                }
                // No free slot (or none at all): the hash serves the interface.
                None => self.index.set(ifindex, 0, 0)?,
            }
        }
        Ok(())
    }

    /// Forget the interfaces in `gone` (before their `ENIS` entries go).
    pub fn remove(&mut self, gone: &[u32]) -> anyhow::Result<()> {
        let size = self.index.len();
        for &ifindex in gone.iter().filter(|i| **i < size) {
            self.index.set(ifindex, 0, 0)?;
        }
        Ok(())
    }
}
