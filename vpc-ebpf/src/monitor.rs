//! Monitoring events (see `vpc_common::monitor`), made on cold paths only: a drop, a new
//! connection, a verdict an epoch change flipped, an ICMP error sent. Each spends a token of its
//! (port, kind) budget first; what the budget or a full ring holds back is counted.

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::XdpContext};
use vpc_common::{
    CtKey, DropReason, Eni,
    ct::{NO_RULE, origin},
    monitor::{EVENT_BURST, EVENTS_PER_SECOND, MonEvent, NO_PORT, kind, slot},
    sg::direction,
};

use crate::{
    ct::Conn,
    maps::{EVENTS, MON_BUDGET, MON_SUPPRESSED},
    packet::Packet,
    parse,
};

/// Spend one of (port, kind)'s tokens; without one, count the event as limited.
#[inline(always)]
fn admit(port: u32, what: u8, now: u64) -> bool {
    let at = slot(port, what);
    if let Some(bucket) = MON_BUDGET.get_ptr_mut(at) {
        // SAFETY: per-CPU slot, only this CPU touches it while the program runs.
        if unsafe { (*bucket).take(now, EVENTS_PER_SECOND, EVENT_BURST) } {
            return true;
        }
    }
    if let Some(held) = MON_SUPPRESSED.get_ptr_mut(at) {
        // SAFETY: as above.
        unsafe { (*held).limited += 1 };
    }
    false
}

/// Write `event` (its kind and port set) when its budget allows; a full ring is counted.
#[inline(always)]
fn write(event: &mut MonEvent) {
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if !admit(event.port, event.kind, now) {
        return;
    }
    event.ktime = now;
    if EVENTS.output::<MonEvent>(&*event, 0).is_err()
        && let Some(held) = MON_SUPPRESSED.get_ptr_mut(slot(event.port, event.kind))
    {
        // SAFETY: per-CPU slot, as in `admit`.
        unsafe { (*held).ring_full += 1 };
    }
}

/// An event about `pkt`, sent by `port`.
#[inline(always)]
fn about(what: u8, port: u32, pkt: &Packet) -> MonEvent {
    let ports = if pkt.proto == 6 || pkt.proto == 17 { pkt.ports } else { 0 };
    MonEvent {
        ktime: 0,
        kind: what,
        direction: direction::EGRESS as u8,
        proto: pkt.proto as u8,
        flags: 0,
        reason: 0,
        port,
        peer_port: NO_PORT,
        saddr: pkt.saddr,
        daddr: pkt.daddr,
        sport: (ports >> 16) as u16,
        dport: ports as u16,
        rule: NO_RULE,
        peer_rule: NO_RULE,
        table: 0,
        _pad: [0; 2],
    }
}

/// A packet parsed whole (`pkt`) was dropped: with the security-group rule that decided, and
/// the receiver (`to`) when the route had found one.
#[inline(never)]
pub fn dropped(port: u32, pkt: &Packet, conn: &Conn, reason: DropReason, to: u32) {
    let mut event = about(kind::DROP, port, pkt);
    event.reason = reason as u32;
    event.rule = conn.deny_rule;
    event.peer_port = to;
    if matches!(reason, DropReason::SgIngress) {
        event.direction = direction::INGRESS as u8;
    }
    write(&mut event);
}

/// A frame dropped before it was parsed whole: what its headers say, as far as they go.
#[inline(never)]
pub fn dropped_early(ctx: &XdpContext, port: u32, reason: DropReason) {
    // Opaque to LLVM: otherwise it passes `data` and `data_end` in as plain integers and
    // zero-extends them here with shifts, which the verifier refuses on packet pointers.
    let ctx = core::hint::black_box(ctx);
    let (saddr, daddr, proto, ports) = headers(ctx);
    let mut event = MonEvent {
        kind: kind::DROP,
        reason: reason as u32,
        port,
        peer_port: NO_PORT,
        saddr,
        daddr,
        proto,
        sport: (ports >> 16) as u16,
        dport: ports as u16,
        rule: NO_RULE,
        peer_rule: NO_RULE,
        ..MonEvent::default()
    };
    write(&mut event);
}

/// An IPv4 frame's addresses, protocol and (TCP or UDP, not a later fragment) ports; zeros
/// for what the frame does not hold.
#[inline(always)]
fn headers(ctx: &XdpContext) -> (u32, u32, u8, u32) {
    let Ok(eth) = parse::eth(ctx) else { return (0, 0, 0, 0) };
    if u16::from_be(eth.ether_type) != parse::ETH_P_IP {
        return (0, 0, 0, 0);
    }
    let Ok(ip) = parse::ipv4(ctx) else { return (0, 0, 0, 0) };
    let mut ports = 0;
    if matches!(ip.protocol, 6 | 17)
        && parse::frag_off(ip) & 0x1fff == 0
        && let Ok(at) = parse::ptr_at::<[u8; 4]>(ctx, parse::ETH_HLEN + parse::ipv4_header_len(ip))
    {
        // SAFETY: ptr_at checked the four bytes.
        ports = u32::from_be_bytes(unsafe { *at });
    }
    (ip.saddr, ip.daddr, ip.protocol, ports)
}

/// A new connection recorded: both sides' deciding rules and where the route sends it
/// (`to`: `NO_PORT` for the host stack).
#[inline(never)]
pub fn opened(eni: &Eni, pkt: &Packet, conn: &Conn, to: u32) {
    let mut event = about(kind::OPEN, eni.port, pkt);
    event.peer_port = to;
    event.rule = conn.rule;
    event.peer_rule = conn.peer_rule;
    event.table = eni.route_table;
    event.flags = u8::from(to == NO_PORT);
    write(&mut event);
}

/// An established connection's verdict at `key`'s side flipped with the epoch (`accept`: it is
/// now allowed, by `rule`).
#[inline(never)]
pub fn rejudged(key: &CtKey, from: u8, accept: bool, rule: u32) {
    let (local_port, remote_port) = ((key.ports >> 16) as u16, key.ports as u16);
    let proto = key.ip_proto() as u8;
    let has_ports = proto == 6 || proto == 17;
    let (saddr, daddr, sport, dport, dir) = if from == origin::OUT {
        (key.local, key.remote, local_port, remote_port, direction::EGRESS)
    } else {
        (key.remote, key.local, remote_port, local_port, direction::INGRESS)
    };
    let mut event = MonEvent {
        kind: kind::POLICY,
        direction: dir as u8,
        proto,
        flags: u8::from(accept),
        port: key.port,
        peer_port: NO_PORT,
        saddr,
        daddr,
        sport: if has_ports { sport } else { 0 },
        dport: if has_ports { dport } else { 0 },
        rule,
        peer_rule: NO_RULE,
        ..MonEvent::default()
    };
    write(&mut event);
}

/// The data path answered `port`'s datagram (from `saddr` to `daddr`) with an ICMP error:
/// `what` is type << 8 | code.
#[inline(never)]
pub fn icmp_sent(port: u32, saddr: u32, daddr: u32, proto: u8, what: u32) {
    let mut event = MonEvent {
        kind: kind::ICMP,
        proto,
        reason: what,
        port,
        peer_port: NO_PORT,
        saddr,
        daddr,
        rule: NO_RULE,
        peer_rule: NO_RULE,
        ..MonEvent::default()
    };
    write(&mut event);
}
