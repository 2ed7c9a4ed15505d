//! Who sent the frame, and may they: ENI lookup by ingress interface and the anti-spoof checks.

use aya_ebpf::programs::XdpContext;
use vpc_common::{DropReason, ENI_F_NO_SRC_DST_CHECK, ENI_SLOT_VALID, Eni};

use crate::maps::{ENI_INDEX, ENI_SLOTS, ENIS};

/// The ENI whose host-side interface received the frame.
#[inline(always)]
pub fn sender(ctx: &XdpContext) -> Result<&'static Eni, DropReason> {
    let ifindex = ctx.ingress_ifindex() as u32;
    // Two array loads, checked by the slot's own ifindex (an index caught mid-switch points at
    // a slot of another interface, or at this one's previous whole value); else the hash.
    if let Some(&slot) = ENI_INDEX.get(ifindex)
        && slot & ENI_SLOT_VALID != 0
        && let Some(eni) = ENI_SLOTS.get(slot & !ENI_SLOT_VALID)
        && eni.ifindex == ifindex
    {
        return Ok(eni);
    }
    // SAFETY: map values live as long as the map; the agent replaces entries whole.
    unsafe { ENIS.get(&ifindex) }.ok_or(DropReason::UnknownEni)
}

/// A guest may only use its own MAC, whatever the EtherType.
#[inline(always)]
pub fn check_mac(eni: &Eni, src: &[u8; 6]) -> Result<(), DropReason> {
    if *src != eni.mac {
        return Err(DropReason::SpoofedMac);
    }
    Ok(())
}

/// A guest may only use its own IPv4 source address, unless its source/destination check is off.
#[inline(always)]
pub fn check_source_ip(eni: &Eni, saddr: u32) -> Result<(), DropReason> {
    if saddr != eni.ip && eni.flags & ENI_F_NO_SRC_DST_CHECK == 0 {
        return Err(DropReason::SpoofedIp);
    }
    Ok(())
}
