//! Header rewrites done by the gateway on the way through.

use vpc_common::{DropReason, Port};

use crate::parse::{EthHdr, Ipv4Hdr};

/// Decrement the TTL and patch the header checksum incrementally (RFC 1624): the TTL is the high
/// byte of its 16-bit word, so the checksum grows by 0x0100 with an end-around carry.
/// The caller has checked that the TTL is above 1.
#[inline(always)]
pub fn decrement_ttl(ip: &mut Ipv4Hdr) -> Result<(), DropReason> {
    if ip.ttl <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    ip.ttl -= 1;
    let sum = u32::from(u16::from_be(ip.check)) + 0x0100;
    let sum = sum + u32::from(sum >= 0xffff);
    ip.check = (sum as u16).to_be();
    Ok(())
}

/// The frame now comes from the destination VSwitch's gateway and goes to the destination ENI.
#[inline(always)]
pub fn ethernet(eth: &mut EthHdr, port: &Port) {
    eth.dst = port.mac;
    eth.src = port.gw_mac;
}
