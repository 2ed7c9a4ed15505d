//! Flow-log counting: one per-CPU hash entry per (sender's side, receiver's side, 5-tuple,
//! tick), one update per packet; see `vpc_common::flowlog` for how the agent drains it and why
//! nothing is lost silently.

use aya_ebpf::bindings::BPF_NOEXIST;
use vpc_common::{
    ct::NO_RULE,
    flowlog::{CONFIG_FLOWLOG_TICK, FlCounters, FlPairKey, NO_SIDE, action},
};

use crate::{
    maps::{CONFIG, FLOW_LOG, FLOW_LOG_LOST},
    packet::Packet,
};

/// The sides of a packet its flow logs capture, noted as the halves judge it and counted once
/// when the packet's fate is known (`count`).
#[derive(Clone, Copy)]
pub struct Sides {
    pub sent_port: u32,
    pub received_port: u32,
    pub sent_action: u8,
    pub received_action: u8,
    /// The rules that decided (their counters).
    pub sent_rule: u32,
    pub received_rule: u32,
}

impl Sides {
    pub const fn none() -> Sides {
        Sides { sent_port: NO_SIDE, received_port: NO_SIDE, sent_action: 0, received_action: 0, sent_rule: NO_RULE, received_rule: NO_RULE }
    }

    /// Note the packet at `port`, sent (`received == false`) or received, with its security
    /// groups' verdict and the rule that decided it.
    #[inline(always)]
    pub fn note(&mut self, port: u32, received: bool, accepted: bool, rule: u32) {
        let verdict = if accepted { action::ACCEPT } else { action::REJECT };
        if received {
            self.received_port = port;
            self.received_action = verdict;
            self.received_rule = rule;
        } else {
            self.sent_port = port;
            self.sent_action = verdict;
            self.sent_rule = rule;
        }
    }
}

/// Count `pkt` for the sides noted in `sides` (nothing when none is: no call at all).
#[inline(always)]
pub fn count(sides: &Sides, pkt: &Packet) {
    if sides.sent_port != NO_SIDE || sides.received_port != NO_SIDE {
        count_noted(sides, pkt);
    }
}

#[inline(never)]
fn count_noted(sides: &Sides, pkt: &Packet) {
    count_sides(*sides, pkt);
}

/// Count `pkt` received by `port` alone (a multicast copy), with its verdict `accepted` (0
/// or 1) by `rule`. Plain values, not a `Sides` on the stack: the members' loop stays cheap
/// to verify.
#[inline(never)]
pub fn count_received(port: u32, accepted: u32, rule: u32, pkt: &Packet) {
    let mut sides = Sides::none();
    sides.note(port, true, accepted != 0, rule);
    count_sides(sides, pkt);
}

#[inline(always)]
fn count_sides(sides: Sides, pkt: &Packet) {
    let tick = CONFIG.get(CONFIG_FLOWLOG_TICK).copied().unwrap_or(0) as u32;
    let has_ports = pkt.proto == 6 || pkt.proto == 17;
    let ports = if has_ports { pkt.ports } else { 0 };
    let key = FlPairKey {
        sent_port: sides.sent_port,
        received_port: sides.received_port,
        saddr: pkt.saddr,
        daddr: pkt.daddr,
        sport: (ports >> 16) as u16,
        dport: ports as u16,
        proto: pkt.proto as u8,
        sent_action: sides.sent_action,
        received_action: sides.received_action,
        _pad: 0,
        tick,
        sent_rule: sides.sent_rule,
        received_rule: sides.received_rule,
    };
    if add(&key, pkt.bytes) {
        return;
    }
    let first = FlCounters { packets: 1, bytes: pkt.bytes };
    // Another CPU may insert the same key first (EEXIST): then add to it.
    if FLOW_LOG.insert(&key, &first, u64::from(BPF_NOEXIST)).is_ok() || add(&key, pkt.bytes) {
        return;
    }
    lost(sides.sent_port, pkt.bytes);
    lost(sides.received_port, pkt.bytes);
}

#[inline(always)]
fn lost(port: u32, bytes: u64) {
    if port == NO_SIDE {
        return;
    }
    if let Some(lost) = FLOW_LOG_LOST.get_ptr_mut(port) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe {
            (*lost).packets += 1;
            (*lost).bytes += bytes;
        }
    }
}

#[inline(always)]
fn add(key: &FlPairKey, bytes: u64) -> bool {
    match FLOW_LOG.get_ptr_mut(key) {
        Some(counters) => {
            // SAFETY: this CPU's value of a live element; only this CPU writes it.
            unsafe {
                (*counters).packets += 1;
                (*counters).bytes += bytes;
            }
            true
        }
        None => false,
    }
}
