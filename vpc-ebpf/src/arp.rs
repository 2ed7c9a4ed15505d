//! The VSwitch gateway's ARP responder: every address of the VPC resolves to the gateway MAC,
//! so guests never learn each other's MACs and all their traffic comes through the data path.

use aya_ebpf::programs::XdpContext;
use vpc_common::{DropReason, Eni};

use crate::{deliver, eni, parse};

const ARPHRD_ETHER: u16 = 1;
const ARPOP_REQUEST: u16 = 1;
const ARPOP_REPLY: u16 = 2;

/// Answer an ARP request from `eni` in place and send it back to the same ENI.
#[inline(always)]
pub fn answer(ctx: &XdpContext, eni: &Eni) -> Result<u32, DropReason> {
    let arp = parse::arp(ctx)?;
    if u16::from_be(arp.htype) != ARPHRD_ETHER
        || u16::from_be(arp.ptype) != parse::ETH_P_IP
        || arp.hlen != 6
        || arp.plen != 4
    {
        return Err(DropReason::Malformed);
    }
    if u16::from_be(arp.oper) != ARPOP_REQUEST {
        return Err(DropReason::ArpIgnored);
    }
    eni::check_mac(eni, &arp.sha)?;
    let sender_ip = u32::from_ne_bytes(arp.spa);
    let target_ip = u32::from_ne_bytes(arp.tpa);
    if sender_ip == 0 {
        // An address probe (RFC 5227): nobody else may own a VPC address, so stay silent.
        return Err(DropReason::ArpIgnored);
    }
    eni::check_source_ip(eni, sender_ip)?;
    if target_ip & eni.vpc_mask != eni.vpc_net || target_ip == eni.ip {
        return Err(DropReason::ArpIgnored);
    }

    arp.oper = ARPOP_REPLY.to_be();
    arp.tha = arp.sha;
    arp.tpa = arp.spa;
    arp.sha = eni.gw_mac;
    arp.spa = target_ip.to_ne_bytes();
    let eth = parse::eth(ctx)?;
    eth.dst = eth.src;
    eth.src = eni.gw_mac;
    deliver::to_port(ctx, eni.port)
}
