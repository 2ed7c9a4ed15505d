//! The flow hash that spreads flows over ECMP hops.

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
