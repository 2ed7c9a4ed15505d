//! Load the XDP object so that it reuses the pinned maps, after retiring any pinned map whose
//! shape no longer matches what this build declares (an upgrade changed a struct or a size).

use std::path::Path;

use anyhow::Context as _;
use aya::{
    maps::MapInfo,
    programs::Xdp,
    Ebpf, EbpfLoader,
};
use vpc_common::{
    drop::DROP_REASON_SLOTS,
    event, maps as names,
    flowlog::{FlCounters, FlKey},
    frag::{FragSlot, FRAG_SLOTS},
    mcast::{McastCounters, McastGroup, McastKey, McastSenderKey},
    sg::{PortGroups, RuleCounters, SgRule, SgSet, CHUNK_WORDS, NODE_FANOUT},
    AddrKey, CtEntry, CtKey, Eni, EniCounters, Group, Port, RateLimit, Route, RouteKey,
};

use super::{bpffs::PinDirs, object};

/// Sizes of the maps; fixed when a map is first created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_enis: u32,
    pub max_routes: u32,
    pub max_addrs: u32,
    pub max_groups: u32,
    /// Connection-tracking entries (two per connection between ports; a full table refuses
    /// new connections).
    pub max_conntrack: u32,
    /// Security-group rule sets (two per group), trie nodes, bitmap chunks, rules.
    pub max_sg_sets: u32,
    pub max_sg_nodes: u32,
    pub max_sg_chunks: u32,
    pub max_sg_rules: u32,
    /// Flow-log records of one tick (per-CPU hash; a full table is counted as lost).
    pub max_flow_log: u32,
    /// Multicast groups (and group counters); (group, sender) pairs and member counters.
    pub max_mcast_groups: u32,
    pub max_mcast_members: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_enis: names::Size::Enis.default_entries(),
            max_routes: names::Size::Routes.default_entries(),
            max_addrs: names::Size::Addrs.default_entries(),
            max_groups: names::Size::Groups.default_entries(),
            max_conntrack: names::Size::Conntrack.default_entries(),
            max_sg_sets: names::Size::SgSets.default_entries(),
            max_sg_nodes: names::Size::SgNodes.default_entries(),
            max_sg_chunks: names::Size::SgChunks.default_entries(),
            max_sg_rules: names::Size::SgRules.default_entries(),
            max_flow_log: names::Size::FlowLog.default_entries(),
            max_mcast_groups: names::Size::McastGroups.default_entries(),
            max_mcast_members: names::Size::McastMembers.default_entries(),
        }
    }
}

impl Limits {
    /// Slots of `FRAGS`: `FRAG_SLOTS` per port.
    pub fn frag_slots(&self) -> u32 {
        self.max_enis.saturating_mul(FRAG_SLOTS)
    }

    /// The user-facing names of the sizes (`--map-size NAME=N`) with their fields and the map
    /// whose pinned size tells what an earlier run created.
    fn fields(&mut self) -> [(&'static str, &'static str, &mut u32); 12] {
        [
            ("enis", names::ENIS, &mut self.max_enis),
            ("routes", names::ROUTES, &mut self.max_routes),
            ("addrs", names::ENI_ADDRS, &mut self.max_addrs),
            ("groups", names::GROUPS, &mut self.max_groups),
            ("conntrack", names::CONNTRACK, &mut self.max_conntrack),
            ("sg-sets", names::SG_SETS, &mut self.max_sg_sets),
            ("sg-nodes", names::SG_NODES, &mut self.max_sg_nodes),
            ("sg-chunks", names::SG_WORDS, &mut self.max_sg_chunks),
            ("sg-rules", names::SG_RULES, &mut self.max_sg_rules),
            ("flow-log", names::FLOW_LOG, &mut self.max_flow_log),
            ("mcast-groups", names::MCAST_GROUPS, &mut self.max_mcast_groups),
            ("mcast-members", names::MCAST_SENDERS, &mut self.max_mcast_members),
        ]
    }

    /// Set one size from `NAME=N` (e.g. `conntrack=1000000`).
    pub fn set(&mut self, text: &str) -> Result<(), String> {
        let (name, value) = text.split_once('=').ok_or_else(|| format!("'{text}' is not NAME=N"))?;
        let value: u32 = value.trim().parse().ok().filter(|v| *v > 0).ok_or_else(|| format!("'{value}' is not a positive number"))?;
        let mut fields = self.fields();
        let known: Vec<&str> = fields.iter().map(|f| f.0).collect();
        let known = known.join(", ");
        let field = fields.iter_mut().find(|f| f.0 == name.trim()).ok_or_else(|| format!("no map size '{name}' (sizes: {known})"))?;
        *field.2 = value;
        Ok(())
    }

    /// Take the sizes of maps already pinned under `pins` (what an earlier run chose), so a
    /// later command without `--map-size` does not recreate them.
    pub fn adopt_pinned(&mut self, pins: &PinDirs) {
        for (_, map, field) in self.fields() {
            if let Ok(info) = MapInfo::from_pin(pins.map(map)) {
                *field = info.max_entries();
            }
        }
    }

    /// Room for security-group rule sets.
    pub fn sg_capacity(&self) -> crate::compile::sg::Capacity {
        crate::compile::sg::Capacity { sets: self.max_sg_sets, nodes: self.max_sg_nodes, chunks: self.max_sg_chunks, rules: self.max_sg_rules }
    }
}

/// (name, key size, value size, max entries) of every pinned map.
fn shapes(limits: &Limits) -> [(&'static str, usize, usize, u32); 27] {
    use std::mem::size_of;
    [
        (names::GROUPS, size_of::<u32>(), size_of::<Group>(), limits.max_groups),
        (names::CONFIG, size_of::<u32>(), size_of::<u64>(), 4),
        (names::CONNTRACK, size_of::<CtKey>(), size_of::<CtEntry>(), limits.max_conntrack),
        (names::CT_OPENED, size_of::<u32>(), size_of::<u64>(), limits.max_enis),
        (names::CT_CLOSED, size_of::<u32>(), size_of::<u64>(), limits.max_enis),
        (names::FRAGS, size_of::<u32>(), size_of::<FragSlot>(), limits.frag_slots()),
        (names::PROGS, size_of::<u32>(), size_of::<u32>(), 1),
        (names::SG_SETS, size_of::<u32>(), size_of::<SgSet>(), limits.max_sg_sets),
        (names::SG_NODES, size_of::<u32>(), 4 * NODE_FANOUT, limits.max_sg_nodes),
        (names::SG_WORDS, size_of::<u32>(), 8 * CHUNK_WORDS as usize, limits.max_sg_chunks),
        (names::SG_RULES, size_of::<u32>(), size_of::<SgRule>(), limits.max_sg_rules),
        (names::PORT_GROUPS, size_of::<u32>(), size_of::<PortGroups>(), limits.max_enis),
        (names::SG_RULE_STATS, size_of::<u32>(), size_of::<RuleCounters>(), limits.max_sg_rules),
        (names::EVENT_STATS, size_of::<u32>(), size_of::<u64>(), event::SLOTS),
        (names::FLOW_LOG, size_of::<FlKey>(), size_of::<FlCounters>(), limits.max_flow_log),
        (names::FLOW_LOG_LOST, size_of::<u32>(), size_of::<FlCounters>(), limits.max_enis),
        (names::MCAST_GROUPS, size_of::<McastKey>(), size_of::<McastGroup>(), limits.max_mcast_groups),
        (names::MCAST_SENDERS, size_of::<McastSenderKey>(), size_of::<u32>(), limits.max_mcast_members),
        (names::MCAST_STATS, size_of::<u32>(), size_of::<McastCounters>(), limits.max_mcast_groups),
        (names::MCAST_MEMBER_STATS, size_of::<u32>(), size_of::<McastCounters>(), limits.max_mcast_members),
        (names::ICMP_RATE, size_of::<u32>(), size_of::<RateLimit>(), limits.max_enis),
        (names::ENIS, size_of::<u32>(), size_of::<Eni>(), limits.max_enis),
        (names::ENI_ADDRS, size_of::<AddrKey>(), size_of::<Port>(), limits.max_addrs),
        (names::ROUTES, 4 + size_of::<RouteKey>(), size_of::<Route>(), limits.max_routes),
        (names::TX_PORTS, size_of::<u32>(), 8, limits.max_enis),
        (names::ENI_STATS, size_of::<u32>(), size_of::<EniCounters>(), limits.max_enis),
        (names::DROP_STATS, size_of::<u32>(), size_of::<u64>(), DROP_REASON_SLOTS),
    ]
}

/// The map type a map must have when an earlier build made it another (CONNTRACK was an LRU
/// hash, which evicts; it is a plain hash now).
fn kind(name: &str) -> Option<aya::maps::MapType> {
    match name {
        names::CONNTRACK => Some(aya::maps::MapType::Hash),
        // An LRU hash before, which let one guest evict another's datagrams.
        names::FRAGS => Some(aya::maps::MapType::Array),
        _ => None,
    }
}

/// Maps that only mean something together: the connection table and the counts of entries
/// each port holds in it. One retired retires all.
const RETIRED_TOGETHER: [&str; 3] = [names::CONNTRACK, names::CT_OPENED, names::CT_CLOSED];

/// Unpin maps whose shape differs from this build's, so the loader creates fresh ones. Programs
/// still attached keep using the old map until their link is switched to the new program.
pub fn retire_incompatible(pins: &PinDirs, limits: &Limits) -> anyhow::Result<Vec<&'static str>> {
    let mut retired = Vec::new();
    for (name, key, value, max) in shapes(limits) {
        let path = pins.map(name);
        if !path.exists() {
            continue;
        }
        let fits = MapInfo::from_pin(&path).is_ok_and(|info| {
            info.key_size() as usize == key
                && info.value_size() as usize == value
                && info.max_entries() == max
                && kind(name).is_none_or(|k| info.map_type().is_ok_and(|t| t == k))
        });
        if !fits {
            std::fs::remove_file(&path).with_context(|| format!("retiring {}", path.display()))?;
            retired.push(name);
        }
    }
    if retired.iter().any(|r| RETIRED_TOGETHER.contains(r)) {
        for name in RETIRED_TOGETHER {
            let path = pins.map(name);
            if !retired.contains(&name) && path.exists() {
                std::fs::remove_file(&path).with_context(|| format!("retiring {}", path.display()))?;
                retired.push(name);
            }
        }
    }
    Ok(retired)
}

/// Load the object with its maps opened from (or created at) `pins`, and the XDP program
/// loaded into the kernel (verified, not attached).
pub fn load(pins: &PinDirs, limits: &Limits) -> anyhow::Result<Ebpf> {
    std::fs::create_dir_all(pins.maps())?;
    let mut loader = EbpfLoader::new();
    loader
        .default_map_pin_directory(pins.maps())
        .map_max_entries(names::ENIS, limits.max_enis)
        .map_max_entries(names::TX_PORTS, limits.max_enis)
        .map_max_entries(names::ENI_STATS, limits.max_enis)
        .map_max_entries(names::ENI_ADDRS, limits.max_addrs)
        .map_max_entries(names::ROUTES, limits.max_routes)
        .map_max_entries(names::GROUPS, limits.max_groups)
        .map_max_entries(names::CONNTRACK, limits.max_conntrack)
        .map_max_entries(names::CT_OPENED, limits.max_enis)
        .map_max_entries(names::CT_CLOSED, limits.max_enis)
        .map_max_entries(names::FRAGS, limits.frag_slots())
        .map_max_entries(names::ICMP_RATE, limits.max_enis)
        .map_max_entries(names::SG_SETS, limits.max_sg_sets)
        .map_max_entries(names::SG_NODES, limits.max_sg_nodes)
        .map_max_entries(names::SG_WORDS, limits.max_sg_chunks)
        .map_max_entries(names::SG_RULES, limits.max_sg_rules)
        .map_max_entries(names::PORT_GROUPS, limits.max_enis)
        .map_max_entries(names::SG_RULE_STATS, limits.max_sg_rules)
        .map_max_entries(names::FLOW_LOG, limits.max_flow_log)
        .map_max_entries(names::FLOW_LOG_LOST, limits.max_enis)
        .map_max_entries(names::MCAST_GROUPS, limits.max_mcast_groups)
        .map_max_entries(names::MCAST_SENDERS, limits.max_mcast_members)
        .map_max_entries(names::MCAST_STATS, limits.max_mcast_groups)
        .map_max_entries(names::MCAST_MEMBER_STATS, limits.max_mcast_members);
    let mut ebpf = loader.load(object::bytes()).context("loading the XDP object")?;
    retrying(|| program(&mut ebpf)?.load().map_err(Into::into)).context("the kernel verifier rejected the XDP program")?;
    retrying(|| mcast_program(&mut ebpf)?.load().map_err(Into::into)).context("the kernel verifier rejected the multicast TC program")?;
    Ok(ebpf)
}

/// Run a program load again when the kernel gave up with EAGAIN: its verifier stops when a
/// signal is pending for the loading thread (a child process exiting, a timer), and libbpf
/// retries the same way.
pub fn retrying(mut load: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut tries = 0;
    loop {
        match load() {
            Err(e) if tries < 5 && interrupted(&e) => tries += 1,
            other => return other,
        }
    }
}

fn interrupted(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| match cause.downcast_ref::<aya::programs::ProgramError>() {
        Some(aya::programs::ProgramError::LoadError { io_error, .. }) => io_error.raw_os_error() == Some(libc::EAGAIN),
        _ => cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.raw_os_error() == Some(libc::EAGAIN)),
    })
}

pub fn program(ebpf: &mut Ebpf) -> anyhow::Result<&mut Xdp> {
    let prog = ebpf.program_mut(names::PROG_ENI_INGRESS).context("XDP program missing from the object")?;
    Ok(prog.try_into()?)
}

pub fn mcast_program(ebpf: &mut Ebpf) -> anyhow::Result<&mut aya::programs::SchedClassifier> {
    let prog = ebpf.program_mut(names::PROG_MCAST).context("TC program missing from the object")?;
    Ok(prog.try_into()?)
}

/// Pin `ebpf`'s program at `path`, replacing the previous one.
pub fn pin_program(ebpf: &mut Ebpf, path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    program(ebpf)?.pin(path).with_context(|| format!("pinning the program at {}", path.display()))?;
    Ok(())
}
