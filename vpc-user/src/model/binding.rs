//! A topology bound to one host: its persistent numbers and the ifindex of every ENI's interface.

use std::collections::BTreeMap;

use super::ids::Ids;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    pub ids: Ids,
    /// ENI ID -> ifindex of its host-side interface (ENIs without one are not attached).
    pub ifindex: BTreeMap<String, u32>,
}

impl Binding {
    /// The ID of the ENI whose interface has `ifindex`.
    pub fn eni_at(&self, ifindex: u32) -> Option<&str> {
        self.ifindex.iter().find(|(_, i)| **i == ifindex).map(|(n, _)| n.as_str())
    }
}
