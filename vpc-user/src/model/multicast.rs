//! Multicast groups of a VPC: the type and the guide's limits are in `kinds::multicast`; they stay
//! at this path for callers. Validated in `validate::multicast`.

pub use super::kinds::multicast::{MAX_GROUPS_PER_MEMBER, MAX_GROUPS_PER_SENDER, MAX_MEMBERS, McastGroup};
