//! Reading a frame's bytes as the data path does (`vpc-ebpf/src/parse.rs`): the transport fields
//! and the packet an ICMP error quotes.

use std::net::Ipv4Addr;

use vpc_common::DropReason;

pub(super) const ETH_HLEN: usize = 14;

/// The transport fields as the data path reads them (`vpc-ebpf/src/parse.rs::l4`).
pub(super) struct L4 {
    pub(super) ports: u32,
    /// The ICMP tag of a query or reply (`vpc_common::ct::icmp_key`).
    pub(super) tag: u8,
    pub(super) dport: Option<u16>,
    pub(super) tcp_flags: u8,
    pub(super) opens: bool,
    pub(super) icmp_error: bool,
    pub(super) quoted: Option<(Ipv4Addr, Ipv4Addr, u32, u32)>,
}

pub(super) fn l4(frame: &[u8], header_len: usize) -> Result<L4, DropReason> {
    let none = L4 { ports: 0, tag: 0, dport: None, tcp_flags: 0, opens: true, icmp_error: false, quoted: None };
    let at = ETH_HLEN + header_len;
    let proto = frame[ETH_HLEN + 9];
    match proto {
        6 => {
            let t = frame.get(at..at + 14).ok_or(DropReason::Malformed)?;
            let ports = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
            Ok(L4 { ports, dport: Some(ports as u16), tcp_flags: t[13], ..none })
        }
        17 => {
            let u = frame.get(at..at + 4).ok_or(DropReason::Malformed)?;
            let ports = u32::from_be_bytes([u[0], u[1], u[2], u[3]]);
            Ok(L4 { ports, dport: Some(ports as u16), ..none })
        }
        1 => {
            let i = frame.get(at..at + 6).ok_or(DropReason::Malformed)?;
            if vpc_common::ct::is_icmp_forbidden(i[0]) {
                return Err(DropReason::IcmpInvalid);
            }
            let (ports, tag, opens) = vpc_common::ct::icmp_key(i[0], i[1], u16::from_be_bytes([i[4], i[5]]));
            if vpc_common::ct::is_icmp_error(i[0]) {
                return Ok(L4 { ports, opens: false, icmp_error: true, quoted: quoted(frame, header_len)?, ..none });
            }
            Ok(L4 { ports, tag, opens, ..none })
        }
        _ => Ok(none),
    }
}

/// The packet an ICMP error quotes, after checking the error is one (`vpc-ebpf/src/parse.rs::
/// quoted`): no IP options, not fragmented, at most 576 bytes, a quote of an IPv4 header and 8
/// bytes no longer than the quoted datagram was, not about an ICMP error. `None`: a quote of a
/// later fragment.
pub(super) fn quoted(frame: &[u8], header_len: usize) -> Result<Option<(Ipv4Addr, Ipv4Addr, u32, u32)>, DropReason> {
    let ip = &frame[ETH_HLEN..];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if header_len != 20 || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 || total > vpc_common::ct::ICMP_ERROR_MAX_LEN {
        return Err(DropReason::IcmpInvalid);
    }
    let at = ETH_HLEN + 20 + 8;
    let inner = frame.get(at..at + 20).ok_or(DropReason::IcmpInvalid)?;
    let inner_len = usize::from(inner[0] & 0x0f) * 4;
    let quote_len = total - 28;
    if inner[0] >> 4 != 4
        || inner_len < 20
        || quote_len < inner_len + 8
        || quote_len > usize::from(u16::from_be_bytes([inner[2], inner[3]]))
    {
        return Err(DropReason::IcmpInvalid);
    }
    if u16::from_be_bytes([inner[6], inner[7]]) & 0x1fff != 0 {
        return Ok(None);
    }
    let l4 = frame.get(at + inner_len..at + inner_len + 8).ok_or(DropReason::IcmpInvalid)?;
    let proto = inner[9];
    let (ports, tag) = match proto {
        6 | 17 => (u32::from_be_bytes([l4[0], l4[1], l4[2], l4[3]]), 0),
        1 if vpc_common::ct::is_icmp_query(l4[0]) => {
            let (ports, tag, _) = vpc_common::ct::icmp_key(l4[0], l4[1], u16::from_be_bytes([l4[4], l4[5]]));
            (ports, tag)
        }
        1 => return Err(DropReason::IcmpInvalid),
        _ => (0, 0),
    };
    let key_proto = vpc_common::ct::key_proto(u32::from(proto), tag);
    Ok(Some((
        Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]),
        Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]),
        ports,
        key_proto,
    )))
}
