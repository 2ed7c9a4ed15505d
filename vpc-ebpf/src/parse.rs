//! Bounds-checked access to the frame. The only place with raw pointers into packet data.

use aya_ebpf::programs::XdpContext;
use vpc_common::DropReason;

use crate::packet::{Packet, Quoted};

pub const ETH_HLEN: usize = 14;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
/// Don't fragment, in `frag_off`.
pub const IP_DF: u16 = 0x4000;
pub const ETH_P_8021AD: u16 = 0x88a8;

#[repr(C)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// Network order.
    pub ether_type: u16,
}

#[repr(C)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub tot_len: u16,
    pub id: u16,
    pub frag_off: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub check: u16,
    pub saddr: u32,
    pub daddr: u32,
}

/// An ARP packet for IPv4 over Ethernet (RFC 826), the only kind the gateway answers.
#[repr(C)]
pub struct ArpHdr {
    pub htype: u16,
    pub ptype: u16,
    pub hlen: u8,
    pub plen: u8,
    pub oper: u16,
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tha: [u8; 6],
    pub tpa: [u8; 4],
}

/// Length of the frame in bytes.
#[inline(always)]
pub fn frame_len(ctx: &XdpContext) -> u64 {
    (ctx.data_end() - ctx.data()) as u64
}

/// A pointer to a `T` at `offset` into the frame, or `Malformed` when the frame is too short.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Result<*mut T, DropReason> {
    let start = ctx.data();
    if start + offset + core::mem::size_of::<T>() > ctx.data_end() {
        return Err(DropReason::Malformed);
    }
    Ok((start + offset) as *mut T)
}

#[inline(always)]
pub fn eth(ctx: &XdpContext) -> Result<&mut EthHdr, DropReason> {
    // SAFETY: ptr_at checked that the header lies inside the frame.
    ptr_at::<EthHdr>(ctx, 0).map(|p| unsafe { &mut *p })
}

#[inline(always)]
pub fn arp(ctx: &XdpContext) -> Result<&mut ArpHdr, DropReason> {
    // SAFETY: as in `eth`.
    ptr_at::<ArpHdr>(ctx, ETH_HLEN).map(|p| unsafe { &mut *p })
}

/// The IPv4 header after a consistency check: version 4, IHL >= 5, and
/// IHL <= total length <= bytes present (trailing Ethernet padding is allowed).
#[inline(always)]
pub fn ipv4(ctx: &XdpContext) -> Result<&mut Ipv4Hdr, DropReason> {
    let ip = ptr_at::<Ipv4Hdr>(ctx, ETH_HLEN)?;
    // SAFETY: ptr_at checked the fixed part of the header.
    let ip = unsafe { &mut *ip };
    let header_len = usize::from(ip.version_ihl & 0x0f) * 4;
    let total_len = usize::from(u16::from_be(ip.tot_len));
    let present = ctx.data_end() - ctx.data() - ETH_HLEN;
    if ip.version_ihl >> 4 != 4 || header_len < 20 || total_len < header_len || total_len > present {
        return Err(DropReason::Malformed);
    }
    Ok(ip)
}

/// IPv4 header length in bytes (after `ipv4` checked it).
#[inline(always)]
pub fn ipv4_header_len(ip: &Ipv4Hdr) -> usize {
    usize::from(ip.version_ihl & 0x0f) * 4
}

/// The datagram's `frag_off` (host order).
#[inline(always)]
pub fn frag_off(ip: &Ipv4Hdr) -> u16 {
    u16::from_be(ip.frag_off)
}

/// Payload bytes of the datagram (after `ipv4` checked the lengths).
#[inline(always)]
pub fn payload_len(ip: &Ipv4Hdr) -> usize {
    usize::from(u16::from_be(ip.tot_len)) - ipv4_header_len(ip)
}

/// The destination port rules look at: TCP and UDP only.
#[inline(always)]
pub fn dport(proto: u8, ports: u32) -> Option<u16> {
    if proto == IPPROTO_TCP || proto == IPPROTO_UDP { Some(ports as u16) } else { None }
}

/// Fill in the transport fields of a whole datagram or of a first fragment (whose transport
/// header `frag` has checked is complete).
#[inline(always)]
pub fn l4(ctx: &XdpContext, ip: &Ipv4Hdr, pkt: &mut Packet) -> Result<(), DropReason> {
    pkt.ports = 0;
    pkt.tag = 0;
    pkt.dport = None;
    pkt.tcp_flags = 0;
    pkt.opens = true;
    pkt.icmp_error = false;
    pkt.quoted = None;
    let l4 = ETH_HLEN + ipv4_header_len(ip);
    match ip.protocol {
        IPPROTO_TCP => {
            // SAFETY: ptr_at checked ports, sequence and acknowledgement numbers and the flags.
            let tcp = unsafe { *ptr_at::<[u8; 14]>(ctx, l4)? };
            pkt.ports = u32::from_be_bytes([tcp[0], tcp[1], tcp[2], tcp[3]]);
            pkt.dport = dport(ip.protocol, pkt.ports);
            pkt.tcp_flags = tcp[13];
        }
        IPPROTO_UDP => {
            // SAFETY: ptr_at checked the two ports.
            let udp = unsafe { *ptr_at::<[u8; 4]>(ctx, l4)? };
            pkt.ports = u32::from_be_bytes(udp);
            pkt.dport = dport(ip.protocol, pkt.ports);
        }
        IPPROTO_ICMP => {
            // SAFETY: type, code, checksum, identifier: 6 bytes checked.
            let icmp = unsafe { *ptr_at::<[u8; 6]>(ctx, l4)? };
            if vpc_common::ct::is_icmp_forbidden(icmp[0]) {
                return Err(DropReason::IcmpInvalid);
            }
            let (ports, tag, opens) = vpc_common::ct::icmp_key(icmp[0], icmp[1], u16::from_be_bytes([icmp[4], icmp[5]]));
            pkt.ports = ports;
            pkt.tag = tag;
            pkt.opens = opens;
            if vpc_common::ct::is_icmp_error(icmp[0]) {
                pkt.icmp_error = true;
                pkt.quoted = quoted(ctx, ip)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The packet an ICMP error quotes, after checking that the error is one: no IP options, not
/// fragmented, at most 576 bytes, a quote of an IPv4 header and the 8 bytes after it, no longer
/// than the quoted datagram was, of a TCP, UDP or other datagram or of an ICMP query (hosts do
/// not send errors about errors). Anything else is `IcmpInvalid`. `None`: a quote of a later
/// fragment, which no connection can be found for.
#[inline(always)]
pub fn quoted(ctx: &XdpContext, ip: &Ipv4Hdr) -> Result<Option<Quoted>, DropReason> {
    let total = usize::from(u16::from_be(ip.tot_len));
    if ipv4_header_len(ip) != 20 || frag_off(ip) & 0x3fff != 0 || total > vpc_common::ct::ICMP_ERROR_MAX_LEN {
        return Err(DropReason::IcmpInvalid);
    }
    let inner_at = ETH_HLEN + 20 + 8;
    let inner = ptr_at::<Ipv4Hdr>(ctx, inner_at).map_err(|_| DropReason::IcmpInvalid)?;
    // SAFETY: ptr_at checked the quoted header's fixed part.
    let inner = unsafe { &*inner };
    let inner_len = usize::from(inner.version_ihl & 0x0f) * 4;
    let quote_len = total - 28;
    if inner.version_ihl >> 4 != 4 || inner_len < 20 || quote_len < inner_len + 8 || quote_len > usize::from(u16::from_be(inner.tot_len)) {
        return Err(DropReason::IcmpInvalid);
    }
    if frag_off(inner) & 0x1fff != 0 {
        return Ok(None);
    }
    // SAFETY: ptr_at checked the 8 quoted bytes after the quoted header.
    let l4 = unsafe { *ptr_at::<[u8; 8]>(ctx, inner_at + (inner_len & 0x3c)).map_err(|_| DropReason::IcmpInvalid)? };
    let proto = inner.protocol;
    let (ports, tag) = match proto {
        IPPROTO_TCP | IPPROTO_UDP => (u32::from_be_bytes([l4[0], l4[1], l4[2], l4[3]]), 0),
        IPPROTO_ICMP if vpc_common::ct::is_icmp_query(l4[0]) => {
            let (ports, tag, _) = vpc_common::ct::icmp_key(l4[0], l4[1], u16::from_be_bytes([l4[4], l4[5]]));
            (ports, tag)
        }
        IPPROTO_ICMP => return Err(DropReason::IcmpInvalid),
        _ => (0, 0),
    };
    Ok(Some(Quoted { saddr: inner.saddr, daddr: inner.daddr, ports, proto: vpc_common::ct::key_proto(u32::from(proto), tag) }))
}
