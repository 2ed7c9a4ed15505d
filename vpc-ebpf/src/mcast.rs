//! Multicast: XDP admits a sender's packet to a group (see `vpc_common::mcast`), the TC program
//! below clones it to every member whose ingress rules accept it.

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT},
    programs::TcContext,
};
use vpc_common::{
    DropReason, Eni,
    flowlog::PORT_FLOW_LOG,
    frag::FragKey,
    mcast::{MAX_MEMBERS, McastCounters, McastKey, McastSenderKey},
    sg::direction,
};

use crate::{
    ct,
    maps::{ENIS, MCAST_GROUPS, MCAST_MEMBER_STATS, MCAST_SENDERS, MCAST_STATS, PORT_GROUPS},
    packet::Packet,
    parse::{ETH_HLEN, ETH_P_IP, EthHdr, IPPROTO_TCP, IPPROTO_UDP, Ipv4Hdr, frag_off, ipv4_header_len},
    sg,
};

#[inline(always)]
fn count(map_counter: Option<*mut McastCounters>, bytes: u64, refused: bool) {
    if let Some(c) = map_counter {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe {
            if refused {
                (*c).refused += 1;
            } else {
                (*c).packets += 1;
                (*c).bytes += bytes;
            }
        }
    }
}

/// XDP: may `eni` send `pkt` to its group? `Ok` passes it to the TC program.
#[inline(never)]
pub fn admit(eni: &Eni, pkt: &Packet, conn: &mut ct::Conn) -> Result<(), DropReason> {
    let key = McastKey { vpc: eni.vpc_id, group: pkt.daddr };
    // SAFETY: read once; the agent replaces groups whole.
    let Some(group) = (unsafe { MCAST_GROUPS.get(&key) }) else { return Err(DropReason::McastUnknownGroup) };
    let sender = McastSenderKey { vpc: eni.vpc_id, group: pkt.daddr, port: eni.port };
    // SAFETY: as above.
    if unsafe { MCAST_SENDERS.get(&sender) }.is_none() {
        count(MCAST_STATS.get_ptr_mut(group.counter), 0, true);
        return Err(DropReason::McastNotSender);
    }
    // The sender's egress rules apply as to any packet; a group has no connections.
    ct::send_stateless(eni.port, pkt, conn)
}

/// TC ingress on every ENI interface: a multicast packet XDP admitted is cloned to each member
/// and not passed on; anything else goes on untouched.
#[aya_ebpf::macros::classifier]
pub fn vpc_mcast(ctx: TcContext) -> i32 {
    replicate(&ctx).unwrap_or(TC_ACT_OK as i32)
}

#[inline(always)]
fn replicate(ctx: &TcContext) -> Result<i32, ()> {
    // TC reads the frame through a helper: the headers are copied, then read as XDP reads them.
    let eth: EthHdr = ctx.load(0).map_err(|_| ())?;
    if u16::from_be(eth.ether_type) != ETH_P_IP {
        return Ok(TC_ACT_OK as i32);
    }
    let ip: Ipv4Hdr = ctx.load(ETH_HLEN).map_err(|_| ())?;
    let (saddr, daddr, proto) = (ip.saddr, ip.daddr, ip.protocol);
    if !vpc_common::mcast::is_multicast(daddr) {
        return Ok(TC_ACT_OK as i32);
    }
    // SAFETY: the context's skb pointer is valid for the program's run.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    // SAFETY: read once.
    let Some(eni) = (unsafe { ENIS.get(&ifindex) }) else { return Ok(TC_ACT_OK as i32) };
    let (vpc, sender_port) = (eni.vpc_id, eni.port);
    // SAFETY: read once.
    let Some(group) = (unsafe { MCAST_GROUPS.get(&McastKey { vpc, group: daddr }) }) else { return Ok(TC_ACT_SHOT as i32) };
    // XDP admitted only senders; check again: the configuration may have changed in between.
    // SAFETY: read once.
    if unsafe { MCAST_SENDERS.get(&McastSenderKey { vpc, group: daddr, port: sender_port }) }.is_none() {
        return Ok(TC_ACT_SHOT as i32);
    }
    // A later fragment has the ports XDP found for its first fragment (it checked it has one).
    let ports: u32 = if frag_off(&ip) & 0x1fff != 0 {
        let key = FragKey { port: sender_port, saddr, daddr, id: u16::from_be(ip.id), proto, _pad: 0 };
        match crate::frag::lookup(&key) {
            Some(slot) => slot.entry.ports,
            None => return Ok(TC_ACT_SHOT as i32),
        }
    } else if proto == IPPROTO_TCP || proto == IPPROTO_UDP {
        u32::from_be(ctx.load(ETH_HLEN + ipv4_header_len(&ip)).map_err(|_| ())?)
    } else {
        0
    };
    let pkt = Packet::copy(&ip, ports, saddr == eni.ip);
    let dport = pkt.dport;
    count(MCAST_STATS.get_ptr_mut(group.counter), pkt.bytes, false);
    let members = group.count.min(MAX_MEMBERS as u32);
    let mut i = 0u32;
    while i < MAX_MEMBERS as u32 && i < members {
        let member = group.members[i as usize & (MAX_MEMBERS - 1)];
        i += 1;
        if member.port == sender_port {
            continue;
        }
        let groups = PORT_GROUPS.get(member.port);
        let verdict = match groups {
            Some(g) if g.count > 0 => sg::decide(g, direction::INGRESS, pkt.proto, saddr, dport, pkt.vouched),
            // Members are ENIs: without groups (a configuration being written) nothing passes.
            _ => sg::Verdict { accept: false, rule: vpc_common::ct::NO_RULE },
        };
        let accepted = verdict.accept;
        if groups.is_some_and(|g| g.flags & PORT_FLOW_LOG != 0) {
            crate::flowlog::count_received(member.port, u32::from(accepted), verdict.rule, &pkt);
        }
        let stats = MCAST_MEMBER_STATS.get_ptr_mut(member.counter);
        if !accepted || pkt.bytes > u64::from(member.mtu) {
            count(stats, 0, true);
            continue;
        }
        if ctx.clone_redirect(member.ifindex, 0).is_ok() {
            count(stats, pkt.bytes, false);
        }
    }
    Ok(TC_ACT_SHOT as i32)
}
