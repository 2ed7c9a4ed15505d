//! Reference semantics of connection tracking and security groups, for the model: which packets
//! pass a port's security groups, given the connections seen so far. The data path
//! (`vpc-ebpf/src/ct.rs`, `sg.rs`) must agree packet for packet; the state machine and timeouts
//! are shared (`vpc_common::ct`). The model keeps no clock: its connections never time out.

use std::{collections::BTreeMap, net::Ipv4Addr};

use vpc_common::{
    addr_raw,
    ct::{next_state, origin, reopens, state, PROTO_TCP, PROTO_UDP},
    CtKey, DropReason,
};

use super::{
    ids::{intra_rule, Ids},
    security::{candidates, Direction, Verdict},
    Eni, Vpc,
};

/// The fields of a packet conntrack and the security groups look at (as the data path reads them).
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    pub saddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    pub ports: u32,
    pub proto: u8,
    /// The destination port for port ranges: TCP and UDP with ports, none otherwise.
    pub dport: Option<u16>,
    pub tcp_flags: u8,
    /// IP total length.
    pub bytes: u64,
    /// For an ICMP error whose quote could be read: (saddr, daddr, ports, proto) of the quoted packet.
    pub quoted: Option<(Ipv4Addr, Ipv4Addr, u32, u8)>,
}

/// A port as conntrack sees it: its number, and its ENI (with the ENI's VPC) when it has
/// security groups -- gateways have none.
#[derive(Clone, Copy)]
pub struct Guarded<'a> {
    pub port: u32,
    pub eni: Option<(&'a Vpc, &'a Eni)>,
}

/// One tracked connection of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub allowed: bool,
    pub rule: Option<u32>,
    pub sg_epoch: u64,
    pub state: u8,
    pub origin: u8,
    pub out_packets: u64,
    pub out_bytes: u64,
    pub in_packets: u64,
    pub in_bytes: u64,
}

/// The connections of every port and the configuration epoch (bumped on every change, as the
/// agent does after each sync).
#[derive(Debug, Clone, Default)]
pub struct Conntrack {
    pub entries: BTreeMap<CtKey, Entry>,
    pub epoch: u64,
}

/// What one side's check did, for `vpc trace` and the counters.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Rule counters credited with the packet (counter, bytes).
    pub rule_hits: Vec<(u32, u64)>,
    pub steps: Vec<String>,
}

fn raw(a: Ipv4Addr) -> u32 {
    addr_raw(a.octets())
}

/// The verdict of `eni`'s groups in `direction` for a packet of `proto` with `peer` as the other
/// end: the first matching rule of each group (in the data path's order), the lowest precedence
/// among groups, the earlier group on a tie; the default when none matches.
pub fn decide(vpc: &Vpc, eni: &Eni, ids: &Ids, direction: Direction, proto: u8, peer: Ipv4Addr, dport: Option<u16>) -> (Verdict, String) {
    let members = |group: &str| vpc.members(group);
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
        Some((_, accept, counter, what)) => (Verdict { accept, rule: Some(counter) }, format!("{} by {what}", if accept { "accepted" } else { "dropped" })),
        None => {
            let accept = direction == Direction::Egress;
            (Verdict { accept, rule: None }, format!("{} by default (no rule matched)", if accept { "accepted" } else { "dropped" }))
        }
    }
}

impl Conntrack {
    /// Pass `pkt` through `side`'s conntrack and security groups: the port sending it
    /// (`received == false`) or receiving it. `Err` is the security-group drop.
    pub fn track(&mut self, side: Guarded<'_>, received: bool, pkt: &Packet, ids: &Ids, checked: &mut Checked) -> Result<(), DropReason> {
        let who = side.eni.map(|(_, e)| e.name.as_str()).unwrap_or("gateway");
        if received && side.eni.is_none() {
            return Ok(());
        }
        let (direction, denied) = if received { (Direction::Ingress, DropReason::SgIngress) } else { (Direction::Egress, DropReason::SgEgress) };
        let verb = if received { "ingress" } else { "egress" };
        let count = |rule: Option<u32>, checked: &mut Checked| {
            if let Some(rule) = rule {
                checked.rule_hits.push((rule, pkt.bytes));
            }
        };
        if let Some((saddr, daddr, ports, proto)) = pkt.quoted {
            let (saddr, daddr, proto) = (raw(saddr), raw(daddr), u32::from(proto));
            let key = if received {
                CtKey::sent(side.port, saddr, daddr, ports, proto)
            } else {
                CtKey::received(side.port, saddr, daddr, ports, proto)
            };
            if self.entries.get(&key).is_some_and(|e| e.allowed) {
                checked.steps.push(format!("{who} ({verb}): ICMP error related to a tracked connection"));
                return Ok(());
            }
            let verdict = self.judge(side, direction, pkt, received, ids, checked, who, verb);
            count(verdict.rule, checked);
            return if verdict.accept { Ok(()) } else { Err(denied) };
        }
        let (saddr, daddr, proto) = (raw(pkt.saddr), raw(pkt.daddr), u32::from(pkt.proto));
        let key = if received {
            CtKey::received(side.port, saddr, daddr, pkt.ports, proto)
        } else {
            CtKey::sent(side.port, saddr, daddr, pkt.ports, proto)
        };
        let epoch = self.epoch;
        if let Some(entry) = self.entries.get(&key).cloned()
            && !reopens(proto, entry.state, pkt.tcp_flags)
        {
            let mut entry = entry;
            let from_origin = (entry.origin == origin::IN) == received;
            if entry.sg_epoch != epoch {
                let verdict = recheck(side, &entry, &key, ids);
                checked.steps.push(format!("{who} ({verb}): configuration changed, connection re-checked: {}", if verdict.accept { "still allowed" } else { "now denied" }));
                entry.allowed = verdict.accept;
                entry.rule = verdict.rule;
                entry.sg_epoch = epoch;
            }
            count(entry.rule, checked);
            if !entry.allowed {
                self.entries.insert(key, entry);
                return Err(denied);
            }
            checked.steps.push(format!("{who} ({verb}): established connection"));
            entry.state = next_state(proto, entry.state, pkt.tcp_flags, from_origin);
            if received {
                entry.in_packets += 1;
                entry.in_bytes += pkt.bytes;
            } else {
                entry.out_packets += 1;
                entry.out_bytes += pkt.bytes;
            }
            self.entries.insert(key, entry);
            return Ok(());
        }
        let verdict = self.judge(side, direction, pkt, received, ids, checked, who, verb);
        count(verdict.rule, checked);
        if !verdict.accept {
            return Err(denied);
        }
        let (out, inn) = if received { ((0, 0), (1, pkt.bytes)) } else { ((1, pkt.bytes), (0, 0)) };
        self.entries.insert(
            key,
            Entry {
                allowed: true,
                rule: verdict.rule,
                sg_epoch: epoch,
                state: next_state(proto, state::OPEN, pkt.tcp_flags, true),
                origin: if received { origin::IN } else { origin::OUT },
                out_packets: out.0,
                out_bytes: out.1,
                in_packets: inn.0,
                in_bytes: inn.1,
            },
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn judge(&self, side: Guarded<'_>, direction: Direction, pkt: &Packet, received: bool, ids: &Ids, checked: &mut Checked, who: &str, verb: &str) -> Verdict {
        let Some((vpc, eni)) = side.eni else { return Verdict { accept: true, rule: None } };
        let peer = if received { pkt.saddr } else { pkt.daddr };
        let (verdict, why) = decide(vpc, eni, ids, direction, pkt.proto, peer, pkt.dport);
        checked.steps.push(format!("security groups of {who} ({verb}): {why}"));
        verdict
    }
}

/// The rules' verdict on the first direction of an existing connection.
fn recheck(side: Guarded<'_>, entry: &Entry, key: &CtKey, ids: &Ids) -> Verdict {
    let Some((vpc, eni)) = side.eni else { return Verdict { accept: true, rule: None } };
    let (direction, dport) = if entry.origin == origin::OUT { (Direction::Egress, key.remote_port()) } else { (Direction::Ingress, key.local_port()) };
    let tcp_or_udp = key.proto == PROTO_TCP || key.proto == PROTO_UDP;
    let dport = if tcp_or_udp && key.ports != 0 { Some(dport) } else { None };
    let peer = Ipv4Addr::from(vpc_common::addr_from_raw(key.remote));
    decide(vpc, eni, ids, direction, key.proto as u8, peer, dport).0
}
