//! Every map the data path uses. Names, types and default sizes are declared in
//! `vpc_common::maps` (a vpc-user test holds this object to it); the agent overrides the sizes
//! at load time.
//! All maps are pinned by name under the agent's pin root so they outlive the agent and a
//! re-apply reuses them (state and counters survive).
//!
//! Config hash maps the agent rewrites while traffic flows are `BPF_F_NO_PREALLOC`: their
//! elements are freed through RCU, so a lookup never reads an element being recycled.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    macros::map,
    maps::{Array, DevMap, HashMap, LpmTrie, PerCpuArray, PerCpuHashMap, ProgramArray, RingBuf},
};
use vpc_common::{
    AddrKey, CtEntry, CtKey, Eni, EniCounters, Group, Port, RateLimit, Route, RouteKey,
    flowlog::{FlCounters, FlPairKey},
    frag::FragSlot,
    maps::decl,
    mcast::{McastCounters, McastGroup, McastKey, McastSenderKey},
    monitor::MonSuppressed,
    sg::{CHUNK_WORDS, NODE_FANOUT, PortGroups, RuleCounters, SgRule, SgSet},
    tunnel::{Host, Tunnel, Underlay},
};

/// ifindex -> ENI. Agent writes on apply; read for every frame to know who sent it.
#[map]
pub static ENIS: HashMap<u32, Eni> = HashMap::pinned(decl::ENIS.default_entries(), BPF_F_NO_PREALLOC);

/// ifindex -> the sender's slot in `ENI_SLOTS` (see `vpc_common::maps`). Agent writes.
#[map]
pub static ENI_INDEX: Array<u32> = Array::pinned(decl::ENI_INDEX.default_entries(), 0);

/// 2 × port + generation -> ENI. Agent writes.
#[map]
pub static ENI_SLOTS: Array<Eni> = Array::pinned(decl::ENI_SLOTS.default_entries(), 0);

/// (VPC, address) -> destination port. Agent writes; read to deliver inside a VSwitch CIDR.
#[map]
pub static ENI_ADDRS: HashMap<AddrKey, Port> = HashMap::pinned(decl::ENI_ADDRS.default_entries(), BPF_F_NO_PREALLOC);

/// (route table, prefix) -> route, longest prefix first. Agent writes; read per routed frame.
#[map]
pub static ROUTES: LpmTrie<RouteKey, Route> = LpmTrie::pinned(decl::ROUTES.default_entries(), 0);

/// [0] -> the data path: what every veth's VLAN gate (`vpc-user/src/dataplane/vlan_gate.rs`)
/// tail-calls. Agent writes.
#[map]
pub static PROGS: ProgramArray = ProgramArray::pinned(decl::PROGS.default_entries(), 0);

/// port -> device. Agent writes; the redirect target of every forwarded frame.
#[map]
pub static TX_PORTS: DevMap = DevMap::pinned(decl::TX_PORTS.default_entries(), 0);

/// port -> rx/tx counters, per CPU. Data path writes; `vpc stats` reads.
#[map]
pub static ENI_STATS: PerCpuArray<EniCounters> = PerCpuArray::pinned(decl::ENI_STATS.default_entries(), 0);

/// drop reason -> packets, per CPU. Data path writes; `vpc stats` reads.
#[map]
pub static DROP_STATS: PerCpuArray<u64> = PerCpuArray::pinned(decl::DROP_STATS.default_entries(), 0);

/// group -> ECMP / active-standby hops and slots. Agent writes; read for routes of kind GROUP.
#[map]
pub static GROUPS: Array<Group> = Array::pinned(decl::GROUPS.default_entries(), 0);

/// [epoch]: the configuration epoch. Agent bumps it after every change; read per frame.
#[map]
pub static CONFIG: Array<u64> = Array::pinned(decl::CONFIG.default_entries(), 0);

/// (port, connection) -> verdicts, cached route, state, counters (`vpc_common::ct`). Data path
/// reads and writes; the agent's sweeper deletes expired entries. Nothing is evicted: a full
/// table refuses new connections. Preallocated: no allocation on the packet path.
#[map]
pub static CONNTRACK: HashMap<CtKey, CtEntry> = HashMap::pinned(decl::CONNTRACK.default_entries(), 0);

/// port -> connection-table entries the data path made for it (atomic adds).
#[map]
pub static CT_OPENED: Array<u64> = Array::pinned(decl::CT_OPENED.default_entries(), 0);

/// port -> entries of the port the agent's sweeper deleted. Agent writes.
#[map]
pub static CT_CLOSED: Array<u64> = Array::pinned(decl::CT_CLOSED.default_entries(), 0);

/// Per port, `FRAG_SLOTS` slots of (datagram, its first fragment's transport fields)
/// (`vpc_common::frag`). Data path only; a port's new datagram overwrites its own oldest.
#[map]
pub static FRAGS: Array<FragSlot> = Array::pinned(decl::FRAGS.default_entries(), 0);

/// set -> compiled security-group rule set. Agent writes; read on first packets and re-checks.
#[map]
pub static SG_SETS: Array<SgSet> = Array::pinned(decl::SG_SETS.default_entries(), 0);

/// Trie nodes of the sets (8-bit strides). Agent writes.
#[map]
pub static SG_NODES: Array<[u32; NODE_FANOUT]> = Array::pinned(decl::SG_NODES.default_entries(), 0);

/// Bitmap words of the sets, 64 per element. Agent writes.
#[map]
pub static SG_WORDS: Array<[u64; CHUNK_WORDS as usize]> = Array::pinned(decl::SG_WORDS.default_entries(), 0);

/// Rules of the sets in precedence order. Agent writes.
#[map]
pub static SG_RULES: Array<SgRule> = Array::pinned(decl::SG_RULES.default_entries(), 0);

/// port -> the sets its packets are classified by. Agent writes.
#[map]
pub static PORT_GROUPS: Array<PortGroups> = Array::pinned(decl::PORT_GROUPS.default_entries(), 0);

/// rule counter -> packets and bytes, per CPU. Data path writes.
#[map]
pub static SG_RULE_STATS: PerCpuArray<RuleCounters> = PerCpuArray::pinned(decl::SG_RULE_STATS.default_entries(), 0);

/// event -> count, per CPU. Data path writes; `vpc stats` reads.
#[map]
pub static EVENT_STATS: PerCpuArray<u64> = PerCpuArray::pinned(decl::EVENT_STATS.default_entries(), 0);

/// port -> per-CPU token bucket of the ICMP errors the gateway sends it. Data path only.
#[map]
pub static ICMP_RATE: PerCpuArray<RateLimit> = PerCpuArray::pinned(decl::ICMP_RATE.default_entries(), 0);

/// Flow-log counts (see `vpc_common::flowlog`). Preallocated: an insert then takes no allocation
/// in the packet path (with BPF_F_NO_PREALLOC a per-CPU insert cost ~6 µs).
#[map]
pub static FLOW_LOG: PerCpuHashMap<FlPairKey, FlCounters> = PerCpuHashMap::pinned(decl::FLOW_LOG.default_entries(), 0);

/// What flow logs lost to a full `FLOW_LOG`, per port.
#[map]
pub static FLOW_LOG_LOST: PerCpuArray<FlCounters> = PerCpuArray::pinned(decl::FLOW_LOG_LOST.default_entries(), 0);

/// Per-CPU working state of the packet being processed (`ct::Scratch`). Data path only.
#[map]
pub static SCRATCH: PerCpuArray<crate::ct::Scratch> = PerCpuArray::with_max_entries(1, 0);

/// Multicast groups (see `vpc_common::mcast`).
#[map]
pub static MCAST_GROUPS: HashMap<McastKey, McastGroup> = HashMap::pinned(decl::MCAST_GROUPS.default_entries(), BPF_F_NO_PREALLOC);

/// Who may send to which group.
#[map]
pub static MCAST_SENDERS: HashMap<McastSenderKey, u32> = HashMap::pinned(decl::MCAST_SENDERS.default_entries(), BPF_F_NO_PREALLOC);

/// Per-group counters.
#[map]
pub static MCAST_STATS: PerCpuArray<McastCounters> = PerCpuArray::pinned(decl::MCAST_STATS.default_entries(), 0);

/// Per-member counters.
#[map]
pub static MCAST_MEMBER_STATS: PerCpuArray<McastCounters> = PerCpuArray::pinned(decl::MCAST_MEMBER_STATS.default_entries(), 0);

/// Monitoring events (`vpc_common::monitor`). Data path writes; the agent reads.
#[map]
pub static EVENTS: RingBuf = RingBuf::pinned(decl::EVENTS.default_entries(), 0);

/// Each (port, kind)'s event budget, per CPU.
#[map]
pub static MON_BUDGET: PerCpuArray<RateLimit> = PerCpuArray::pinned(decl::MON_BUDGET.default_entries(), 0);

/// Events the budget or a full ring suppressed, per (port, kind) and CPU.
#[map]
pub static MON_SUPPRESSED: PerCpuArray<MonSuppressed> = PerCpuArray::pinned(decl::MON_SUPPRESSED.default_entries(), 0);

/// port -> an ENI on another host (see `vpc_common::maps`). Agent writes.
#[map]
pub static TUNNELS: HashMap<u32, Tunnel> = HashMap::pinned(decl::TUNNELS.default_entries(), BPF_F_NO_PREALLOC);

/// host number -> another host. Agent writes.
#[map]
pub static HOSTS: HashMap<u32, Host> = HashMap::pinned(decl::HOSTS.default_entries(), BPF_F_NO_PREALLOC);

/// underlay address -> host number. Agent writes.
#[map]
pub static HOST_OF_IP: HashMap<u32, u32> = HashMap::pinned(decl::HOST_OF_IP.default_entries(), BPF_F_NO_PREALLOC);

/// port -> delivery to a local ENI or gateway of what arrives from the overlay. Agent writes.
#[map]
pub static DELIVERY: HashMap<u32, Port> = HashMap::pinned(decl::DELIVERY.default_entries(), BPF_F_NO_PREALLOC);

/// 0 -> this host's underlay interface. Agent writes.
#[map]
pub static UNDERLAY: HashMap<u32, Underlay> = HashMap::pinned(decl::UNDERLAY.default_entries(), BPF_F_NO_PREALLOC);
