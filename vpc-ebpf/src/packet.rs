//! The parsed-packet view every stage reads: the IPv4 and transport fields the connection
//! table, the security groups, flow logs and routing look at. XDP fills it (`parse`, `frag`);
//! the multicast TC program builds one from the same header (`Packet::copy`).

/// The fields of a packet conntrack and the security groups look at.
#[derive(Clone, Copy)]
pub struct Packet {
    pub saddr: u32,
    pub daddr: u32,
    /// What the connection table keys the datagram by: TCP and UDP ports (source in the high
    /// half), `vpc_common::ct::icmp_key` for ICMP, 0 for other protocols.
    pub ports: u32,
    /// The IP protocol, and the ICMP tag of a query or reply (`vpc_common::ct::icmp_key`).
    pub proto: u32,
    pub tag: u8,
    /// The destination port security-group port ranges apply to: TCP and UDP only.
    pub dport: Option<u16>,
    pub tcp_flags: u8,
    /// Whether a packet without a connection may open one: not ICMP replies, errors or other
    /// ICMP messages.
    pub opens: bool,
    /// An ICMP error, and the packet it quotes when that can be tied to a connection (not
    /// when the quote is of a later fragment).
    pub icmp_error: bool,
    pub quoted: Option<Quoted>,
    /// IP bytes (total length): what flow logs and rule counters count.
    pub bytes: u64,
    pub ttl: u8,
    /// The configuration epoch (low 32 bits) and the connection clock, read once per packet.
    pub epoch: u32,
    pub now: u32,
    /// The source address is the sender's own (not one it forwards for: a gateway's, or an ENI's
    /// without source/destination check): security-group rules naming a group may match it.
    pub vouched: bool,
    /// The source address is inside the sender's VPC: it may cross to a peer VPC.
    pub in_vpc: bool,
}

impl Packet {
    /// A multicast datagram as the TC program judges each copy: addresses, ports (`ports`, as
    /// `parse::l4` finds them), length; no connection state (a group has no connections).
    /// Written field by field into `out` by a function of its own: built whole in the caller,
    /// a `None`'s undefined payload was spilled from an unset register (and zeroing it first
    /// became a memset call whose clobbered registers LLVM kept using), which the verifier
    /// refuses.
    #[inline(never)]
    pub fn copy(out: &mut core::mem::MaybeUninit<Packet>, ip: &crate::parse::Ipv4Hdr, ports: u32, vouched: bool) {
        let p = out.as_mut_ptr();
        // SAFETY: every field of `out` is written here, and only written.
        unsafe {
            (*p).saddr = ip.saddr;
            (*p).daddr = ip.daddr;
            (*p).ports = ports;
            (*p).proto = u32::from(ip.protocol);
            (*p).tag = 0;
            (*p).dport = crate::parse::dport(ip.protocol, ports);
            (*p).tcp_flags = 0;
            (*p).opens = false;
            (*p).icmp_error = false;
            (*p).quoted = None;
            (*p).bytes = u64::from(u16::from_be(ip.tot_len));
            (*p).ttl = 0;
            (*p).epoch = 0;
            (*p).now = 0;
            (*p).vouched = vouched;
            (*p).in_vpc = true;
        }
    }

    /// The protocol the connection table keys the packet by.
    #[inline(always)]
    pub const fn key_proto(&self) -> u32 {
        vpc_common::ct::key_proto(self.proto, self.tag)
    }
}

/// The packet an ICMP error is about, as the connection table keys it (`proto`: its key
/// protocol).
#[derive(Clone, Copy)]
pub struct Quoted {
    pub saddr: u32,
    pub daddr: u32,
    pub ports: u32,
    pub proto: u32,
}
