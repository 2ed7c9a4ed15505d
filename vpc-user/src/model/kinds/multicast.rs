//! Multicast groups of a VPC (the guide's section 1.4, its `multis_admin` / `multic_admin`): a
//! group address, the ENIs that may send to it, and the member ENIs that receive a copy.
//! Validated in `validate::multicast`.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::model::change::{Change, by_name};

/// What every multicast group ID starts with.
pub const ID_PREFIX: &str = "mcg";

/// The guide's limits.
pub const MAX_MEMBERS: usize = vpc_common::mcast::MAX_MEMBERS;
pub const MAX_GROUPS_PER_SENDER: usize = 10;
pub const MAX_GROUPS_PER_MEMBER: usize = 10;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct McastGroupSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The group address, in 224.0.0.0/4.
    pub group: String,
    /// ENIs (names) that may send to the group.
    #[serde(default)]
    pub senders: Vec<String>,
    /// ENIs (names) that receive what is sent to it (at most 128).
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McastGroup {
    pub id: String,
    pub group: Ipv4Addr,
    /// ENI names.
    pub senders: Vec<String>,
    pub members: Vec<String>,
}

/// The groups of VPC `vpc`, each named `vpc/address` as changes name it.
fn named<'a>(vpc: &str, groups: &'a [McastGroup]) -> Vec<(String, &'a McastGroup)> {
    groups.iter().map(|g| (format!("{}/{}", vpc, g.group), g)).collect()
}

/// Added, changed and removed groups of a VPC that is there now (`old`: its groups before, when
/// it was there).
pub fn diff(out: &mut Vec<Change>, vpc: &str, old: Option<&[McastGroup]>, new: &[McastGroup]) {
    by_name(out, "multicast group", &old.map(|o| named(vpc, o)).unwrap_or_default(), &named(vpc, new));
}

/// The groups of VPC `vpc`, which is gone.
pub fn removed_with_vpc(out: &mut Vec<Change>, vpc: &str, old: &[McastGroup]) {
    for g in old {
        out.push(Change::Remove { kind: "multicast group", name: format!("{}/{}", vpc, g.group) });
    }
}
