//! One monitoring event as users see it: names, not only numbers, under stable JSON field names
//! (`vpc monitor -o json` prints one per line). Made from the kernel's `MonEvent`s, from the
//! sweeper's ended connections, and from the suppressed counts.

use std::{collections::BTreeMap, net::Ipv4Addr};

use serde::{Deserialize, Serialize};
use vpc_common::{
    DropReason,
    ct::{NO_RULE, state},
    monitor::{MonEvent, NO_PORT, kind},
    sg::direction,
};

use crate::{
    dataplane::conntrack::Ended,
    model::{ids::Ids, topology::Topology},
};

/// The event types, as `--type` and the JSON's `type` name them.
pub const TYPES: &[&str] = &["drop", "open", "close", "policy", "icmp", "suppressed"];

/// The rule a drop names when no rule accepted the packet (ingress denies by default).
pub const NO_RULE_ACCEPTED: &str = "no rule accepted";
/// The rule an accepted connection names when no rule matched (egress accepts by default).
pub const NO_RULE_MATCHED: &str = "no rule matched: egress accepts";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the agent's stream (1, 2, ...): `since` asks for what follows one.
    pub seq: u64,
    /// Wall-clock milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// One of [`TYPES`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The ENI (or gateway) whose packet it is: the sender, or the side re-judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eni_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vswitch: Option<String>,
    /// "egress" or "ingress": which side's security groups decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// "tcp", "udp", "icmp" or the protocol number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    /// drop: the drop reason's name; close: why it ended; icmp: the error sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The deciding security-group rule's ID ([`NO_RULE_ACCEPTED`] for a default deny).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The receiving ENI (or gateway), "host" for the host stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_eni: Option<String>,
    /// open: the receiver's deciding rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_rule: Option<String>,
    /// open: the sender's route table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_table: Option<String>,
    /// policy: "accept" or "deny", the verdict now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// close: packets and bytes [from the opening side, from the other side].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<[u64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<[u64; 2]>,
    /// close: seconds from the first packet to the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u64>,
    /// suppressed: the type of the events held back, how many by the limiter and by a full ring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_full: Option<u64>,
}

/// A port's names.
#[derive(Debug, Clone, Default)]
pub struct PortName {
    pub name: String,
    pub id: String,
    pub vpc: String,
    pub vswitch: Option<String>,
}

/// What turns the kernel's numbers into names: ports, rule counters, route tables.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub ports: BTreeMap<u32, PortName>,
    pub rules: BTreeMap<u32, String>,
    pub tables: BTreeMap<u32, String>,
}

impl Names {
    pub fn of(topology: &Topology, ids: &Ids) -> Names {
        let mut ports = BTreeMap::new();
        for vpc in &topology.vpcs {
            for eni in &vpc.enis {
                let name =
                    PortName { name: eni.name.clone(), id: eni.id.clone(), vpc: vpc.name.clone(), vswitch: Some(eni.vswitch.clone()) };
                ports.insert(ids.port(&eni.id), name);
            }
            for gateway in &vpc.gateways {
                if let Some(&port) = ids.ports.get(&gateway.id) {
                    ports.insert(
                        port,
                        PortName { name: gateway.name.clone(), id: gateway.id.clone(), vpc: vpc.name.clone(), vswitch: None },
                    );
                }
            }
        }
        let rules = ids.rules_by_counter();
        let tables = ids.route_tables.iter().map(|(id, n)| (*n, id.clone())).collect();
        Names { ports, rules, tables }
    }

    fn port(&self, port: u32) -> Option<&PortName> {
        self.ports.get(&port)
    }

    fn port_name(&self, port: u32) -> Option<String> {
        if port == NO_PORT {
            return None;
        }
        Some(self.port(port).map_or_else(|| format!("port {port}"), |p| p.name.clone()))
    }

    /// The rule of a verdict (`accepted` or not) by its counter.
    fn rule(&self, counter: u32, accepted: bool) -> String {
        if counter == NO_RULE {
            return if accepted { NO_RULE_MATCHED } else { NO_RULE_ACCEPTED }.to_string();
        }
        self.rules.get(&counter).cloned().unwrap_or_else(|| format!("rule counter {counter}"))
    }

    /// The sender's names into `event`.
    fn sender(&self, event: &mut Event, port: u32) {
        event.eni = self.port_name(port);
        if let Some(p) = self.port(port) {
            event.eni_id = Some(p.id.clone());
            event.vpc = Some(p.vpc.clone());
            event.vswitch = p.vswitch.clone();
        }
    }
}

/// `proto`'s name.
pub fn proto_name(proto: u8) -> String {
    match proto {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        n => n.to_string(),
    }
}

/// The type name of the kernel's event kind `what`.
pub fn type_of(what: u8) -> &'static str {
    match what {
        kind::DROP => "drop",
        kind::OPEN => "open",
        kind::POLICY => "policy",
        kind::ICMP => "icmp",
        _ => "unknown",
    }
}

fn addr(raw: u32) -> Ipv4Addr {
    Ipv4Addr::from(vpc_common::addr_from_raw(raw))
}

fn icmp_name(what: u32) -> String {
    match (what >> 8, what & 0xff) {
        (11, 0) => "time exceeded".into(),
        (3, 4) => "fragmentation needed".into(),
        (t, c) => format!("icmp type {t} code {c}"),
    }
}

/// The kernel's event `raw`, made at `time_ms` (`seq` is given by the stream).
pub fn from_kernel(raw: &MonEvent, names: &Names, time_ms: u64) -> Event {
    let mut event = Event { time_ms, ..Event::default() };
    names.sender(&mut event, raw.port);
    let has_ip = raw.proto != 0 || raw.saddr != 0 || raw.daddr != 0;
    if has_ip {
        event.proto = Some(proto_name(raw.proto));
        event.src = Some(addr(raw.saddr));
        event.dst = Some(addr(raw.daddr));
        if matches!(raw.proto, 6 | 17) {
            event.sport = Some(raw.sport);
            event.dport = Some(raw.dport);
        }
    }
    let side = if u32::from(raw.direction) == direction::INGRESS as u32 { "ingress" } else { "egress" };
    event.kind = type_of(raw.kind).into();
    match raw.kind {
        kind::DROP => {
            let reason = DropReason::from_u32(raw.reason);
            event.reason = Some(reason.map_or_else(|| format!("reason {}", raw.reason), |r| r.name().to_string()));
            if matches!(reason, Some(DropReason::SgEgress | DropReason::SgIngress)) {
                event.direction = Some(side.into());
                event.rule = Some(names.rule(raw.rule, false));
            }
            event.peer_eni = names.port_name(raw.peer_port);
        }
        kind::OPEN => {
            event.rule = Some(names.rule(raw.rule, true));
            event.peer_eni = if raw.flags & 1 != 0 { Some("host".into()) } else { names.port_name(raw.peer_port) };
            if raw.flags & 1 == 0 {
                event.peer_rule = Some(names.rule(raw.peer_rule, true));
            }
            event.route_table = Some(names.tables.get(&raw.table).cloned().unwrap_or_else(|| format!("table {}", raw.table)));
        }
        kind::POLICY => {
            event.direction = Some(side.into());
            event.verdict = Some(if raw.flags & 1 != 0 { "accept" } else { "deny" }.into());
            event.rule = Some(names.rule(raw.rule, raw.flags & 1 != 0));
        }
        kind::ICMP => event.reason = Some(icmp_name(raw.reason)),
        _ => {}
    }
    event
}

/// A connection the sweeper ended, at `time_ms`; `tick_ms`: milliseconds per clock tick.
pub fn from_ended(ended: &Ended, names: &Names, time_ms: u64, tick_ms: u64) -> Event {
    let (key, entry) = (&ended.key, &ended.entry);
    let mut event = Event { time_ms, kind: "close".into(), ..Event::default() };
    names.sender(&mut event, key.port);
    let proto = key.ip_proto() as u8;
    event.proto = Some(proto_name(proto));
    event.src = Some(addr(key.local));
    event.dst = Some(addr(key.remote));
    if matches!(proto, 6 | 17) {
        event.sport = Some(key.local_port());
        event.dport = Some(key.remote_port());
    }
    event.peer_eni = if entry.route == vpc_common::ct::route::HOST { Some("host".into()) } else { names.port_name(entry.hop.port) };
    let (peer_packets, peer_bytes) = ended.peer.map_or((0, 0), |p| (p.packets, p.bytes));
    event.packets = Some([entry.packets, peer_packets]);
    event.bytes = Some([entry.bytes, peer_bytes]);
    let last = ended
        .peer
        .map_or(entry.last_seen, |p| if p.last_seen.wrapping_sub(entry.last_seen) < u32::MAX / 2 { p.last_seen } else { entry.last_seen });
    event.duration_s = Some(u64::from(last.wrapping_sub(entry.created)) * tick_ms / 1000);
    let why = if ended.released {
        "port removed"
    } else {
        match entry.state {
            state::CLOSED => "reset",
            state::CLOSING => "closed",
            _ => "idle timeout",
        }
    };
    event.reason = Some(why.into());
    event
}

/// `limited` and `ring_full` events of `what` from `port` held back since the last report.
pub fn suppressed(port: u32, what: u8, limited: u64, ring_full: u64, names: &Names, time_ms: u64) -> Event {
    let mut event = Event { time_ms, kind: "suppressed".into(), ..Event::default() };
    names.sender(&mut event, port);
    event.suppressed_type = Some(type_of(what).into());
    event.limited = Some(limited);
    event.ring_full = Some(ring_full);
    event
}
