//! Connection tracking, as the data path and the model both define it.
//!
//! One entry per (port, connection), oriented from the port's side: both directions of a
//! connection through a port find the same entry. A connection between two ports has an entry at
//! each; each holds its own port's security-group verdict on the connection, and the entry of the
//! side that sends caches where its packets go and the other side's verdict, so an established
//! packet costs one lookup. An entry is derived state: a port that has none for a packet is given
//! one from the other side's entry if that one is live, else the packet opens a new connection
//! judged by the current rules of both sides. A missing entry never means "allowed".
//!
//! Entries are charged to their port: a port may hold at most its limit, and a new connection
//! beyond it is refused (`conntrack_limit`), never another port's entry evicted. The table is a
//! plain hash: nothing is evicted; the agent's sweeper removes expired entries.
//!
//! The state machine, timeouts and the ICMP key are defined here, shared by the data path and
//! the model: they are part of the definition of what passes.

use crate::Port;

/// Key of `CONNTRACK`, from the port's side: `local` is the address on the port's side (the
/// source of what it sends), `remote` the other end. ICMP uses [`icmp_key`]; other protocols
/// than TCP and UDP have ports 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CtKey {
    pub port: u32,
    /// Packet order.
    pub local: u32,
    pub remote: u32,
    /// Local port in the high half, remote port in the low half (host order).
    pub ports: u32,
    /// The IP protocol in the low byte; for ICMP queries and replies an [`icmp_tag`] above it.
    pub proto: u32,
}

impl CtKey {
    /// The key of a packet the port sends (`saddr` is local). `proto` is the packet's
    /// [`key_proto`].
    #[inline(always)]
    pub const fn sent(port: u32, saddr: u32, daddr: u32, ports: u32, proto: u32) -> CtKey {
        CtKey { port, local: saddr, remote: daddr, ports, proto }
    }

    /// The key of a packet the port receives (`daddr` is local).
    #[inline(always)]
    pub const fn received(port: u32, saddr: u32, daddr: u32, ports: u32, proto: u32) -> CtKey {
        CtKey { port, local: daddr, remote: saddr, ports: ports.rotate_left(16), proto: turned(proto) }
    }

    /// The IP protocol number.
    #[inline(always)]
    pub const fn ip_proto(&self) -> u32 {
        self.proto & 0xff
    }

    pub const fn local_port(&self) -> u16 {
        (self.ports >> 16) as u16
    }

    pub const fn remote_port(&self) -> u16 {
        self.ports as u16
    }
}

/// Which side opened the connection (`CtEntry::origin`).
pub mod origin {
    /// The port sent the first packet (its egress rules decided).
    pub const OUT: u8 = 0;
    /// The port received the first packet (its ingress rules decided).
    pub const IN: u8 = 1;
}

/// Connection states (`CtEntry::state`), the same in the entries of both sides.
pub mod state {
    /// Only the origin side has been seen.
    pub const OPEN: u8 = 0;
    /// Both sides have been seen.
    pub const ESTABLISHED: u8 = 1;
    /// TCP: a FIN was seen.
    pub const CLOSING: u8 = 2;
    /// TCP: a RST was seen.
    pub const CLOSED: u8 = 3;
}

/// Where the entry's port's packets go (`CtEntry::route`), cached with the other side's verdict.
pub mod route {
    /// Not cached (an entry made for the receiving side, or a new epoch).
    pub const NONE: u8 = 0;
    /// To `CtEntry::hop`.
    pub const DELIVER: u8 = 1;
    /// To the host's network stack.
    pub const HOST: u8 = 2;
}

/// `CtEntry::flags`.
pub mod flag {
    /// The port's own groups accept the connection.
    pub const ALLOWED: u8 = 1 << 0;
    /// The receiving side's groups accept it (with a cached DELIVER route).
    pub const PEER_ALLOWED: u8 = 1 << 1;
    /// A flow log captures the port / the receiving side.
    pub const LOG: u8 = 1 << 2;
    pub const PEER_LOG: u8 = 1 << 3;
    /// The side that received the connection's first packet: its source was not vouched for
    /// (the sender forwards for others), so rules naming a group did not and do not match it.
    pub const UNVOUCHED: u8 = 1 << 4;
}

/// No rule decided (no security groups on the port, or the default verdict).
pub const NO_RULE: u32 = u32::MAX;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

pub const PROTO_ICMP: u32 = 1;
pub const PROTO_TCP: u32 = 6;
pub const PROTO_UDP: u32 = 17;

/// Value of `CONNTRACK`: 64 bytes, so an element with its key and hash header fits two cache lines.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CtEntry {
    /// What the port sent on this connection.
    pub packets: u64,
    pub bytes: u64,
    /// Clock ticks ([`TICK_SHIFT`]) of the port's last packet, and of the entry's creation.
    pub last_seen: u32,
    pub created: u32,
    /// Config epoch (low 32 bits) of the port's own verdict.
    pub verdict_epoch: u32,
    /// Config epoch of the cached route and the other side's verdict.
    pub route_epoch: u32,
    /// Counter of the rule that decided the port's verdict / the other side's ([`NO_RULE`]).
    pub rule: u32,
    pub peer_rule: u32,
    /// The cached DELIVER target: the other side's port and how to reach it.
    pub hop: Port,
    /// One of [`route`].
    pub route: u8,
    /// One of [`state`].
    pub state: u8,
    /// One of [`origin`].
    pub origin: u8,
    /// [`flag`] bits.
    pub flags: u8,
}

impl CtEntry {
    #[inline(always)]
    pub const fn allowed(&self) -> bool {
        self.flags & flag::ALLOWED != 0
    }
}

/// The key of the other side's entry: the same connection at port `peer`.
#[inline(always)]
pub const fn peer_key(key: &CtKey, peer: u32) -> CtKey {
    CtKey { port: peer, local: key.remote, remote: key.local, ports: key.ports.rotate_left(16), proto: turned(key.proto) }
}

/// The state after a packet (`from_origin`: sent by the side that opened the connection).
#[inline(always)]
pub const fn next_state(proto: u32, state: u8, tcp_flags: u8, from_origin: bool) -> u8 {
    if proto == PROTO_TCP {
        if tcp_flags & TCP_RST != 0 {
            return state::CLOSED;
        }
        if tcp_flags & TCP_FIN != 0 && state != state::CLOSED {
            return state::CLOSING;
        }
    }
    if state == state::OPEN && !from_origin { state::ESTABLISHED } else { state }
}

/// A bare SYN on a connection that has closed opens a new one (re-decided as a first packet).
#[inline(always)]
pub const fn reopens(proto: u32, state: u8, tcp_flags: u8) -> bool {
    proto == PROTO_TCP && tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN && state >= state::CLOSING
}

/// The connection clock: `bpf_ktime_get_coarse_ns() >> TICK_SHIFT`, ticks of about a second
/// (1.07 s). Seconds are enough for idle timeouts, and a shift is cheaper than a division.
pub const TICK_SHIFT: u32 = 30;

/// `secs` seconds in ticks, rounded up.
pub const fn ticks(secs: u64) -> u32 {
    ((secs * 1_000_000_000).div_ceil(1 << TICK_SHIFT)) as u32
}

/// How long an idle connection in `state` is kept, in ticks.
#[inline(always)]
pub const fn timeout(proto: u32, state: u8) -> u32 {
    match (proto & 0xff, state) {
        (PROTO_TCP, state::OPEN) => ticks(60),
        (PROTO_TCP, state::ESTABLISHED) => ticks(3600),
        (PROTO_TCP, state::CLOSING) => ticks(60),
        (PROTO_TCP, _) => ticks(10),
        (PROTO_ICMP, _) => ticks(30),
        (_, state::OPEN) => ticks(30),
        _ => ticks(180),
    }
}

/// ICMP types that are errors about another packet (quoted in them): destination unreachable,
/// source quench, redirect, time exceeded, parameter problem.
#[inline(always)]
pub const fn is_icmp_error(kind: u8) -> bool {
    matches!(kind, 3 | 4 | 5 | 11 | 12)
}

/// ICMP a guest may not send at all: source quench (deprecated, RFC 6633) and redirect (only
/// the gateway routes; a guest's redirect would steer its peers' traffic). `icmp_invalid`.
#[inline(always)]
pub const fn is_icmp_forbidden(kind: u8) -> bool {
    matches!(kind, 4 | 5)
}

/// The largest ICMP error (IP total length) a router sends (RFC 1812 4.3.2.3): anything longer
/// is not an error but a payload in disguise.
pub const ICMP_ERROR_MAX_LEN: usize = 576;

/// ICMP as the connection table keys it: (ports, tag, whether a packet without a connection may
/// open one). A query and its reply share a connection: both carry the identifier in both
/// halves of the ports and a tag naming the query and which end asked: the request's source
/// ([`tag::ASKED_BY_SOURCE`]) or the reply's destination. Seen from a port, the tag says
/// whether the port or the other end asked, so a request sent the other way is another
/// connection whatever its identifier; and only requests open connections. Other ICMP
/// messages carry (0x200 | type, code) and no tag: never the key of a query; they open nothing.
#[inline(always)]
pub const fn icmp_key(kind: u8, code: u8, id: u16) -> (u32, u8, bool) {
    let ports = id as u32 * 0x1_0001;
    match kind {
        8 => (ports, tag::ECHO | tag::ASKED_BY_SOURCE, true),
        13 | 15 | 17 => (ports, ((kind - 11) << 1) | tag::ASKED_BY_SOURCE, true),
        0 => (ports, tag::ECHO | tag::ASKED_BY_DESTINATION, false),
        14 | 16 | 18 => (ports, ((kind - 12) << 1) | tag::ASKED_BY_DESTINATION, false),
        _ => ((((0x200 | kind as u32) << 16) | code as u32), 0, false),
    }
}

/// The tag of an ICMP query's key ([`icmp_key`]): the query (bits 2-3) and who asked (bits 0-1).
pub mod tag {
    pub const ASKED_BY_SOURCE: u8 = 1;
    pub const ASKED_BY_DESTINATION: u8 = 2;
    /// Echo; timestamp, information and address mask are 4, 8, 12 ((request type - 11) << 1).
    pub const ECHO: u8 = 0;
}

/// The protocol a packet of `proto` with ICMP tag `tag` is keyed by.
#[inline(always)]
pub const fn key_proto(proto: u32, tag: u8) -> u32 {
    proto | (tag as u32) << 8
}

/// A key protocol seen from the other end: who asked turns around.
#[inline(always)]
pub const fn turned(proto: u32) -> u32 {
    if proto & 0x300 != 0 { proto ^ 0x300 } else { proto }
}

/// Whether ICMP `kind` is a query or its reply (the only ICMP an error may quote).
#[inline(always)]
pub const fn is_icmp_query(kind: u8) -> bool {
    matches!(kind, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_lifecycle() {
        let s = next_state(PROTO_TCP, state::OPEN, TCP_SYN, true);
        assert_eq!(s, state::OPEN);
        let s = next_state(PROTO_TCP, s, TCP_SYN | TCP_ACK, false);
        assert_eq!(s, state::ESTABLISHED);
        let s = next_state(PROTO_TCP, s, TCP_ACK, true);
        assert_eq!(s, state::ESTABLISHED);
        let s = next_state(PROTO_TCP, s, TCP_FIN | TCP_ACK, false);
        assert_eq!(s, state::CLOSING);
        assert!(reopens(PROTO_TCP, s, TCP_SYN));
        assert!(!reopens(PROTO_TCP, state::ESTABLISHED, TCP_SYN));
        assert_eq!(next_state(PROTO_TCP, state::ESTABLISHED, TCP_RST, true), state::CLOSED);
        assert_eq!(next_state(PROTO_TCP, state::CLOSED, TCP_FIN, true), state::CLOSED);
    }

    #[test]
    fn udp_is_established_by_a_reply() {
        assert_eq!(next_state(PROTO_UDP, state::OPEN, 0, true), state::OPEN);
        assert_eq!(next_state(PROTO_UDP, state::OPEN, 0, false), state::ESTABLISHED);
        assert!(timeout(PROTO_UDP, state::ESTABLISHED) > timeout(PROTO_UDP, state::OPEN));
    }

    #[test]
    fn both_directions_share_a_key() {
        let (a, b) = (0x0a00_0001, 0x0a00_0002);
        let ports = (1234u32 << 16) | 80;
        let out = CtKey::sent(7, a, b, ports, PROTO_TCP);
        let reply = CtKey::received(7, b, a, (80u32 << 16) | 1234, PROTO_TCP);
        assert_eq!(out, reply);
        assert_eq!((out.local_port(), out.remote_port()), (1234, 80));
        // The other side's entry of the same connection.
        assert_eq!(peer_key(&out, 9), CtKey::received(9, a, b, ports, PROTO_TCP));
    }

    #[test]
    fn an_echo_reply_matches_its_request_and_a_request_the_other_way_does_not() {
        let (a, b) = (0x0a00_0001, 0x0a00_0002);
        let key = |kind: u8, id: u16| {
            let (ports, tag, opens) = icmp_key(kind, 0, id);
            (ports, key_proto(PROTO_ICMP, tag), opens)
        };
        // Every identifier, and every pair of query kinds.
        for id in 0..=u16::MAX {
            let (request, proto, opens) = key(8, id);
            assert!(opens);
            let (reply, reply_proto, reply_opens) = key(0, id);
            assert!(!reply_opens, "a reply never opens a connection");
            let sent = CtKey::sent(1, a, b, request, proto);
            assert_eq!(CtKey::received(1, b, a, reply, reply_proto), sent, "the reply is the request's connection");
            assert_eq!(peer_key(&sent, 2), CtKey::received(2, a, b, request, proto));
            for other in [0u8, 8, 13, 14, 15, 16, 17, 18] {
                for other_id in [id, id.rotate_left(8), 0x108, 0x100 | other as u16, 0x200 | other as u16] {
                    let (ports, p, _) = key(other, other_id);
                    if other != 0 || other_id != id {
                        assert_ne!(CtKey::received(1, b, a, ports, p), sent, "B's {other} id {other_id} meets A's echo id {id}");
                    }
                }
            }
            // Timestamp requests never meet an echo's replies.
            let (ts, ts_proto, _) = key(13, id);
            assert_ne!(CtKey::sent(1, a, b, ts, ts_proto), sent);
            assert_eq!(CtKey::received(1, b, a, key(14, id).0, key(14, id).1), CtKey::sent(1, a, b, ts, ts_proto));
        }
        for kind in [3u8, 4, 5, 9, 10, 11, 12, 42] {
            for code in [0u8, 1, 8, 255] {
                let (ports, tag, opens) = icmp_key(kind, code, 0);
                assert!(!opens && tag == 0);
                let sent = CtKey::sent(1, a, b, ports, PROTO_ICMP);
                for query in [0u8, 8, 13, 14] {
                    for id in [0u16, 1, 0x203, 0x2ff, u16::MAX] {
                        let (q, p, _) = key(query, id);
                        assert_ne!(CtKey::received(1, b, a, q, p), sent, "type {kind} meets query {query} id {id}");
                        assert_ne!(CtKey::sent(1, a, b, q, p), sent);
                    }
                }
            }
        }
        assert_eq!(timeout(key_proto(PROTO_ICMP, tag::ASKED_BY_SOURCE), state::OPEN), timeout(PROTO_ICMP, state::OPEN));
    }

    #[test]
    fn ticks_round_up() {
        assert_eq!(ticks(0), 0);
        assert_eq!(ticks(1), 1);
        assert!(ticks(3600) >= 3352 && ticks(3600) <= 3353);
    }
}
