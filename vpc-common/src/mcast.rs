//! Multicast groups of a VPC (the guide's section 1.4): the data path turns a sender's packet to
//! a group address into a copy for every member ENI. XDP admits the packet (is the group known,
//! is this ENI one of its senders, do its egress rules allow it) and passes it up; a TC program
//! on the same interface clones it to each member that its ingress rules accept.
//!
//! Why TC clones and not an XDP broadcast redirect: a broadcast through a device map sends
//! to every device in the map, with no way to skip a member whose security groups refuse this
//! packet's port, and no per-copy counting. `bpf_clone_redirect` decides per member.

/// Members a group may have (the guide's limit).
pub const MAX_MEMBERS: usize = 128;

/// Key of `MCAST_GROUPS`: a group address inside one VPC.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct McastKey {
    pub vpc: u32,
    /// Packet order.
    pub group: u32,
}

/// Key of `MCAST_SENDERS`: one sender of one group.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct McastSenderKey {
    pub vpc: u32,
    pub group: u32,
    pub port: u32,
}

/// One member: where its copy goes and what counts it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct McastMember {
    pub port: u32,
    pub ifindex: u32,
    /// Index in `MCAST_MEMBER_STATS`.
    pub counter: u32,
    /// The member's MTU: a longer packet is not copied to it (refused; a group has no one to
    /// send fragmentation needed to).
    pub mtu: u32,
}

/// Value of `MCAST_GROUPS`: the members on this host, and the other hosts that have members
/// (head-end replication: a sender's host sends each of them one encapsulated copy, which that
/// host copies to its own members; nothing is sent on from there).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct McastGroup {
    /// Index in `MCAST_STATS`.
    pub counter: u32,
    pub count: u32,
    pub members: [McastMember; MAX_MEMBERS],
    /// How many of `hosts` hold a host number (`HOSTS`).
    pub host_count: u32,
    pub hosts: [u32; MAX_MEMBERS],
}

impl Default for McastGroup {
    fn default() -> Self {
        McastGroup { counter: 0, count: 0, members: [McastMember::default(); MAX_MEMBERS], host_count: 0, hosts: [0; MAX_MEMBERS] }
    }
}

/// What the underlay's XDP program hands the TC program in the metadata in front of a
/// multicast copy from another host, decapsulated: the VPC and the sending ENI it checked
/// (the inner source address does not name them: address spaces overlap).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct McastArrival {
    /// `ARRIVAL_MAGIC`: metadata of ours, not of whatever else ran on the device.
    pub magic: u32,
    pub vpc: u32,
    /// The sender's port.
    pub sender: u32,
    /// Whether the inner source is the sender's own address.
    pub vouched: u32,
}

/// `McastArrival::magic`.
pub const ARRIVAL_MAGIC: u32 = 0x5643_4d41;

/// The Ethernet destination of group `addr` (packet order): 01:00:5e and its low 23 bits.
#[inline(always)]
pub const fn group_mac(addr: u32) -> [u8; 6] {
    let b = addr.to_ne_bytes();
    [0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]]
}

/// Per group (`MCAST_STATS`) and per member (`MCAST_MEMBER_STATS`), per CPU. For a group:
/// packets and bytes its senders sent and the data path replicated, and packets refused
/// (a non-sender's); for a member: copies delivered, and copies its security groups refused or
/// too long for its MTU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct McastCounters {
    pub packets: u64,
    pub bytes: u64,
    pub refused: u64,
}

impl McastCounters {
    pub fn add(&mut self, other: &McastCounters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.refused += other.refused;
    }
}

/// Whether `addr` (packet order) is in 224.0.0.0/4.
#[inline(always)]
pub const fn is_multicast(addr: u32) -> bool {
    (addr.to_ne_bytes()[0] & 0xf0) == 0xe0
}
