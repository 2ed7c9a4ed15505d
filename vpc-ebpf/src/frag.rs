//! IP fragments follow their first fragment: see `vpc_common::frag` for the rules and the
//! order supported. The first fragment is parsed like a whole datagram and its transport fields
//! remembered in `FRAGS`; a later fragment gets those fields back, so everything after this
//! module treats it as a packet of the same connection.

use aya_ebpf::programs::XdpContext;
use vpc_common::{
    event,
    frag::{min_first_len, FragEntry, FragKey, Fragment, FRAG_TIMEOUT},
    DropReason,
};

use crate::{
    maps::FRAGS,
    packet::Packet,
    parse::{self, Ipv4Hdr},
    stats,
};

/// Fill in the transport fields of the datagram from `port`, fragmented or not.
#[inline(always)]
pub fn l4(ctx: &XdpContext, ip: &Ipv4Hdr, port: u32, pkt: &mut Packet) -> Result<(), DropReason> {
    match Fragment::of(parse::frag_off(ip)) {
        Fragment::Whole => parse::l4(ctx, ip, pkt),
        Fragment::First => first(ctx, ip, port, pkt),
        Fragment::Later { .. } => later(ip, port, pkt),
    }
}

#[inline(always)]
fn key(ip: &Ipv4Hdr, port: u32) -> FragKey {
    FragKey { port, saddr: ip.saddr, daddr: ip.daddr, id: u16::from_be(ip.id), proto: ip.protocol, _pad: 0 }
}

/// A first fragment: its transport header must be whole; remembered for the later ones.
#[inline(never)]
fn first(ctx: &XdpContext, ip: &Ipv4Hdr, port: u32, pkt: &mut Packet) -> Result<(), DropReason> {
    let payload = parse::payload_len(ip);
    if payload < min_first_len(ip.protocol) {
        return Err(DropReason::FragTiny);
    }
    parse::l4(ctx, ip, pkt)?;
    let now = pkt.now;
    let key = key(ip, port);
    // SAFETY: read at once; only this program writes the map.
    if let Some(seen) = unsafe { FRAGS.get(&key) }
        && !seen.complete()
        && now.wrapping_sub(seen.created) <= FRAG_TIMEOUT
    {
        // The datagram's first fragment again, while its other fragments are still coming.
        return Err(DropReason::FragOverlap);
    }
    let entry = FragEntry {
        ports: pkt.ports,
        received: payload as u32,
        total: 0,
        created: now,
        first_len: payload as u16,
        opens: u8::from(pkt.opens),
        _pad: 0,
    };
    // Full (LRU): the oldest datagram in flight loses its entry, and its later fragments drop.
    let _ = FRAGS.insert(&key, &entry, 0);
    stats::event(event::FRAG_TRACKED);
    Ok(())
}

/// A later fragment: the fields of its datagram's first fragment.
#[inline(never)]
fn later(ip: &Ipv4Hdr, port: u32, pkt: &mut Packet) -> Result<(), DropReason> {
    let now = pkt.now;
    let Fragment::Later { offset, last } = Fragment::of(parse::frag_off(ip)) else { return Err(DropReason::Malformed) };
    if offset == 8 {
        return Err(DropReason::FragOffsetOne);
    }
    let key = key(ip, port);
    let entry = FRAGS.get_ptr_mut(&key).ok_or(DropReason::FragNoFirst)?;
    // SAFETY: a live element; fragments of one datagram come from one sender, one at a time.
    let entry = unsafe { &mut *entry };
    if entry.complete() || now.wrapping_sub(entry.created) > FRAG_TIMEOUT {
        return Err(DropReason::FragNoFirst);
    }
    if offset < u32::from(entry.first_len) {
        return Err(DropReason::FragOverlap);
    }
    let payload = parse::payload_len(ip) as u32;
    entry.received += payload;
    if last {
        entry.total = offset + payload;
    }
    stats::event(event::FRAG_FOLLOWED);
    pkt.ports = entry.ports;
    pkt.dport = parse::dport(ip.protocol, entry.ports);
    pkt.tcp_flags = 0;
    pkt.opens = entry.opens != 0;
    pkt.icmp_error = false;
    pkt.quoted = None;
    Ok(())
}
