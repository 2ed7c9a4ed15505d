//! Names and default sizes of the maps the XDP program declares. Both sides use these names:
//! the kernel object defines the maps, the agent opens the pinned copies by the same name.

/// ifindex -> `Eni`. Written by the agent on apply; read per frame to identify the sender.
pub const ENIS: &str = "ENIS";
/// `AddrKey` -> `Port`. Written by the agent; read to find the destination ENI of a LOCAL route.
pub const ENI_ADDRS: &str = "ENI_ADDRS";
/// LPM (`RouteKey`) -> `Route`: every route table of every VPC. Written by the agent.
pub const ROUTES: &str = "ROUTES";
/// DEVMAP port -> ifindex: the redirect targets. Written by the agent.
pub const TX_PORTS: &str = "TX_PORTS";
/// Per-CPU array port -> `EniCounters`. Written by the data path; read by `vpc stats`.
pub const ENI_STATS: &str = "ENI_STATS";
/// Per-CPU array `DropReason` -> packets. Written by the data path; read by `vpc stats`.
pub const DROP_STATS: &str = "DROP_STATS";

/// Array group -> `Group`: ECMP and active/standby hops and slots. Agent writes; read per routed
/// frame whose route has kind GROUP.
pub const GROUPS: &str = "GROUPS";
/// Array [epoch]: the configuration epoch. Agent bumps it after every change; read per frame.
pub const CONFIG: &str = "CONFIG";
/// Hash `CtKey` -> `CtEntry`: connection tracking, security-group verdicts and the route
/// decision cache (see `vpc_common::ct`). Data path writes and reads; the agent's sweeper
/// deletes expired entries.
pub const CONNTRACK: &str = "CONNTRACK";
/// Array port -> entries the data path created for the port (atomic adds). With `CT_CLOSED`,
/// the port's live entries: the data path checks them against the port's limit.
pub const CT_OPENED: &str = "CT_OPENED";
/// Array port -> entries of the port the agent's sweeper deleted. Agent writes; data path reads.
pub const CT_CLOSED: &str = "CT_CLOSED";
/// LRU hash `FragKey` -> `FragEntry`: the first fragment's header of every datagram in flight
/// (see `vpc_common::frag`). Data path only.
pub const FRAGS: &str = "FRAGS";
/// Array set -> `SgSet`: compiled security-group rule sets. Agent writes.
pub const SG_SETS: &str = "SG_SETS";
/// Array node -> 256 trie entries: the sets' address and port tries. Agent writes.
pub const SG_NODES: &str = "SG_NODES";
/// Array chunk -> 64 u64 words: the sets' bitmaps. Agent writes.
pub const SG_WORDS: &str = "SG_WORDS";
/// Array rule -> `SgRule`. Agent writes.
pub const SG_RULES: &str = "SG_RULES";
/// Array port -> `PortGroups`: the sets each port is classified by. Agent writes.
pub const PORT_GROUPS: &str = "PORT_GROUPS";
/// Per-CPU array rule counter -> `RuleCounters`. Data path writes; `vpc get security-groups --stats` reads.
pub const SG_RULE_STATS: &str = "SG_RULE_STATS";
/// Per-CPU array event -> count. Data path writes; `vpc stats` reads.
pub const EVENT_STATS: &str = "EVENT_STATS";
/// Per-CPU hash `FlKey` -> `FlCounters`: flow-log counts per tick. Data path adds; the agent
/// drains past ticks.
pub const FLOW_LOG: &str = "FLOW_LOG";
/// Per-CPU array port -> `FlCounters`: packets flow logs lost because `FLOW_LOG` was full.
pub const FLOW_LOG_LOST: &str = "FLOW_LOG_LOST";
/// Hash `McastKey` -> `McastGroup`: multicast groups and their members. Agent writes.
pub const MCAST_GROUPS: &str = "MCAST_GROUPS";
/// Hash `McastSenderKey` -> u32: who may send to a group. Agent writes.
pub const MCAST_SENDERS: &str = "MCAST_SENDERS";
/// Per-CPU array group counter -> `McastCounters`. Data path writes.
pub const MCAST_STATS: &str = "MCAST_STATS";
/// Per-CPU array member counter -> `McastCounters`. Data path writes.
pub const MCAST_MEMBER_STATS: &str = "MCAST_MEMBER_STATS";
/// Program array [0]: the data path, which every veth's VLAN gate tail-calls. The agent points
/// it at the program it loads (one update switches every gate to a new program).
pub const PROGS: &str = "PROGS";
/// The TC program that replicates multicast packets.
pub const PROG_MCAST: &str = "vpc_mcast";
/// Per-CPU token bucket for ICMP errors. Data path only.
pub const ICMP_RATE: &str = "ICMP_RATE";

/// Default number of ECMP / active-standby groups.
pub const DEFAULT_MAX_GROUPS: u32 = 4096;
/// Default size of the connection-tracking table (two entries per connection between ports).
pub const DEFAULT_MAX_CONNTRACK: u32 = 262_144;
/// Default connection limit of an ENI (entries it may hold), unless its VPC or itself says
/// otherwise: one guest (its own entries and those of its connections' other sides) can take
/// at most a quarter of the default table.
pub const DEFAULT_CT_LIMIT: u32 = 32_768;
/// Default size of the flow-log table (records of one or two seconds).
pub const DEFAULT_MAX_FLOW_LOG: u32 = 65_536;
/// Default number of multicast groups (and their counters) in all VPCs.
pub const DEFAULT_MAX_MCAST_GROUPS: u32 = 1024;
/// Default number of (group, sender) pairs and of member counters.
pub const DEFAULT_MAX_MCAST_MEMBERS: u32 = 16_384;
/// Default number of security-group rule sets (two per group).
pub const DEFAULT_MAX_SG_SETS: u32 = 8192;
/// Default number of security-group trie nodes (1 KiB each).
pub const DEFAULT_MAX_SG_NODES: u32 = 16_384;
/// Default number of bitmap chunks (512 bytes each).
pub const DEFAULT_MAX_SG_CHUNKS: u32 = 32_768;
/// Default number of security-group rules (all sets) and rule counters.
pub const DEFAULT_MAX_SG_RULES: u32 = 262_144;

/// Default number of ENI ports (DEVMAP size, counter slots).
pub const DEFAULT_MAX_ENIS: u32 = 4096;
/// Default number of route entries across all route tables.
pub const DEFAULT_MAX_ROUTES: u32 = 1 << 20;
/// Default number of (VPC, address) entries.
pub const DEFAULT_MAX_ADDRS: u32 = 65536;

/// Name of the XDP program attached to each ENI's host-side interface.
pub const PROG_ENI_INGRESS: &str = "vpc_eni_ingress";
/// The benchmarks' baseline: an XDP program that does nothing (never attached).
pub const PROG_BENCH_EMPTY: &str = "vpc_bench_empty";
