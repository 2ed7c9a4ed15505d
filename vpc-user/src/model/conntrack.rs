//! Reference semantics of connection tracking and security groups, for the model: which packets
//! pass a port's security groups, given the connections seen so far (`vpc_common::ct` says what
//! an entry is). The data path (`vpc-ebpf/src/ct.rs`, `sg.rs`) must agree packet for packet; the
//! state machine, timeouts and the ICMP key are shared (`vpc_common::ct`). The model keeps no
//! clock: its connections never time out. What it does keep, as the data path does, is the
//! receiving side's verdict cached in the sender's entry for the configuration epoch: it is
//! part of what a packet sees (a side's entry made afresh later in the same epoch does not
//! change what the sender's connection cached).

use std::{collections::BTreeMap, net::Ipv4Addr};

use vpc_common::{
    CtKey, DropReason, addr_raw,
    ct::{PROTO_TCP, PROTO_UDP, next_state, origin, peer_key, reopens, state},
};

use super::{
    Eni, Vpc,
    ids::{Ids, intra_rule},
    security::{Direction, Verdict, candidates},
};

/// The fields of a packet conntrack and the security groups look at (as the data path reads them).
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    pub saddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    /// What the connection table keys the datagram by (`vpc-ebpf/src/packet.rs`).
    pub ports: u32,
    pub proto: u8,
    /// The ICMP tag of a query or reply (`vpc_common::ct::icmp_key`).
    pub tag: u8,
    /// The source is the sender's own address: rules naming a group may match it
    /// (`vpc_common::sg::UNVOUCHED`).
    pub vouched: bool,
    /// The destination port for port ranges: TCP and UDP, none otherwise.
    pub dport: Option<u16>,
    pub tcp_flags: u8,
    /// Whether it may open a connection (not ICMP replies, errors or other ICMP messages).
    pub opens: bool,
    /// An ICMP error, and the packet it quotes when that can be tied to a connection.
    pub icmp_error: bool,
    /// (source, destination, ports, key protocol).
    pub quoted: Option<(Ipv4Addr, Ipv4Addr, u32, u32)>,
    /// IP total length.
    pub bytes: u64,
}

impl Packet {
    /// The protocol the connection table keys the packet by.
    pub fn key_proto(&self) -> u32 {
        vpc_common::ct::key_proto(u32::from(self.proto), self.tag)
    }
}

/// A port as conntrack sees it: its number, its ENI (with the ENI's VPC) when it has security
/// groups -- gateways have none --, and its connection limit (0: none).
#[derive(Clone, Copy)]
pub struct Guarded<'a> {
    pub port: u32,
    pub eni: Option<(&'a Vpc, &'a Eni)>,
    pub limit: u32,
}

/// The receiving side's verdict as the sender's entry caches it for an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    Host,
    Deliver { accept: bool, rule: Option<u32> },
}

/// One side's entry of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub state: u8,
    pub origin: u8,
    /// The other side's port, whose entry shares the connection's state (the data path's
    /// `hop.port`); none once the entry's packets go to the host stack.
    pub hop: Option<u32>,
    /// What the entry caches, and for which epoch.
    pub cache: Option<(u64, Cache)>,
    /// What the entry's port sent.
    pub packets: u64,
    pub bytes: u64,
    /// The connection's first packet came from a source vouched for (see `Packet::vouched`);
    /// always for the side that sent it.
    pub vouched: bool,
}

/// The connections of every port, the datagrams whose fragments are in flight, and the
/// configuration epoch (bumped on every change, as the agent does after each sync).
#[derive(Debug, Clone)]
pub struct Conntrack {
    pub entries: BTreeMap<CtKey, Entry>,
    /// `FRAGS`' slots that were written (the others are all zero).
    pub frags: BTreeMap<u32, vpc_common::frag::FragSlot>,
    pub epoch: u64,
    /// Entries the table holds: a new one beyond is refused (`ConntrackFull`).
    pub capacity: usize,
}

impl Default for Conntrack {
    fn default() -> Self {
        Conntrack { entries: BTreeMap::new(), frags: BTreeMap::new(), epoch: 0, capacity: usize::MAX }
    }
}

/// What one side's check did, for `vpc trace` and the counters.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Rule counters credited with the packet (counter, bytes).
    pub rule_hits: Vec<(u32, u64)>,
    pub steps: Vec<String>,
    /// The port whose connection limit refused a new connection.
    pub refused: Option<u32>,
    /// The counter of the rule whose verdict dropped the packet (`ct::NO_RULE`: none accepted).
    pub deny_rule: Option<u32>,
    /// A new connection was recorded.
    pub opened: Option<Opened>,
}

/// A new connection as the monitoring event tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The receiving port (`monitor::NO_PORT`: the host stack).
    pub to: u32,
    /// The rules that decided each side (`ct::NO_RULE`: none did).
    pub rule: u32,
    pub peer_rule: u32,
}

impl Checked {
    /// `verdict`, noted as the one that dropped the packet when it did.
    pub fn verdict(&mut self, verdict: Verdict, reason: DropReason) -> Result<(), DropReason> {
        if verdict.accept {
            return Ok(());
        }
        self.deny_rule = Some(verdict.rule.unwrap_or(vpc_common::ct::NO_RULE));
        Err(reason)
    }
}

/// What the sender half decided, for the receiver half and the commit (the data path's `Conn`).
#[derive(Debug, Clone, Default)]
pub struct Conn {
    /// The sender's live entry.
    pub entry: Option<CtKey>,
    /// The sender's entry exists but is re-opened (overwritten, not charged again).
    pub stale: bool,
    /// The sender's verdict when it had no live entry.
    pub rule: Option<u32>,
    /// An ICMP error whose quoted packet the sender had received.
    pub related: bool,
    /// The receiving side: its verdict, and whether its entry must be made.
    pub peer: Option<Verdict>,
    pub peer_new: bool,
    pub peer_stale: bool,
}

fn raw(a: Ipv4Addr) -> u32 {
    addr_raw(a.octets())
}

/// The verdict of `eni`'s groups in `direction` for a packet of `proto` with `peer` as the other
/// end: the first matching rule of each group (in the data path's order), the lowest precedence
/// among groups, the earlier group on a tie; the default when none matches. Rules naming a group
/// (and the intra-group rule) match only a peer that is `vouched` for: the member itself, not a
/// packet carrying its address from a sender forwarding for others.
pub fn decide(
    vpc: &Vpc,
    eni: &Eni,
    ids: &Ids,
    direction: Direction,
    proto: u8,
    peer: Ipv4Addr,
    dport: Option<u16>,
    vouched: bool,
) -> (Verdict, String) {
    let members = |group: &str| if vouched { vpc.members(group) } else { Vec::new() };
    let mut best: Option<(u16, bool, u32, String)> = None;
    for name in &eni.security_groups {
        let Some(group) = vpc.security_group(name) else { continue };
        let found = candidates(group, direction).into_iter().find(|c| match c.rule {
            Some(rule) => rule.matches(proto, dport, peer, &members),
            None => members(&group.name).contains(&peer),
        });
        if let Some(c) = found {
            let (counter, what) = match c.rule {
                Some(rule) => (ids.sg_rule(&rule.id), format!("rule {} of {} (priority {})", rule.id, group.name, rule.priority)),
                None => (ids.sg_rule(&intra_rule(&group.id)), format!("{}'s intra-group policy", group.name)),
            };
            if best.as_ref().is_none_or(|b| c.precedence < b.0) {
                best = Some((c.precedence, c.accept, counter, what));
            }
        }
    }
    match best {
        Some((_, accept, counter, what)) => {
            (Verdict { accept, rule: Some(counter) }, format!("{} by {what}", if accept { "accepted" } else { "dropped" }))
        }
        None => {
            let accept = direction == Direction::Egress;
            (Verdict { accept, rule: None }, format!("{} by default (no rule matched)", if accept { "accepted" } else { "dropped" }))
        }
    }
}

fn who<'a>(side: &Guarded<'a>) -> &'a str {
    side.eni.map(|(_, e)| e.name.as_str()).unwrap_or("gateway")
}

fn count(rule: Option<u32>, pkt: &Packet, checked: &mut Checked) {
    if let Some(rule) = rule {
        checked.rule_hits.push((rule, pkt.bytes));
    }
}

/// The rules' verdict on `pkt` as a connection's first packet, at the side that sends it
/// (`received == false`) or receives it.
fn judge(side: Guarded<'_>, received: bool, pkt: &Packet, ids: &Ids, checked: &mut Checked) -> Verdict {
    let Some((vpc, eni)) = side.eni else { return Verdict { accept: true, rule: None } };
    let (direction, peer, verb) =
        if received { (Direction::Ingress, pkt.saddr, "ingress") } else { (Direction::Egress, pkt.daddr, "egress") };
    let vouched = !received || pkt.vouched;
    let (verdict, mut why) = decide(vpc, eni, ids, direction, pkt.proto, peer, pkt.dport, vouched);
    if !vouched {
        why.push_str(" (from a sender forwarding for others: rules naming a group do not apply)");
    }
    checked.steps.push(format!("security groups of {} ({verb}): {why}", eni.name));
    verdict
}

/// The rules' verdict on an existing connection, from its entry's side and orientation (the
/// data path stores it and takes it again when the epoch changes: the same thing).
fn recheck(side: Guarded<'_>, entry: &Entry, key: &CtKey, ids: &Ids) -> Verdict {
    let Some((vpc, eni)) = side.eni else { return Verdict { accept: true, rule: None } };
    let proto = key.ip_proto();
    let tcp_or_udp = proto == PROTO_TCP || proto == PROTO_UDP;
    let (direction, dport) =
        if entry.origin == origin::OUT { (Direction::Egress, key.remote_port()) } else { (Direction::Ingress, key.local_port()) };
    let peer = Ipv4Addr::from(vpc_common::addr_from_raw(key.remote));
    decide(vpc, eni, ids, direction, proto as u8, peer, tcp_or_udp.then_some(dport), entry.vouched || entry.origin == origin::OUT).0
}

impl Conntrack {
    /// The sender half's verdict: `side`'s connection, or its egress rules. `Ok(true)` when
    /// its entry caches that the packet goes to the host stack. (The route itself is the
    /// caller's; the data path caches it, which changes no outcome.)
    pub fn send(&mut self, side: Guarded<'_>, pkt: &Packet, ids: &Ids, checked: &mut Checked, conn: &mut Conn) -> Result<(), DropReason> {
        let who = who(&side);
        if pkt.icmp_error {
            // An error passes the sender's side as related when the sender had received the
            // packet it quotes; never opens or refreshes a connection.
            let related = pkt.quoted.is_some_and(|(s, d, ports, proto)| {
                let key = CtKey::received(side.port, raw(s), raw(d), ports, proto);
                self.holds(&key, side, ids)
            });
            if related {
                checked.steps.push(format!("{who} (egress): ICMP error about a packet it received"));
                conn.related = true;
                return Ok(());
            }
            let verdict = judge(side, false, pkt, ids, checked);
            count(verdict.rule, pkt, checked);
            return checked.verdict(verdict, DropReason::SgEgress);
        }
        let key = CtKey::sent(side.port, raw(pkt.saddr), raw(pkt.daddr), pkt.ports, pkt.key_proto());
        if let Some(entry) = self.entries.get(&key) {
            if !(pkt.opens && reopens(key.proto, entry.state, pkt.tcp_flags)) {
                let verdict = recheck(side, entry, &key, ids);
                count(verdict.rule, pkt, checked);
                if !verdict.accept {
                    checked.steps.push(format!("{who} (egress): its connection is denied by the rules now"));
                    return checked.verdict(verdict, DropReason::SgEgress);
                }
                checked.steps.push(format!("{who} (egress): established connection"));
                conn.entry = Some(key);
                if matches!(self.cached(conn), Some(Cache::Deliver { accept: false, .. })) {
                    // The other side denies it: its packets neither count nor change its state.
                    return Ok(());
                }
                let entry = self.entries.get_mut(&key).expect("just found");
                entry.packets += 1;
                entry.bytes += pkt.bytes;
                let new = next_state(key.proto, entry.state, pkt.tcp_flags, entry.origin == origin::OUT);
                if new != entry.state {
                    // Both sides of a connection share its state.
                    entry.state = new;
                    if let Some(hop) = entry.hop
                        && let Some(other) = self.entries.get_mut(&peer_key(&key, hop))
                    {
                        other.state = new;
                    }
                }
                conn.entry = Some(key);
                return Ok(());
            }
            conn.stale = true;
        }
        let verdict = judge(side, false, pkt, ids, checked);
        count(verdict.rule, pkt, checked);
        checked.verdict(verdict, DropReason::SgEgress)?;
        conn.rule = verdict.rule;
        Ok(())
    }

    /// What the sender's live entry caches for this epoch, if anything.
    pub fn cached(&self, conn: &Conn) -> Option<Cache> {
        let entry = self.entries.get(conn.entry.as_ref()?)?;
        entry.cache.filter(|(epoch, _)| *epoch == self.epoch).map(|(_, c)| c)
    }

    /// The sender's live entry learns that its packets go to the host stack.
    pub fn cache_host(&mut self, conn: &Conn) {
        let epoch = self.epoch;
        if let Some(entry) = conn.entry.as_ref().and_then(|k| self.entries.get_mut(k)) {
            entry.cache = Some((epoch, Cache::Host));
            entry.hop = None;
        }
    }

    fn cache_deliver(&mut self, key: &CtKey, to: u32, verdict: Verdict) {
        let epoch = self.epoch;
        if let Some(entry) = self.entries.get_mut(key) {
            entry.cache = Some((epoch, Cache::Deliver { accept: verdict.accept, rule: verdict.rule }));
            entry.hop = Some(to);
        }
    }

    /// The receiver half: the verdict of the side the packet is delivered to.
    pub fn receive(
        &mut self,
        side: Guarded<'_>,
        pkt: &Packet,
        ids: &Ids,
        checked: &mut Checked,
        conn: &mut Conn,
    ) -> Result<(), DropReason> {
        let who = who(&side);
        if let Some(Cache::Deliver { accept, rule }) = self.cached(conn) {
            count(rule, pkt, checked);
            checked.steps.push(format!("{who} (ingress): {} (cached for this connection)", if accept { "accepted" } else { "dropped" }));
            return checked.verdict(Verdict { accept, rule }, DropReason::SgIngress);
        }
        let key = CtKey::received(side.port, raw(pkt.saddr), raw(pkt.daddr), pkt.ports, pkt.key_proto());
        if pkt.icmp_error {
            let related = conn.related
                && pkt.quoted.is_some_and(|(s, d, ports, proto)| {
                    let key = CtKey::sent(side.port, raw(s), raw(d), ports, proto);
                    self.holds(&key, side, ids)
                });
            if related {
                checked.steps.push(format!("{who} (ingress): ICMP error about its connection, from the connection's other side"));
                return Ok(());
            }
        } else if let Some(sender) = conn.entry {
            // A connection of the sender not cached for this side: this side's own entry says.
            if let Some(entry) = self.entries.get(&key) {
                let verdict = recheck(side, entry, &key, ids);
                count(verdict.rule, pkt, checked);
                checked
                    .steps
                    .push(format!("{who} (ingress): its side of the connection is {}", if verdict.accept { "allowed" } else { "denied" }));
                self.cache_deliver(&sender, side.port, verdict);
                return checked.verdict(verdict, DropReason::SgIngress);
            }
            conn.peer_new = true;
        } else if pkt.opens {
            conn.peer_stale = self.entries.contains_key(&key);
            conn.peer_new = true;
        }
        let verdict = judge(side, true, pkt, ids, checked);
        count(verdict.rule, pkt, checked);
        conn.peer = Some(verdict);
        if let Some(sender) = conn.entry
            && !pkt.icmp_error
            && !verdict.accept
        {
            // A denial is cached at once; an acceptance once `commit` made the side's entry.
            self.cache_deliver(&sender, side.port, verdict);
        }
        checked.verdict(verdict, DropReason::SgIngress)
    }

    /// A live allowed entry at `key` (always live: no clock).
    fn holds(&self, key: &CtKey, side: Guarded<'_>, ids: &Ids) -> bool {
        self.entries.get(key).is_some_and(|e| recheck(side, e, key, ids).accept)
    }

    /// Entries charged to `port`.
    fn held(&self, port: u32) -> usize {
        self.entries.keys().filter(|k| k.port == port).count()
    }

    /// Write `key`'s entry: in place of a re-opened one (`stale`), or as a new entry within its
    /// port's `limit` and the table's capacity.
    fn put(&mut self, key: CtKey, entry: Entry, stale: bool, limit: u32, checked: &mut Checked) -> Result<(), DropReason> {
        if stale && self.entries.contains_key(&key) {
            self.entries.insert(key, entry);
            return Ok(());
        }
        if limit != 0 && self.held(key.port) >= limit as usize {
            checked.refused = Some(key.port);
            return Err(DropReason::ConntrackLimit);
        }
        if self.entries.contains_key(&key) || self.entries.len() >= self.capacity {
            return Err(DropReason::ConntrackFull);
        }
        self.entries.insert(key, entry);
        Ok(())
    }

    /// Record a packet about to be delivered to `to` (`None`: the host stack): a new connection
    /// gets an entry at both sides, a connection's new receiving side gets its own.
    pub fn commit(
        &mut self,
        from: Guarded<'_>,
        to: Option<Guarded<'_>>,
        pkt: &Packet,
        checked: &mut Checked,
        conn: &Conn,
    ) -> Result<(), DropReason> {
        if !pkt.opens || pkt.icmp_error {
            return Ok(());
        }
        let key = CtKey::sent(from.port, raw(pkt.saddr), raw(pkt.daddr), pkt.ports, pkt.key_proto());
        let state = next_state(u32::from(pkt.proto), state::OPEN, pkt.tcp_flags, true);
        let epoch = self.epoch;
        let fresh = conn.entry.is_none();
        if fresh {
            let cache = match (to, conn.peer) {
                (Some(_), Some(peer)) => Cache::Deliver { accept: true, rule: peer.rule },
                _ => Cache::Host,
            };
            let entry = Entry {
                state,
                origin: origin::OUT,
                hop: to.map(|t| t.port),
                cache: Some((epoch, cache)),
                packets: 1,
                bytes: pkt.bytes,
                vouched: true,
            };
            self.put(key, entry, conn.stale, from.limit, checked)?;
            checked.steps.push(format!("new connection at {}", who(&from)));
            let no_rule = vpc_common::ct::NO_RULE;
            checked.opened = Some(Opened {
                to: to.map_or(vpc_common::monitor::NO_PORT, |t| t.port),
                rule: conn.rule.unwrap_or(no_rule),
                peer_rule: conn.peer.and_then(|p| p.rule).unwrap_or(no_rule),
            });
        }
        let Some(to) = to else { return Ok(()) };
        if !conn.peer_new {
            return Ok(());
        }
        let peer = CtKey::received(to.port, raw(pkt.saddr), raw(pkt.daddr), pkt.ports, pkt.key_proto());
        if peer == key {
            // A port's packet to itself with symmetric ports: its one entry is both sides.
            return Ok(());
        }
        let entry = Entry { state, origin: origin::IN, hop: Some(from.port), cache: None, packets: 0, bytes: 0, vouched: pkt.vouched };
        if let Err(reason) = self.put(peer, entry, conn.peer_stale, to.limit, checked) {
            if fresh {
                // Both sides or neither.
                self.entries.remove(&key);
                checked.opened = None;
            }
            return Err(reason);
        }
        checked.steps.push(format!("its side at {}", who(&to)));
        if !fresh && let Some(sender) = conn.entry {
            self.cache_deliver(&sender, to.port, conn.peer.unwrap_or(Verdict { accept: true, rule: None }));
        }
        Ok(())
    }
}
