//! Map keys, values and constants shared by the XDP programs (vpc-ebpf) and the agent (vpc-user).
//!
//! Every type here is `#[repr(C)]` plain data: the kernel and userspace read the same bytes.
//! IPv4 addresses are kept *as they appear in the packet* (network byte order stored in a `u32`
//! read natively), so the data path compares them without byte swapping; userspace converts with
//! [`addr_raw`] / [`addr_from_raw`].
#![no_std]

pub mod ct;
pub mod drop;
pub mod flow;
pub mod flowlog;
pub mod frag;
mod map_decl;
pub mod maps;
pub mod mcast;
pub mod monitor;
pub mod sg;
pub mod tunnel;

pub use ct::{CtEntry, CtKey};
pub use drop::DropReason;
pub use flow::flow_hash;

/// An IPv4 address as the data path holds it: the four octets in packet order, read as a native `u32`.
#[inline(always)]
pub const fn addr_raw(octets: [u8; 4]) -> u32 {
    u32::from_ne_bytes(octets)
}

/// The octets of an address held in packet order (inverse of [`addr_raw`]).
#[inline(always)]
pub const fn addr_from_raw(raw: u32) -> [u8; 4] {
    raw.to_ne_bytes()
}

/// The ENI may send and receive addresses that are not its own (a NAT or firewall instance).
pub const ENI_F_NO_SRC_DST_CHECK: u32 = 1 << 0;
/// The sender is an ENI on another host whose frames arrive through the overlay (`TUNNELS`):
/// the gateway answers it nothing directly (no ARP, no ICMP errors: its own host did).
pub const ENI_F_TUNNEL: u32 = 1 << 1;

/// The MTU of ENIs and gateways unless configured.
pub const DEFAULT_MTU: u16 = 1500;

/// What the data path knows about the ENI a frame arrived from. Map `ENIS`, keyed by the
/// ingress ifindex of the ENI's host-side interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Eni {
    /// The ENI's private address (packet order).
    pub ip: u32,
    /// Its VSwitch gateway address (packet order): the source of ICMP errors the gateway sends.
    pub gw_ip: u32,
    /// The VPC CIDR (packet order): ARP requests for any address inside it get the gateway MAC.
    pub vpc_net: u32,
    pub vpc_mask: u32,
    /// Internal VPC number: part of the destination lookup key (VPCs are separate address spaces).
    pub vpc_id: u32,
    /// Internal VSwitch number.
    pub vswitch_id: u32,
    /// The route table associated with the ENI's VSwitch: the first half of the route lookup key.
    pub route_table: u32,
    /// Dense port number of this ENI: index into `TX_PORTS` and `ENI_STATS`.
    pub port: u32,
    /// `ENI_F_*` bits.
    pub flags: u32,
    /// The only source MAC the ENI may use.
    pub mac: [u8; 6],
    /// The MAC of the ENI's VSwitch gateway: answers ARP and sources every frame delivered to the ENI.
    pub gw_mac: [u8; 6],
    /// The host-side interface the ENI sends through: what a slot of `ENI_SLOTS` is checked by.
    pub ifindex: u32,
}

/// `ENI_INDEX` value bit: the rest is the ENI's slot in `ENI_SLOTS`.
pub const ENI_SLOT_VALID: u32 = 1 << 31;

/// Key of `ENI_ADDRS`: an address inside one VPC's address space.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AddrKey {
    pub vpc_id: u32,
    /// Packet order.
    pub addr: u32,
}

/// Where and how to deliver a frame to an ENI. Value of `ENI_ADDRS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Port {
    /// Dense port number: index into `TX_PORTS` (the DEVMAP) and `ENI_STATS`.
    pub port: u32,
    /// The largest IP packet the port takes (its interface's MTU).
    pub mtu: u16,
    /// `PORT_F_*` bits.
    pub flags: u16,
    /// Destination MAC: the ENI's own.
    pub mac: [u8; 6],
    /// Source MAC: the gateway of the destination ENI's VSwitch.
    pub gw_mac: [u8; 6],
}

/// The port is an ENI on another host: what is delivered to it is encapsulated to that host
/// (`tunnel::encap`), its DEVMAP slot being the underlay interface.
pub const PORT_F_TUNNEL: u16 = 1 << 0;

/// The data part of a `ROUTES` LPM key. The prefix length counts from the first bit of `table`,
/// so a route for `a.b.c.d/n` in table `t` has prefix length `32 + n`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RouteKey {
    pub table: u32,
    /// Packet order.
    pub addr: u32,
}

/// Bits of the route key before the address starts.
pub const ROUTE_TABLE_BITS: u32 = 32;

/// Route kinds (`Route::kind`).
pub mod route_kind {
    /// System entry of a VSwitch CIDR: deliver to the ENI that owns the destination address in
    /// VPC `Route::arg` (looked up in `ENI_ADDRS`).
    pub const LOCAL: u32 = 1;
    /// System entry of 100.64.0.0/10: pass the frame to the host's own network stack.
    pub const HOST: u32 = 2;
    /// Drop and count.
    pub const BLACKHOLE: u32 = 3;
    /// Deliver to the port in `Route::hop` (an ENI or a gateway), whatever the destination.
    pub const PORT: u32 = 4;
    /// Continue in another VPC's system table (`Route::arg`), once per packet.
    pub const VPC: u32 = 5;
    /// Pick a hop of ECMP / active-standby group `Route::arg` by the flow's hash.
    pub const GROUP: u32 = 6;
}

/// Value of `ROUTES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Route {
    /// One of [`route_kind`].
    pub kind: u32,
    /// Kind-specific argument (LOCAL: VPC number; VPC: the peer's system table; GROUP: group).
    pub arg: u32,
    /// The entry's number, unique in its table (tells which entry matched).
    pub id: u32,
    /// PORT: where to deliver, so no second lookup is needed.
    pub hop: Port,
}

/// Slots of an ECMP group: a flow's hash picks one, each slot names a hop.
pub const GROUP_SLOTS: usize = 256;
/// Hops of an ECMP group (the guide: 2 to 4).
pub const GROUP_HOPS: usize = 4;
/// A slot whose hops are all down.
pub const NO_HOP: u8 = 0xff;

/// Value of `GROUPS`: the hops of an ECMP or active/standby route and the slot table mapping a
/// flow hash to a hop. The agent rewrites the slots when a hop goes down or comes back; only the
/// slots of the changed hop move, so other flows stay where they are.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    pub hops: [Port; GROUP_HOPS],
    pub slots: [u8; GROUP_SLOTS],
}

impl Default for Group {
    fn default() -> Self {
        Group { hops: [Port::default(); GROUP_HOPS], slots: [NO_HOP; GROUP_SLOTS] }
    }
}

/// Counters of things that are not drops (`EVENT_STATS`).
pub mod event {
    /// ICMP time exceeded sent by a gateway.
    pub const TIME_EXCEEDED_SENT: u32 = 0;
    /// Route decisions taken from a connection's cache / computed and cached.
    pub const FLOW_CACHE_HIT: u32 = 1;
    pub const FLOW_CACHE_MISS: u32 = 2;
    /// Connection-tracking entries created (a new key in the table).
    pub const CT_CREATED: u32 = 3;
    /// Entries found idle past their timeout and started afresh.
    pub const CT_EXPIRED: u32 = 4;
    /// Packets classified by security-group rules (first packets and re-checks).
    pub const SG_CLASSIFIED: u32 = 5;
    /// Established connections re-checked after a configuration change.
    pub const SG_RECHECKED: u32 = 6;
    /// ICMP errors accepted as related to a tracked connection.
    pub const CT_RELATED: u32 = 7;
    /// ICMP fragmentation needed sent by a gateway (a DF packet over the receiver's MTU).
    pub const FRAG_NEEDED_SENT: u32 = 8;
    /// Datagrams whose first fragment was tracked, and later fragments that followed it.
    pub const FRAG_TRACKED: u32 = 9;
    pub const FRAG_FOLLOWED: u32 = 10;
    /// Packets sent to another host through the overlay, and taken from it.
    pub const ENCAPSULATED: u32 = 11;
    pub const DECAPSULATED: u32 = 12;
    /// Reserved slots.
    pub const SLOTS: u32 = 16;
    pub const NAMES: [&str; 13] = [
        "icmp_time_exceeded_sent",
        "flow_cache_hit",
        "flow_cache_miss",
        "conntrack_created",
        "conntrack_expired",
        "sg_classified",
        "sg_rechecked",
        "conntrack_related",
        "icmp_frag_needed_sent",
        "fragments_tracked",
        "fragments_followed",
        "overlay_encapsulated",
        "overlay_decapsulated",
    ];
}

/// Slot of the configuration epoch in `CONFIG`: the agent bumps it after every change, and
/// flow-cache entries of an older epoch are decided again.
pub const CONFIG_EPOCH: u32 = 0;

/// Slot of `CONFIG` holding the id of the state database whose agent wrote the data path (0:
/// none recorded): an agent started with another database does not take it over unasked.
pub const CONFIG_OWNER: u32 = 3;

/// Per-CPU token bucket for ICMP errors (`ICMP_RATE`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RateLimit {
    pub last_ns: u64,
    /// Tokens × 10^9 (a token per second accrues one unit per nanosecond).
    pub tokens: u64,
}

impl RateLimit {
    /// Refill at `per_sec` tokens a second up to `burst`, then take one token if there is one.
    #[inline(always)]
    pub fn take(&mut self, now_ns: u64, per_sec: u64, burst: u64) -> bool {
        const NS: u64 = 1_000_000_000;
        // Capped so the product cannot overflow (no 128-bit multiply in BPF): a minute refills any bucket.
        let elapsed = now_ns.saturating_sub(self.last_ns);
        let elapsed = if elapsed > 60 * NS { 60 * NS } else { elapsed };
        let credit = self.tokens + elapsed * per_sec;
        self.last_ns = now_ns;
        self.tokens = if credit > burst * NS { burst * NS } else { credit };
        if self.tokens < NS {
            return false;
        }
        self.tokens -= NS;
        true
    }
}

/// ICMP errors per second per CPU the gateway may send.
pub const ICMP_ERRORS_PER_SEC: u64 = 200;
/// Burst of the ICMP error bucket.
pub const ICMP_ERRORS_BURST: u64 = 50;

/// Per-ENI counters in `ENI_STATS` (per CPU). `rx` is what the ENI sent into the data path, `tx`
/// what the data path delivered to it; `ct_refused` the new connections refused because the
/// port was at its connection limit (as sender or as receiver).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EniCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub ct_refused: u64,
}

impl EniCounters {
    pub fn add(&mut self, other: &EniCounters) {
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        self.ct_refused += other.ct_refused;
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)] structs of integers and byte arrays, valid for any bits.
    unsafe impl aya::Pod for super::Eni {}
    unsafe impl aya::Pod for super::AddrKey {}
    unsafe impl aya::Pod for super::Port {}
    unsafe impl aya::Pod for super::RouteKey {}
    unsafe impl aya::Pod for super::Route {}
    unsafe impl aya::Pod for super::EniCounters {}
    unsafe impl aya::Pod for super::Group {}
    unsafe impl aya::Pod for super::RateLimit {}
    unsafe impl aya::Pod for super::CtKey {}
    unsafe impl aya::Pod for super::CtEntry {}
    unsafe impl aya::Pod for super::sg::SgSet {}
    unsafe impl aya::Pod for super::sg::SgRule {}
    unsafe impl aya::Pod for super::sg::PortGroups {}
    unsafe impl aya::Pod for super::sg::RuleCounters {}
    unsafe impl aya::Pod for super::frag::FragKey {}
    unsafe impl aya::Pod for super::frag::FragEntry {}
    unsafe impl aya::Pod for super::frag::FragSlot {}
    unsafe impl aya::Pod for super::flowlog::FlKey {}
    unsafe impl aya::Pod for super::flowlog::FlPairKey {}
    unsafe impl aya::Pod for super::flowlog::FlCounters {}
    unsafe impl aya::Pod for super::mcast::McastKey {}
    unsafe impl aya::Pod for super::mcast::McastSenderKey {}
    unsafe impl aya::Pod for super::mcast::McastGroup {}
    unsafe impl aya::Pod for super::mcast::McastCounters {}
    unsafe impl aya::Pod for super::monitor::MonEvent {}
    unsafe impl aya::Pod for super::monitor::MonSuppressed {}
    unsafe impl aya::Pod for super::tunnel::Tunnel {}
    unsafe impl aya::Pod for super::tunnel::Host {}
    unsafe impl aya::Pod for super::tunnel::Underlay {}
}
