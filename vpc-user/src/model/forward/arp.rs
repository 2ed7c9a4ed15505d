//! The VSwitch gateway answering ARP for every address of the VPC.

use std::net::Ipv4Addr;

use vpc_common::DropReason;

use super::{ETH_HLEN, Outcome, Sender, format_mac};

pub(super) enum ArpVerdict {
    /// A reply was built in place, for the asker.
    Answered,
    /// A guest's reply to the host itself: for the host stack.
    ToHost,
}

/// The gateway answers ARP requests for any address of the VPC but the sender's own; the reply
/// is built in place and goes back to the asker. A guest's replies to the gateway MAC (the host
/// interface's own) go to the host stack.
pub(super) fn answer_arp(sender: &Sender<'_>, out: &mut Outcome) -> Result<ArpVerdict, DropReason> {
    let frame = &mut out.frame;
    let arp = frame.get(ETH_HLEN..ETH_HLEN + 28).ok_or(DropReason::Malformed)?;
    let (htype, ptype, hlen, plen) = (u16::from_be_bytes([arp[0], arp[1]]), u16::from_be_bytes([arp[2], arp[3]]), arp[4], arp[5]);
    if htype != 1 || ptype != 0x0800 || hlen != 6 || plen != 4 {
        return Err(DropReason::Malformed);
    }
    let oper = u16::from_be_bytes([arp[6], arp[7]]);
    if oper != 1 && oper != 2 {
        return Err(DropReason::ArpIgnored);
    }
    if arp[8..14] != sender.mac {
        return Err(DropReason::SpoofedMac);
    }
    let sender_ip = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
    let target_ip = Ipv4Addr::new(arp[24], arp[25], arp[26], arp[27]);
    let own = sender.ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    if oper == 2 {
        if sender.source_check && sender_ip != own {
            return Err(DropReason::SpoofedIp);
        }
        return if arp[18..24] == sender.gw_mac { Ok(ArpVerdict::ToHost) } else { Err(DropReason::ArpIgnored) };
    }
    if sender_ip.is_unspecified() {
        return Err(DropReason::ArpIgnored);
    }
    if sender.source_check && sender_ip != own {
        return Err(DropReason::SpoofedIp);
    }
    if !sender.vpc.cidr.contains(&target_ip) || target_ip == own {
        return Err(DropReason::ArpIgnored);
    }
    out.steps.push(format!("ARP: {target_ip} is-at {} (gateway)", format_mac(&sender.gw_mac)));
    let a = ETH_HLEN;
    frame[a + 7] = 2; // reply
    let requester_mac: [u8; 6] = frame[a + 8..a + 14].try_into().expect("6 bytes");
    frame.copy_within(a + 8..a + 18, a + 18); // tha/tpa = sha/spa
    frame[a + 8..a + 14].copy_from_slice(&sender.gw_mac);
    frame[a + 14..a + 18].copy_from_slice(&target_ip.octets());
    frame[0..6].copy_from_slice(&requester_mac);
    frame[6..12].copy_from_slice(&sender.gw_mac);
    Ok(ArpVerdict::Answered)
}
