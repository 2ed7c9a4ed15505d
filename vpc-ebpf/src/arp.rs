//! The VSwitch gateway's ARP responder: every address of the VPC resolves to the gateway MAC,
//! so guests never learn each other's MACs and all their traffic comes through the data path.

use aya_ebpf::{bindings::xdp_action::XDP_PASS, programs::XdpContext};
use vpc_common::{DropReason, Eni};

use crate::{deliver, eni, parse};

const ARPHRD_ETHER: u16 = 1;
const ARPOP_REQUEST: u16 = 1;
const ARPOP_REPLY: u16 = 2;

/// Answer an ARP request from `eni` in place and send it back to the same ENI; pass to the host
/// stack the guest's replies to the host itself (its interface carries the gateway MAC), which
/// the host needs to send to the guest on the cloud-services path.
#[inline(never)]
pub fn answer(ctx: &XdpContext, eni: &Eni) -> Result<u32, DropReason> {
    let arp = parse::arp(ctx)?;
    if u16::from_be(arp.htype) != ARPHRD_ETHER || u16::from_be(arp.ptype) != parse::ETH_P_IP || arp.hlen != 6 || arp.plen != 4 {
        return Err(DropReason::Malformed);
    }
    let oper = u16::from_be(arp.oper);
    if oper != ARPOP_REQUEST && oper != ARPOP_REPLY {
        return Err(DropReason::ArpIgnored);
    }
    eni::check_mac(eni, &arp.sha)?;
    let sender_ip = u32::from_ne_bytes(arp.spa);
    let target_ip = u32::from_ne_bytes(arp.tpa);
    if oper == ARPOP_REPLY {
        eni::check_source_ip(eni, sender_ip)?;
        return if arp.tha == eni.gw_mac { Ok(XDP_PASS) } else { Err(DropReason::ArpIgnored) };
    }
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
