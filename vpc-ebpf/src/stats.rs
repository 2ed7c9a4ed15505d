//! Per-CPU counters: per ENI port and per drop reason. No locks, no atomics: each CPU owns its slot.

use aya_ebpf::bindings::xdp_action::XDP_DROP;
use vpc_common::DropReason;

use crate::maps::{DROP_STATS, ENI_STATS, EVENT_STATS};

/// Count a frame the ENI on `port` sent into the data path.
#[inline(always)]
pub fn rx(port: u32, bytes: u64) {
    if let Some(counters) = ENI_STATS.get_ptr_mut(port) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe {
            (*counters).rx_packets += 1;
            (*counters).rx_bytes += bytes;
        }
    }
}

/// Count a frame the data path delivered to the ENI on `port`.
#[inline(always)]
pub fn tx(port: u32, bytes: u64) {
    if let Some(counters) = ENI_STATS.get_ptr_mut(port) {
        // SAFETY: as in `rx`.
        unsafe {
            (*counters).tx_packets += 1;
            (*counters).tx_bytes += bytes;
        }
    }
}

/// Count a new connection refused because `port` was at its connection limit.
#[inline(always)]
pub fn ct_refused(port: u32) {
    if let Some(counters) = ENI_STATS.get_ptr_mut(port) {
        // SAFETY: as in `rx`.
        unsafe { (*counters).ct_refused += 1 };
    }
}

/// Count a drop by reason and return the XDP verdict for it.
#[inline(always)]
pub fn drop(reason: DropReason) -> u32 {
    if let Some(count) = DROP_STATS.get_ptr_mut(reason as u32) {
        // SAFETY: as in `rx`.
        unsafe { *count += 1 };
    }
    XDP_DROP
}

/// Count an event that is not a drop (`vpc_common::event`).
#[inline(always)]
pub fn event(which: u32) {
    if let Some(count) = EVENT_STATS.get_ptr_mut(which) {
        // SAFETY: as in `rx`.
        unsafe { *count += 1 };
    }
}
