//! The monitoring events a frame made (drained from the ring beside each test run) and the ones
//! the model says it must make, in one comparable form.

use vpc_common::{
    DropReason,
    ct::NO_RULE,
    monitor::{MonEvent, NO_PORT, kind},
};

use crate::model::forward::{Action, Outcome};

/// What the differential compares of an event: its kind, reason, port, receiver and rule (a
/// drop's deciding rule, a new connection's sender's), the deciding side (a security-group
/// drop's), the receiver's rule (a new connection's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Made {
    pub kind: u8,
    pub reason: u32,
    pub port: u32,
    pub rule: u32,
    pub direction: Option<u8>,
    pub peer: u32,
    pub peer_rule: u32,
}

fn sg_side(reason: u32) -> Option<u8> {
    match DropReason::from_u32(reason) {
        Some(DropReason::SgEgress) => Some(vpc_common::sg::direction::EGRESS as u8),
        Some(DropReason::SgIngress) => Some(vpc_common::sg::direction::INGRESS as u8),
        _ => None,
    }
}

/// The events the model's `outcome` makes, sorted. (Verdicts re-judged by an epoch change are
/// not the model's to say: it keeps no verdicts.)
pub fn expected(outcome: &Outcome) -> Vec<Made> {
    let port = outcome.rx_port.unwrap_or(NO_PORT);
    let mut out = Vec::new();
    let plain = |kind: u8, reason: u32| Made { kind, reason, port, rule: NO_RULE, direction: None, peer: NO_PORT, peer_rule: NO_RULE };
    if let Some(what) = outcome.icmp_sent {
        out.push(plain(kind::ICMP, what));
    }
    if let Some(o) = outcome.opened {
        out.push(Made { rule: o.rule, peer: o.to, peer_rule: o.peer_rule, ..plain(kind::OPEN, 0) });
    }
    if let Action::Drop(reason) = outcome.action {
        let reason = reason as u32;
        let rule = outcome.deny_rule.unwrap_or(NO_RULE);
        let peer = outcome.to_port.unwrap_or(NO_PORT);
        out.push(Made { rule, direction: sg_side(reason), peer, ..plain(kind::DROP, reason) });
    }
    out.sort();
    out
}

/// The program's events in the same form, sorted (re-judged verdicts left out).
pub fn observed(raw: &[MonEvent]) -> Vec<Made> {
    let mut out: Vec<Made> = raw
        .iter()
        .filter(|e| e.kind != kind::POLICY)
        .map(|e| {
            let plain =
                Made { kind: e.kind, reason: e.reason, port: e.port, rule: NO_RULE, direction: None, peer: NO_PORT, peer_rule: NO_RULE };
            match e.kind {
                kind::DROP => Made { rule: e.rule, direction: sg_side(e.reason).map(|_| e.direction), peer: e.peer_port, ..plain },
                kind::OPEN => Made { reason: 0, rule: e.rule, peer: e.peer_port, peer_rule: e.peer_rule, ..plain },
                _ => plain,
            }
        })
        .collect();
    out.sort();
    out
}
