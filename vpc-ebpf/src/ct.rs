//! Connection tracking (see `vpc_common::ct` for what it means). A packet is judged in two
//! halves: `send` (the sender's own verdict, and where the packet goes) and `receive` (the
//! receiving side's verdict); `commit` then records a new connection at both sides, within
//! their limits. An established packet finds everything in the sender's entry: its own
//! verdict, the route and the receiving side's verdict, cached for the configuration epoch.

use aya_ebpf::{
    bindings::{BPF_EXIST, BPF_NOEXIST},
    helpers::generated::bpf_ktime_get_coarse_ns,
};
use vpc_common::{
    CONFIG_EPOCH, CtEntry, CtKey, DropReason, Port,
    ct::{NO_RULE, PROTO_TCP, PROTO_UDP, TICK_SHIFT, flag, next_state, origin, peer_key, reopens, route, timeout},
    event,
    flowlog::PORT_FLOW_LOG,
    sg::{PORT_OPEN, PortGroups, direction},
};

pub use crate::packet::Packet;
use crate::{
    flowlog::Sides,
    maps::{CONFIG, CONNTRACK, CT_CLOSED, CT_OPENED, PORT_GROUPS, SCRATCH, SG_RULE_STATS},
    route::Decision,
    sg, stats,
};

/// The current configuration epoch.
#[inline(always)]
pub fn epoch() -> u32 {
    CONFIG.get(CONFIG_EPOCH).copied().unwrap_or(0) as u32
}

/// The connection clock (`vpc_common::ct::TICK_SHIFT`).
#[inline(always)]
pub fn now() -> u32 {
    // SAFETY: a helper without arguments.
    (unsafe { bpf_ktime_get_coarse_ns() } >> TICK_SHIFT) as u32
}

/// Per-packet working state, in a per-CPU map slot (`SCRATCH`): the packet and room to build
/// an entry. It does not fit the 512-byte BPF stack beside the call chain. (What the halves
/// decide, `Conn`, stays on the stack: it holds a pointer, which a map value cannot.)
pub struct Scratch {
    pub pkt: Packet,
    pub entry: CtEntry,
    /// A frame from the overlay: who sent it and where it goes (`tunnel::arrival`).
    pub arrival: Arrival,
}

/// The sender (an ENI on another host) and the receiver of a frame from the overlay.
pub struct Arrival {
    pub from: vpc_common::Eni,
    pub to: Port,
}

/// This CPU's scratch slot.
#[inline(always)]
pub fn scratch() -> Result<&'static mut Scratch, DropReason> {
    let slot = SCRATCH.get_ptr_mut(0).ok_or(DropReason::Malformed)?;
    // SAFETY: per-CPU slot, only this CPU uses it while the program runs (XDP does not nest).
    Ok(unsafe { &mut *slot })
}

/// Where `send` sends the packet: to `Conn::hop` (`route::DELIVER`), to the host stack
/// (`route::HOST`), or nowhere: its TTL runs out here.
pub const EXPIRED: u8 = 3;

/// What the sender half leaves for the receiver half and the commit. Only plain values: a
/// map-value pointer kept in a struct on the stack loses its type for the verifier whenever
/// LLVM initialises the struct with a memset, so the halves look the sender's entry up again
/// in the (rare) cases they write to it.
pub struct Conn {
    /// Where the packet goes when `send` says DELIVER.
    pub hop: Port,
    /// The sender has a live entry for the packet's connection.
    pub live: bool,
    /// ...which caches the receiving side's verdict for this route: its rule and `PEER_*` flags.
    pub cached: bool,
    pub cached_rule: u32,
    pub cached_flags: u8,
    /// Without a live entry: the sender's entry exists but is stale or re-opened (overwritten,
    /// not charged again).
    pub stale: bool,
    /// Without a live entry: the sender's rule, flags (`flag::LOG`) and connection limit.
    pub rule: u32,
    pub flags: u8,
    pub limit: u32,
    /// An ICMP error the sender had received the quoted packet of.
    pub related: bool,
    /// The receiving side's verdict: its rule, flags (`ALLOWED`, `LOG`), and whether its entry
    /// must be made (`peer_new`; `peer_stale`: overwritten) within `peer_limit`.
    pub peer_rule: u32,
    pub peer_flags: u8,
    pub peer_new: bool,
    pub peer_stale: bool,
    pub peer_limit: u32,
    /// The sides flow logs capture, counted once the packet's fate is known.
    pub log: Sides,
    /// The rule of a security-group verdict that dropped the packet (`NO_RULE`: no rule accepted).
    pub deny_rule: u32,
    /// `commit` recorded a new connection.
    pub opened: bool,
}

impl Conn {
    pub const fn new() -> Conn {
        Conn {
            hop: Port { port: 0, mtu: 0, flags: 0, mac: [0; 6], gw_mac: [0; 6] },
            live: false,
            cached: false,
            cached_rule: NO_RULE,
            cached_flags: 0,
            stale: false,
            rule: NO_RULE,
            flags: 0,
            limit: 0,
            related: false,
            peer_rule: NO_RULE,
            peer_flags: 0,
            peer_new: false,
            peer_stale: false,
            peer_limit: 0,
            log: Sides::none(),
            deny_rule: NO_RULE,
            opened: false,
        }
    }
}

/// Credit a packet to the rule that decided a side's verdict.
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

#[inline(always)]
fn log_flag(groups: Option<&PortGroups>) -> u8 {
    if groups.is_some_and(|g| g.flags & PORT_FLOW_LOG != 0) { flag::LOG } else { 0 }
}

/// Note `port`'s side of the packet (its verdict, by `rule`) for flow logs when its flow log
/// captures it.
#[inline(always)]
fn log(sides: &mut Sides, flags: u8, port: u32, received: bool, accepted: bool, rule: u32) {
    if flags & flag::LOG != 0 {
        sides.note(port, received, accepted, rule);
    }
}

/// A side's verdict: accepted, and the deciding rule's counter. A port without groups is open
/// only when it is a gateway: an ENI's missing entry (a configuration being written) denies.
#[inline(always)]
fn verdict_of(groups: Option<&PortGroups>, dir: usize, proto: u32, peer: u32, dport: Option<u16>, vouched: bool) -> sg::Verdict {
    match groups {
        Some(groups) if groups.count > 0 => {
            stats::event(event::SG_CLASSIFIED);
            sg::decide(groups, dir, proto, peer, dport, vouched)
        }
        Some(groups) if groups.flags & PORT_OPEN != 0 => sg::Verdict { accept: true, rule: NO_RULE },
        _ => sg::Verdict { accept: false, rule: NO_RULE },
    }
}

/// The rules' verdict on `pkt` as the first packet of a connection, at the side that sends it
/// (`received == false`) or receives it.
#[inline(always)]
fn judge(groups: Option<&PortGroups>, received: bool, pkt: &Packet) -> sg::Verdict {
    if received {
        verdict_of(groups, direction::INGRESS, pkt.proto, pkt.saddr, pkt.dport, pkt.vouched)
    } else {
        verdict_of(groups, direction::EGRESS, pkt.proto, pkt.daddr, pkt.dport, true)
    }
}

/// The rules' verdict on an existing connection, from its entry's side and orientation (and
/// whether the side that opened it was vouched for).
#[inline(always)]
fn recheck(groups: Option<&PortGroups>, entry: &CtEntry, key: &CtKey) -> sg::Verdict {
    let proto = key.ip_proto();
    // The destination port of the first direction: the remote's for egress, ours for ingress.
    let dport = |port: u16| if proto == PROTO_TCP || proto == PROTO_UDP { Some(port) } else { None };
    if entry.origin == origin::OUT {
        verdict_of(groups, direction::EGRESS, proto, key.remote, dport(key.remote_port()), true)
    } else {
        let vouched = entry.flags & flag::UNVOUCHED == 0;
        verdict_of(groups, direction::INGRESS, proto, key.remote, dport(key.local_port()), vouched)
    }
}

/// Bring an entry's own verdict up to the epoch (the rules may have changed since).
#[inline(always)]
fn refresh(entry: &mut CtEntry, key: &CtKey, epoch: u32) {
    if entry.verdict_epoch == epoch {
        return;
    }
    stats::event(event::SG_RECHECKED);
    let groups = PORT_GROUPS.get(key.port);
    let verdict = recheck(groups, entry, key);
    if entry.allowed() != verdict.accept {
        crate::monitor::rejudged(key, entry.origin, verdict.accept, verdict.rule);
    }
    entry.rule = verdict.rule;
    entry.flags = (entry.flags & !(flag::ALLOWED | flag::LOG)) | log_flag(groups) | if verdict.accept { flag::ALLOWED } else { 0 };
    entry.verdict_epoch = epoch;
}

/// Whether the entry's connection is still alive: its side or the other side (the one it
/// delivers to) was heard from within the state's timeout.
#[inline(always)]
fn alive(entry: &CtEntry, key: &CtKey, now: u32) -> bool {
    let limit = timeout(key.proto, entry.state);
    if now.wrapping_sub(entry.last_seen) <= limit {
        return true;
    }
    if entry.route == route::HOST {
        return false;
    }
    // SAFETY: read at once.
    match unsafe { CONNTRACK.get(&peer_key(key, entry.hop.port)) } {
        Some(peer) => now.wrapping_sub(peer.last_seen) <= limit,
        None => false,
    }
}

/// A live allowed entry at `key`, its verdict brought up to the epoch (for ICMP errors: was the
/// quoted packet part of a connection of the port).
#[inline(always)]
fn holds(key: &CtKey, pkt: &Packet) -> bool {
    match CONNTRACK.get_ptr_mut(key) {
        Some(found) => {
            // SAFETY: a live element.
            let entry = unsafe { &mut *found };
            // A dead connection is not re-judged (nor reported as such).
            if !alive(entry, key, pkt.now) {
                return false;
            }
            refresh(entry, key, pkt.epoch);
            entry.allowed()
        }
        None => false,
    }
}

/// The sender half: `port`'s own verdict on `pkt` (its egress rules, or its connection's
/// verdict), then where the packet goes (the cached decision, or `resolve`).
#[inline(never)]
pub fn send(port: u32, table: u32, pkt: &Packet, conn: &mut Conn) -> Result<u8, DropReason> {
    if pkt.icmp_error {
        return send_error(port, table, pkt, conn);
    }
    let key = CtKey::sent(port, pkt.saddr, pkt.daddr, pkt.ports, pkt.key_proto());
    if let Some(found) = CONNTRACK.get_ptr_mut(&key) {
        // SAFETY: a live element; racing CPUs only write small fields whose races are benign.
        let entry = unsafe { &mut *found };
        if alive(entry, &key, pkt.now) && !(pkt.opens && reopens(pkt.proto, entry.state, pkt.tcp_flags)) {
            return established(entry, &key, table, pkt, conn);
        }
        stats::event(event::CT_EXPIRED);
        conn.stale = true;
    }
    // No live connection: the rules judge the packet as a first packet.
    let groups = PORT_GROUPS.get(port);
    let verdict = judge(groups, false, pkt);
    count_rule(verdict.rule, pkt.bytes);
    conn.flags = log_flag(groups);
    log(&mut conn.log, conn.flags, port, false, verdict.accept, verdict.rule);
    if !verdict.accept {
        conn.deny_rule = verdict.rule;
        return Err(DropReason::SgEgress);
    }
    conn.rule = verdict.rule;
    conn.limit = groups.map_or(0, |g| g.ct_limit);
    stats::event(event::FLOW_CACHE_MISS);
    resolve(table, pkt, conn)
}

/// `send`'s route table for a packet from the overlay: the sending host resolved the route,
/// whose target the caller put in `conn.hop` (route tables are numbered from 1).
pub const ARRIVED: u32 = 0;

/// The route of `pkt` as `send`'s code, the target in `conn.hop`.
#[inline(always)]
fn resolve(table: u32, pkt: &Packet, conn: &mut Conn) -> Result<u8, DropReason> {
    if table == ARRIVED {
        return Ok(route::DELIVER);
    }
    match crate::route::resolve(table, pkt.daddr, pkt.ttl, pkt.in_vpc, || {
        vpc_common::flow_hash(pkt.saddr, pkt.daddr, pkt.ports, pkt.proto)
    })? {
        Decision::Deliver(port) => {
            conn.hop = port;
            Ok(route::DELIVER)
        }
        Decision::ToHost => Ok(route::HOST),
        Decision::Expired => Ok(EXPIRED),
    }
}

/// A packet of a live connection of the sender.
#[inline(always)]
fn established(entry: &mut CtEntry, key: &CtKey, table: u32, pkt: &Packet, conn: &mut Conn) -> Result<u8, DropReason> {
    refresh(entry, key, pkt.epoch);
    count_rule(entry.rule, pkt.bytes);
    log(&mut conn.log, entry.flags, key.port, false, entry.allowed(), entry.rule);
    if !entry.allowed() {
        conn.deny_rule = entry.rule;
        return Err(DropReason::SgEgress);
    }
    // From the overlay, a cached hop other than the one the sending host chose (its ECMP moved
    // the flow) is not the route.
    let cached = entry.route_epoch == pkt.epoch && entry.route != route::NONE && (table != ARRIVED || entry.hop.port == conn.hop.port);
    if cached && entry.route == route::DELIVER && entry.flags & flag::PEER_ALLOWED == 0 {
        // The other side denies the connection: its packets do not keep it alive.
        conn.live = true;
        conn.cached = true;
        conn.cached_rule = entry.peer_rule;
        conn.cached_flags = entry.flags;
        conn.hop = entry.hop;
        return Ok(route::DELIVER);
    }
    entry.last_seen = pkt.now;
    entry.packets += 1;
    entry.bytes += pkt.bytes;
    let state = next_state(pkt.proto, entry.state, pkt.tcp_flags, entry.origin == origin::OUT);
    if state != entry.state {
        // A connection's state is the same at both sides (its timeouts, whether a SYN reopens it).
        entry.state = state;
        if entry.route != route::HOST
            && let Some(peer) = CONNTRACK.get_ptr_mut(&peer_key(key, entry.hop.port))
        {
            // SAFETY: a live element.
            unsafe { (*peer).state = state };
        }
    }
    conn.live = true;
    if cached {
        stats::event(event::FLOW_CACHE_HIT);
        conn.cached = true;
        conn.cached_rule = entry.peer_rule;
        conn.cached_flags = entry.flags;
        conn.hop = entry.hop;
        return Ok(entry.route);
    }
    stats::event(event::FLOW_CACHE_MISS);
    let to = resolve(table, pkt, conn)?;
    if to == route::HOST {
        entry.route = route::HOST;
        entry.route_epoch = pkt.epoch;
        conn.cached = true;
    }
    Ok(to)
}

/// An ICMP error: it never opens or refreshes a connection. It passes the sender's side as
/// related when the sender had received the packet it quotes (a third party never has), or
/// else by the sender's rules.
#[inline(always)]
fn send_error(port: u32, table: u32, pkt: &Packet, conn: &mut Conn) -> Result<u8, DropReason> {
    let groups = PORT_GROUPS.get(port);
    if let Some(q) = pkt.quoted
        && holds(&CtKey::received(port, q.saddr, q.daddr, q.ports, q.proto), pkt)
    {
        stats::event(event::CT_RELATED);
        conn.related = true;
        log(&mut conn.log, log_flag(groups), port, false, true, NO_RULE);
    } else {
        send_stateless(port, pkt, conn)?;
    }
    resolve(table, pkt, conn)
}

/// A packet judged by `port`'s egress rules alone, with no connection (multicast: a copy per
/// member, each judged by the member's ingress rules alone).
#[inline(always)]
pub fn send_stateless(port: u32, pkt: &Packet, conn: &mut Conn) -> Result<(), DropReason> {
    let groups = PORT_GROUPS.get(port);
    let verdict = judge(groups, false, pkt);
    count_rule(verdict.rule, pkt.bytes);
    log(&mut conn.log, log_flag(groups), port, false, verdict.accept, verdict.rule);
    if verdict.accept {
        return Ok(());
    }
    conn.deny_rule = verdict.rule;
    Err(DropReason::SgEgress)
}

/// The receiver half: the verdict of the side `to` delivers to.
#[inline(never)]
pub fn receive(from: u32, to: &Port, pkt: &Packet, conn: &mut Conn) -> Result<(), DropReason> {
    if conn.cached {
        count_rule(conn.cached_rule, pkt.bytes);
        let accepted = conn.cached_flags & flag::PEER_ALLOWED != 0;
        let flags = if conn.cached_flags & flag::PEER_LOG != 0 { flag::LOG } else { 0 };
        log(&mut conn.log, flags, to.port, true, accepted, conn.cached_rule);
        if accepted {
            return Ok(());
        }
        conn.deny_rule = conn.cached_rule;
        return Err(DropReason::SgIngress);
    }
    let groups = PORT_GROUPS.get(to.port);
    let flags = log_flag(groups);
    let peer = CtKey::received(to.port, pkt.saddr, pkt.daddr, pkt.ports, pkt.key_proto());
    if pkt.icmp_error {
        // Related only when the receiver sent the quoted packet and the sender had received it.
        if conn.related
            && let Some(q) = pkt.quoted
            && holds(&CtKey::sent(to.port, q.saddr, q.daddr, q.ports, q.proto), pkt)
        {
            stats::event(event::CT_RELATED);
            log(&mut conn.log, flags, to.port, true, true, NO_RULE);
            return Ok(());
        }
    } else if conn.live {
        // A connection of the sender whose receiving side is not cached (its first packet to
        // this side, or a new epoch): that side's own entry, if it has one, says.
        if let Some(found) = CONNTRACK.get_ptr_mut(&peer) {
            // SAFETY: a live element.
            let entry = unsafe { &mut *found };
            if alive(entry, &peer, pkt.now) {
                refresh(entry, &peer, pkt.epoch);
                conn.peer_rule = entry.rule;
                conn.peer_flags = entry.flags & (flag::ALLOWED | flag::LOG);
                return finish_receive(from, to, pkt, conn);
            }
            conn.peer_stale = true;
        }
        conn.peer_new = true;
    } else if pkt.opens {
        // A new connection: the receiving side's entry is made afresh (overwritten if stale).
        // SAFETY: read at once.
        conn.peer_stale = unsafe { CONNTRACK.get(&peer) }.is_some();
        conn.peer_new = true;
    }
    let verdict = judge(groups, true, pkt);
    conn.peer_rule = verdict.rule;
    conn.peer_flags = flags | if verdict.accept { flag::ALLOWED } else { 0 };
    conn.peer_limit = groups.map_or(0, |g| g.ct_limit);
    finish_receive(from, to, pkt, conn)
}

#[inline(always)]
fn finish_receive(from: u32, to: &Port, pkt: &Packet, conn: &mut Conn) -> Result<(), DropReason> {
    count_rule(conn.peer_rule, pkt.bytes);
    let accepted = conn.peer_flags & flag::ALLOWED != 0;
    log(&mut conn.log, conn.peer_flags, to.port, true, accepted, conn.peer_rule);
    if conn.live && !pkt.icmp_error && !(accepted && conn.peer_new) {
        // Cache the receiving side's verdict in the sender's entry (a side still to be made is
        // cached once `commit` made it).
        cache(&sender_key(from, pkt), to, conn.peer_rule, conn.peer_flags, pkt.epoch);
    }
    if accepted {
        return Ok(());
    }
    conn.deny_rule = conn.peer_rule;
    Err(DropReason::SgIngress)
}

/// The key of the sender's entry for `pkt`.
#[inline(always)]
fn sender_key(from: u32, pkt: &Packet) -> CtKey {
    CtKey::sent(from, pkt.saddr, pkt.daddr, pkt.ports, pkt.key_proto())
}

#[inline(always)]
fn cache(key: &CtKey, to: &Port, rule: u32, flags: u8, epoch: u32) {
    let Some(entry) = CONNTRACK.get_ptr_mut(key) else { return };
    // SAFETY: a live element.
    let entry = unsafe { &mut *entry };
    entry.hop = *to;
    entry.route = route::DELIVER;
    entry.peer_rule = rule;
    let peer =
        (if flags & flag::ALLOWED != 0 { flag::PEER_ALLOWED } else { 0 }) | (if flags & flag::LOG != 0 { flag::PEER_LOG } else { 0 });
    entry.flags = (entry.flags & !(flag::PEER_ALLOWED | flag::PEER_LOG)) | peer;
    entry.route_epoch = epoch;
}

/// Take one of `port`'s connection-table slots (its limit 0: none). Exact under concurrency:
/// the slot is taken first and given back when that went past the limit.
#[inline(always)]
fn charge(port: u32, limit: u32) -> Result<(), DropReason> {
    let opened = CT_OPENED.get_ptr_mut(port).ok_or(DropReason::ConntrackFull)?;
    let closed = CT_CLOSED.get(port).copied().unwrap_or(0);
    // SAFETY: a slot of an array map; other CPUs add to it atomically too.
    let before = unsafe { fetch_add(opened, 1) };
    if limit != 0 && before.saturating_sub(closed) >= u64::from(limit) {
        uncharge(port);
        stats::ct_refused(port);
        return Err(DropReason::ConntrackLimit);
    }
    Ok(())
}

#[inline(always)]
fn uncharge(port: u32) {
    if let Some(opened) = CT_OPENED.get_ptr_mut(port) {
        // SAFETY: as in `charge`.
        unsafe { fetch_add(opened, u64::MAX) };
    }
}

/// Add `value` to `*at` atomically and return what was there (BPF_ATOMIC | BPF_ADD | BPF_FETCH,
/// kernel 5.12+). Written out: LLVM selects it only for CPU v3, where a Relaxed fetch-add
/// miscompiles to the add without fetch, and v3 code overruns the verifier on the TC program.
#[inline(always)]
unsafe fn fetch_add(at: *mut u64, value: u64) -> u64 {
    let mut v = value;
    // SAFETY: the caller's `at` is an 8-byte aligned u64 in a map value.
    unsafe {
        core::arch::asm!(
            "{v} = atomic_fetch_add((u64 *)({p} + 0), {v})",
            p = in(reg) at,
            v = inout(reg) v,
            options(nostack, preserves_flags),
        )
    };
    v
}

/// Write `key`'s entry (overwriting a stale one, `stale`; else a new key charged to its port).
#[inline(always)]
fn put(key: &CtKey, entry: &CtEntry, stale: bool, limit: u32) -> Result<(), DropReason> {
    // A stale entry is replaced in place (unless the sweeper deleted it meanwhile).
    if stale && CONNTRACK.insert(key, entry, u64::from(BPF_EXIST)).is_ok() {
        return Ok(());
    }
    charge(key.port, limit)?;
    if CONNTRACK.insert(key, entry, u64::from(BPF_NOEXIST)).is_err() {
        uncharge(key.port);
        return Err(DropReason::ConntrackFull);
    }
    stats::event(event::CT_CREATED);
    Ok(())
}

/// Record what `send` and `receive` decided for a packet about to be delivered to `to` (`None`:
/// to the host stack): a new connection gets an entry at both sides, a connection's new
/// receiving side gets its own. Refused beyond a side's connection limit or a full table.
#[inline(never)]
pub fn commit(from: u32, to: Option<&Port>, s: &mut Scratch, conn: &mut Conn) -> Result<(), DropReason> {
    let (pkt, e) = (&s.pkt, &mut s.entry);
    if !pkt.opens || pkt.icmp_error {
        return Ok(());
    }
    let key = CtKey::sent(from, pkt.saddr, pkt.daddr, pkt.ports, pkt.key_proto());
    let state = next_state(pkt.proto, vpc_common::ct::state::OPEN, pkt.tcp_flags, true);
    let fresh = !conn.live;
    if fresh {
        *e = CtEntry {
            packets: 1,
            bytes: pkt.bytes,
            last_seen: pkt.now,
            created: pkt.now,
            verdict_epoch: pkt.epoch,
            route_epoch: pkt.epoch,
            rule: conn.rule,
            peer_rule: conn.peer_rule,
            hop: Port::default(),
            route: route::HOST,
            state,
            origin: origin::OUT,
            flags: flag::ALLOWED | conn.flags,
        };
        if let Some(to) = to {
            e.hop = *to;
            e.route = route::DELIVER;
            e.flags |= flag::PEER_ALLOWED | if conn.peer_flags & flag::LOG != 0 { flag::PEER_LOG } else { 0 };
        }
        put(&key, e, conn.stale, conn.limit)?;
        conn.opened = true;
    }
    let Some(to) = to else { return Ok(()) };
    if !conn.peer_new {
        return Ok(());
    }
    let peer = CtKey::received(to.port, pkt.saddr, pkt.daddr, pkt.ports, pkt.key_proto());
    if peer == key {
        // A port's packet to itself with symmetric ports: its one entry is both sides.
        return Ok(());
    }
    *e = CtEntry {
        packets: 0,
        bytes: 0,
        last_seen: pkt.now,
        created: pkt.now,
        verdict_epoch: pkt.epoch,
        route_epoch: 0,
        rule: conn.peer_rule,
        peer_rule: NO_RULE,
        // The side it came from: whose entry tells whether the connection is alive.
        hop: Port { port: from, ..Port::default() },
        route: route::NONE,
        state,
        origin: origin::IN,
        flags: (conn.peer_flags & (flag::ALLOWED | flag::LOG)) | if pkt.vouched { 0 } else { flag::UNVOUCHED },
    };
    if let Err(reason) = put(&peer, e, conn.peer_stale, conn.peer_limit) {
        // Both sides or neither.
        if fresh && CONNTRACK.remove(&key).is_ok() {
            uncharge(from);
        }
        conn.opened = false;
        return Err(reason);
    }
    if !fresh {
        cache(&key, to, conn.peer_rule, conn.peer_flags, pkt.epoch);
    }
    Ok(())
}
