//! The VPC data path: one XDP program on the host side of every ENI and gateway interface.
//!
//! parse -> sender + anti-spoof -> ARP answer | sender's conntrack + security groups (egress)
//! -> route (cached in the connection, else LPM per route table, VPC crossing, ECMP) -> decision
//! (deliver | host stack | drop) -> TTL (ICMP time exceeded) -> receiver's conntrack + security
//! groups (ingress) -> rewrite -> deliver (DEVMAP redirect). Every drop is counted by reason
//! (`stats::drop`). Multicast: `mcast::admit`, then the TC program `mcast::vpc_mcast` clones.
#![no_std]
#![no_main]
// Atomic adds on shared conntrack counters: the BPF target has no compare-and-swap, so
// `AtomicU64::fetch_add` is not offered; the intrinsic lowers to BPF's atomic add.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod arp;
mod bench;
mod ct;
mod flowlog;
mod deliver;
mod eni;
mod icmp;
mod maps;
mod mcast;
mod parse;
mod rewrite;
mod route;
mod sg;
mod stats;

use aya_ebpf::{bindings::xdp_action::XDP_PASS, macros::xdp, programs::XdpContext};
use vpc_common::{event, flow_hash, DropReason, Eni};

#[xdp]
pub fn vpc_eni_ingress(ctx: XdpContext) -> u32 {
    match from_eni(&ctx) {
        Ok(action) => action,
        Err(reason) => stats::drop(reason),
    }
}

/// The benchmarks' baseline, run the same way as `vpc_eni_ingress`: what remains of a
/// measurement after subtracting it is the data path's own cost. Never attached.
#[xdp]
pub fn vpc_bench_empty(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

#[inline(always)]
fn from_eni(ctx: &XdpContext) -> Result<u32, DropReason> {
    let eni = eni::sender(ctx)?;
    stats::rx(eni.port, parse::frame_len(ctx));
    let eth = parse::eth(ctx)?;
    eni::check_mac(eni, &eth.src)?;
    match u16::from_be(eth.ether_type) {
        parse::ETH_P_IP => forward_ipv4(ctx, eni),
        parse::ETH_P_ARP => arp::answer(ctx, eni),
        _ => Err(DropReason::NotIpv4),
    }
}

#[inline(always)]
fn forward_ipv4(ctx: &XdpContext, eni: &Eni) -> Result<u32, DropReason> {
    let ip = parse::ipv4(ctx)?;
    eni::check_source_ip(eni, ip.saddr)?;
    let l4 = parse::l4(ctx, ip)?;
    let pkt = ct::Packet {
        saddr: ip.saddr,
        daddr: ip.daddr,
        ports: l4.ports,
        proto: u32::from(ip.protocol),
        dport: l4.dport,
        tcp_flags: l4.tcp_flags,
        bytes: u64::from(u16::from_be(ip.tot_len)),
        quoted: if l4.icmp_error { parse::quoted(ctx, ip) } else { None },
        epoch: ct::epoch(),
        now: ct::now(),
    };
    let epoch = pkt.epoch;
    // To a multicast group: admitted here, replicated to the members by the TC program.
    if vpc_common::mcast::is_multicast(pkt.daddr) {
        mcast::admit(eni, &pkt)?;
        return Ok(XDP_PASS);
    }
    // The sender's security groups (egress) and connection; its entry caches the route.
    let mut sent = core::ptr::null_mut();
    let verdict = ct::track(eni.port, false, &pkt, &mut sent);
    if verdict != ct::PASS {
        return Err(DropReason::from_u32(verdict).unwrap_or(DropReason::SgEgress));
    }
    let decision = match ct::cached_route(sent, epoch) {
        Some(cached) => {
            stats::event(event::FLOW_CACHE_HIT);
            cached
        }
        None => {
            stats::event(event::FLOW_CACHE_MISS);
            let decided = route::resolve(eni.route_table, pkt.daddr, || flow_hash(pkt.saddr, pkt.daddr, pkt.ports, pkt.proto));
            ct::cache_route(sent, epoch, &decided);
            decided
        }
    };
    let port = match decision? {
        route::Decision::Deliver(port) => port,
        route::Decision::ToHost => return Ok(XDP_PASS),
    };
    if ip.ttl <= 1 {
        return icmp::time_exceeded(ctx, eni);
    }
    // The receiver's security groups (ingress) and connection.
    let mut received = core::ptr::null_mut();
    let verdict = ct::track(port.port, true, &pkt, &mut received);
    if verdict != ct::PASS {
        return Err(DropReason::from_u32(verdict).unwrap_or(DropReason::SgIngress));
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
