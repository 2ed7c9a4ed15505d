//! Fragments in the model: a later fragment takes its transport fields from its datagram's
//! first one (`vpc_common::frag`), as the data path's fragment slots do.

use std::collections::BTreeMap;

use vpc_common::DropReason;

use super::{
    Model, Outcome,
    frame::{ETH_HLEN, L4, l4},
};

impl Model<'_> {
    /// The transport fields of the datagram from `port`: a whole datagram's or a first
    /// fragment's own, a later fragment's from its first fragment (`vpc_common::frag`).
    pub(super) fn fragment_l4(&mut self, port: u32, frame: &[u8], header_len: usize, out: &mut Outcome) -> Result<L4, DropReason> {
        use vpc_common::frag::{FragEntry, FragKey, FragSlot, Fragment, OPENS, USED, min_first_len};
        let ip = &frame[ETH_HLEN..];
        let payload = usize::from(u16::from_be_bytes([ip[2], ip[3]])) - header_len;
        let key = FragKey {
            port,
            saddr: u32::from_ne_bytes([ip[12], ip[13], ip[14], ip[15]]),
            daddr: u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]),
            id: u16::from_be_bytes([ip[4], ip[5]]),
            proto: ip[9],
            _pad: 0,
        };
        let frags = &mut self.conntrack().frags;
        let slots = vpc_common::frag::slots(&key);
        let held = |frags: &BTreeMap<u32, FragSlot>| slots.map(|s| frags.get(&s).copied().unwrap_or_default());
        match Fragment::of(u16::from_be_bytes([ip[6], ip[7]])) {
            Fragment::Whole => l4(frame, header_len),
            Fragment::First => {
                if payload < min_first_len(ip[9]) {
                    return Err(DropReason::FragTiny);
                }
                let l4 = l4(frame, header_len)?;
                let now = held(frags);
                let at = vpc_common::frag::place(&key, [&now[0], &now[1]]);
                if now[at].key == key && now[at].entry.flags & USED != 0 && !now[at].entry.complete() {
                    return Err(DropReason::FragOverlap);
                }
                let first = payload as u32;
                let flags = USED | if l4.opens { OPENS } else { 0 };
                let entry =
                    FragEntry { ports: l4.ports, received: first, total: 0, created: 0, first_len: first as u16, flags, tag: l4.tag };
                frags.insert(slots[at], FragSlot { key, entry });
                out.steps.push(format!("first fragment of datagram {}: {payload} bytes, remembered", key.id));
                Ok(l4)
            }
            Fragment::Later { offset, last } => {
                if offset == 8 {
                    return Err(DropReason::FragOffsetOne);
                }
                let now = held(frags);
                let at = vpc_common::frag::find(&key, [&now[0], &now[1]]).ok_or(DropReason::FragNoFirst)?;
                let entry = &mut frags.get_mut(&slots[at]).expect("found").entry;
                if entry.complete() {
                    return Err(DropReason::FragNoFirst);
                }
                if offset < u32::from(entry.first_len) {
                    return Err(DropReason::FragOverlap);
                }
                entry.received += payload as u32;
                if last {
                    entry.total = offset + payload as u32;
                }
                let (ports, tag) = (entry.ports, entry.tag);
                let opens = entry.flags & OPENS != 0;
                out.steps.push(format!("fragment at {offset} of datagram {}: the first fragment's header", key.id));
                let has_ports = matches!(ip[9], 6 | 17);
                Ok(L4 { ports, tag, dport: has_ports.then_some(ports as u16), tcp_flags: 0, opens, icmp_error: false, quoted: None })
            }
        }
    }
}
