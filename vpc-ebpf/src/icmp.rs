//! ICMP errors from the VSwitch gateway: time exceeded, so traceroute from a guest shows the
//! path, and fragmentation needed, so path-MTU discovery finds a receiver's smaller MTU.
//!
//! The datagram is turned into the error in place: 28 bytes of room at the front for
//! a new IPv4 and ICMP header, the Ethernet header moved there, the tail cut after the original
//! header and 8 bytes of its payload. Rate limited per CPU by a token bucket.

use aya_ebpf::{
    helpers::generated::{bpf_ktime_get_ns, bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use vpc_common::{DropReason, Eni, ICMP_ERRORS_BURST, ICMP_ERRORS_PER_SEC, event};

use crate::{
    deliver,
    maps::ICMP_RATE,
    parse::{self, ETH_HLEN, EthHdr, IPPROTO_ICMP, Ipv4Hdr},
    stats,
};

const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_UNREACHABLE: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;
/// Room for the new IPv4 (20) and ICMP (8) headers.
const ROOM: usize = 28;
/// The quote: the original header (20 bytes, no options) and 8 bytes of its payload.
const QUOTED: usize = 28;

/// Whether another ICMP error may go out now to `port` (token bucket per port and CPU: a guest
/// that makes the gateway answer a flood only spends its own budget).
#[inline(always)]
fn allowed(port: u32) -> bool {
    let Some(bucket) = ICMP_RATE.get_ptr_mut(port) else { return false };
    // SAFETY: per-CPU slot, only this CPU touches it while the program runs; a helper without
    // arguments.
    unsafe { (*bucket).take(bpf_ktime_get_ns(), ICMP_ERRORS_PER_SEC, ICMP_ERRORS_BURST) }
}

/// Ones' complement sum of `N` (even) bytes.
#[inline(always)]
fn sum16<const N: usize>(bytes: &[u8; N]) -> u32 {
    let mut sum = 0u32;
    let mut i = 0;
    while i + 1 < N {
        sum += u32::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
        i += 2;
    }
    sum
}

#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Answer a datagram from `eni` whose TTL ran out. Datagrams that get no answer -- the ENI's
/// gateway is unknown, a later fragment, an ICMP error, with IP options (the quote is then not of
/// fixed size, which keeps the checksum simple for the verifier), shorter than a header and 8
/// bytes, or over the rate -- are dropped as `TtlExceeded`.
#[inline(always)]
pub fn time_exceeded(ctx: &XdpContext, eni: &Eni) -> Result<u32, DropReason> {
    error(ctx, eni, u32::from(ICMP_TIME_EXCEEDED) << 24).ok_or(DropReason::TtlExceeded)
}

/// Answer a datagram with DF set that is longer than `mtu`, the receiver's: fragmentation
/// needed, with `mtu` as the next-hop MTU. Those that get no answer (as for `time_exceeded`)
/// are dropped as `TooBig`.
#[inline(always)]
pub fn frag_needed(ctx: &XdpContext, eni: &Eni, mtu: u16) -> Result<u32, DropReason> {
    error(ctx, eni, (u32::from(ICMP_UNREACHABLE) << 24) | (u32::from(ICMP_FRAG_NEEDED) << 16) | u32::from(mtu)).ok_or(DropReason::TooBig)
}

/// Turn the datagram into an ICMP error to its sender, from its VSwitch gateway: `what` is
/// type << 24 | code << 16 | the next-hop MTU (fragmentation needed wants it in the header's
/// last two bytes). One argument, not three: a BPF function takes at most five. `None`: no
/// answer goes out, and the caller drops the datagram for its own reason.
#[inline(never)]
fn error(ctx: &XdpContext, eni: &Eni, what: u32) -> Option<u32> {
    let (kind, code, mtu) = ((what >> 24) as u8, (what >> 16) as u8, what as u16);
    let sent = if kind == ICMP_TIME_EXCEEDED { event::TIME_EXCEEDED_SENT } else { event::FRAG_NEEDED_SENT };
    let ip = parse::ipv4(ctx).ok()?;
    let header_len = parse::ipv4_header_len(ip);
    let total_len = usize::from(u16::from_be(ip.tot_len));
    if eni.gw_ip == 0 || u16::from_be(ip.frag_off) & 0x1fff != 0 || header_len != 20 || total_len < header_len + 8 {
        return None;
    }
    if ip.protocol == IPPROTO_ICMP {
        // SAFETY: the ICMP type byte lies inside the total length checked above.
        let kind = unsafe { *parse::ptr_at::<u8>(ctx, ETH_HLEN + header_len).ok()? };
        if !matches!(kind, 0 | 8 | 13 | 14) {
            return None;
        }
    }
    if !allowed(eni.port) {
        return None;
    }
    let (requester, tos, about, proto) = (ip.saddr, ip.tos, ip.daddr, ip.protocol);
    let quoted = QUOTED;

    // SAFETY: helper calls on our own context.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(ROOM as i32)) } != 0 {
        return None;
    }
    // SAFETY: both headers checked by ptr_at; they do not overlap (28 > 14).
    unsafe {
        let old = parse::ptr_at::<[u8; ETH_HLEN]>(ctx, ROOM).ok()?;
        let new = parse::ptr_at::<[u8; ETH_HLEN]>(ctx, 0).ok()?;
        *new = *old;
    }
    let length = ctx.data_end() - ctx.data();
    let wanted = ETH_HLEN + ROOM + quoted;
    // SAFETY: shrinking the tail of our own frame.
    if length < wanted || unsafe { bpf_xdp_adjust_tail(ctx.ctx, wanted as i32 - length as i32) } != 0 {
        return None;
    }

    let ip = parse::ptr_at::<Ipv4Hdr>(ctx, ETH_HLEN).ok()?;
    // SAFETY: ptr_at checked the header.
    let ip = unsafe { &mut *ip };
    ip.version_ihl = 0x45;
    ip.tos = (tos & 0x1e) | 0xc0;
    ip.tot_len = ((ROOM + quoted) as u16).to_be();
    ip.id = 0;
    ip.frag_off = 0;
    ip.ttl = 64;
    ip.protocol = IPPROTO_ICMP;
    ip.check = 0;
    ip.saddr = eni.gw_ip;
    ip.daddr = requester;
    // SAFETY: ptr_at checked the 20 header bytes.
    let header = unsafe { &*parse::ptr_at::<[u8; 20]>(ctx, ETH_HLEN).ok()? };
    ip.check = fold(sum16(header)).to_be();

    let icmp = parse::ptr_at::<[u8; 8 + QUOTED]>(ctx, ETH_HLEN + 20).ok()?;
    // SAFETY: ptr_at checked the ICMP header and the quote.
    let icmp = unsafe { &mut *icmp };
    icmp[0] = kind;
    icmp[1] = code;
    icmp[2] = 0;
    icmp[3] = 0;
    icmp[4] = 0;
    icmp[5] = 0;
    icmp[6] = (mtu >> 8) as u8;
    icmp[7] = mtu as u8;
    let check = fold(sum16(icmp));
    icmp[2] = (check >> 8) as u8;
    icmp[3] = check as u8;

    let eth = parse::ptr_at::<EthHdr>(ctx, 0).ok()?;
    // SAFETY: ptr_at checked the header.
    let eth = unsafe { &mut *eth };
    eth.dst = eni.mac;
    eth.src = eni.gw_mac;
    let verdict = deliver::to_port(ctx, eni.port).ok()?;
    stats::event(sent);
    crate::monitor::icmp_sent(eni.port, requester, about, proto, (u32::from(kind) << 8) | u32::from(code));
    Some(verdict)
}
