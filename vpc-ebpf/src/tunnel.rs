//! The overlay between hosts (see `vpc_common::tunnel` for the wire format): what goes to an
//! ENI on another host is encapsulated here and redirected to the underlay; what arrives on
//! the underlay is checked, decapsulated and handed to the receiver half.

use aya_ebpf::{
    bindings::xdp_action::XDP_PASS,
    helpers::generated::{bpf_xdp_adjust_head, bpf_xdp_adjust_meta, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use vpc_common::{
    DropReason, Eni, Port, event, flow_hash,
    tunnel::{self, ENCAP_LEN, Encap, HOST_UP, MCAST_ENI, OUTER_LEN, Outer, TC_XMIT_MAGIC, TcXmit, UNDERLAY_TC_XMIT},
};

use crate::{
    ct::{Arrival, Scratch},
    deliver,
    maps::{DELIVERY, HOST_OF_IP, HOSTS, TUNNELS, UNDERLAY},
    packet::Packet,
    parse::{self, ETH_HLEN},
    stats,
};

/// Send `pkt` from `eni` to `to`, an ENI on another host: the Ethernet padding
/// cut, the outer headers in front, redirected to the underlay. The inner packet is sent as it
/// came (its TTL is the receiving host's to decrement). ENI numbers on the wire are the ports
/// of the cluster's shared numbering.
#[inline(never)]
pub fn encap(ctx: &XdpContext, eni: &Eni, to: &Port, pkt: &Packet) -> Result<u32, DropReason> {
    let tos = parse::ipv4(ctx)?.tos;
    // SAFETY (the three lookups): map values live as long as the map; the agent replaces
    // entries whole.
    let remote = unsafe { TUNNELS.get(&to.port) }.ok_or(DropReason::NoUnderlay)?;
    let underlay = unsafe { UNDERLAY.get(&0) }.ok_or(DropReason::NoUnderlay)?;
    let host = unsafe { HOSTS.get(&remote.host) }.ok_or(DropReason::HostDown)?;
    if host.flags & HOST_UP == 0 {
        return Err(DropReason::HostDown);
    }
    let inner_len = pkt.bytes as usize;
    let header = tunnel::header(&Encap {
        dst_mac: host.mac,
        src_mac: underlay.mac,
        src_ip: underlay.ip,
        dst_ip: host.ip,
        tos,
        inner_len: inner_len as u16,
        sport: tunnel::source_port(flow_hash(pkt.saddr, pkt.daddr, pkt.ports, pkt.proto)),
        vni: eni.vpc_id,
        src_eni: eni.port,
        dst_eni: to.port,
    });
    let len = ctx.data_end() - ctx.data();
    let want = ETH_HLEN + inner_len;
    // SAFETY (both helpers): resizing our own frame; the pointers are taken afresh after.
    if len > want && unsafe { bpf_xdp_adjust_tail(ctx.ctx, want as i32 - len as i32) } != 0 {
        return Err(DropReason::Malformed);
    }
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(ENCAP_LEN as i32)) } != 0 {
        return Err(DropReason::NoUnderlay);
    }
    let out = parse::ptr_at::<[u8; OUTER_LEN]>(ctx, 0)?;
    // SAFETY: ptr_at checked the 62 bytes.
    unsafe { *out = header };
    let action = if underlay.flags & UNDERLAY_TC_XMIT != 0 { to_tc(ctx, to.port)? } else { deliver::to_port(ctx, to.port)? };
    stats::event(event::ENCAPSULATED);
    Ok(action)
}

/// XDP cannot transmit on the underlay: the encapsulated frame passes, `TcXmit` in its
/// metadata, and the TC program on this ENI sends it on (`vpc_mcast`), counted here.
#[inline(never)]
fn to_tc(ctx: &XdpContext, port: u32) -> Result<u32, DropReason> {
    let ctx = core::hint::black_box(ctx);
    const LEN: usize = core::mem::size_of::<TcXmit>();
    // SAFETY: room in front of our own frame; the pointers are taken afresh after.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(LEN as i32)) } != 0 {
        return Err(DropReason::NoUnderlay);
    }
    let (start, end) = (ctx.metadata(), ctx.data());
    if start + LEN > end {
        return Err(DropReason::NoUnderlay);
    }
    // SAFETY: checked to lie inside the metadata just made.
    unsafe { core::ptr::write_unaligned(start as *mut TcXmit, TcXmit { magic: TC_XMIT_MAGIC, port }) };
    stats::tx(port, parse::frame_len(ctx));
    Ok(XDP_PASS)
}

/// A frame on the underlay: `false` when it is not Geneve to this host (left to the host
/// stack); else, once checked and decapsulated, `true` with the ENI it comes from (as a
/// sender) and the delivery to this host's ENI it goes to in `s.arrival`. Accepted only from
/// registered hosts, for an ENI number of that very host, with its VPC as the VNI, to an ENI
/// of this host. (Copied into the scratch slot: map values handed back through the stack lose
/// their type for the verifier, and held on the stack they overflow it.)
#[inline(never)]
pub fn arrival(ctx: &XdpContext, s: &mut Scratch) -> Result<bool, DropReason> {
    let ctx = core::hint::black_box(ctx);
    // SAFETY (every lookup here): as in `encap`.
    let Some(underlay) = (unsafe { UNDERLAY.get(&0) }) else { return Ok(false) };
    let Ok(h) = parse::ptr_at::<[u8; OUTER_LEN]>(ctx, 0) else { return Ok(false) };
    // SAFETY: ptr_at checked the 62 bytes.
    let h = unsafe { &*h };
    let (src_ip, vni, src_eni, dst_eni) = match tunnel::outer(h, parse::frame_len(ctx) as usize, underlay.ip) {
        Outer::NotOurs => return Ok(false),
        Outer::Bad => return Err(DropReason::BadGeneve),
        Outer::Geneve { src_ip, vni, src_eni, dst_eni } => (src_ip, vni, src_eni, dst_eni),
    };
    let host = unsafe { HOST_OF_IP.get(&src_ip) }.ok_or(DropReason::UnknownHost)?;
    let from = unsafe { TUNNELS.get(&src_eni) }.ok_or(DropReason::TunnelSpoofed)?;
    if from.host != *host {
        return Err(DropReason::TunnelSpoofed);
    }
    if vni != from.eni.vpc_id {
        return Err(DropReason::UnknownVni);
    }
    if dst_eni == MCAST_ENI {
        // A multicast copy for this host's members: `mcast::arrived` checks the group.
        s.arrival = Arrival { from: from.eni, to: Port { port: MCAST_ENI, ..Port::default() } };
    } else {
        let Some(to) = (unsafe { DELIVERY.get(&dst_eni) }) else {
            let remote = unsafe { TUNNELS.get(&dst_eni) }.is_some();
            return Err(if remote { DropReason::TunnelLoop } else { DropReason::UnknownDestination });
        };
        s.arrival = Arrival { from: from.eni, to: *to };
    }
    // SAFETY: shrinking the front of our own frame, which holds more than the 48 bytes.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, ENCAP_LEN as i32) } != 0 {
        return Err(DropReason::Malformed);
    }
    // An Ethernet header for the inner packet: its MACs are rewritten on delivery.
    let eth = parse::eth(ctx)?;
    eth.ether_type = parse::ETH_P_IP.to_be();
    stats::event(event::DECAPSULATED);
    Ok(true)
}
