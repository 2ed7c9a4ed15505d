//! The per-flow cache: a flow's route decision, valid while the configuration epoch it was taken
//! in is current. Established packets skip the route lookups (and, later, security-group
//! classification) with one hash lookup.

use crate::Port;

/// Key of `FLOWS`: the sender's interface and the 5-tuple (addresses and ports in packet order;
/// ports are 0 for fragments and for protocols without them, the echo identifier for ICMP echo).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FlowKey {
    pub ifindex: u32,
    pub saddr: u32,
    pub daddr: u32,
    /// Source port in the high half, destination port in the low half (host order).
    pub ports: u32,
    pub proto: u32,
}

/// What a flow's packets get (`FlowEntry::verdict`).
pub mod verdict {
    pub const DELIVER: u32 = 0;
    pub const HOST: u32 = 1;
    pub const DROP: u32 = 2;
}

/// Value of `FLOWS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowEntry {
    /// Configuration epoch the decision was taken in.
    pub epoch: u64,
    /// One of [`verdict`].
    pub verdict: u32,
    /// The drop reason, for DROP.
    pub reason: u32,
    /// Where to deliver, for DELIVER.
    pub port: Port,
    pub _pad: u32,
}

#[inline(always)]
const fn mix(h: u32) -> u32 {
    h.wrapping_mul(0xcc9e_2d51).rotate_left(15).wrapping_mul(0x1b87_3593)
}

/// The flow hash that picks an ECMP slot (murmur3 mixing of the 5-tuple). The same function is
/// the data path's and the model's: it is part of the definition of where a flow goes.
#[inline(always)]
pub const fn flow_hash(saddr: u32, daddr: u32, ports: u32, proto: u32) -> u32 {
    let mut h: u32 = 0x9e37_79b9;
    h = mix(h ^ saddr).rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    h = mix(h ^ daddr).rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    h = mix(h ^ ports).rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    h = mix(h ^ proto);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The ECMP slot of a hash.
#[inline(always)]
pub const fn slot_of(hash: u32) -> usize {
    (hash >> 24) as usize
}
