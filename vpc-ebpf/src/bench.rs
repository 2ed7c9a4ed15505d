//! Programs for `vpc bench`, never attached by the agent. For the forwarding-throughput run:
//! the generator (live-frames test run: writes the whole frame every time, since pages come
//! back unreset, and transmits it), the receiver's counter, and a bare redirect (the ceiling).
//! For the per-packet cost: the lookups of an established UDP packet alone (`lookup`), and the
//! ring driver (`vpc_bench_ring`) that lets one test run time many packets.

use aya_ebpf::{
    bindings::xdp_action::{XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX},
    macros::{map, xdp},
    maps::{Array, DevMap, PerCpuArray, ProgramArray},
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
/// How many flows the generator spreads its frames over (0 or 1: the template's one).
#[map]
static BENCH_FLOWS: Array<u32> = Array::with_max_entries(1, 0);
/// The generator's frame count, per CPU: frame N goes to flow N mod BENCH_FLOWS.
#[map]
static BENCH_SEQ: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// Frames the ring driver hands out in turn, and how many of them are in use.
pub const BENCH_RING_SIZE: u32 = 16_384;
#[map]
static BENCH_RING: Array<[u8; BENCH_FRAME_LEN]> = Array::with_max_entries(BENCH_RING_SIZE, 0);
#[map]
static BENCH_RING_LEN: Array<u32> = Array::with_max_entries(1, 0);
/// [0] -> the program the ring driver runs each frame through.
#[map]
static BENCH_PROGS: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// The per-packet bench's driver, run with repeat = N: each run writes the ring's next frame
/// (N mod `BENCH_RING_LEN`, counted in `BENCH_SEQ`) over the packet -- the program it calls
/// rewrites it -- and tail-calls `BENCH_PROGS[0]`: the data path, or an anchor. One test run
/// then times N packets of a steady state, without a system call's overhead per packet.
#[xdp]
pub fn vpc_bench_ring(ctx: XdpContext) -> u32 {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + BENCH_FRAME_LEN > end {
        return XDP_ABORTED;
    }
    let len = BENCH_RING_LEN.get(0).copied().unwrap_or(1).max(1);
    let Some(seq) = BENCH_SEQ.get_ptr_mut(0) else { return XDP_ABORTED };
    // SAFETY: per-CPU slot, only this CPU uses it while the program runs.
    let n = unsafe { seq.read() };
    unsafe { seq.write(n.wrapping_add(1)) };
    let Some(frame) = BENCH_RING.get(n % len) else { return XDP_ABORTED };
    // SAFETY: bounds checked above; ring frames are map values of the same length.
    unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), start as *mut u8, BENCH_FRAME_LEN) };
    // SAFETY: the context is this program's own.
    let _ = unsafe { BENCH_PROGS.tail_call(&ctx, 0) };
    XDP_ABORTED
}

/// UDP source port and checksum offsets of the template (Ethernet, IPv4 without options).
const UDP_SPORT: usize = 34;
const UDP_CHECK: usize = 40;

#[xdp]
pub fn vpc_bench_gen(ctx: XdpContext) -> u32 {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + BENCH_FRAME_LEN > end {
        return XDP_DROP;
    }
    let Some(frame) = BENCH_FRAME.get(0) else { return XDP_DROP };
    // SAFETY: bounds checked above; the template is a map value of the same length.
    unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), start as *mut u8, BENCH_FRAME_LEN) };
    let flows = BENCH_FLOWS.get(0).copied().unwrap_or(0);
    if flows > 1
        && let Some(seq) = BENCH_SEQ.get_ptr_mut(0)
    {
        // SAFETY: per-CPU slot; the frame's first 64 bytes are checked above.
        unsafe {
            let n = *seq % flows;
            *seq = seq.read().wrapping_add(1);
            let sport = u16::from_be_bytes([frame[UDP_SPORT], frame[UDP_SPORT + 1]]).wrapping_add(n as u16);
            let at = start as *mut u8;
            *at.add(UDP_SPORT) = (sport >> 8) as u8;
            *at.add(UDP_SPORT + 1) = sport as u8;
            // No UDP checksum (optional over IPv4): the ports changed.
            *at.add(UDP_CHECK) = 0;
            *at.add(UDP_CHECK + 1) = 0;
        }
    }
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

/// The sender's ENI by interface, then the connection-table entry of a UDP packet it sends:
/// `XDP_PASS` when the entry is there (its packet count read, as the data path reads it),
/// `XDP_DROP` otherwise. Frames without IP options only.
#[inline(always)]
pub fn lookup(ctx: &XdpContext) -> u32 {
    use crate::parse::{ETH_HLEN, IPPROTO_UDP, ptr_at};
    let Ok(eni) = crate::eni::sender(ctx) else { return XDP_DROP };
    let Ok(ip) = crate::parse::ipv4(ctx) else { return XDP_DROP };
    let Ok(udp) = ptr_at::<[u16; 2]>(ctx, ETH_HLEN + 20) else { return XDP_DROP };
    if ip.protocol != IPPROTO_UDP || ip.version_ihl != 0x45 {
        return XDP_DROP;
    }
    // SAFETY: ptr_at checked the ports lie inside the frame.
    let [sport, dport] = unsafe { *udp };
    let ports = (u32::from(u16::from_be(sport)) << 16) | u32::from(u16::from_be(dport));
    let key = vpc_common::CtKey::sent(eni.port, ip.saddr, ip.daddr, ports, u32::from(IPPROTO_UDP));
    // SAFETY: read at once.
    match unsafe { crate::maps::CONNTRACK.get(&key) } {
        Some(entry) if entry.packets > 0 => XDP_PASS,
        _ => XDP_DROP,
    }
}
