//! Every map the data path uses. Sizes are defaults; the agent overrides them at load time.
//! All maps are pinned by name under the agent's pin root so they outlive the agent and a
//! re-apply reuses them (state and counters survive).
//!
//! Config hash maps the agent rewrites while traffic flows are `BPF_F_NO_PREALLOC`: their
//! elements are freed through RCU, so a lookup never reads an element being recycled.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    macros::map,
    maps::{Array, DevMap, HashMap, LpmTrie, LruHashMap, PerCpuArray},
};
use vpc_common::{
    drop::DROP_REASON_SLOTS,
    event,
    maps::{DEFAULT_MAX_ADDRS, DEFAULT_MAX_ENIS, DEFAULT_MAX_FLOWS, DEFAULT_MAX_GROUPS, DEFAULT_MAX_ROUTES},
    AddrKey, Eni, EniCounters, FlowEntry, FlowKey, Group, Port, RateLimit, Route, RouteKey,
};

/// ifindex -> ENI. Agent writes on apply; read for every frame to know who sent it.
#[map]
pub static ENIS: HashMap<u32, Eni> = HashMap::pinned(DEFAULT_MAX_ENIS, BPF_F_NO_PREALLOC);

/// (VPC, address) -> destination port. Agent writes; read to deliver inside a VSwitch CIDR.
#[map]
pub static ENI_ADDRS: HashMap<AddrKey, Port> = HashMap::pinned(DEFAULT_MAX_ADDRS, BPF_F_NO_PREALLOC);

/// (route table, prefix) -> route, longest prefix first. Agent writes; read per routed frame.
#[map]
pub static ROUTES: LpmTrie<RouteKey, Route> = LpmTrie::pinned(DEFAULT_MAX_ROUTES, 0);

/// port -> device. Agent writes; the redirect target of every forwarded frame.
#[map]
pub static TX_PORTS: DevMap = DevMap::pinned(DEFAULT_MAX_ENIS, 0);

/// port -> rx/tx counters, per CPU. Data path writes; `vpc stats` reads.
#[map]
pub static ENI_STATS: PerCpuArray<EniCounters> = PerCpuArray::pinned(DEFAULT_MAX_ENIS, 0);

/// drop reason -> packets, per CPU. Data path writes; `vpc stats` reads.
#[map]
pub static DROP_STATS: PerCpuArray<u64> = PerCpuArray::pinned(DROP_REASON_SLOTS, 0);

/// group -> ECMP / active-standby hops and slots. Agent writes; read for routes of kind GROUP.
#[map]
pub static GROUPS: Array<Group> = Array::pinned(DEFAULT_MAX_GROUPS, 0);

/// [epoch]: the configuration epoch. Agent bumps it after every change; read per frame.
#[map]
pub static CONFIG: Array<u64> = Array::pinned(4, 0);

/// (sender, 5-tuple) -> decision and the epoch it was taken in. Data path reads and writes.
#[map]
pub static FLOWS: LruHashMap<FlowKey, FlowEntry> = LruHashMap::pinned(DEFAULT_MAX_FLOWS, 0);

/// event -> count, per CPU. Data path writes; `vpc stats` reads.
#[map]
pub static EVENT_STATS: PerCpuArray<u64> = PerCpuArray::pinned(event::SLOTS, 0);

/// Per-CPU token bucket of ICMP errors. Data path only.
#[map]
pub static ICMP_RATE: PerCpuArray<RateLimit> = PerCpuArray::pinned(1, 0);
