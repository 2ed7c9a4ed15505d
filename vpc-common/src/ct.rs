//! Connection tracking: one entry per (port, connection), oriented from the port's side, so both
//! directions of a connection through an ENI find the same entry. It holds the security-group
//! verdict (and the config epoch it was taken in), the connection's state for idle timeouts, the
//! cached route decision for what the port sends, and exact per-direction counters.
//!
//! The state machine and timeouts live here, shared by the data path and the model: they are part
//! of the definition of what passes.

use crate::Port;

/// Key of `CONNTRACK`, from the port's side: `local` is the address on the port's side (the
/// source of what it sends), `remote` the other end. ICMP echo uses the identifier as both
/// ports; other protocols and fragments have ports 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CtKey {
    pub port: u32,
    /// Packet order.
    pub local: u32,
    pub remote: u32,
    /// Local port in the high half, remote port in the low half (host order).
    pub ports: u32,
    pub proto: u32,
}

impl CtKey {
    /// The key of a packet the port sends (`saddr` is local).
    #[inline(always)]
    pub const fn sent(port: u32, saddr: u32, daddr: u32, ports: u32, proto: u32) -> CtKey {
        CtKey { port, local: saddr, remote: daddr, ports, proto }
    }

    /// The key of a packet the port receives (`daddr` is local).
    #[inline(always)]
    pub const fn received(port: u32, saddr: u32, daddr: u32, ports: u32, proto: u32) -> CtKey {
        CtKey { port, local: daddr, remote: saddr, ports: ports.rotate_left(16), proto }
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

/// Connection states (`CtEntry::state`).
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

/// The cached route decision (`CtEntry::route_verdict`).
pub mod route_verdict {
    pub const NONE: u8 = 0;
    pub const DELIVER: u8 = 1;
    pub const HOST: u8 = 2;
    pub const DROP: u8 = 3;
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

/// Value of `CONNTRACK`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CtEntry {
    /// When the connection was opened and last seen (`bpf_ktime_get_ns`).
    pub created_ns: u64,
    pub last_seen_ns: u64,
    /// Config epoch in which the security-group verdict was taken.
    pub sg_epoch: u64,
    /// Config epoch of the cached route decision.
    pub route_epoch: u64,
    /// What the port sent (`out`) and received (`in`) on this connection.
    pub out_packets: u64,
    pub out_bytes: u64,
    pub in_packets: u64,
    pub in_bytes: u64,
    /// The cached route decision for what the port sends: where to (DELIVER).
    pub route_port: Port,
    /// The drop reason of a cached DROP.
    pub route_reason: u32,
    /// The rule that accepted (or denied) the connection: its counter, or [`NO_RULE`].
    pub rule: u32,
    /// One of [`route_verdict`].
    pub route_verdict: u8,
    /// One of [`state`].
    pub state: u8,
    /// One of [`origin`].
    pub origin: u8,
    /// The security-group verdict of the origin direction: 1 allowed, 0 denied.
    pub allowed: u8,
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

const SEC: u64 = 1_000_000_000;

/// How long an idle connection in `state` is kept.
#[inline(always)]
pub const fn timeout_ns(proto: u32, state: u8) -> u64 {
    match (proto, state) {
        (PROTO_TCP, state::OPEN) => 60 * SEC,
        (PROTO_TCP, state::ESTABLISHED) => 3600 * SEC,
        (PROTO_TCP, state::CLOSING) => 60 * SEC,
        (PROTO_TCP, _) => 10 * SEC,
        (PROTO_ICMP, _) => 30 * SEC,
        (_, state::OPEN) => 30 * SEC,
        _ => 180 * SEC,
    }
}

/// ICMP types that are errors about another packet (quoted in them): destination unreachable,
/// source quench, redirect, time exceeded, parameter problem.
#[inline(always)]
pub const fn is_icmp_error(kind: u8) -> bool {
    matches!(kind, 3 | 4 | 5 | 11 | 12)
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
        assert!(timeout_ns(PROTO_UDP, state::ESTABLISHED) > timeout_ns(PROTO_UDP, state::OPEN));
    }

    #[test]
    fn both_directions_share_a_key() {
        let (a, b) = (0x0a00_0001, 0x0a00_0002);
        let ports = (1234u32 << 16) | 80;
        let out = CtKey::sent(7, a, b, ports, PROTO_TCP);
        let reply = CtKey::received(7, b, a, (80u32 << 16) | 1234, PROTO_TCP);
        assert_eq!(out, reply);
        assert_eq!((out.local_port(), out.remote_port()), (1234, 80));
    }
}
