//! Security-group classification of a connection's first packet (and of re-checks after a
//! configuration change): the bit-vector classifier described in `vpc_common::sg`. A handful of
//! array reads per group whatever the number of rules.

use vpc_common::{
    ct::NO_RULE,
    sg::{CHUNK_WORDS, HAS_PORT, LEAF, MAX_ENI_GROUPS, MAX_SUMMARY_WORDS, PortGroups, SgSet, UNVOUCHED, direction, policy, proto_class},
};

use crate::maps::{SG_NODES, SG_RULES, SG_SETS, SG_WORDS};

/// What the port's groups say: accepted or not, and the deciding rule's counter (`NO_RULE` for
/// the default: ingress drops, egress accepts).
#[derive(Clone, Copy)]
pub struct Verdict {
    pub accept: bool,
    pub rule: u32,
}

/// Word `index` of the bitmap words.
#[inline(always)]
fn word(index: u32) -> Option<u64> {
    let chunk = SG_WORDS.get(index / CHUNK_WORDS)?;
    Some(chunk[(index % CHUNK_WORDS) as usize])
}

/// Follow trie entries from `entry` by the bytes of `key` (most significant first) to a leaf:
/// the bitmap id of the key's class. `LEVELS` is 4 for addresses, 2 for ports.
#[inline(always)]
fn class<const LEVELS: usize>(set: &SgSet, mut entry: u32, key: [u8; LEVELS]) -> Option<u32> {
    let mut level = 0;
    while level < LEVELS {
        if entry & LEAF != 0 {
            return Some(entry & !LEAF);
        }
        let node = SG_NODES.get(set.nodes + entry)?;
        entry = node[usize::from(key[level])];
        level += 1;
    }
    if entry & LEAF != 0 { Some(entry & !LEAF) } else { None }
}

/// Index of the lowest set bit of a non-zero word, without branches (BPF has no
/// count-trailing-zeros, and branches multiply the verifier's paths): the population count of
/// the bits below it.
#[inline(always)]
fn lowest_bit(x: u64) -> u32 {
    let mut v = (x & x.wrapping_neg()).wrapping_sub(1);
    v -= (v >> 1) & 0x5555_5555_5555_5555;
    v = (v & 0x3333_3333_3333_3333) + ((v >> 2) & 0x3333_3333_3333_3333);
    v = (v + (v >> 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    (v.wrapping_mul(0x0101_0101_0101_0101) >> 56) as u32
}

/// The first rule (in precedence order) whose bit is set in all three bitmaps.
#[inline(always)]
fn first_common(set: &SgSet, a: u32, p: u32, r: u32) -> Option<u32> {
    let stride = set.stride();
    let (a, p, r) = (set.words + a * stride, set.words + p * stride, set.words + r * stride);
    let mut s = 0;
    while s < MAX_SUMMARY_WORDS && s < set.summary_words {
        // Words of rules that every field might match: skip the rest.
        let mut candidates = word(a + s)? & word(p + s)? & word(r + s)?;
        let mut tries = 0;
        while candidates != 0 && tries < 64 {
            let w = s * 64 + lowest_bit(candidates);
            let at = set.summary_words + w;
            let both = word(a + at)? & word(p + at)? & word(r + at)?;
            if both != 0 {
                return Some(w * 64 + lowest_bit(both));
            }
            candidates &= candidates - 1;
            tries += 1;
        }
        s += 1;
    }
    None
}

/// No rule of the set matched (`classify`'s result).
const NO_MATCH: u64 = u64::MAX;

/// The winning rule of one set, packed as precedence << 40 | policy << 32 | counter (a BPF
/// function returns one register). A global BPF function: the verifier checks it once, on its
/// own, instead of at every call site (the search loop would otherwise be verified for each
/// group of each caller and exceed the verifier's budget).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn vpc_sg_classify(set_id: u32, proto: u32, peer: u32, dport: u32) -> u64 {
    let Some(set) = SG_SETS.get(set_id) else { return NO_MATCH };
    let Some(a) = class(set, set.addr_root, peer.to_ne_bytes()) else { return NO_MATCH };
    let port = (dport as u16).to_be_bytes();
    let has_port = dport & HAS_PORT != 0;
    let p = match proto_class::of(proto) {
        proto_class::TCP if has_port => class(set, set.port_root[0], port),
        proto_class::UDP if has_port => class(set, set.port_root[1], port),
        _ => Some(set.no_ports),
    };
    let Some(p) = p else { return NO_MATCH };
    let protos = if dport & UNVOUCHED != 0 { &set.proto_cidr } else { &set.proto };
    let r = protos[proto_class::of(proto) % proto_class::COUNT];
    let Some(index) = first_common(set, a, p, r) else { return NO_MATCH };
    let Some(rule) = SG_RULES.get(set.rules + index) else { return NO_MATCH };
    (u64::from(rule.precedence) << 40) | (u64::from(rule.policy) << 32) | u64::from(rule.counter)
}

/// The verdict of the port's groups in `dir` (`direction::INGRESS` / `EGRESS`) for a packet of
/// `proto` with `peer` as the other end and `dport` as destination port, `vouched`: the peer
/// is the sender whose own address it is (see `vpc_common::sg::UNVOUCHED`). Among the groups'
/// winners the lowest precedence wins; on a tie, the group listed first.
#[inline(always)]
pub fn decide(groups: &PortGroups, dir: usize, proto: u32, peer: u32, dport: Option<u16>, vouched: bool) -> Verdict {
    let dport = match dport {
        Some(port) => HAS_PORT | u32::from(port),
        None => 0,
    } | if vouched { 0 } else { UNVOUCHED };
    let mut best = NO_MATCH;
    let mut i = 0;
    while i < MAX_ENI_GROUPS && (i as u32) < groups.count {
        let found = vpc_sg_classify(u32::from(groups.sets[dir & 1][i]), proto, peer, dport);
        // Packed with the precedence on top, so the smaller number is the better rule.
        if (found >> 40) < (best >> 40) {
            best = found;
        }
        i += 1;
    }
    if best == NO_MATCH {
        return Verdict { accept: dir == direction::EGRESS, rule: NO_RULE };
    }
    Verdict { accept: (best >> 32) as u8 & 1 == policy::ACCEPT, rule: best as u32 }
}
