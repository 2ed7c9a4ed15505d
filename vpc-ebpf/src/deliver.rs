//! Handing a frame to an ENI: redirect through the DEVMAP and count it on the port.
//!
//! ARP replies go back to the asking ENI this way too, not with XDP_TX: on a veth, XDP_TX
//! frames are queued on the peer but its NAPI is only kicked when the peer runs an XDP program
//! (veth_xdp_flush), so with GRO-only peers they would sit unseen. A redirect is flushed with
//! XDP_XMIT_FLUSH and arrives.

use aya_ebpf::programs::XdpContext;
use vpc_common::DropReason;

use crate::{maps::TX_PORTS, parse, stats};

#[inline(always)]
pub fn to_port(ctx: &XdpContext, port: u32) -> Result<u32, DropReason> {
    let action = TX_PORTS.redirect(port, 0).map_err(|_| DropReason::PortDown)?;
    stats::tx(port, parse::frame_len(ctx));
    Ok(action)
}
