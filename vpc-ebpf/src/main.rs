//! The VPC data path: one XDP program on the host side of every ENI and gateway interface.
//!
//! parse -> sender + anti-spoof -> ARP answer | flow cache or route (LPM per route table, VPC
//! crossing, ECMP) -> decision (deliver | host stack | drop) -> TTL (ICMP time exceeded) ->
//! rewrite -> deliver (DEVMAP redirect). Every drop is counted by reason (`stats::drop`).
#![no_std]
#![no_main]

mod arp;
mod deliver;
mod eni;
mod flow;
mod icmp;
mod maps;
mod parse;
mod rewrite;
mod route;
mod stats;

use aya_ebpf::{bindings::xdp_action::XDP_PASS, macros::xdp, programs::XdpContext};
use vpc_common::{flow_hash, DropReason, Eni, FlowKey};

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
    let key = FlowKey {
        ifindex: ctx.ingress_ifindex() as u32,
        saddr: ip.saddr,
        daddr: ip.daddr,
        ports: parse::flow_ports(ctx, ip)?,
        proto: u32::from(ip.protocol),
    };
    let decision = flow::decision(&key, || {
        route::resolve(eni.route_table, key.daddr, || flow_hash(key.saddr, key.daddr, key.ports, key.proto))
    })?;
    let port = match decision {
        route::Decision::Deliver(port) => port,
        route::Decision::ToHost => return Ok(XDP_PASS),
    };
    if ip.ttl <= 1 {
        return icmp::time_exceeded(ctx, eni);
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
