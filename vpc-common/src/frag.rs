//! IP fragments. Only the first fragment of a datagram (offset 0) carries the transport header,
//! so the data path classifies it like any packet, with its real ports, and remembers that
//! header for the datagram in `FRAGS`, keyed by the sender's port and (source, destination,
//! protocol, IP id). Later fragments are processed as packets with that header -- the same
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
    /// Whether the datagram may open a connection (`parse::L4::opens`).
    pub opens: u8,
    pub _pad: u8,
}

impl FragEntry {
    /// Every byte of the datagram went by: a new first fragment with this key is a new datagram.
    #[inline(always)]
    pub const fn complete(&self) -> bool {
        self.total != 0 && self.received >= self.total
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
