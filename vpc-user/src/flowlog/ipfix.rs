//! IPFIX (RFC 7011) export over UDP: every message carries the template (UDP may lose or
//! reorder it), then data records with the standard information elements and enterprise ones
//! (PEN 32473, the documentation number of RFC 5612) for the VPC ids and the log status.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use anyhow::Context as _;

use super::{Record, RecordSink};

pub const TEMPLATE_ID: u16 = 256;
/// Private enterprise number of the vpc-specific elements.
pub const PEN: u32 = 32473;
/// Keep messages under a typical MTU.
const MAX_MESSAGE: usize = 1400;

/// (element id, length) of the standard elements, in record order.
const STANDARD: [(u16, u16); 13] = [
    (8, 4),   // sourceIPv4Address
    (12, 4),  // destinationIPv4Address
    (7, 2),   // sourceTransportPort
    (11, 2),  // destinationTransportPort
    (4, 1),   // protocolIdentifier
    (2, 8),   // packetDeltaCount
    (1, 8),   // octetDeltaCount
    (152, 8), // flowStartMilliseconds
    (153, 8), // flowEndMilliseconds
    (61, 1),  // flowDirection: 0 ingress (to the ENI), 1 egress (from it)
    (10, 4),  // ingressInterface: the ENI's host interface for traffic from it
    (14, 4),  // egressInterface: the ENI's host interface for traffic to it
    (233, 1), // firewallEvent: 1 created (ACCEPT), 3 denied (REJECT)
];

/// Enterprise elements (ids under `PEN`), variable-length strings, in record order.
pub const ENTERPRISE: [(u16, &str); 7] =
    [(1, "vpc-id"), (2, "vswitch-id"), (3, "eni-id"), (4, "vm-id"), (5, "account-id"), (6, "log-status"), (7, "rule-id")];

pub struct Exporter {
    socket: UdpSocket,
    sequence: u32,
    /// Observation domain id.
    pub domain: u32,
}

impl Exporter {
    pub fn open(collector: SocketAddrV4) -> anyhow::Result<Exporter> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).context("binding the IPFIX exporter's socket")?;
        socket.connect(collector).with_context(|| format!("IPFIX collector {collector}"))?;
        Ok(Exporter { socket, sequence: 0, domain: 1 })
    }
}

fn template_set() -> Vec<u8> {
    let mut fields = Vec::new();
    for (id, len) in STANDARD {
        fields.extend_from_slice(&id.to_be_bytes());
        fields.extend_from_slice(&len.to_be_bytes());
    }
    for (id, _) in ENTERPRISE {
        fields.extend_from_slice(&(0x8000 | id).to_be_bytes());
        fields.extend_from_slice(&0xffffu16.to_be_bytes());
        fields.extend_from_slice(&PEN.to_be_bytes());
    }
    let count = (STANDARD.len() + ENTERPRISE.len()) as u16;
    let mut set = Vec::new();
    set.extend_from_slice(&2u16.to_be_bytes());
    set.extend_from_slice(&((4 + 4 + fields.len()) as u16).to_be_bytes());
    set.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
    set.extend_from_slice(&count.to_be_bytes());
    set.extend_from_slice(&fields);
    set
}

/// One data record: the values in template order. Interfaces are the ENI port given.
pub fn data_record(r: &Record, port: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&r.srcaddr.unwrap_or(Ipv4Addr::UNSPECIFIED).octets());
    out.extend_from_slice(&r.dstaddr.unwrap_or(Ipv4Addr::UNSPECIFIED).octets());
    out.extend_from_slice(&r.srcport.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&r.dstport.unwrap_or(0).to_be_bytes());
    out.push(r.protocol.unwrap_or(0));
    out.extend_from_slice(&r.packets.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&r.bytes.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&(r.start * 1000).to_be_bytes());
    out.extend_from_slice(&(r.end * 1000).to_be_bytes());
    let to_eni = r.direction.as_deref() == Some("in");
    out.push(if to_eni { 0 } else { 1 });
    out.extend_from_slice(&(if to_eni { 0 } else { port }).to_be_bytes());
    out.extend_from_slice(&(if to_eni { port } else { 0 }).to_be_bytes());
    out.push(match r.action.as_deref() {
        Some("ACCEPT") => 1,
        Some("REJECT") => 3,
        _ => 0,
    });
    let rule = r.rule_id.clone().unwrap_or_default();
    for text in [&r.vpc_id, &r.vswitch_id, &r.eni_id, &r.vm_id, &r.account_id, &r.log_status, &rule] {
        let bytes = text.as_bytes();
        if bytes.len() < 255 {
            out.push(bytes.len() as u8);
        } else {
            out.push(255);
            out.extend_from_slice(&(bytes.len().min(65535) as u16).to_be_bytes());
        }
        out.extend_from_slice(&bytes[..bytes.len().min(65535)]);
    }
    out
}

/// Messages carrying `records` (with their ENI ports), starting at `sequence`.
pub fn messages(records: &[(Record, u32)], mut sequence: u32, domain: u32, export_time: u32) -> (Vec<Vec<u8>>, u32) {
    let template = template_set();
    let mut out = Vec::new();
    let mut pending: Vec<Vec<u8>> = Vec::new();
    let finish = |pending: &mut Vec<Vec<u8>>, sequence: u32, out: &mut Vec<Vec<u8>>| {
        if pending.is_empty() {
            return;
        }
        let data_len: usize = pending.iter().map(Vec::len).sum();
        let total = 16 + template.len() + 4 + data_len;
        let mut m = Vec::with_capacity(total);
        m.extend_from_slice(&10u16.to_be_bytes());
        m.extend_from_slice(&(total as u16).to_be_bytes());
        m.extend_from_slice(&export_time.to_be_bytes());
        m.extend_from_slice(&sequence.to_be_bytes());
        m.extend_from_slice(&domain.to_be_bytes());
        m.extend_from_slice(&template);
        m.extend_from_slice(&TEMPLATE_ID.to_be_bytes());
        m.extend_from_slice(&((4 + data_len) as u16).to_be_bytes());
        for r in pending.drain(..) {
            m.extend_from_slice(&r);
        }
        out.push(m);
    };
    let mut first_seq = sequence;
    for (record, port) in records {
        let data = data_record(record, *port);
        let size: usize = 16 + template.len() + 4 + pending.iter().map(Vec::len).sum::<usize>() + data.len();
        if size > MAX_MESSAGE && !pending.is_empty() {
            finish(&mut pending, first_seq, &mut out);
            first_seq = sequence;
        }
        pending.push(data);
        // The sequence number counts data records sent before a message (RFC 7011, 3.1).
        sequence = sequence.wrapping_add(1);
    }
    finish(&mut pending, first_seq, &mut out);
    (out, sequence)
}

impl RecordSink for Exporter {
    fn write(&mut self, records: &[Record]) -> anyhow::Result<()> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32);
        let with_ports: Vec<(Record, u32)> = records.iter().map(|r| (r.clone(), r.ifindex)).collect();
        let (messages, next) = messages(&with_ports, self.sequence, self.domain, now);
        for m in messages {
            self.socket.send(&m).context("sending IPFIX")?;
        }
        self.sequence = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_well_formed_and_split_under_the_mtu() {
        let eni = super::super::EniInfo {
            eni_id: "eni-a".into(),
            eni_name: "a".into(),
            vswitch_id: "vsw-a".into(),
            vpc_id: "vpc-a".into(),
            port: 7,
            ifindex: 7,
        };
        let record = Record { srcaddr: Some(Ipv4Addr::new(10, 0, 0, 1)), packets: Some(3), ..Record::empty(&eni, "acct", 100, 110, "OK") };
        let records: Vec<(Record, u32)> = (0..40).map(|_| (record.clone(), 7)).collect();
        let (msgs, next) = messages(&records, 5, 1, 1000);
        assert_eq!(next, 45);
        assert!(msgs.len() > 1);
        let mut seq = 5;
        for m in &msgs {
            assert!(m.len() <= MAX_MESSAGE);
            assert_eq!(u16::from_be_bytes([m[0], m[1]]), 10);
            assert_eq!(u16::from_be_bytes([m[2], m[3]]) as usize, m.len());
            assert_eq!(u32::from_be_bytes([m[8], m[9], m[10], m[11]]), seq);
            let template_len = u16::from_be_bytes([m[18], m[19]]) as usize;
            let data = &m[16 + template_len..];
            assert_eq!(u16::from_be_bytes([data[0], data[1]]), TEMPLATE_ID);
            let per = data_record(&record, 7).len();
            let n = (u16::from_be_bytes([data[2], data[3]]) as usize - 4) / per;
            seq += n as u32;
        }
        assert_eq!(seq, 45, "sequence numbers count the records before each message");
    }
}
