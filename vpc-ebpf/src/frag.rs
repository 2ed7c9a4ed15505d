//! IP fragments follow their first fragment: see `vpc_common::frag` for the rules and the
//! order supported. The first fragment is parsed like a whole datagram and its transport fields
//! remembered in the sender's slots of `FRAGS`; a later fragment gets those fields back, so everything after this
//! module treats it as a packet of the same connection.

use aya_ebpf::programs::XdpContext;
use vpc_common::{
    DropReason, event,
    frag::{FRAG_TIMEOUT, FragEntry, FragKey, FragSlot, Fragment, OPENS, USED, find, min_first_len, place, slots},
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
        Fragment::Later { offset, last } => later(ip, port, offset, last, pkt),
    }
}

#[inline(always)]
fn key(ip: &Ipv4Hdr, port: u32) -> FragKey {
    FragKey { port, saddr: ip.saddr, daddr: ip.daddr, id: u16::from_be(ip.id), proto: ip.protocol, _pad: 0 }
}

/// The two slots a datagram of `key` may hold.
#[inline(always)]
fn held(key: &FragKey) -> Result<[*mut FragSlot; 2], DropReason> {
    let [a, b] = slots(key);
    Ok([FRAGS.get_ptr_mut(a).ok_or(DropReason::FragNoFirst)?, FRAGS.get_ptr_mut(b).ok_or(DropReason::FragNoFirst)?])
}

/// The slot holding the datagram of `key`, as the other programs read it (multicast copies).
#[inline(always)]
pub fn lookup(key: &FragKey) -> Option<&'static FragSlot> {
    let [a, b] = held(key).ok()?;
    // SAFETY: array slots live as long as the map.
    let held = unsafe { [&*a, &*b] };
    find(key, held).map(|i| held[i & 1])
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
    let [a, b] = held(&key)?;
    // SAFETY: array slots live as long as the map; only the sender's packets write its slots.
    let held = unsafe { [&mut *a, &mut *b] };
    let at = place(&key, [&*held[0], &*held[1]]) & 1;
    let slot = &mut *held[at];
    if slot.key == key && slot.entry.flags & USED != 0 && !slot.entry.complete() && now.wrapping_sub(slot.entry.created) <= FRAG_TIMEOUT {
        // The datagram's first fragment again, while its other fragments are still coming.
        return Err(DropReason::FragOverlap);
    }
    slot.key = key;
    slot.entry = FragEntry {
        ports: pkt.ports,
        received: payload as u32,
        total: 0,
        created: now,
        first_len: payload as u16,
        flags: USED | if pkt.opens { OPENS } else { 0 },
        tag: pkt.tag,
    };
    stats::event(event::FRAG_TRACKED);
    Ok(())
}

/// A later fragment, at `offset` (the last one: `last`): the fields of its datagram's first
/// fragment.
#[inline(never)]
fn later(ip: &Ipv4Hdr, port: u32, offset: u32, last: bool, pkt: &mut Packet) -> Result<(), DropReason> {
    let now = pkt.now;
    if offset == 8 {
        return Err(DropReason::FragOffsetOne);
    }
    let key = key(ip, port);
    let [a, b] = held(&key)?;
    // SAFETY: as in `first`.
    let held = unsafe { [&mut *a, &mut *b] };
    let at = find(&key, [&*held[0], &*held[1]]).ok_or(DropReason::FragNoFirst)? & 1;
    let entry = &mut held[at].entry;
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
    pkt.tag = entry.tag;
    pkt.dport = parse::dport(ip.protocol, entry.ports);
    pkt.tcp_flags = 0;
    pkt.opens = entry.flags & OPENS != 0;
    pkt.icmp_error = false;
    pkt.quoted = None;
    Ok(())
}
