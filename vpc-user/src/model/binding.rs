//! A topology bound to one host: its persistent numbers and the ifindex of every ENI's interface.

use std::collections::{BTreeMap, BTreeSet};

use super::ids::Ids;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    pub ids: Ids,
    /// ENI or gateway ID -> ifindex of its host-side interface (those without are not attached).
    pub ifindex: BTreeMap<String, u32>,
    /// Hops the agent's health checks found down: (route entry ID, hop index).
    pub down: BTreeSet<(String, usize)>,
}

impl Binding {
    /// The ID of the ENI or gateway whose interface has `ifindex`.
    pub fn eni_at(&self, ifindex: u32) -> Option<&str> {
        self.ifindex.iter().find(|(_, i)| **i == ifindex).map(|(n, _)| n.as_str())
    }
}
