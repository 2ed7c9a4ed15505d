//! IP fragments. Only the first fragment of a datagram (offset 0) carries the transport header,
//! so the data path classifies it like any packet, with its real ports, and remembers that
//! header for the datagram in `FRAGS`, keyed by the sender's port and (source, destination,
//! protocol, IP id). Each port has its own [`FRAG_SLOTS`] slots, a datagram two of them
//! ([`slots`]): a guest with many datagrams in flight only ever overwrites its own. Later fragments are processed as packets with that header -- the same
//! verdicts, the same connection, the same route -- so no fragment gets past a rule its first
//! fragment did not.
//!
//! Supported order: the first fragment before any other of its datagram (what every sender
//! does); the others in any order. Dropped, each with its own reason (RFC 1858 and overlaps):
//! - a later fragment whose first fragment was not seen (or is older than [`FRAG_TIMEOUT`]):
//!   `frag_no_first`;
//! - a first fragment too short for its transport header (TCP 20, UDP 8, ICMP 8 bytes):
//!   `frag_tiny`;
//! - a fragment at offset 1 (8 bytes, inside a TCP header): `frag_offset_one`;
//! - a fragment overlapping the first fragment's bytes, or a second first fragment while the
//!   datagram is incomplete: `frag_overlap` (the receiver would reassemble a header nobody
//!   checked).

/// Key of `FRAGS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FragKey {
    /// The sender's port.
    pub port: u32,
    /// Packet order.
    pub saddr: u32,
    pub daddr: u32,
    /// IP identification (host order).
    pub id: u16,
    pub proto: u8,
    pub _pad: u8,
}

/// Value of `FRAGS`: what later fragments of the datagram need, and how much of it went by.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FragEntry {
    /// The first fragment's ports as the connection table keys them (see `parse::l4`).
    pub ports: u32,
    /// Payload bytes seen so far (the first fragment's included).
    pub received: u32,
    /// The datagram's payload length, known once its last fragment (no MF) went by; 0 before.
    pub total: u32,
    /// Clock ticks (`ct::TICK_SHIFT`) when the first fragment went by.
    pub created: u32,
    /// Payload bytes of the first fragment: a later fragment starting inside them overlaps.
    pub first_len: u16,
    /// [`OPENS`]: the datagram may open a connection (`parse::L4::opens`); [`USED`].
    pub flags: u8,
    /// The first fragment's ICMP tag (`ct::icmp_key`).
    pub tag: u8,
}

/// `FragEntry::flags`.
pub const OPENS: u8 = 1 << 0;
/// The slot holds a datagram (an all-zero slot is free).
pub const USED: u8 = 1 << 1;

impl FragEntry {
    /// Every byte of the datagram went by: a new first fragment with this key is a new datagram.
    #[inline(always)]
    pub const fn complete(&self) -> bool {
        self.total != 0 && self.received >= self.total
    }
}

/// An element of `FRAGS`, an array of [`FRAG_SLOTS`] slots per port.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FragSlot {
    pub key: FragKey,
    pub entry: FragEntry,
}

/// Slots of `FRAGS` per port: datagrams a guest may have in flight at once (a burst of
/// fragmented datagrams to different peers; more evict its own older ones).
pub const FRAG_SLOTS: u32 = 8;

/// The two slots (indexes of `FRAGS`) a datagram of `key` may hold.
#[inline(always)]
pub const fn slots(key: &FragKey) -> [u32; 2] {
    let h = crate::flow_hash(key.saddr, key.daddr, key.id as u32, key.proto as u32) % FRAG_SLOTS;
    let base = key.port.wrapping_mul(FRAG_SLOTS);
    [base + h, base + (h ^ 1)]
}

/// Which of its two slots (0 or 1) a first fragment of `key` is written to: the one holding
/// the same datagram, else a free or completed one, else the first (its older datagram loses
/// its entry; later fragments of it drop as `frag_no_first`).
#[inline(always)]
pub fn place(key: &FragKey, held: [&FragSlot; 2]) -> usize {
    let same = |s: &FragSlot| s.entry.flags & USED != 0 && s.key == *key;
    let free = |s: &FragSlot| s.entry.flags & USED == 0 || s.entry.complete();
    if same(held[0]) {
        0
    } else if same(held[1]) {
        1
    } else if free(held[0]) || !free(held[1]) {
        0
    } else {
        1
    }
}

/// Which of its two slots holds the datagram of `key`.
#[inline(always)]
pub fn find(key: &FragKey, held: [&FragSlot; 2]) -> Option<usize> {
    let same = |s: &FragSlot| s.entry.flags & USED != 0 && s.key == *key;
    if same(held[0]) {
        Some(0)
    } else if same(held[1]) {
        Some(1)
    } else {
        None
    }
}

/// How long a datagram's first fragment is remembered, in connection-clock ticks (~5 s; a
/// sender emits a datagram's fragments back to back).
pub const FRAG_TIMEOUT: u32 = 5;

/// The smallest transport header a first fragment must hold (RFC 1858: the TCP flags and
/// ports; the whole header, to be safe).
#[inline(always)]
pub const fn min_first_len(proto: u8) -> usize {
    match proto {
        6 => 20,
        17 | 1 => 8,
        _ => 0,
    }
}

/// The IPv4 `frag_off` field (host order), split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// A whole datagram.
    Whole,
    /// The first fragment: offset 0, more fragments follow.
    First,
    /// A later fragment, at `offset` bytes, the last one when `last`.
    Later { offset: u32, last: bool },
}

impl Fragment {
    #[inline(always)]
    pub const fn of(frag_off: u16) -> Fragment {
        let more = frag_off & 0x2000 != 0;
        let offset = (frag_off & 0x1fff) as u32 * 8;
        match (offset, more) {
            (0, false) => Fragment::Whole,
            (0, true) => Fragment::First,
            _ => Fragment::Later { offset, last: !more },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u32, id: u16) -> FragKey {
        FragKey { port, saddr: 1, daddr: 2, id, proto: 17, _pad: 0 }
    }

    #[test]
    fn a_port_owns_its_slots() {
        for port in [0u32, 1, 7, 4095] {
            for id in 0..2000u16 {
                let [a, b] = slots(&key(port, id));
                for s in [a, b] {
                    assert!(s / FRAG_SLOTS == port, "port {port} id {id} slot {s}");
                }
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn placement_keeps_the_same_datagram_and_prefers_free_slots() {
        let k = key(3, 9);
        let free = FragSlot::default();
        let mine = FragSlot { key: k, entry: FragEntry { flags: USED, ..Default::default() } };
        let busy = FragSlot { key: key(3, 10), entry: FragEntry { flags: USED, ..Default::default() } };
        let done = FragSlot { key: key(3, 11), entry: FragEntry { flags: USED, total: 8, received: 8, ..Default::default() } };
        assert_eq!(place(&k, [&busy, &mine]), 1);
        assert_eq!(place(&k, [&busy, &free]), 1);
        assert_eq!(place(&k, [&busy, &done]), 1);
        assert_eq!(place(&k, [&done, &busy]), 0);
        assert_eq!(place(&k, [&busy, &busy]), 0);
        assert_eq!(find(&k, [&busy, &mine]), Some(1));
        assert_eq!(find(&k, [&busy, &free]), None);
    }
}
