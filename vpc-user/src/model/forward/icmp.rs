//! ICMP errors the VSwitch gateway sends in the model: time exceeded and fragmentation needed.

use vpc_common::DropReason;

use super::{Action, ETH_HLEN, Model, Outcome, Sender};

/// The ICMP errors the VSwitch gateway sends.
pub(super) enum IcmpError {
    TimeExceeded,
    /// With the next-hop MTU.
    FragNeeded(u16),
}

impl Model<'_> {
    /// The VSwitch gateway answers an expiring datagram with ICMP time exceeded, or one over
    /// the receiver's MTU with DF set with fragmentation needed, quoting its header and 8 bytes,
    /// unless it is a later fragment, an ICMP error, carries IP options, is too short, or comes
    /// from a gateway: those are dropped (`TtlExceeded`, `TooBig`). (The data path also
    /// rate-limits these; the model assumes the bucket has room.)
    pub(super) fn icmp_error(
        &self,
        sender: &Sender<'_>,
        header_len: usize,
        error: IcmpError,
        out: &mut Outcome,
    ) -> Result<Action, DropReason> {
        let (kind, code, mtu, unanswered) = match error {
            IcmpError::TimeExceeded => (11u8, 0u8, 0u16, DropReason::TtlExceeded),
            IcmpError::FragNeeded(mtu) => (3, 4, mtu, DropReason::TooBig),
        };
        let frame = &out.frame;
        let ip = &frame[ETH_HLEN..];
        let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let frag_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
        let Some(gw_ip) = sender.gw_ip else { return Err(unanswered) };
        if frag_offset != 0 || header_len != 20 || total_len < header_len + 8 {
            return Err(unanswered);
        }
        if ip[9] == 1 && !matches!(ip.get(header_len), Some(0 | 8 | 13 | 14)) {
            return Err(unanswered);
        }
        let quoted = &ip[..header_len + 8];
        let mut icmp = vec![kind, code, 0, 0, 0, 0, (mtu >> 8) as u8, mtu as u8];
        icmp.extend_from_slice(quoted);
        let check = crate::packet::checksum(&icmp);
        icmp[2..4].copy_from_slice(&check.to_be_bytes());
        let mut header = vec![0x45, (ip[1] & 0x1e) | 0xc0];
        header.extend_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
        header.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0]);
        header.extend_from_slice(&gw_ip.octets());
        header.extend_from_slice(&ip[12..16]);
        let check = crate::packet::checksum(&header);
        header[10..12].copy_from_slice(&check.to_be_bytes());
        let mut reply = Vec::with_capacity(ETH_HLEN + header.len() + icmp.len());
        reply.extend_from_slice(&sender.mac);
        reply.extend_from_slice(&sender.gw_mac);
        reply.extend_from_slice(&[0x08, 0x00]);
        reply.extend_from_slice(&header);
        reply.extend_from_slice(&icmp);
        out.frame = reply;
        out.icmp_sent = Some((u32::from(kind) << 8) | u32::from(code));
        out.steps.push(match error {
            IcmpError::TimeExceeded => format!("TTL expired: ICMP time exceeded from {gw_ip}"),
            IcmpError::FragNeeded(mtu) => format!("over the receiver's MTU {mtu} with DF: ICMP fragmentation needed from {gw_ip}"),
        });
        self.deliver(&sender.port, &self.own_id(sender), out)
    }
}
