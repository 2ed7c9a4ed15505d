//! Where the agent's desired state lives. The agent only loads it, commits a change at the
//! revision it loaded, and follows what others committed since: one host's database
//! (`RedbStore`) today, a cluster's shared store later, behind the same trait.

mod etcd;
mod redb;
mod rows;

pub use etcd::{EtcdStore, MAX_TXN_OPS};
pub use redb::RedbStore;

use crate::model::{
    ids::Ids,
    spec::{RouteSpec, SgRuleSpec, TopologySpec},
};

/// The stored document and the numbers bound to its resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    pub doc: TopologySpec,
    pub ids: Ids,
}

/// A row a change writes or removes, for a commit that names its rows instead of comparing two
/// whole documents (`Store::commit_rows`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RowChange<'a> {
    /// Route entry `route` at position `pos` of route table `table` (an ID), new or replaced.
    PutRoute { table: &'a str, pos: usize, route: &'a RouteSpec },
    /// Security-group rule `rule` at position `pos` of group `group` (an ID), new or moved.
    PutSgRule { group: &'a str, pos: usize, rule: &'a SgRuleSpec },
    /// The numbers the host gave resources (rule counters, where rule sets lie).
    Ids(&'a Ids),
    /// The resource of this ID is gone.
    Remove(&'a str),
}

/// The rows the last `Store::changed_since` read, when it read only what changed since the
/// read before: what a follower hands to the incremental path instead of compiling the whole
/// document again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    /// Route entries written: (table ID, position, entry).
    pub routes: Vec<(String, usize, RouteSpec)>,
    /// Security-group rules written: (group ID, position, rule).
    pub sg_rules: Vec<(String, usize, SgRuleSpec)>,
    /// Rows of other kinds written.
    pub others: usize,
    /// IDs of the rows gone.
    pub gone: Vec<String>,
}

/// How many commits a store has taken; a commit names the revision its change was made from.
pub type Revision = u64;

/// A commit made from a revision the store has moved past: nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the state moved on to revision {now} since revision {at}, which this change was made from")]
pub struct Conflict {
    pub at: Revision,
    pub now: Revision,
}

pub trait Store: Send {
    /// A number given to this store's state when it was made: the data path records its owner.
    fn id(&self) -> u64;
    /// What and where it is, for messages.
    fn describe(&self) -> String;
    /// The whole state and the revision it is at.
    fn load(&mut self) -> anyhow::Result<(Stored, Revision)>;
    /// Replace `old` by `new` in one transaction if the store is still at `at` (else `Conflict`);
    /// the new revision.
    fn commit(&mut self, at: Revision, old: &Stored, new: &Stored) -> anyhow::Result<Revision>;
    /// Write and remove `rows` in one transaction if the store is still at `at` (else
    /// `Conflict`), the resource numbers left as they are; the new revision. The result equals a
    /// `commit` of the documents before and after.
    fn commit_rows(&mut self, at: Revision, rows: &[RowChange<'_>]) -> anyhow::Result<Revision>;
    /// The state, when someone else committed after `after`.
    fn changed_since(&mut self, after: Revision) -> anyhow::Result<Option<(Stored, Revision)>>;
    /// What the last `changed_since` read, when it read only the rows written since the read
    /// before (none: it read everything, or nothing).
    fn delta(&self) -> Option<&Delta> {
        None
    }
    /// Whether other hosts share this store (and register in it).
    fn shared(&self) -> bool {
        false
    }
    /// Say host `host` is alive at underlay address `underlay`, for as long as this is called
    /// again within the store's time to live; cheap to call often. (One host's own store: no one
    /// to tell.)
    fn register(&mut self, _host: &str, _underlay: std::net::Ipv4Addr) -> anyhow::Result<()> {
        Ok(())
    }
    /// The hosts alive now: name -> underlay address.
    fn hosts(&mut self) -> anyhow::Result<std::collections::BTreeMap<String, std::net::Ipv4Addr>> {
        Ok(Default::default())
    }
    /// What wakes a follower as soon as someone else commits (a shared store's watch); none:
    /// only looking again at an interval tells.
    fn changes(&mut self) -> Option<std::sync::Arc<Changes>> {
        None
    }
    /// The newest revision that watch has seen (none: not watched).
    fn watched(&self) -> Option<Revision> {
        None
    }
}

/// The newest revision a store's watch has seen, for a follower to wait on without holding the
/// agent. A lost watch costs only latency: the follower looks at an interval anyway.
#[derive(Debug, Default)]
pub struct Changes {
    seen: std::sync::Mutex<Revision>,
    moved: std::sync::Condvar,
}

impl Changes {
    pub fn saw(&self, revision: Revision) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if revision > *seen {
            *seen = revision;
            self.moved.notify_all();
        }
    }

    pub fn seen(&self) -> Revision {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait until a revision past `after` was seen, or `timeout`.
    pub fn wait_past(&self, after: Revision, timeout: std::time::Duration) {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.moved.wait_timeout_while(seen, timeout, |seen| *seen <= after);
    }
}
