//! A small frame builder for tests, the fuzzer, the benchmarks and `vpc trace`.

use std::net::Ipv4Addr;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const BROADCAST: [u8; 6] = [0xff; 6];

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_GRE: u8 = 47;

/// Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP request for IPv4 over Ethernet, broadcast.
pub fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = Vec::with_capacity(28);
    a.extend_from_slice(&1u16.to_be_bytes());
    a.extend_from_slice(&ETH_P_IP.to_be_bytes());
    a.extend_from_slice(&[6, 4]);
    a.extend_from_slice(&1u16.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa.octets());
    ethernet(BROADCAST, sha, ETH_P_ARP, &a)
}

/// An IPv4 packet builder.
#[derive(Debug, Clone)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub protocol: u8,
    pub id: u16,
    pub tos: u8,
    /// Raw frag_off field (flags and offset).
    pub frag_off: u16,
    /// IP options, padded to 4 bytes.
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Ipv4 {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: Vec<u8>) -> Self {
        Ipv4 { src, dst, ttl: 64, protocol, id: 0x1234, tos: 0, frag_off: 0x4000, options: Vec::new(), payload }
    }

    pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Self {
        Ipv4::new(src, dst, PROTO_UDP, udp(sport, dport, data))
    }

    pub fn tcp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, flags: u8) -> Self {
        Ipv4::new(src, dst, PROTO_TCP, tcp(sport, dport, flags))
    }

    pub fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16) -> Self {
        Ipv4::new(src, dst, PROTO_ICMP, icmp_echo(8, id, seq, b"vpc-ping"))
    }

    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    /// The TCP or UDP checksum filled in (RFC 793 / 768 pseudo header), so a real receiver
    /// takes the segment; call it before cutting fragments.
    pub fn checksummed(mut self) -> Self {
        let at = match self.protocol {
            PROTO_TCP => 16,
            PROTO_UDP => 6,
            _ => return self,
        };
        if self.payload.len() < at + 2 {
            return self;
        }
        self.payload[at..at + 2].copy_from_slice(&[0, 0]);
        let mut pseudo = Vec::with_capacity(12 + self.payload.len());
        pseudo.extend_from_slice(&self.src.octets());
        pseudo.extend_from_slice(&self.dst.octets());
        pseudo.extend_from_slice(&[0, self.protocol]);
        pseudo.extend_from_slice(&(self.payload.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(&self.payload);
        let sum = match checksum(&pseudo) {
            0 if self.protocol == PROTO_UDP => 0xffff,
            c => c,
        };
        self.payload[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        self
    }

    /// The packet bytes with a correct header checksum.
    pub fn bytes(&self) -> Vec<u8> {
        let mut options = self.options.clone();
        while options.len() % 4 != 0 {
            options.push(0);
        }
        let header_len = 20 + options.len();
        let total = header_len + self.payload.len();
        let mut p = Vec::with_capacity(total);
        p.push(0x40 | (header_len / 4) as u8);
        p.push(self.tos);
        p.extend_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&self.id.to_be_bytes());
        p.extend_from_slice(&self.frag_off.to_be_bytes());
        p.push(self.ttl);
        p.push(self.protocol);
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        p.extend_from_slice(&options);
        let check = checksum(&p[..header_len]);
        p[10..12].copy_from_slice(&check.to_be_bytes());
        p.extend_from_slice(&self.payload);
        p
    }

    /// The packet in an Ethernet frame.
    pub fn frame(&self, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        ethernet(dst, src, ETH_P_IP, &self.bytes())
    }
}

/// A UDP datagram (checksum 0: optional in IPv4).
pub fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + data.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// A TCP segment header without options or payload.
pub fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::with_capacity(20);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&1000u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.push(5 << 4);
    t.push(flags);
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t
}

/// An ICMP echo request (type 8) or reply (type 0).
pub fn icmp_echo(kind: u8, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut i = vec![kind, 0, 0, 0];
    i.extend_from_slice(&id.to_be_bytes());
    i.extend_from_slice(&seq.to_be_bytes());
    i.extend_from_slice(data);
    let check = checksum(&i);
    i[2..4].copy_from_slice(&check.to_be_bytes());
    i
}

/// An ICMP error (`kind`/`code`, `rest` in the header's last four bytes: the next-hop MTU for
/// fragmentation needed) quoting the IP packet `about`: its header and the 8 bytes after it.
pub fn icmp_error(kind: u8, code: u8, rest: u32, about: &[u8]) -> Vec<u8> {
    let header_len = usize::from(about.first().copied().unwrap_or(0x45) & 0x0f) * 4;
    let mut i = vec![kind, code, 0, 0];
    i.extend_from_slice(&rest.to_be_bytes());
    i.extend_from_slice(&about[..(header_len + 8).min(about.len())]);
    let check = checksum(&i);
    i[2..4].copy_from_slice(&check.to_be_bytes());
    i
}

/// The IP fragments of `packet` (its payload cut at multiples of 8 bytes, at most `chunk`
/// payload bytes each), in order; their header copies `packet`'s with MF and the offset set
/// (and DF clear: a datagram cut into fragments had none).
pub fn fragments(packet: &Ipv4, chunk: usize) -> Vec<Ipv4> {
    let chunk = chunk.max(8) / 8 * 8;
    let pieces: Vec<&[u8]> = packet.payload.chunks(chunk).collect();
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let more = if i + 1 < pieces.len() { 0x2000 } else { 0 };
            let offset = (i * chunk / 8) as u16;
            Ipv4 { frag_off: more | offset, payload: piece.to_vec(), ..packet.clone() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = Ipv4::udp(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 1, 2, b"x").bytes();
        assert_eq!(checksum(&p[..20]), 0, "a correct header sums to zero");
        assert_eq!(p.len(), 20 + 8 + 1);
    }

    #[test]
    fn options_are_padded() {
        let mut ip = Ipv4::udp(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 1, 2, b"");
        ip.options = vec![1, 1, 1];
        let p = ip.bytes();
        assert_eq!(p[0], 0x46);
        assert_eq!(checksum(&p[..24]), 0);
    }

    #[test]
    fn fragments_cover_the_payload_at_multiples_of_eight() {
        let p = Ipv4::udp(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 1, 2, &[7; 100]);
        let f = fragments(&p, 50);
        assert_eq!(f.len(), 3, "108 payload bytes in pieces of 48");
        assert_eq!(f.iter().map(|f| f.payload.len()).sum::<usize>(), 108);
        assert_eq!(f.iter().map(|f| f.frag_off).collect::<Vec<_>>(), vec![0x2000, 0x2006, 0x000c]);
    }

    #[test]
    fn arp_request_layout() {
        let f = arp_request([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[0..6], &BROADCAST);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[38..42], &[10, 0, 0, 2]);
    }
}
