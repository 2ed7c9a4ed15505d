//! Programs for `vpc bench`'s forwarding-throughput run, never attached by the agent: the
//! generator (live-frames test run: writes the whole frame every time, since pages come back
//! unreset, and transmits it), the receiver's counter, and a bare redirect (the ceiling).

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_TX},
    macros::{map, xdp},
    maps::{Array, DevMap, PerCpuArray},
    programs::XdpContext,
};

pub const BENCH_FRAME_LEN: usize = 64;

/// The frame the generator sends.
#[map]
static BENCH_FRAME: Array<[u8; BENCH_FRAME_LEN]> = Array::with_max_entries(1, 0);
/// Frames the receiver saw, per CPU.
#[map]
static BENCH_COUNT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);
/// Where the bare redirect sends everything.
#[map]
static BENCH_TARGET: DevMap = DevMap::with_max_entries(1, 0);

#[xdp]
pub fn vpc_bench_gen(ctx: XdpContext) -> u32 {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + BENCH_FRAME_LEN > end {
        return XDP_DROP;
    }
    let Some(frame) = BENCH_FRAME.get(0) else { return XDP_DROP };
    // SAFETY: bounds checked above; the template is a map value of the same length.
    unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), start as *mut u8, BENCH_FRAME_LEN) };
    XDP_TX
}

#[xdp]
pub fn vpc_bench_count(_ctx: XdpContext) -> u32 {
    if let Some(count) = BENCH_COUNT.get_ptr_mut(0) {
        // SAFETY: per-CPU slot.
        unsafe { *count += 1 };
    }
    XDP_DROP
}

#[xdp]
pub fn vpc_bench_redirect(_ctx: XdpContext) -> u32 {
    BENCH_TARGET.redirect(0, 0).unwrap_or(XDP_DROP)
}
