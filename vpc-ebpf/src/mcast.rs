//! Multicast: XDP admits a sender's packet to a group (see `vpc_common::mcast`), the TC program
//! below clones it to every member here whose ingress rules accept it, and one encapsulated
//! copy to every other host with members. There the underlay's XDP program checks the copy
//! (`arrived`) and the TC program on the underlay clones it to that host's members only.

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC, xdp_action::XDP_PASS},
    helpers::generated::{bpf_skb_change_tail, bpf_xdp_adjust_meta},
    programs::{TcContext, XdpContext},
};
use vpc_common::{
    DropReason, Eni, event, flow_hash,
    flowlog::PORT_FLOW_LOG,
    frag::FragKey,
    mcast::{ARRIVAL_MAGIC, MAX_MEMBERS, McastArrival, McastCounters, McastGroup, McastKey, McastSenderKey, group_mac},
    sg::direction,
    tunnel::{self, ENCAP_LEN, Encap, HOST_UP, MCAST_ENI, TC_XMIT_MAGIC, TcXmit},
};

use crate::{
    ct,
    maps::{ENIS, HOSTS, MCAST_GROUPS, MCAST_MEMBER_STATS, MCAST_SENDERS, MCAST_STATS, PORT_GROUPS, UNDERLAY},
    packet::Packet,
    parse::{self, ETH_HLEN, ETH_P_IP, EthHdr, IPPROTO_TCP, IPPROTO_UDP, Ipv4Hdr, frag_off, ipv4_header_len},
    sg, stats,
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

/// Is `pkt`'s group known, and `eni` one of its senders? (A refused sender is counted on the
/// group.)
#[inline(always)]
fn may_send(eni: &Eni, pkt: &Packet) -> Result<(), DropReason> {
    let key = McastKey { vpc: eni.vpc_id, group: pkt.daddr };
    // SAFETY: read once; the agent replaces groups whole.
    let Some(group) = (unsafe { MCAST_GROUPS.get(&key) }) else { return Err(DropReason::McastUnknownGroup) };
    let sender = McastSenderKey { vpc: eni.vpc_id, group: pkt.daddr, port: eni.port };
    // SAFETY: as above.
    if unsafe { MCAST_SENDERS.get(&sender) }.is_none() {
        count(MCAST_STATS.get_ptr_mut(group.counter), 0, true);
        return Err(DropReason::McastNotSender);
    }
    Ok(())
}

/// XDP: may `eni` send `pkt` to its group? `Ok` passes it to the TC program.
#[inline(never)]
pub fn admit(eni: &Eni, pkt: &Packet, conn: &mut ct::Conn) -> Result<(), DropReason> {
    may_send(eni, pkt)?;
    // The sender's egress rules apply as to any packet; a group has no connections.
    ct::send_stateless(eni.port, pkt, conn)
}

/// XDP on the underlay: a copy for this host's members of a group, decapsulated, from `eni`
/// on another host (checked by `tunnel::arrival`), if the group is known here and `eni` is one
/// of its senders (its own host judged its egress rules). Its Ethernet header made a group's,
/// from the sender, and the sender named in the metadata, it passes to the TC program.
#[inline(never)]
pub fn arrived(ctx: &XdpContext, eni: &Eni, pkt: &Packet) -> Result<u32, DropReason> {
    let ctx = core::hint::black_box(ctx);
    may_send(eni, pkt)?;
    let eth = parse::eth(ctx)?;
    eth.dst = group_mac(pkt.daddr);
    eth.src = eni.mac;
    let meta = McastArrival { magic: ARRIVAL_MAGIC, vpc: eni.vpc_id, sender: eni.port, vouched: u32::from(pkt.vouched) };
    // SAFETY: room in front of our own frame; the pointers are taken afresh after.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(core::mem::size_of::<McastArrival>() as i32)) } != 0 {
        return Err(DropReason::Malformed);
    }
    let (start, end) = (ctx.metadata(), ctx.data());
    if start + core::mem::size_of::<McastArrival>() > end {
        return Err(DropReason::Malformed);
    }
    // SAFETY: checked to lie inside the metadata just made.
    unsafe { core::ptr::write_unaligned(start as *mut McastArrival, meta) };
    Ok(XDP_PASS)
}

/// The sender of a multicast packet the TC program sees.
#[derive(Default)]
struct McastSender {
    vpc: u32,
    port: u32,
    vouched: bool,
    /// A copy from another host (named in the metadata), not a sender of this one.
    from_overlay: bool,
}

/// Who sent the multicast packet in `ctx` (`false`: no ENI here, and no copy from another
/// host). Written through `out`, every field defined on every path (LLVM left a register of a
/// returned tuple undefined on one, which the verifier refuses).
#[inline(never)]
fn sender_of(ctx: &TcContext, saddr: u32, out: &mut McastSender) -> bool {
    // SAFETY: the context's skb pointer is valid for the program's run.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    // SAFETY (both lookups): read once.
    if let Some(eni) = unsafe { ENIS.get(&ifindex) } {
        *out = McastSender { vpc: eni.vpc_id, port: eni.port, vouched: saddr == eni.ip, from_overlay: false };
        return true;
    }
    let Some(underlay) = (unsafe { UNDERLAY.get(&0) }) else { return false };
    if underlay.ifindex != ifindex {
        return false;
    }
    // SAFETY: as above; the metadata bounds are checked before the read.
    let (start, end) = unsafe { ((*ctx.skb.skb).data_meta as usize, (*ctx.skb.skb).data as usize) };
    if start + core::mem::size_of::<McastArrival>() > end {
        return false;
    }
    // SAFETY: checked just above.
    let meta = unsafe { core::ptr::read_unaligned(start as *const McastArrival) };
    *out = McastSender { vpc: meta.vpc, port: meta.sender, vouched: meta.vouched != 0, from_overlay: true };
    meta.magic == ARRIVAL_MAGIC
}

/// TC ingress on every ENI interface and the underlay: a multicast packet XDP admitted is
/// cloned to each member (and, from a sender here, to each other host with members) and not
/// passed on; an encapsulated frame XDP could not transmit is sent on the underlay; anything
/// else goes on untouched.
#[aya_ebpf::macros::classifier]
pub fn vpc_mcast(ctx: TcContext) -> i32 {
    if let Some(action) = tc_xmit(&ctx) {
        return action;
    }
    replicate(&ctx).unwrap_or(TC_ACT_OK as i32)
}

/// An encapsulated frame XDP passed with `TcXmit` in its metadata (`tunnel::encap` when XDP
/// cannot transmit on the underlay): redirected out of the underlay.
#[inline(always)]
fn tc_xmit(ctx: &TcContext) -> Option<i32> {
    // SAFETY: the context's skb pointer is valid for the program's run; the metadata bounds
    // are checked before the read.
    let (start, end) = unsafe { ((*ctx.skb.skb).data_meta as usize, (*ctx.skb.skb).data as usize) };
    if start + core::mem::size_of::<TcXmit>() > end {
        return None;
    }
    // SAFETY: checked just above.
    let meta = unsafe { core::ptr::read_unaligned(start as *const TcXmit) };
    if meta.magic != TC_XMIT_MAGIC {
        return None;
    }
    // SAFETY: read once.
    let Some(underlay) = (unsafe { UNDERLAY.get(&0) }) else {
        stats::drop(DropReason::NoUnderlay);
        return Some(TC_ACT_SHOT as i32);
    };
    // SAFETY: a plain helper call on our own skb.
    Some(unsafe { aya_ebpf::helpers::generated::bpf_redirect(underlay.ifindex, 0) } as i32)
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
    let mut sender = McastSender::default();
    if !sender_of(ctx, saddr, &mut sender) {
        return Ok(TC_ACT_OK as i32);
    }
    let McastSender { vpc, port: sender_port, vouched, from_overlay } = sender;
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
    let mut slot = core::mem::MaybeUninit::uninit();
    Packet::copy(&mut slot, &ip, ports, vouched);
    // SAFETY: `copy` wrote every field.
    let pkt = unsafe { slot.assume_init() };
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
    // Head-end replication: a copy from another host is never sent on.
    if !from_overlay && group.host_count > 0 {
        let sport = tunnel::source_port(flow_hash(pkt.saddr, pkt.daddr, pkt.ports, pkt.proto));
        let copy = HostCopy { vpc, sender: sender_port, inner_len: pkt.bytes as u32, sport, tos: ip.tos };
        to_hosts(ctx, group, &copy);
    }
    Ok(TC_ACT_SHOT as i32)
}

/// What every host's copy of one packet shares.
struct HostCopy {
    vpc: u32,
    sender: u32,
    inner_len: u32,
    sport: u16,
    tos: u8,
}

/// One encapsulated copy to each other host with members of `group` that is up (the frame
/// made room for the outer headers once; each copy gets its own destination).
#[inline(never)]
fn to_hosts(ctx: &TcContext, group: &McastGroup, copy: &HostCopy) {
    // SAFETY: read once.
    let Some(underlay) = (unsafe { UNDERLAY.get(&0) }) else { return };
    // The inner packet exactly (Ethernet padding cut): the outer lengths are its length.
    let want = ETH_HLEN as u32 + copy.inner_len;
    // SAFETY: shrinking our own frame to its IP length; nothing is read through old pointers.
    let cut = ctx.len() == want || unsafe { bpf_skb_change_tail(ctx.skb.skb, want, 0) } == 0;
    if !cut || ctx.adjust_room(ENCAP_LEN as i32, BPF_ADJ_ROOM_MAC, 0).is_err() {
        stats::drop(DropReason::NoUnderlay);
        return;
    }
    let hosts = group.host_count.min(MAX_MEMBERS as u32);
    let mut i = 0u32;
    while i < MAX_MEMBERS as u32 && i < hosts {
        let number = group.hosts[i as usize & (MAX_MEMBERS - 1)];
        i += 1;
        // SAFETY: read once.
        let Some(host) = (unsafe { HOSTS.get(&number) }) else { continue };
        if host.flags & HOST_UP == 0 {
            stats::drop(DropReason::HostDown);
            continue;
        }
        let header = tunnel::header(&Encap {
            dst_mac: host.mac,
            src_mac: underlay.mac,
            src_ip: underlay.ip,
            dst_ip: host.ip,
            tos: copy.tos,
            inner_len: copy.inner_len as u16,
            sport: copy.sport,
            vni: copy.vpc,
            src_eni: copy.sender,
            dst_eni: MCAST_ENI,
        });
        if ctx.store(0, &header, 0).is_ok() && ctx.clone_redirect(underlay.ifindex, 0).is_ok() {
            stats::event(event::ENCAPSULATED);
        }
    }
}
