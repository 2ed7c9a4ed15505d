//! Multicast groups of a VPC (the guide's section 1.4, its `multis_admin` / `multic_admin`): a
//! group address, the ENIs that may send to it, and the member ENIs that receive a copy.
//! Validated in `validate::multicast`.

use std::net::Ipv4Addr;

use serde::Serialize;

/// The guide's limits.
pub const MAX_MEMBERS: usize = vpc_common::mcast::MAX_MEMBERS;
pub const MAX_GROUPS_PER_SENDER: usize = 10;
pub const MAX_GROUPS_PER_MEMBER: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McastGroup {
    pub id: String,
    pub group: Ipv4Addr,
    /// ENI names.
    pub senders: Vec<String>,
    pub members: Vec<String>,
}
