//! Connection tracking: the security-group verdict of a connection is taken on its first packet
//! (and again after a configuration change), then every packet of either direction is one hash
//! lookup. The sender's entry also caches the route decision, so an established packet skips
//! the route lookup too. Entries are per (port, connection), oriented from the port's side.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::generated::bpf_ktime_get_ns};
use vpc_common::{
    ct::{next_state, origin, reopens, route_verdict, timeout_ns, NO_RULE},
    flowlog::PORT_FLOW_LOG,
    event,
    sg::{direction, PortGroups},
    CtEntry, CtKey, DropReason, Port, CONFIG_EPOCH,
};

use crate::{
    maps::{CONFIG, CONNTRACK, PORT_GROUPS, SCRATCH, SG_RULE_STATS},
    route::Decision,
    sg, stats,
};

/// The fields of a packet conntrack and the security groups look at.
#[derive(Clone, Copy)]
pub struct Packet {
    pub saddr: u32,
    pub daddr: u32,
    pub ports: u32,
    pub proto: u32,
    pub dport: Option<u16>,
    pub tcp_flags: u8,
    /// IP bytes (total length): what flow logs and rule counters count.
    pub bytes: u64,
    /// For an ICMP error: the quoted packet's (saddr, daddr, ports, proto).
    pub quoted: Option<(u32, u32, u32, u32)>,
    /// The configuration epoch and the time, read once per packet.
    pub epoch: u64,
    pub now: u64,
}

/// The current configuration epoch.
#[inline(always)]
pub fn epoch() -> u64 {
    CONFIG.get(CONFIG_EPOCH).copied().unwrap_or(0)
}

#[inline(always)]
pub fn now() -> u64 {
    // SAFETY: a helper without arguments.
    unsafe { bpf_ktime_get_ns() }
}

#[inline(always)]
fn add(field: &mut u64, value: u64) {
    // SAFETY: the field lives in a map value for the program's run; other CPUs add concurrently.
    unsafe { core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(field, value) };
}

/// Credit a packet to the rule that decided its connection.
#[inline(always)]
fn count_rule(rule: u32, bytes: u64) {
    if rule == NO_RULE {
        return;
    }
    if let Some(counters) = SG_RULE_STATS.get_ptr_mut(rule) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe {
            (*counters).packets += 1;
            (*counters).bytes += bytes;
        }
    }
}

/// `track` let the packet pass.
pub const PASS: u32 = u32::MAX;

/// Pass `pkt` through the conntrack and security groups of `port`, the port sending it
/// (`received == false`: egress) or receiving it (ingress). Returns [`PASS`] or the drop reason;
/// `tracked` gets the connection's entry when there is one (related ICMP errors and the receive
/// side of ports without security groups are not tracked). Not inlined: one copy serves both
/// sides, which keeps the program within the BPF stack; the entry comes back through a plain
/// pointer because the verifier refuses pointers copied inside enums.
#[inline(never)]
pub fn track(port: u32, received: bool, pkt: &Packet, tracked: &mut *mut CtEntry) -> u32 {
    // One lookup of the port's groups serves the rules and the flow-log flag.
    let groups = PORT_GROUPS.get(port);
    let result = track_inner(port, groups, received, pkt);
    if groups.is_some_and(|g| g.flags & PORT_FLOW_LOG != 0) {
        crate::flowlog::count(port, u32::from(received), u32::from(result.is_ok()), pkt);
    }
    match result {
        Ok(Some(entry)) => {
            *tracked = entry;
            PASS
        }
        Ok(None) => PASS,
        Err(reason) => reason as u32,
    }
}

#[inline(always)]
fn track_inner(port: u32, groups: Option<&PortGroups>, received: bool, pkt: &Packet) -> Result<Option<*mut CtEntry>, DropReason> {
    let (epoch, now) = (pkt.epoch, pkt.now);
    let guarded = groups.is_some_and(|g| g.count > 0);
    if received && !guarded {
        return Ok(None);
    }
    let (dir, denied) = if received { (direction::INGRESS, DropReason::SgIngress) } else { (direction::EGRESS, DropReason::SgEgress) };
    if let Some(quoted) = pkt.quoted {
        // An ICMP error passes if the packet it quotes belongs to a connection of this port;
        // otherwise it is judged by the rules alone. Errors never open connections.
        if related(port, received, quoted, now) {
            stats::event(event::CT_RELATED);
            return Ok(None);
        }
        let verdict = judge(groups, dir, pkt, received);
        count_rule(verdict.rule, pkt.bytes);
        return if verdict.accept { Ok(None) } else { Err(denied) };
    }
    let key = if received {
        CtKey::received(port, pkt.saddr, pkt.daddr, pkt.ports, pkt.proto)
    } else {
        CtKey::sent(port, pkt.saddr, pkt.daddr, pkt.ports, pkt.proto)
    };
    let mut stale = false;
    if let Some(found) = CONNTRACK.get_ptr_mut(&key) {
        // SAFETY: a live element of the map; concurrent writers only touch counters atomically
        // and small fields whose races are benign.
        let entry = unsafe { &mut *found };
        let idle = now.saturating_sub(entry.last_seen_ns);
        if idle <= timeout_ns(pkt.proto, entry.state) && !reopens(pkt.proto, entry.state, pkt.tcp_flags) {
            let from_origin = (entry.origin == origin::IN) == received;
            if entry.sg_epoch != epoch {
                // The rules changed since the verdict: judge the connection's first direction again.
                stats::event(event::SG_RECHECKED);
                let verdict = recheck(groups, entry, &key);
                entry.allowed = u8::from(verdict.accept);
                entry.rule = verdict.rule;
                entry.sg_epoch = epoch;
            }
            count_rule(entry.rule, pkt.bytes);
            if entry.allowed == 0 {
                return Err(denied);
            }
            entry.last_seen_ns = now;
            entry.state = next_state(pkt.proto, entry.state, pkt.tcp_flags, from_origin);
            if received {
                add(&mut entry.in_packets, 1);
                add(&mut entry.in_bytes, pkt.bytes);
            } else {
                add(&mut entry.out_packets, 1);
                add(&mut entry.out_bytes, pkt.bytes);
            }
            return Ok(Some(found));
        }
        stats::event(event::CT_EXPIRED);
        stale = true;
    }
    // A first packet: the rules decide, and an accepted one opens a connection.
    let verdict = judge(groups, dir, pkt, received);
    count_rule(verdict.rule, pkt.bytes);
    if !verdict.accept {
        return Err(denied);
    }
    // The new entry is built in a per-CPU scratch slot: it does not fit the BPF stack beside
    // everything else.
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(denied)?;
    // SAFETY: per-CPU slot, only this CPU uses it while the program runs.
    let entry = unsafe { &mut *scratch };
    let (packets, bytes) = (1, pkt.bytes);
    entry.created_ns = now;
    entry.last_seen_ns = now;
    entry.sg_epoch = epoch;
    entry.route_epoch = 0;
    entry.out_packets = if received { 0 } else { packets };
    entry.out_bytes = if received { 0 } else { bytes };
    entry.in_packets = if received { packets } else { 0 };
    entry.in_bytes = if received { bytes } else { 0 };
    entry.route_port = Port::default();
    entry.route_reason = 0;
    entry.rule = verdict.rule;
    entry.route_verdict = route_verdict::NONE;
    entry.state = next_state(pkt.proto, vpc_common::ct::state::OPEN, pkt.tcp_flags, true);
    entry.origin = if received { origin::IN } else { origin::OUT };
    entry.allowed = 1;
    if CONNTRACK.insert(&key, entry, if stale { 0 } else { u64::from(BPF_NOEXIST) }).is_ok() && !stale {
        stats::event(event::CT_CREATED);
    }
    Ok(CONNTRACK.get_ptr_mut(&key))
}

/// The rules' verdict on a first packet (ports without groups accept everything).
#[inline(always)]
fn judge(groups: Option<&PortGroups>, dir: usize, pkt: &Packet, received: bool) -> sg::Verdict {
    match groups {
        Some(groups) if groups.count > 0 => {
            stats::event(event::SG_CLASSIFIED);
            let peer = if received { pkt.saddr } else { pkt.daddr };
            sg::decide(groups, dir, pkt.proto, peer, pkt.dport)
        }
        _ => sg::Verdict { accept: true, rule: NO_RULE },
    }
}

/// The rules' verdict on the first direction of an existing connection.
#[inline(always)]
fn recheck(groups: Option<&PortGroups>, entry: &CtEntry, key: &CtKey) -> sg::Verdict {
    let Some(groups) = groups.filter(|g| g.count > 0) else { return sg::Verdict { accept: true, rule: NO_RULE } };
    let proto = key.proto;
    // The destination port of the first direction: the remote's for egress, ours for ingress.
    let tcp_or_udp = proto == vpc_common::ct::PROTO_TCP || proto == vpc_common::ct::PROTO_UDP;
    let (dir, dport) = if entry.origin == origin::OUT {
        (direction::EGRESS, key.remote_port())
    } else {
        (direction::INGRESS, key.local_port())
    };
    // Fragments are tracked with ports 0 and judged without ports, as on their first packet.
    let dport = if tcp_or_udp && key.ports != 0 { Some(dport) } else { None };
    sg::decide(groups, dir, proto, key.remote, dport)
}

/// Whether the packet an ICMP error quotes belongs to an allowed connection of `port`: one the
/// port sent (for an error it receives) or received (for an error it sends).
#[inline(always)]
fn related(port: u32, received: bool, (saddr, daddr, ports, proto): (u32, u32, u32, u32), now: u64) -> bool {
    let key = if received { CtKey::sent(port, saddr, daddr, ports, proto) } else { CtKey::received(port, saddr, daddr, ports, proto) };
    // SAFETY: read at once; an LRU element may be recycled by another CPU.
    match unsafe { CONNTRACK.get(&key) } {
        Some(entry) => entry.allowed == 1 && now.saturating_sub(entry.last_seen_ns) <= timeout_ns(proto, entry.state),
        None => false,
    }
}

/// The route decision cached in the sender's entry (null: none), if taken in this epoch.
#[inline(always)]
pub fn cached_route(tracked: *mut CtEntry, epoch: u64) -> Option<Result<Decision, DropReason>> {
    if tracked.is_null() {
        return None;
    }
    // SAFETY: a live map element (see `track`).
    let entry = unsafe { &*tracked };
    if entry.route_epoch != epoch {
        return None;
    }
    match entry.route_verdict {
        route_verdict::DELIVER => Some(Ok(Decision::Deliver(entry.route_port))),
        route_verdict::HOST => Some(Ok(Decision::ToHost)),
        route_verdict::DROP => Some(Err(DropReason::from_u32(entry.route_reason).unwrap_or(DropReason::NoRoute))),
        _ => None,
    }
}

/// Remember `decided` in the sender's entry (null: none) for this epoch.
#[inline(always)]
pub fn cache_route(tracked: *mut CtEntry, epoch: u64, decided: &Result<Decision, DropReason>) {
    if tracked.is_null() {
        return;
    }
    // SAFETY: a live map element (see `track`).
    let entry = unsafe { &mut *tracked };
    match decided {
        Ok(Decision::Deliver(port)) => {
            entry.route_port = *port;
            entry.route_verdict = route_verdict::DELIVER;
        }
        Ok(Decision::ToHost) => entry.route_verdict = route_verdict::HOST,
        Err(reason) => {
            entry.route_reason = *reason as u32;
            entry.route_verdict = route_verdict::DROP;
        }
    }
    entry.route_epoch = epoch;
}
