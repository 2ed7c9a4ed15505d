//! The VPC data path: one XDP program on the host side of every ENI and gateway interface.
//!
//! parse -> sender + anti-spoof -> ARP answer | fragments follow their first fragment ->
//! `sender_half`: the sender's connection or egress security groups, then the route (cached in
//! the connection, else LPM per route table, VPC crossing, ECMP) -> host stack | TTL (ICMP time
//! exceeded) -> `receiver_half`: the receiver's ingress security groups (cached in the sender's
//! connection) -> MTU (fragmentation needed) -> commit (a new connection at both sides, within
//! their limits) -> rewrite -> deliver (DEVMAP redirect), or, to an ENI on another host,
//! `tunnel::encap` (Geneve to its host; that host decrements the TTL). Every drop is counted by
//! reason (`stats::drop`). Multicast: `mcast::admit`, then the TC program `mcast::vpc_mcast`
//! clones. On the underlay, `vpc_underlay_ingress`: `tunnel::arrival` (only what a registered
//! host may send), then the same pipeline with the remote ENI as sender and the route its host
//! chose.
#![no_std]
#![no_main]
// Atomic fetch-and-add on the connection limits' counters is written in assembly (`ct::charge`).
#![feature(asm_experimental_arch)]

mod arp;
mod bench;
mod ct;
mod deliver;
mod eni;
mod flowlog;
mod frag;
mod icmp;
mod maps;
mod mcast;
mod monitor;
mod packet;
mod parse;
mod rewrite;
mod route;
mod sg;
mod stats;
mod tunnel;

use aya_ebpf::{bindings::xdp_action::XDP_PASS, macros::xdp, programs::XdpContext};
use vpc_common::{DropReason, Eni, PORT_F_TUNNEL, monitor::NO_PORT};

#[xdp]
pub fn vpc_eni_ingress(ctx: XdpContext) -> u32 {
    match from_eni(&ctx) {
        Ok(action) => action,
        Err(reason) => {
            monitor::dropped_early(&ctx, eni::sender(&ctx).map_or(NO_PORT, |eni| eni.port), reason);
            stats::drop(reason)
        }
    }
}

/// The overlay's receiving end, on the underlay interface: Geneve from another host to one of
/// this host's ENIs is checked, decapsulated and goes through the receiver half (the sending
/// host decided the route); anything else passes to the host stack untouched.
#[xdp]
pub fn vpc_underlay_ingress(ctx: XdpContext) -> u32 {
    match from_underlay(&ctx) {
        Ok(action) => action,
        Err(reason) => {
            monitor::dropped_early(&ctx, NO_PORT, reason);
            stats::drop(reason)
        }
    }
}

/// The benchmarks' baseline, run the same way as `vpc_eni_ingress`: what remains of a
/// measurement after subtracting it is the data path's own cost. Never attached.
#[xdp]
pub fn vpc_bench_empty(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

/// The benchmarks' second anchor, run the same way: the two lookups every established packet
/// needs (its sender by interface, then its connection), and nothing else. An established
/// packet's cost above it is what the rest of the pipeline costs. Never attached.
#[xdp]
pub fn vpc_bench_lookup(ctx: XdpContext) -> u32 {
    bench::lookup(&ctx)
}

#[inline(always)]
fn from_eni(ctx: &XdpContext) -> Result<u32, DropReason> {
    let eni = eni::sender(ctx)?;
    stats::rx(eni.port, parse::frame_len(ctx));
    let eth = parse::eth(ctx)?;
    eni::check_mac(eni, &eth.src)?;
    match u16::from_be(eth.ether_type) {
        parse::ETH_P_IP => forward_ipv4(ctx, eni, ct::scratch()?, false),
        parse::ETH_P_ARP => arp::answer(ctx, eni),
        parse::ETH_P_8021Q | parse::ETH_P_8021AD => Err(DropReason::VlanTagged),
        _ => Err(DropReason::NotIpv4),
    }
}

#[inline(always)]
fn from_underlay(ctx: &XdpContext) -> Result<u32, DropReason> {
    let s = ct::scratch()?;
    if !tunnel::arrival(ctx, s)? {
        return Ok(XDP_PASS);
    }
    stats::rx(s.arrival.from.port, parse::frame_len(ctx));
    // The sender read from the scratch slot: held on the stack, it would overflow it.
    // SAFETY: the slot outlives the program run; forward_ipv4 does not write `arrival`.
    let eni: &Eni = unsafe { &*core::ptr::addr_of!(s.arrival.from) };
    match forward_ipv4(ctx, eni, s, true) {
        Ok(action) => Ok(action),
        Err(reason) => {
            // Looked up again rather than kept: nothing stays live across the pipeline.
            let port = ct::scratch().map_or(NO_PORT, |s| s.arrival.from.port);
            monitor::dropped_early(ctx, port, reason);
            Ok(stats::drop(reason))
        }
    }
}

/// An IPv4 packet from `eni`; `arrived`: from the overlay, to `s.arrival.to` (the sending
/// host resolved the route, and `eni` is on it).
#[inline(always)]
fn forward_ipv4(ctx: &XdpContext, eni: &Eni, s: &mut ct::Scratch, arrived: bool) -> Result<u32, DropReason> {
    let ip = parse::ipv4(ctx)?;
    eni::check_source_ip(eni, ip.saddr)?;
    let pkt = &mut s.pkt;
    pkt.saddr = ip.saddr;
    pkt.daddr = ip.daddr;
    pkt.proto = u32::from(ip.protocol);
    pkt.bytes = u64::from(u16::from_be(ip.tot_len));
    pkt.ttl = ip.ttl;
    pkt.epoch = ct::epoch();
    pkt.now = ct::now();
    pkt.vouched = ip.saddr == eni.ip;
    pkt.in_vpc = ip.saddr & eni.vpc_mask == eni.vpc_net;
    frag::l4(ctx, ip, eni.port, pkt)?;
    let mut conn = ct::Conn::new();
    if arrived {
        conn.hop = s.arrival.to;
    }
    // The receiver, once the route found one.
    let mut to = NO_PORT;
    let to_group = arrived && s.arrival.to.port == vpc_common::tunnel::MCAST_ENI;
    let fate = if vpc_common::mcast::is_multicast(s.pkt.daddr) {
        // To a multicast group: admitted here, replicated to the members by the TC program.
        // From the overlay only as a group's copy (never as unicast to one ENI).
        match (arrived, to_group) {
            (false, _) => mcast::admit(eni, &s.pkt, &mut conn).map(|()| XDP_PASS),
            (true, true) => mcast::arrived(ctx, eni, &s.pkt),
            (true, false) => Err(DropReason::McastNotSender),
        }
    } else if to_group {
        Err(DropReason::UnknownDestination)
    } else {
        match sender_half(ctx, eni, ip, s, &mut conn) {
            Ok(Some(verdict)) => Ok(verdict),
            Ok(None) => {
                to = conn.hop.port;
                receiver_half(ctx, eni, ip, s, &mut conn)
            }
            Err(reason) => Err(reason),
        }
    };
    // Both sides' flow-log counts in one update, whatever the packet's fate.
    flowlog::count(&conn.log, &s.pkt);
    if conn.opened {
        monitor::opened(eni, &s.pkt, &conn, to);
    }
    match fate {
        Ok(verdict) => Ok(verdict),
        // Counted and reported here, with what the halves knew (`vpc_eni_ingress` reports the
        // drops before them).
        Err(reason) => {
            monitor::dropped(eni.port, &s.pkt, &conn, reason, to);
            Ok(stats::drop(reason))
        }
    }
}

/// The sender's side: its connection or its egress security groups, then the route (cached in
/// the connection, else `route::resolve`) and the TTL. `None`: on to `conn.hop`'s receiver.
#[inline(always)]
fn sender_half(
    ctx: &XdpContext,
    eni: &Eni,
    ip: &parse::Ipv4Hdr,
    s: &mut ct::Scratch,
    conn: &mut ct::Conn,
) -> Result<Option<u32>, DropReason> {
    match ct::send(eni.port, eni.route_table, &s.pkt, conn)? {
        vpc_common::ct::route::DELIVER => {}
        vpc_common::ct::route::HOST => {
            ct::commit(eni.port, None, s, conn)?;
            return Ok(Some(XDP_PASS));
        }
        _ => return icmp::time_exceeded(ctx, eni).map(Some),
    }
    // A connection's cached route skips `resolve`, which answers expiring datagrams.
    if ip.ttl <= 1 {
        return icmp::time_exceeded(ctx, eni).map(Some);
    }
    Ok(None)
}

/// The receiver's side, for a packet on its way to `conn.hop`: the receiver's ingress security
/// groups (cached in the sender's connection), its MTU, the connection recorded at both sides,
/// then rewrite and deliver. A tunnel's ingress program will call only this half.
#[inline(always)]
fn receiver_half(
    ctx: &XdpContext,
    eni: &Eni,
    ip: &mut parse::Ipv4Hdr,
    s: &mut ct::Scratch,
    conn: &mut ct::Conn,
) -> Result<u32, DropReason> {
    let port = conn.hop;
    ct::receive(eni.port, &port, &s.pkt, conn)?;
    if s.pkt.bytes > u64::from(port.mtu) {
        return if parse::frag_off(ip) & parse::IP_DF != 0 { icmp::frag_needed(ctx, eni, port.mtu) } else { Err(DropReason::TooBig) };
    }
    ct::commit(eni.port, Some(&port), s, conn)?;
    if port.flags & PORT_F_TUNNEL != 0 {
        // To another host, which decrements the TTL and writes the MACs.
        return tunnel::encap(ctx, eni, &port, &s.pkt);
    }
    rewrite::decrement_ttl(ip)?;
    rewrite::ethernet(parse::eth(ctx)?, &port);
    deliver::to_port(ctx, port.port)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
