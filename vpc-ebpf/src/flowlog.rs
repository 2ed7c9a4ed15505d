//! Flow-log counting: one per-CPU hash entry per (port, direction, 5-tuple, action, tick); see
//! `vpc_common::flowlog` for how the agent drains it and why nothing is lost silently.

use aya_ebpf::bindings::BPF_NOEXIST;
use vpc_common::flowlog::{CONFIG_FLOWLOG_TICK, FlCounters, FlKey, action, direction};

use crate::{
    maps::{CONFIG, FLOW_LOG, FLOW_LOG_LOST},
    packet::Packet,
};

/// Count `pkt`, sent (`received == 0`) or received by `port`, with the security groups'
/// verdict `accepted` (0 or 1).
#[inline(never)]
pub fn count(port: u32, received: u32, accepted: u32, pkt: &Packet) {
    let tick = CONFIG.get(CONFIG_FLOWLOG_TICK).copied().unwrap_or(0) as u32;
    let has_ports = pkt.proto == 6 || pkt.proto == 17;
    let ports = if has_ports { pkt.ports } else { 0 };
    let key = FlKey {
        port,
        saddr: pkt.saddr,
        daddr: pkt.daddr,
        sport: (ports >> 16) as u16,
        dport: ports as u16,
        proto: pkt.proto as u8,
        direction: if received != 0 { direction::IN } else { direction::OUT },
        action: if accepted != 0 { action::ACCEPT } else { action::REJECT },
        _pad: 0,
        tick,
    };
    if add(&key, pkt.bytes) {
        return;
    }
    let first = FlCounters { packets: 1, bytes: pkt.bytes };
    // Another CPU may insert the same key first (EEXIST): then add to it.
    if FLOW_LOG.insert(&key, &first, u64::from(BPF_NOEXIST)).is_ok() || add(&key, pkt.bytes) {
        return;
    }
    if let Some(lost) = FLOW_LOG_LOST.get_ptr_mut(port) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe {
            (*lost).packets += 1;
            (*lost).bytes += pkt.bytes;
        }
    }
}

#[inline(always)]
fn add(key: &FlKey, bytes: u64) -> bool {
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
