//! Every map the agent shares with the XDP program, declared once: its pinned name, key and
//! value types and size. The kernel object's statics (vpc-ebpf `maps.rs`) take their sizes from
//! here and a vpc-user test holds the built object to this table; the agent derives from it the
//! sizes it loads with (`--map-size`), the shapes it checks pinned maps against and the names it
//! opens them by.

pub use crate::map_decl::{DevMapSlot, Entries, MapDecl, MapKind};
use crate::{
    AddrKey, CtEntry, CtKey, Eni, EniCounters, Group, Port, RateLimit, Route, RouteKey,
    drop::DROP_REASON_SLOTS,
    event,
    flowlog::{FlCounters, FlPairKey},
    frag::{FRAG_SLOTS, FragSlot},
    map_decl::{maps, sizes},
    mcast::{McastCounters, McastGroup, McastKey, McastSenderKey},
    monitor::{self, MonSuppressed},
    sg::{CHUNK_WORDS, NODE_FANOUT, PortGroups, RuleCounters, SgRule, SgSet},
    tunnel::{Host, Tunnel, Underlay},
};

sizes! {
    /// ENI ports (DEVMAP size, counter slots).
    Enis "enis" = 4096;
    /// Interface indexes that find their ENI through `ENI_INDEX` (higher ones: `ENIS` alone).
    EniIndex "eni-index" = 65_536;
    /// Route entries across all route tables.
    Routes "routes" = 1 << 20;
    /// (VPC, address) entries.
    Addrs "addrs" = 65536;
    /// ECMP / active-standby groups.
    Groups "groups" = 4096;
    /// Connection-tracking entries (two per connection between ports; a full table refuses new
    /// connections).
    Conntrack "conntrack" = 262_144;
    /// Security-group rule sets (two per group).
    SgSets "sg-sets" = 8192;
    /// Security-group trie nodes (1 KiB each).
    SgNodes "sg-nodes" = 16_384;
    /// Bitmap chunks (512 bytes each).
    SgChunks "sg-chunks" = 32_768;
    /// Security-group rules (all sets) and rule counters.
    SgRules "sg-rules" = 262_144;
    /// Flow-log records of one tick, one or two seconds (per-CPU hash; a full table is counted
    /// as lost).
    FlowLog "flow-log" = 65_536;
    /// Multicast groups (and their counters) in all VPCs.
    McastGroups "mcast-groups" = 1024;
    /// (group, sender) pairs and member counters.
    McastMembers "mcast-members" = 16_384;
    /// Bytes of the monitoring events' ring buffer (a power of two, at least a page).
    EventRing "event-ring" = 1 << 20;
    /// Other hosts of the cluster this host sends to and accepts from.
    Hosts "hosts" = 256;
}

maps! {
    /// ifindex -> `Eni`. Written by the agent on apply; read per frame to identify the sender.
    ENIS: HashMap<u32, Eni>, Entries::Sized(Size::Enis);
    /// Array ifindex -> `ENI_SLOT_VALID | slot` in `ENI_SLOTS`: the sender found by two array
    /// loads instead of a hash lookup (`ENIS` stays the whole truth and the fallback). The agent
    /// writes a changed ENI to its port's other slot, then switches this (see `dataplane::eni_index`).
    ENI_INDEX: Array<u32, u32>, Entries::Sized(Size::EniIndex);
    /// Array 2 × port + generation -> `Eni`, checked by its `ifindex`. Agent writes.
    ENI_SLOTS: Array<u32, Eni>, Entries::PerUnit(Size::Enis, 2);
    /// `AddrKey` -> `Port`. Written by the agent; read to find the destination ENI of a LOCAL route.
    ENI_ADDRS: HashMap<AddrKey, Port>, Entries::Sized(Size::Addrs);
    /// LPM (`RouteKey`) -> `Route`: every route table of every VPC. Written by the agent.
    ROUTES: LpmTrie<RouteKey, Route>, Entries::Sized(Size::Routes);
    /// DEVMAP port -> ifindex: the redirect targets. Written by the agent.
    TX_PORTS: DevMap<u32, DevMapSlot>, Entries::Sized(Size::Enis);
    /// Per-CPU array port -> `EniCounters`. Written by the data path; read by `vpc stats`.
    ENI_STATS: PerCpuArray<u32, EniCounters>, Entries::Sized(Size::Enis);
    /// Per-CPU array `DropReason` -> packets. Written by the data path; read by `vpc stats`.
    DROP_STATS: PerCpuArray<u32, u64>, Entries::Fixed(DROP_REASON_SLOTS);

    /// Array group -> `Group`: ECMP and active/standby hops and slots. Agent writes; read per routed
    /// frame whose route has kind GROUP.
    GROUPS: Array<u32, Group>, Entries::Sized(Size::Groups);
    /// Array [epoch]: the configuration epoch. Agent bumps it after every change; read per frame.
    /// Slots `CONFIG_EPOCH` (0) to `CONFIG_OWNER` (3).
    CONFIG: Array<u32, u64>, Entries::Fixed(4);
    /// Hash `CtKey` -> `CtEntry`: connection tracking, security-group verdicts and the route
    /// decision cache (see `vpc_common::ct`). Data path writes and reads; the agent's sweeper
    /// deletes expired entries.
    CONNTRACK: HashMap<CtKey, CtEntry>, Entries::Sized(Size::Conntrack);
    /// Array port -> entries the data path created for the port (atomic adds). With `CT_CLOSED`,
    /// the port's live entries: the data path checks them against the port's limit.
    CT_OPENED: Array<u32, u64>, Entries::Sized(Size::Enis);
    /// Array port -> entries of the port the agent's sweeper deleted. Agent writes; data path reads.
    CT_CLOSED: Array<u32, u64>, Entries::Sized(Size::Enis);
    /// Array, `FRAG_SLOTS` per port -> `FragSlot`: the first fragment's header of every datagram in
    /// flight (see `vpc_common::frag`). Data path only.
    FRAGS: Array<u32, FragSlot>, Entries::PerUnit(Size::Enis, FRAG_SLOTS);
    /// Array set -> `SgSet`: compiled security-group rule sets. Agent writes.
    SG_SETS: Array<u32, SgSet>, Entries::Sized(Size::SgSets);
    /// Array node -> 256 trie entries: the sets' address and port tries. Agent writes.
    SG_NODES: Array<u32, [u32; NODE_FANOUT]>, Entries::Sized(Size::SgNodes);
    /// Array chunk -> 64 u64 words: the sets' bitmaps. Agent writes.
    SG_WORDS: Array<u32, [u64; CHUNK_WORDS as usize]>, Entries::Sized(Size::SgChunks);
    /// Array rule -> `SgRule`. Agent writes.
    SG_RULES: Array<u32, SgRule>, Entries::Sized(Size::SgRules);
    /// Array port -> `PortGroups`: the sets each port is classified by. Agent writes.
    PORT_GROUPS: Array<u32, PortGroups>, Entries::Sized(Size::Enis);
    /// Per-CPU array rule counter -> `RuleCounters`. Data path writes; `vpc get security-groups --stats` reads.
    SG_RULE_STATS: PerCpuArray<u32, RuleCounters>, Entries::Sized(Size::SgRules);
    /// Per-CPU array event -> count. Data path writes; `vpc stats` reads.
    EVENT_STATS: PerCpuArray<u32, u64>, Entries::Fixed(event::SLOTS);
    /// Per-CPU hash `FlPairKey` -> `FlCounters`: flow-log counts per tick. Data path adds; the agent
    /// drains past ticks.
    FLOW_LOG: PerCpuHashMap<FlPairKey, FlCounters>, Entries::Sized(Size::FlowLog);
    /// Per-CPU array port -> `FlCounters`: packets flow logs lost because `FLOW_LOG` was full.
    FLOW_LOG_LOST: PerCpuArray<u32, FlCounters>, Entries::Sized(Size::Enis);
    /// Hash `McastKey` -> `McastGroup`: multicast groups and their members. Agent writes.
    MCAST_GROUPS: HashMap<McastKey, McastGroup>, Entries::Sized(Size::McastGroups);
    /// Hash `McastSenderKey` -> u32: who may send to a group. Agent writes.
    MCAST_SENDERS: HashMap<McastSenderKey, u32>, Entries::Sized(Size::McastMembers);
    /// Per-CPU array group counter -> `McastCounters`. Data path writes.
    MCAST_STATS: PerCpuArray<u32, McastCounters>, Entries::Sized(Size::McastGroups);
    /// Per-CPU array member counter -> `McastCounters`. Data path writes.
    MCAST_MEMBER_STATS: PerCpuArray<u32, McastCounters>, Entries::Sized(Size::McastMembers);
    /// Program array [0] -> program fd: the data path, which every veth's VLAN gate tail-calls.
    /// The agent points it at the program it loads (one update switches every gate to a new
    /// program).
    PROGS: ProgramArray<u32, u32>, Entries::Fixed(1);
    /// Per-CPU array port -> `RateLimit`: token bucket for ICMP errors. Data path only.
    ICMP_RATE: PerCpuArray<u32, RateLimit>, Entries::Sized(Size::Enis);
    /// Ring buffer of `monitor::MonEvent`s. Data path writes; the agent (or `vpc monitor`) reads.
    EVENTS: RingBuf<(), ()>, Entries::Sized(Size::EventRing);
    /// Per-CPU array `monitor::slot` -> `RateLimit`: each (port, kind)'s event budget. Data path only.
    MON_BUDGET: PerCpuArray<u32, RateLimit>, Entries::PerUnitAndOne(Size::Enis, monitor::kind::KERNEL_KINDS);
    /// Per-CPU array `monitor::slot` -> `MonSuppressed`: events the budget or a full ring
    /// suppressed. Data path writes; the agent reports them.
    MON_SUPPRESSED: PerCpuArray<u32, MonSuppressed>, Entries::PerUnitAndOne(Size::Enis, monitor::kind::KERNEL_KINDS);

    /// Hash port -> `tunnel::Tunnel`: the ENIs on other hosts, by the port each has here (a port
    /// with `PORT_F_TUNNEL`). Agent writes; read to encapsulate to one and to accept from one.
    TUNNELS: HashMap<u32, Tunnel>, Entries::Sized(Size::Enis);
    /// Hash host number -> `tunnel::Host`: the other hosts. Agent writes.
    HOSTS: HashMap<u32, Host>, Entries::Sized(Size::Hosts);
    /// Hash underlay address -> host number: only registered hosts are heard. Agent writes.
    HOST_OF_IP: HashMap<u32, u32>, Entries::Sized(Size::Hosts);
    /// Hash port -> `Port`: how to deliver to each of this host's ENIs and gateways what
    /// arrives for it from the overlay. Agent writes.
    DELIVERY: HashMap<u32, Port>, Entries::Sized(Size::Enis);
    /// Hash 0 -> `tunnel::Underlay`: this host's underlay interface (none: a single host).
    /// Agent writes.
    UNDERLAY: HashMap<u32, Underlay>, Entries::Fixed(1);
}

/// Default connection limit of an ENI (entries it may hold), unless its VPC or itself says
/// otherwise: one guest (its own entries and those of its connections' other sides) can take
/// at most a quarter of the default table.
pub const DEFAULT_CT_LIMIT: u32 = 32_768;

/// Name of the XDP program attached to each ENI's host-side interface.
pub const PROG_ENI_INGRESS: &str = "vpc_eni_ingress";
/// The TC program that replicates multicast packets.
pub const PROG_MCAST: &str = "vpc_mcast";
/// The XDP program on the underlay interface: decapsulates what other hosts send to this
/// host's ENIs and passes everything else to the host stack.
pub const PROG_UNDERLAY_INGRESS: &str = "vpc_underlay_ingress";
/// The benchmarks' baseline: an XDP program that does nothing (never attached).
pub const PROG_BENCH_EMPTY: &str = "vpc_bench_empty";
/// The benchmarks' second anchor: the sender's and its connection's lookups alone.
pub const PROG_BENCH_LOOKUP: &str = "vpc_bench_lookup";
/// The per-packet bench's driver: a ring of frames through the data path or an anchor.
pub const PROG_BENCH_RING: &str = "vpc_bench_ring";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, map) in MAPS.iter().enumerate() {
            assert!(MAPS[..i].iter().all(|m| m.name != map.name), "{} is declared twice", map.name);
        }
    }

    /// `Limits::adopt_pinned` reads an option's size back from the first map it sizes alone.
    #[test]
    fn every_size_sizes_a_map_on_its_own() {
        for &size in Size::ALL {
            assert!(MAPS.iter().any(|m| m.entries == Entries::Sized(size)), "no map is sized by {} alone", size.option());
        }
    }

    #[test]
    fn sizes_are_numbered_in_order() {
        for (i, &size) in Size::ALL.iter().enumerate() {
            assert_eq!(size as usize, i, "{}", size.option());
        }
    }
}
