//! Bounds-checked access to the frame. The only place with raw pointers into packet data.

use aya_ebpf::programs::XdpContext;
use vpc_common::DropReason;

pub const ETH_HLEN: usize = 14;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;

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

/// Whether the datagram is a fragment (more fragments follow, or not the first).
#[inline(always)]
pub fn is_fragment(ip: &Ipv4Hdr) -> bool {
    u16::from_be(ip.frag_off) & 0x3fff != 0
}

/// What the data path needs from the transport header.
#[derive(Clone, Copy)]
pub struct L4 {
    /// Source port in the high half, destination port in the low half: TCP and UDP ports; the
    /// ICMP echo identifier in both halves (so a request and its reply share a connection); 0
    /// for fragments and other protocols.
    pub ports: u32,
    /// The destination port security-group port ranges apply to: TCP and UDP, not fragments.
    pub dport: Option<u16>,
    pub tcp_flags: u8,
    /// An ICMP error (it quotes the packet it is about).
    pub icmp_error: bool,
}

/// The destination port rules look at; none when both ports are 0 (as for fragments, which are
/// tracked with ports 0).
#[inline(always)]
fn dport(ports: u32) -> Option<u16> {
    if ports == 0 { None } else { Some(ports as u16) }
}

/// The transport fields of the datagram.
#[inline(always)]
pub fn l4(ctx: &XdpContext, ip: &Ipv4Hdr) -> Result<L4, DropReason> {
    let none = L4 { ports: 0, dport: None, tcp_flags: 0, icmp_error: false };
    if is_fragment(ip) {
        return Ok(none);
    }
    let l4 = ETH_HLEN + ipv4_header_len(ip);
    match ip.protocol {
        IPPROTO_TCP => {
            // SAFETY: ptr_at checked ports, sequence and acknowledgement numbers and the flags.
            let tcp = unsafe { *ptr_at::<[u8; 14]>(ctx, l4)? };
            let ports = u32::from_be_bytes([tcp[0], tcp[1], tcp[2], tcp[3]]);
            Ok(L4 { ports, dport: dport(ports), tcp_flags: tcp[13], icmp_error: false })
        }
        IPPROTO_UDP => {
            // SAFETY: ptr_at checked the two ports.
            let udp = unsafe { *ptr_at::<[u8; 4]>(ctx, l4)? };
            let ports = u32::from_be_bytes(udp);
            Ok(L4 { ports, dport: dport(ports), ..none })
        }
        IPPROTO_ICMP => {
            // SAFETY: type, code, checksum, identifier: 6 bytes checked.
            let icmp = unsafe { *ptr_at::<[u8; 6]>(ctx, l4)? };
            let ports = match icmp[0] {
                0 | 8 => u32::from(u16::from_be_bytes([icmp[4], icmp[5]])) * 0x1_0001,
                _ => 0,
            };
            Ok(L4 { ports, icmp_error: vpc_common::ct::is_icmp_error(icmp[0]), ..none })
        }
        _ => Ok(none),
    }
}

/// The packet an ICMP error quotes, as (saddr, daddr, ports, proto) with ports as `l4` gives
/// them. Only for an error without IP options whose quote holds the header and 8 bytes.
#[inline(always)]
pub fn quoted(ctx: &XdpContext, ip: &Ipv4Hdr) -> Option<(u32, u32, u32, u32)> {
    if ipv4_header_len(ip) != 20 {
        return None;
    }
    let inner_at = ETH_HLEN + 20 + 8;
    // SAFETY: ptr_at checked the quoted header's fixed part.
    let inner = unsafe { &*ptr_at::<Ipv4Hdr>(ctx, inner_at).ok()? };
    let inner_len = usize::from(inner.version_ihl & 0x0f) * 4;
    if inner.version_ihl >> 4 != 4 || inner_len < 20 {
        return None;
    }
    let proto = inner.protocol;
    let ports = if is_fragment(inner) {
        0
    } else {
        // SAFETY: ptr_at checked the 8 quoted bytes after the quoted header.
        let l4 = unsafe { *ptr_at::<[u8; 8]>(ctx, inner_at + (inner_len & 0x3c)).ok()? };
        match proto {
            IPPROTO_TCP | IPPROTO_UDP => u32::from_be_bytes([l4[0], l4[1], l4[2], l4[3]]),
            IPPROTO_ICMP if l4[0] == 0 || l4[0] == 8 => u32::from(u16::from_be_bytes([l4[4], l4[5]])) * 0x1_0001,
            _ => 0,
        }
    };
    Some((inner.saddr, inner.daddr, ports, u32::from(proto)))
}
