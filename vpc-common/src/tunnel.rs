//! The overlay between hosts: Geneve (RFC 8926) over UDP/IPv4, one fixed header shape.
//!
//! A packet to an ENI on another host leaves as the inner IPv4 packet (its Ethernet header
//! dropped: the receiving host rewrites the MACs as for a local delivery) behind an outer
//! Ethernet, IPv4, UDP and Geneve header with one option naming the source and destination
//! ENIs (a NAT, ECMP or standby hop is not the inner destination address). The VNI is the
//! sending ENI's VPC: VPC address spaces overlap. The header is built and read by the functions
//! here, which the XDP program and the model share, so both agree on every byte.
//!
//! | offset | field |
//! |---:|---|
//! | 0 | outer Ethernet: next hop to the host, the underlay's MAC, 0x0800 |
//! | 14 | IPv4: 0x45, inner TOS, length, id 0, DF, TTL 64, UDP, checksum, underlay addresses |
//! | 34 | UDP: source port from the flow hash, 6081, length, checksum 0 |
//! | 42 | Geneve: version 0 and 3 option words, C (a critical option), type 0x0800, VNI |
//! | 50 | option: class 0xFF56 (experimental range), type 0x81 (critical, 1), 2 words |
//! | 54 | source ENI number, destination ENI number (big-endian; `MCAST_ENI` for a multicast copy) |
//! | 62 | the inner IPv4 packet, unchanged |

use crate::Eni;

/// The Geneve UDP port.
pub const GENEVE_PORT: u16 = 6081;
/// Our option class, from RFC 8926's experimental range (0xFF00-0xFFFF).
pub const OPT_CLASS: u16 = 0xFF56;
/// Option type 1 ("ENI pair") with the critical bit: a receiver that does not know it drops.
pub const OPT_TYPE: u8 = 0x81;
/// The option's data: two 32-bit ENI numbers.
pub const OPT_WORDS: u8 = 2;
/// Bytes the overlay adds to a frame: the outer IPv4 (20), UDP (8), Geneve (8) and option (12)
/// headers. The outer Ethernet header takes the inner one's place.
pub const ENCAP_LEN: usize = 48;
/// The outer headers in front of the inner IPv4 packet.
pub const OUTER_LEN: usize = 14 + ENCAP_LEN;
/// What a guest's MTU leaves of the underlay's by default: the 48 bytes used and 10 spare for a
/// future option.
pub const MTU_RESERVE: u16 = 58;
/// The outer TTL.
pub const OUTER_TTL: u8 = 64;

/// The destination ENI number of a multicast copy: every member of the inner packet's group
/// on the receiving host (no port has it: ports count up from 0 within the `enis` map's size).
pub const MCAST_ENI: u32 = u32::MAX;

/// `Host::flags`: the host is up and its underlay neighbour resolved.
pub const HOST_UP: u16 = 1;

/// `TUNNELS`: an ENI on another host, by the port it has on this one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Tunnel {
    /// The ENI as a sender of what arrives from it (`port` its port here, `flags` with
    /// `ENI_F_TUNNEL`, `ifindex` 0).
    pub eni: Eni,
    /// Its host (`HOSTS`; numbers start at 1).
    pub host: u32,
    pub _pad: u32,
}

/// `HOSTS`: another host of the cluster, by number.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Host {
    /// Its underlay address (packet order).
    pub ip: u32,
    /// The MAC of the next hop towards it on the underlay.
    pub mac: [u8; 6],
    /// `HOST_UP`.
    pub flags: u16,
}

/// `UNDERLAY[0]`: this host's interface to the others.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Underlay {
    pub ifindex: u32,
    /// Its address (packet order): the outer source, and what decapsulation answers to.
    pub ip: u32,
    pub mac: [u8; 6],
    pub mtu: u16,
    /// This host's own number.
    pub host: u32,
    /// `UNDERLAY_TC_XMIT`.
    pub flags: u32,
}

/// `Underlay::flags`: XDP cannot transmit on the underlay device (it has no XDP transmit, or
/// a veth whose peer would drop what is redirected into it). An encapsulated frame then passes
/// to the stack with `TcXmit` in its metadata, and the TC program on the ENI sends it on.
pub const UNDERLAY_TC_XMIT: u32 = 1;

/// The metadata in front of an encapsulated frame XDP hands the TC program to send on the
/// underlay (`UNDERLAY_TC_XMIT`): written only by XDP, so a guest cannot make its own frames
/// leave on the underlay.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcXmit {
    /// `TC_XMIT_MAGIC`.
    pub magic: u32,
    /// The destination ENI's port (counted as transmitted by XDP already).
    pub port: u32,
}

/// `TcXmit::magic`.
pub const TC_XMIT_MAGIC: u32 = 0x5643_5458;

/// What a packet's outer headers carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encap {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// Outer addresses (packet order).
    pub src_ip: u32,
    pub dst_ip: u32,
    /// The inner packet's TOS (DSCP and ECN copied outward).
    pub tos: u8,
    /// The inner IPv4 packet's length.
    pub inner_len: u16,
    pub sport: u16,
    pub vni: u32,
    pub src_eni: u32,
    pub dst_eni: u32,
}

/// The outer UDP source port of a flow: its hash in the dynamic range (RFC 8926 §3.3), so the
/// underlay's ECMP spreads flows and keeps each on one path.
#[inline(always)]
pub const fn source_port(flow_hash: u32) -> u16 {
    0x8000 | (flow_hash & 0x7fff) as u16
}

/// The IPv4 header checksum of the 20 bytes at `at` of `h` (its checksum field as it is).
#[inline(always)]
fn ipv4_sum(h: &[u8; OUTER_LEN], at: usize) -> u16 {
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < 20 {
        sum += u32::from(u16::from_be_bytes([h[at + i], h[at + i + 1]]));
        i += 2;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// The outer headers of a packet.
#[inline(always)]
pub fn header(e: &Encap) -> [u8; OUTER_LEN] {
    let mut h = [0u8; OUTER_LEN];
    h[0..6].copy_from_slice(&e.dst_mac);
    h[6..12].copy_from_slice(&e.src_mac);
    h[12] = 0x08;
    h[14] = 0x45;
    h[15] = e.tos;
    h[16..18].copy_from_slice(&(e.inner_len + ENCAP_LEN as u16).to_be_bytes());
    h[20] = 0x40; // DF: the underlay does not fragment; the guest MTU leaves room instead.
    h[22] = OUTER_TTL;
    h[23] = 17;
    h[26..30].copy_from_slice(&e.src_ip.to_ne_bytes());
    h[30..34].copy_from_slice(&e.dst_ip.to_ne_bytes());
    let check = ipv4_sum(&h, 14);
    h[24..26].copy_from_slice(&check.to_be_bytes());
    h[34..36].copy_from_slice(&e.sport.to_be_bytes());
    h[36..38].copy_from_slice(&GENEVE_PORT.to_be_bytes());
    h[38..40].copy_from_slice(&(e.inner_len + (ENCAP_LEN - 20) as u16).to_be_bytes());
    // UDP checksum 0: allowed over IPv4 (RFC 8926 §3.3); the inner packet has its own.
    h[42] = 3; // version 0, 3 words of options
    h[43] = 0x40; // C: a critical option is present
    h[44] = 0x08;
    h[46..49].copy_from_slice(&e.vni.to_be_bytes()[1..4]);
    h[50..52].copy_from_slice(&OPT_CLASS.to_be_bytes());
    h[52] = OPT_TYPE;
    h[53] = OPT_WORDS;
    h[54..58].copy_from_slice(&e.src_eni.to_be_bytes());
    h[58..62].copy_from_slice(&e.dst_eni.to_be_bytes());
    h
}

/// What the outer headers of a frame to this host's underlay say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outer {
    /// Not Geneve to this host (ssh, the store, ARP, anything else): left to the host stack.
    NotOurs,
    /// Geneve to this host that is not ours: a wrong version, length, checksum or option.
    Bad,
    /// One of ours.
    Geneve { src_ip: u32, vni: u32, src_eni: u32, dst_eni: u32 },
}

/// Read the outer headers of a `frame_len`-byte frame to `local_ip`.
#[inline(always)]
pub fn outer(h: &[u8; OUTER_LEN], frame_len: usize, local_ip: u32) -> Outer {
    if h[12] != 0x08 || h[13] != 0 || h[14] >> 4 != 4 || h[23] != 17 {
        return Outer::NotOurs;
    }
    if u32::from_ne_bytes([h[30], h[31], h[32], h[33]]) != local_ip {
        return Outer::NotOurs;
    }
    // With IP options the UDP header is elsewhere: not a packet we send.
    if h[14] != 0x45 || u16::from_be_bytes([h[36], h[37]]) != GENEVE_PORT {
        return Outer::NotOurs;
    }
    let ip_len = usize::from(u16::from_be_bytes([h[16], h[17]]));
    let fragment = u16::from_be_bytes([h[20], h[21]]) & 0x3fff != 0;
    let udp_len = usize::from(u16::from_be_bytes([h[38], h[39]]));
    if fragment
        || ip_len + 14 > frame_len
        || ip_len < ENCAP_LEN + 20
        || udp_len != ip_len - 20
        || ipv4_sum(h, 14) != 0
        || h[42] != 3
        || h[43] & 0x80 != 0
        || u16::from_be_bytes([h[44], h[45]]) != 0x0800
        || u16::from_be_bytes([h[50], h[51]]) != OPT_CLASS
        || h[52] != OPT_TYPE
        || h[53] & 0x1f != OPT_WORDS
    {
        return Outer::Bad;
    }
    Outer::Geneve {
        src_ip: u32::from_ne_bytes([h[26], h[27], h[28], h[29]]),
        vni: u32::from_be_bytes([0, h[46], h[47], h[48]]),
        src_eni: u32::from_be_bytes([h[54], h[55], h[56], h[57]]),
        dst_eni: u32::from_be_bytes([h[58], h[59], h[60], h[61]]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: u32 = u32::from_ne_bytes([10, 0, 0, 2]);

    fn sample() -> Encap {
        Encap {
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_mac: [2, 0, 0, 0, 0, 1],
            src_ip: u32::from_ne_bytes([10, 0, 0, 1]),
            dst_ip: LOCAL,
            tos: 0xb8,
            inner_len: 84,
            sport: source_port(0x1234_5678),
            vni: 0x00ab_cdef,
            src_eni: 7,
            dst_eni: 0x0102_0304,
        }
    }

    #[test]
    fn the_header_reads_back() {
        let h = header(&sample());
        assert_eq!(
            outer(&h, 14 + 84 + ENCAP_LEN, LOCAL),
            Outer::Geneve { src_ip: sample().src_ip, vni: 0x00ab_cdef, src_eni: 7, dst_eni: 0x0102_0304 }
        );
        // Fields at the offsets of the module's table.
        assert_eq!(&h[12..16], &[0x08, 0x00, 0x45, 0xb8]);
        assert_eq!(u16::from_be_bytes([h[16], h[17]]), 84 + 48);
        assert_eq!(&h[20..24], &[0x40, 0, 64, 17]);
        assert_eq!(u16::from_be_bytes([h[34], h[35]]), 0x8000 | 0x5678);
        assert_eq!(u16::from_be_bytes([h[36], h[37]]), 6081);
        assert_eq!(u16::from_be_bytes([h[38], h[39]]), 84 + 28);
        assert_eq!(&h[40..54], &[0, 0, 3, 0x40, 0x08, 0x00, 0xab, 0xcd, 0xef, 0, 0xff, 0x56, 0x81, 2]);
    }

    #[test]
    fn the_outer_checksum_is_the_standard_one() {
        // The sum over a valid header, its checksum included, folds to 0xffff.
        let h = header(&sample());
        let mut sum: u32 = (0..10).map(|i| u32::from(u16::from_be_bytes([h[14 + 2 * i], h[15 + 2 * i]]))).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn what_is_not_geneve_to_us_is_not_ours() {
        let h = header(&sample());
        let len = 14 + 84 + ENCAP_LEN;
        assert_eq!(outer(&h, len, u32::from_ne_bytes([10, 0, 0, 9])), Outer::NotOurs);
        for (at, value) in [(12, 0x86), (14, 0x46), (23, 6), (37, 0x00)] {
            let mut other = h;
            other[at] = value;
            assert_eq!(outer(&other, len, LOCAL), Outer::NotOurs, "byte {at} = {value:#x}");
        }
    }

    #[test]
    fn every_broken_field_is_bad() {
        let h = header(&sample());
        let len = 14 + 84 + ENCAP_LEN;
        // Each changes one field, fixing the checksum where the field is in the IPv4 header.
        let cases: [(usize, u8); 9] = [(21, 1), (20, 0x60), (39, 0), (42, 2), (42, 0x43), (44, 0x86), (51, 0x57), (52, 0x01), (53, 1)];
        for (at, value) in cases {
            let mut bad = h;
            bad[at] = value;
            if at < 34 {
                bad[24..26].copy_from_slice(&[0, 0]);
                let check = ipv4_sum(&bad, 14);
                bad[24..26].copy_from_slice(&check.to_be_bytes());
            }
            assert_eq!(outer(&bad, len, LOCAL), Outer::Bad, "byte {at} = {value:#x}");
        }
        let mut wrong_sum = h;
        wrong_sum[25] ^= 1;
        assert_eq!(outer(&wrong_sum, len, LOCAL), Outer::Bad);
        // Longer than the frame, or too short to hold an inner header.
        assert_eq!(outer(&h, len - 1, LOCAL), Outer::Bad);
        let mut short = h;
        short[16..18].copy_from_slice(&60u16.to_be_bytes());
        short[38..40].copy_from_slice(&40u16.to_be_bytes());
        short[24..26].copy_from_slice(&[0, 0]);
        let check = ipv4_sum(&short, 14);
        short[24..26].copy_from_slice(&check.to_be_bytes());
        assert_eq!(outer(&short, len, LOCAL), Outer::Bad);
    }
}
