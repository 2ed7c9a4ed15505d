//! Run frames through the real XDP program with BPF_PROG_TEST_RUN and compare with the model.
//!
//! A harness lives in a scratch network namespace (one veth per ENI, so ingress
//! ifindexes and DEVMAP entries are real) with its own pin root, and loads the same object the
//! agent attaches. Used by the differential tests, `vpc trace` and the fuzzer.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::Context as _;
use aya::{
    maps::PerCpuArray,
    programs::{TestRun as _, TestRunOptions},
};
use vpc_common::{
    DropReason, EniCounters,
    maps::{self as names, Size},
};

use crate::{
    compile,
    dataplane::{Dataplane, Limits, Loaded},
    model::{
        Topology,
        binding::Binding,
        conntrack::Conntrack,
        forward::{Action, Model, Outcome},
        ids::Ids,
    },
    netns,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

/// What the program did with one frame, as seen from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub action: Action,
    pub frame: Vec<u8>,
    pub rx_port: Option<u32>,
    pub tx_port: Option<u32>,
    /// Security-group rule counters that moved: counter -> (packets, bytes).
    pub rule_hits: BTreeMap<u32, (u64, u64)>,
    /// Flow-log counts that moved: key (tick 0) -> (packets, bytes).
    pub flow_log: BTreeMap<vpc_common::flowlog::FlKey, (u64, u64)>,
    /// The port whose connection limit refused the frame's new connection.
    pub refused_port: Option<u32>,
    /// The monitoring events it made.
    pub events: Vec<events::Made>,
}

pub mod events;

pub struct Harness {
    pub topology: Topology,
    pub binding: Binding,
    loaded: Loaded,
    dataplane: Dataplane,
    /// Ports whose counters are compared (every ENI's).
    ports: Vec<u32>,
    /// The model's connections, kept in step with the program's.
    pub ct: Conntrack,
    /// What the maps hold.
    entries: compile::MapEntries,
    /// The monitoring events' ring, read after every frame.
    ring: std::sync::Mutex<aya::maps::RingBuf<aya::maps::MapData>>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Build a harness for `topology` in a scratch namespace and hand it to `f`.
pub fn with_harness<T: Send + 'static>(
    topology: Topology,
    f: impl FnOnce(&mut Harness) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    with_harness_detached::<&str, T>(topology, &[], f)
}

/// Map sizes of a test harness: small, so many harnesses run at once.
pub const TEST_LIMITS: Limits = Limits::DEFAULT
    .with(Size::Enis, 1024)
    .with(Size::Routes, 4096)
    .with(Size::Addrs, 4096)
    .with(Size::Groups, 256)
    .with(Size::Conntrack, 65536)
    .with(Size::SgSets, 256)
    .with(Size::SgNodes, 1024)
    .with(Size::SgChunks, 2048)
    .with(Size::SgRules, 4096)
    .with(Size::FlowLog, 4096)
    .with(Size::McastGroups, 64)
    .with(Size::McastMembers, 1024);

/// As `with_harness`, leaving the ENIs named in `detached` without an interface.
pub fn with_harness_detached<S: AsRef<str>, T: Send + 'static>(
    topology: Topology,
    detached: &[S],
    f: impl FnOnce(&mut Harness) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    with_harness_sized(topology, detached, TEST_LIMITS, f)
}

/// As `with_harness_detached`, with maps of `limits`' sizes (benchmarks with a million routes).
pub fn with_harness_sized<S: AsRef<str>, T: Send + 'static>(
    topology: Topology,
    detached: &[S],
    limits: Limits,
    f: impl FnOnce(&mut Harness) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let detached: Vec<String> = detached.iter().map(|s| s.as_ref().to_string()).collect();
    netns::in_scratch_netns(move || {
        let mut ifindex = BTreeMap::new();
        let ports = topology
            .enis()
            .map(|(_, _, e)| (e.id.clone(), e.name.clone()))
            .chain(topology.vpcs.iter().flat_map(|v| &v.gateways).map(|g| (g.id.clone(), g.name.clone())));
        for (i, (id, name)) in ports.enumerate().filter(|(_, (_, name))| !detached.contains(name)) {
            let _ = name;
            ifindex.insert(id, crate::dataplane::netlink::add_veth(&format!("e{i}"), &format!("g{i}"))?);
            // Up, both ends: the multicast program's copies go out through them.
            crate::tools::lab::ip_batch(None, &[format!("link set e{i} up"), format!("link set g{i} up")])?;
        }
        let mut ids = Ids::default();
        ids.assign(&topology, limits[Size::Enis]).map_err(anyhow::Error::msg)?;
        let mut harness = Harness::build(topology, Binding { ids, ifindex, ..Default::default() }, limits)?;
        f(&mut harness)
    })
}

/// Harnesses for the hosts of a cluster, `hosts` (host numbers 1, 2, ... in that order), in one
/// scratch namespace: each holds the ENIs and gateways the topology places on it (those placed
/// nowhere on the first), an underlay veth and its underlay program, and knows the others
/// as up, at 10.255.0.N with MAC 02:fe:00:00:00:N.
pub fn with_cluster<T: Send + 'static>(
    topology: Topology,
    hosts: &[&str],
    f: impl FnOnce(&mut [Harness]) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    use crate::model::binding::{Cluster, HostInfo, UnderlayInfo};
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    netns::in_scratch_netns(move || {
        let limits = TEST_LIMITS;
        let mut ids = Ids::default();
        ids.assign(&topology, limits[Size::Enis]).map_err(anyhow::Error::msg)?;
        let info = |n: usize| HostInfo {
            number: n as u32 + 1,
            ip: std::net::Ipv4Addr::new(10, 255, 0, n as u8 + 1),
            mac: [2, 0xfe, 0, 0, 0, n as u8 + 1],
            up: true,
        };
        let known: BTreeMap<String, HostInfo> = hosts.iter().enumerate().map(|(n, h)| (h.clone(), info(n))).collect();
        let mut harnesses = Vec::new();
        let mut next = 0;
        for (n, host) in hosts.iter().enumerate() {
            let mut ifindex = BTreeMap::new();
            let here = |eni_host: Option<&String>| eni_host.map_or(n == 0, |h| h == host);
            let ports = topology
                .enis()
                .filter(|(_, _, e)| here(e.host.as_ref()))
                .map(|(_, _, e)| e.id.clone())
                .chain(topology.vpcs.iter().flat_map(|v| &v.gateways).filter(|g| here(g.host.as_ref())).map(|g| g.id.clone()));
            for id in ports {
                ifindex.insert(id, crate::dataplane::netlink::add_veth(&format!("e{next}"), &format!("g{next}"))?);
                crate::tools::lab::ip_batch(None, &[format!("link set e{next} up"), format!("link set g{next} up")])?;
                next += 1;
            }
            let underlay = crate::dataplane::netlink::add_veth(&format!("u{n}"), &format!("f{n}"))?;
            // Up: the multicast TC program sends its copies out of it.
            crate::tools::lab::ip_batch(None, &[format!("link set u{n} up"), format!("link set f{n} up")])?;
            let cluster = Cluster {
                me: Some(host.clone()),
                hosts: known.clone(),
                underlay: Some(UnderlayInfo { ifindex: underlay, mac: info(n).mac, mtu: 1500, tc_xmit: false }),
            };
            let mut harness =
                Harness::build(topology.clone(), Binding { ids: ids.clone(), ifindex, cluster, ..Default::default() }, limits)?;
            crate::dataplane::loader::underlay_program(&mut harness.loaded.ebpf)?;
            harnesses.push(harness);
        }
        f(&mut harnesses)
    })
}

impl Harness {
    /// Load the program over fresh maps holding `topology` as `binding` binds it.
    fn build(topology: Topology, mut binding: Binding, limits: Limits) -> anyhow::Result<Harness> {
        let root = format!("/sys/fs/bpf/vpc-testrun-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dataplane = Dataplane::new(root, limits);
        let mut entries = compile::compile(&topology, &binding);
        compile::sg::place_sets(&mut entries, &Default::default(), &mut binding.ids, limits.sg_capacity()).map_err(anyhow::Error::msg)?;
        let loaded = dataplane.load().and_then(|mut loaded| {
            loaded.sync(&entries)?;
            Ok(loaded)
        });
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                let _ = dataplane.down();
                return Err(e);
            }
        };
        let ports = binding.ids.ports.values().copied().collect();
        let ct = Conntrack { capacity: limits[Size::Conntrack] as usize, ..Default::default() };
        let pinned = aya::maps::MapData::from_pin(dataplane.pins.map(names::EVENTS)).context("EVENTS")?;
        let ring = aya::maps::RingBuf::try_from(aya::maps::Map::RingBuf(pinned))?;
        let ring = std::sync::Mutex::new(ring);
        Ok(Harness { topology, binding, loaded, dataplane, ports, ct, entries, ring })
    }
}

impl Drop for Harness {
    /// Remove the harness's pins even when a test panics half way.
    fn drop(&mut self) {
        let _ = self.dataplane.down();
    }
}

impl Harness {
    /// The ID of ENI or gateway `name`.
    fn eni_id(&self, name: &str) -> String {
        if let Some((_, _, eni)) = self.topology.eni(name) {
            return eni.id.clone();
        }
        let gateway = self.topology.vpcs.iter().flat_map(|v| &v.gateways).find(|g| g.name == name);
        gateway.unwrap_or_else(|| panic!("no ENI or gateway {name}")).id.clone()
    }

    /// The route the kernel's LPM trie holds for `addr` in route table `table` (by number).
    pub fn lookup_route(&self, table: u32, addr: std::net::Ipv4Addr) -> anyhow::Result<Option<vpc_common::Route>> {
        let map = self.loaded.ebpf.map(names::ROUTES).context("ROUTES")?;
        let trie: aya::maps::LpmTrie<_, vpc_common::RouteKey, vpc_common::Route> = aya::maps::LpmTrie::try_from(map)?;
        let key = aya::maps::lpm_trie::Key::new(
            vpc_common::ROUTE_TABLE_BITS + 32,
            vpc_common::RouteKey { table, addr: vpc_common::addr_raw(addr.octets()) },
        );
        match trie.get(&key, 0) {
            Ok(route) => Ok(Some(route)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The ENI or gateway on `port`, by name.
    pub fn port_name(&self, port: u32) -> String {
        let id = self.binding.ids.ports.iter().find(|(_, p)| **p == port).map(|(id, _)| id.clone()).unwrap_or_default();
        let eni = self.topology.enis().find(|(_, _, e)| e.id == id).map(|(_, _, e)| e.name.clone());
        let gw = self.topology.vpcs.iter().flat_map(|v| &v.gateways).find(|g| g.id == id).map(|g| g.name.clone());
        eni.or(gw).unwrap_or_else(|| format!("port {port}"))
    }

    /// Mark hops down (as the health checks would) and write the resulting groups.
    pub fn set_down(&mut self, down: std::collections::BTreeSet<(String, usize)>) -> anyhow::Result<()> {
        self.binding.down = down;
        self.resync()
    }

    /// Change what this host knows of the cluster (a host down, its next hop moved) and
    /// write the resulting maps.
    pub fn set_cluster(&mut self, cluster: crate::model::binding::Cluster) -> anyhow::Result<()> {
        self.binding.cluster = cluster;
        self.resync()
    }

    /// Change the configuration as the agent would: the same ENIs and gateways (by ID), other
    /// routes or security groups. Established connections are re-checked against it.
    pub fn apply(&mut self, topology: Topology) -> anyhow::Result<()> {
        self.binding.ids.assign(&topology, TEST_LIMITS[Size::Enis]).map_err(anyhow::Error::msg)?;
        self.topology = topology;
        self.resync()
    }

    fn resync(&mut self) -> anyhow::Result<()> {
        let mut entries = compile::compile(&self.topology, &self.binding);
        let capacity = self.dataplane.limits.sg_capacity();
        compile::sg::place_sets(&mut entries, &self.entries.sg.sets, &mut self.binding.ids, capacity).map_err(anyhow::Error::msg)?;
        self.loaded.sync(&entries)?;
        self.entries = entries;
        self.ports = self.binding.ids.ports.values().copied().collect();
        // Every sync starts a new configuration epoch: connections are re-checked.
        self.ct.epoch += 1;
        Ok(())
    }

    /// What `ENI_INDEX` and `ENI_SLOTS` give for every interface they know: ifindex -> (slot,
    /// the slot's ENI).
    pub fn eni_index(&self) -> anyhow::Result<BTreeMap<u32, (u32, vpc_common::Eni)>> {
        let index: aya::maps::Array<_, u32> = self.pinned_array(names::ENI_INDEX)?;
        let slots: aya::maps::Array<_, vpc_common::Eni> = self.pinned_array(names::ENI_SLOTS)?;
        let mut out = BTreeMap::new();
        for ifindex in 0..index.len() {
            let value = index.get(&ifindex, 0)?;
            if value & vpc_common::ENI_SLOT_VALID != 0 {
                let slot = value & !vpc_common::ENI_SLOT_VALID;
                out.insert(ifindex, (slot, slots.get(&slot, 0)?));
            }
        }
        Ok(out)
    }

    /// The ENI of every interface, as compiled (what `ENIS` holds).
    pub fn enis(&self) -> &BTreeMap<u32, vpc_common::Eni> {
        &self.entries.enis
    }

    /// ENI slot `slot` as it is in `ENI_SLOTS`.
    pub fn eni_slot(&self, slot: u32) -> anyhow::Result<vpc_common::Eni> {
        let slots: aya::maps::Array<_, vpc_common::Eni> = self.pinned_array(names::ENI_SLOTS)?;
        Ok(slots.get(&slot, 0)?)
    }

    /// The pinned array map `name`.
    fn pinned_array<V: aya::Pod>(&self, name: &str) -> anyhow::Result<aya::maps::Array<aya::maps::MapData, V>> {
        let pinned = aya::maps::MapData::from_pin(self.dataplane.pins.map(name)).with_context(|| name.to_string())?;
        Ok(aya::maps::Array::try_from(aya::maps::Map::Array(pinned))?)
    }

    /// The ifindex standing in for ENI `name`'s interface.
    pub fn ifindex(&self, name: &str) -> u32 {
        self.binding.ifindex[&self.eni_id(name)]
    }

    /// The port of ENI `name`.
    pub fn port(&self, name: &str) -> u32 {
        self.binding.ids.port(&self.eni_id(name))
    }

    /// What the model says must happen (and the model's connections move on, as the program's do).
    pub fn expect(&mut self, ifindex: u32, frame: &[u8]) -> Outcome {
        let underlay = self.is_underlay(ifindex);
        let mut model = Model::with_conntrack(&self.topology, &self.binding, &mut self.ct);
        if underlay { model.process_underlay(frame) } else { model.process(ifindex, frame) }
    }

    /// Whether `ifindex` is this host's underlay interface (whose frames its underlay program takes).
    fn is_underlay(&self, ifindex: u32) -> bool {
        self.binding.cluster.underlay.is_some_and(|u| u.ifindex == ifindex)
    }

    /// An event counter of the data path (`vpc_common::event::NAMES`), summed over CPUs.
    pub fn event_count(&self, name: &str) -> anyhow::Result<u64> {
        let counters = crate::dataplane::stats::read(&self.dataplane.pins, [])?;
        counters.events.get(name).copied().with_context(|| format!("no event {name}"))
    }

    /// This host's underlay interface.
    pub fn underlay(&self) -> u32 {
        self.binding.cluster.underlay.expect("a cluster harness").ifindex
    }

    fn rule_counters(&self) -> anyhow::Result<BTreeMap<u32, (u64, u64)>> {
        let stats: PerCpuArray<_, vpc_common::sg::RuleCounters> =
            PerCpuArray::try_from(self.loaded.ebpf.map(names::SG_RULE_STATS).context("SG_RULE_STATS")?)?;
        let mut out = BTreeMap::new();
        for &counter in self.binding.ids.sg_rules.values() {
            let mut sum = vpc_common::sg::RuleCounters::default();
            for cpu in stats.get(&counter, 0)?.iter() {
                sum.add(cpu);
            }
            out.insert(counter, (sum.packets, sum.bytes));
        }
        Ok(out)
    }

    /// Instructions the verifier processed for each program of the object (its cost of
    /// proving the program safe; growth shows up here).
    pub fn verified_instructions(&mut self) -> anyhow::Result<Vec<(String, u32)>> {
        // The underlay's program is verified only where a host has an underlay: load it here.
        crate::dataplane::loader::underlay_program(&mut self.loaded.ebpf)?;
        let mut out = Vec::new();
        for name in [names::PROG_ENI_INGRESS, names::PROG_UNDERLAY_INGRESS, names::PROG_MCAST] {
            let program = self.loaded.ebpf.program(name).with_context(|| format!("{name} missing"))?;
            let info = program.info()?;
            out.push((name.to_string(), info.verified_instruction_count().unwrap_or(0)));
        }
        Ok(out)
    }

    /// Forget every connection, in the program's table and in the model (to replay one frame
    /// alone).
    pub fn reset_conntrack(&mut self) {
        if let Ok(pinned) = aya::maps::MapData::from_pin(self.dataplane.pins.map(names::CONNTRACK))
            && let Ok(mut table) =
                aya::maps::HashMap::<_, vpc_common::CtKey, vpc_common::CtEntry>::try_from(aya::maps::Map::HashMap(pinned))
        {
            let keys: Vec<vpc_common::CtKey> = table.keys().filter_map(Result::ok).collect();
            for key in keys {
                let _ = table.remove(&key);
            }
        }
        if let Ok(pinned) = aya::maps::MapData::from_pin(self.dataplane.pins.map(names::FRAGS))
            && let Ok(mut slots) = aya::maps::Array::<_, vpc_common::frag::FragSlot>::try_from(aya::maps::Map::Array(pinned))
        {
            for &at in self.ct.frags.keys() {
                let _ = slots.set(at, vpc_common::frag::FragSlot::default(), 0);
            }
        }
        // Nothing is held any more: the counts start again.
        for name in [names::CT_OPENED, names::CT_CLOSED] {
            if let Ok(map) = crate::dataplane::stats::open(&self.dataplane.pins, name)
                && let Ok(mut counts) = aya::maps::Array::<_, u64>::try_from(map)
            {
                for port in self.ports.clone() {
                    let _ = counts.set(port, 0, 0);
                }
            }
        }
        self.ct = Conntrack { epoch: self.ct.epoch, capacity: self.ct.capacity, ..Default::default() };
    }

    /// Delete every connection-table entry of `port`, in the program's table (as the sweeper
    /// does, crediting the port) and in the model's: a side of connections that is lost.
    pub fn forget_port(&mut self, port: u32) -> anyhow::Result<()> {
        let released = std::collections::BTreeSet::from([port]);
        crate::dataplane::conntrack::sweep(&self.dataplane.pins, &released, crate::dataplane::conntrack::now())?;
        self.ct.entries.retain(|k, _| k.port != port);
        Ok(())
    }

    /// The keys of every entry in the program's connection table.
    pub fn connections(&self) -> anyhow::Result<std::collections::BTreeSet<vpc_common::CtKey>> {
        let pinned = aya::maps::MapData::from_pin(self.dataplane.pins.map(names::CONNTRACK))?;
        let table = aya::maps::HashMap::<_, vpc_common::CtKey, vpc_common::CtEntry>::try_from(aya::maps::Map::HashMap(pinned))?;
        Ok(table.keys().collect::<Result<_, _>>()?)
    }

    /// Delete the program's entries of `keys` (as the sweeper would: credited to their ports).
    pub fn drop_connections(&mut self, keys: impl IntoIterator<Item = vpc_common::CtKey>) -> anyhow::Result<u64> {
        crate::dataplane::conntrack::remove(&self.dataplane.pins, keys)
    }

    /// Put `n` idle entries of a port no interface has into the program's connection table: the
    /// table holds that many more, as a busy host's does, without any of them being looked up.
    pub fn pad_connections(&mut self, n: usize) -> anyhow::Result<()> {
        let pinned = aya::maps::MapData::from_pin(self.dataplane.pins.map(names::CONNTRACK))?;
        let mut table = aya::maps::HashMap::<_, vpc_common::CtKey, vpc_common::CtEntry>::try_from(aya::maps::Map::HashMap(pinned))?;
        let entry = vpc_common::CtEntry { last_seen: crate::dataplane::conntrack::now(), ..Default::default() };
        for i in 0..n as u32 {
            let key = vpc_common::CtKey::sent(u32::MAX - 1, 0xc612_0000 | (i >> 16), 0xc613_0000 | (i & 0xffff), 0x1000_2000, 17);
            table.insert(key, entry, 0)?;
        }
        Ok(())
    }

    /// Entries the program's connection table holds for each port (opened minus closed).
    pub fn held(&self) -> anyhow::Result<BTreeMap<u32, u64>> {
        let opened: aya::maps::Array<_, u64> =
            aya::maps::Array::try_from(crate::dataplane::stats::open(&self.dataplane.pins, names::CT_OPENED)?)?;
        let closed: aya::maps::Array<_, u64> =
            aya::maps::Array::try_from(crate::dataplane::stats::open(&self.dataplane.pins, names::CT_CLOSED)?)?;
        let mut out = BTreeMap::new();
        for &port in &self.ports {
            let n = opened.get(&port, 0)?.saturating_sub(closed.get(&port, 0)?);
            if n != 0 {
                out.insert(port, n);
            }
        }
        Ok(out)
    }

    /// Run `frame` through the multicast TC program as if it entered on `ifindex` (after XDP
    /// passed it): its return code and, per member counter that moved, (copies, refused).
    pub fn run_mcast(&self, ifindex: u32, frame: &[u8]) -> anyhow::Result<(i32, BTreeMap<u32, (u64, u64)>)> {
        let read = || -> anyhow::Result<BTreeMap<u32, (u64, u64)>> {
            let counters = crate::dataplane::stats::sums::<vpc_common::mcast::McastCounters>(
                &self.dataplane.pins,
                names::MCAST_MEMBER_STATS,
                self.binding.ids.mcast_members.values().copied(),
            )?;
            Ok(counters.into_iter().map(|(k, c)| (k, (c.packets, c.refused))).collect())
        };
        let before = read()?;
        // struct __sk_buff: only `ifindex` (offset 40) is set; the kernel takes the device from it.
        let mut ctx = [0u8; 44];
        ctx[40..44].copy_from_slice(&ifindex.to_ne_bytes());
        let prog: &aya::programs::SchedClassifier =
            self.loaded.ebpf.program(names::PROG_MCAST).context("TC program missing")?.try_into()?;
        let mut out = vec![0u8; frame.len() + 256];
        let result = prog.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx),
            repeat: 1,
            ..Default::default()
        })?;
        let after = read()?;
        let moved = after
            .into_iter()
            .filter_map(|(k, (p, r))| {
                let (p0, r0) = before.get(&k).copied().unwrap_or_default();
                (p != p0 || r != r0).then_some((k, (p - p0, r - r0)))
            })
            .collect();
        Ok((result.return_value as i32, moved))
    }

    /// Take every flow-log count out of the table, ticks summed: key (tick 0) -> (packets, bytes).
    fn drain_flow_log(&self) -> anyhow::Result<BTreeMap<vpc_common::flowlog::FlKey, (u64, u64)>> {
        let pinned = aya::maps::MapData::from_pin(self.dataplane.pins.map(names::FLOW_LOG)).context("FLOW_LOG")?;
        let mut table: aya::maps::PerCpuHashMap<_, vpc_common::flowlog::FlPairKey, vpc_common::flowlog::FlCounters> =
            aya::maps::PerCpuHashMap::try_from(aya::maps::Map::PerCpuHashMap(pinned))?;
        let mut out: BTreeMap<_, (u64, u64)> = BTreeMap::new();
        let keys: Vec<vpc_common::flowlog::FlPairKey> = table.keys().collect::<Result<_, _>>()?;
        for key in keys {
            let values = table.get(&key, 0)?;
            for side in key.sides().into_iter().flatten() {
                let sum = out.entry(vpc_common::flowlog::FlKey { tick: 0, ..side }).or_default();
                for v in values.iter() {
                    sum.0 += v.packets;
                    sum.1 += v.bytes;
                }
            }
            table.remove(&key)?;
        }
        Ok(out)
    }

    fn port_counters(&self) -> anyhow::Result<BTreeMap<u32, EniCounters>> {
        let stats: PerCpuArray<_, EniCounters> = PerCpuArray::try_from(self.loaded.ebpf.map(names::ENI_STATS).context("ENI_STATS")?)?;
        let mut out = BTreeMap::new();
        for &port in &self.ports {
            let mut sum = EniCounters::default();
            for cpu in stats.get(&port, 0)?.iter() {
                sum.add(cpu);
            }
            out.insert(port, sum);
        }
        Ok(out)
    }

    fn drop_counters(&self) -> anyhow::Result<BTreeMap<DropReason, u64>> {
        let drops: PerCpuArray<_, u64> = PerCpuArray::try_from(self.loaded.ebpf.map(names::DROP_STATS).context("DROP_STATS")?)?;
        let mut out = BTreeMap::new();
        for reason in DropReason::ALL {
            out.insert(*reason, drops.get(&(*reason as u32), 0)?.iter().sum());
        }
        Ok(out)
    }

    /// Fill the ICMP error bucket, so the next expiring frame is answered (the model assumes
    /// the bucket has room; `run_raw` leaves it alone to test the limit itself).
    fn refill_icmp_bucket(&mut self) -> anyhow::Result<()> {
        let ports = self.ports.clone();
        self.fill_buckets(names::ICMP_RATE, ports, vpc_common::ICMP_ERRORS_BURST)
    }

    /// Fill every port's event budgets, so the next frame's events all go out (the model assumes
    /// nothing limits them).
    pub fn refill_event_budgets(&mut self) -> anyhow::Result<()> {
        use vpc_common::monitor::{EVENT_BURST, KERNEL_KINDS, NO_PORT, slot};
        let slots: Vec<u32> = self.ports.iter().copied().chain([NO_PORT]).flat_map(|p| KERNEL_KINDS.map(|k| slot(p, k))).collect();
        self.fill_buckets(names::MON_BUDGET, slots, EVENT_BURST)
    }

    /// Fill the token buckets (`RateLimit`s) at `slots` of per-CPU array `map` to `burst`.
    fn fill_buckets(&mut self, map: &str, slots: Vec<u32>, burst: u64) -> anyhow::Result<()> {
        let map = self.loaded.ebpf.map_mut(map).with_context(|| map.to_string())?;
        let mut buckets: PerCpuArray<_, vpc_common::RateLimit> = PerCpuArray::try_from(map)?;
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
        let full = vpc_common::RateLimit { last_ns: u64::MAX / 2, tokens: burst * 1_000_000_000 };
        for at in slots {
            buckets.set(at, aya::maps::PerCpuValues::try_from(vec![full; cpus])?, 0)?;
        }
        Ok(())
    }

    /// The events of `what` from `port` the kernel held back so far (by the limiter or a full
    /// ring), all CPUs.
    pub fn suppressed(&self, port: u32, what: u8) -> anyhow::Result<u64> {
        let at = vpc_common::monitor::slot(port, what);
        let held = crate::dataplane::stats::sums::<vpc_common::monitor::MonSuppressed>(&self.dataplane.pins, names::MON_SUPPRESSED, [at])?;
        Ok(held.get(&at).map_or(0, |h| h.limited + h.ring_full))
    }

    /// Take every event waiting in the ring.
    pub fn drain_events(&self) -> Vec<vpc_common::monitor::MonEvent> {
        let Ok(mut ring) = self.ring.lock() else { return Vec::new() };
        let mut out = Vec::new();
        while let Some(item) = ring.next() {
            out.extend(crate::monitor::reader::event_of(&item));
        }
        out
    }

    /// Run `frame` through the loaded program as if it arrived on `ifindex`.
    pub fn run(&self, ifindex: u32, frame: &[u8]) -> anyhow::Result<Observed> {
        Ok(self.run_events(ifindex, frame)?.0)
    }

    /// `run`, and the monitoring events the frame made, whole.
    pub fn run_events(&self, ifindex: u32, frame: &[u8]) -> anyhow::Result<(Observed, Vec<vpc_common::monitor::MonEvent>)> {
        self.drain_events();
        let ports_before = self.port_counters()?;
        let drops_before = self.drop_counters()?;
        let rules_before = self.rule_counters()?;
        // Start from an empty flow-log table: what is in it afterwards is this frame's.
        self.drain_flow_log()?;
        // struct xdp_md: data = 0 (no metadata), data_end = frame length, ingress_ifindex.
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        let mut out = vec![0u8; frame.len() + 256];
        let program: &aya::programs::Xdp = if self.is_underlay(ifindex) {
            self.loaded.ebpf.program(names::PROG_UNDERLAY_INGRESS).context("underlay program missing")?.try_into()?
        } else {
            self.loaded.program_ref()?
        };
        let result = program.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx),
            repeat: 1,
            ..Default::default()
        })?;
        out.truncate(result.data_size_out as usize);
        let ports_after = self.port_counters()?;
        let drops_after = self.drop_counters()?;
        let rule_hits: BTreeMap<u32, (u64, u64)> = self
            .rule_counters()?
            .into_iter()
            .filter_map(|(c, (p, b))| {
                let (p0, b0) = rules_before.get(&c).copied().unwrap_or_default();
                (p != p0 || b != b0).then_some((c, (p - p0, b - b0)))
            })
            .collect();

        let flow_log = self.drain_flow_log()?;
        let moved = |f: fn(&EniCounters) -> u64| -> anyhow::Result<Option<u32>> {
            let ports: Vec<u32> = ports_after.iter().filter(|(p, c)| f(c) != f(&ports_before[p])).map(|(p, _)| *p).collect();
            anyhow::ensure!(ports.len() <= 1, "one frame moved the counters of ports {ports:?}");
            Ok(ports.first().copied())
        };
        let rx_port = moved(|c| c.rx_packets)?;
        let tx_port = moved(|c| c.tx_packets)?;
        let refused_port = moved(|c| c.ct_refused)?;
        let dropped: Vec<DropReason> = drops_after.iter().filter(|(r, n)| **n != drops_before[r]).map(|(r, _)| *r).collect();
        anyhow::ensure!(dropped.len() <= 1, "one frame counted drops {dropped:?}");

        let action = match (result.return_value, dropped.first()) {
            (XDP_DROP, Some(reason)) => Action::Drop(*reason),
            (XDP_PASS, None) => Action::Pass,
            (XDP_REDIRECT, None) => Action::Redirect { port: tx_port.context("redirect without a tx count")? },
            (code, reason) => anyhow::bail!("program returned XDP action {code} with drop counters {reason:?}"),
        };
        let raw = self.drain_events();
        let events = events::observed(&raw);
        Ok((Observed { action, frame: out, rx_port, tx_port, rule_hits, flow_log, refused_port, events }, raw))
    }

    /// Run `frame` through both the model and the program -- twice through the program, so the
    /// second run takes the flow cache's path -- and describe any difference as `Err`.
    pub fn check(&mut self, ifindex: u32, frame: &[u8]) -> anyhow::Result<Outcome> {
        let first = self.check_once(ifindex, frame).map_err(|e| e.context("first frame (flow cache miss)"))?;
        self.check_once(ifindex, frame).map_err(|e| e.context("same frame again (flow cache hit)"))?;
        Ok(first)
    }

    fn check_once(&mut self, ifindex: u32, frame: &[u8]) -> anyhow::Result<Outcome> {
        self.refill_icmp_bucket()?;
        self.refill_event_budgets()?;
        let expected = self.expect(ifindex, frame);
        let observed = self.run(ifindex, frame)?;
        let mut rule_hits = BTreeMap::new();
        for (counter, bytes) in &expected.rule_hits {
            let hit: &mut (u64, u64) = rule_hits.entry(*counter).or_default();
            hit.0 += 1;
            hit.1 += bytes;
        }
        let mut flow_log = BTreeMap::new();
        for (key, bytes) in &expected.flow_log {
            let hit: &mut (u64, u64) = flow_log.entry(*key).or_default();
            hit.0 += 1;
            hit.1 += bytes;
        }
        let want = Observed {
            action: expected.action,
            frame: expected.frame.clone(),
            rx_port: expected.rx_port,
            tx_port: expected.tx_port,
            rule_hits,
            flow_log,
            refused_port: expected.refused_port,
            events: events::expected(&expected),
        };
        let held = self.held()?;
        let mut expected_held: BTreeMap<u32, u64> = BTreeMap::new();
        for key in self.ct.entries.keys() {
            *expected_held.entry(key.port).or_default() += 1;
        }
        if held != expected_held {
            anyhow::bail!(
                "model and XDP program disagree on the connections each port holds after a frame from ifindex {ifindex}\n  frame: {}\n  model: {expected_held:?}\n  program: {held:?}\n  model steps: {}",
                hex(frame),
                expected.steps.join("; ")
            );
        }
        if observed != want {
            anyhow::bail!(
                "model and XDP program disagree on a frame from ifindex {ifindex}\n  frame:    {}\n  model:    {:?} rules {:?} events {:?} -> {}\n  program:  {:?} rules {:?} events {:?} -> {}\n  model steps: {}",
                hex(frame),
                (want.action, want.rx_port, want.tx_port, want.refused_port),
                (&want.rule_hits, &want.flow_log),
                &want.events,
                hex(&want.frame),
                (observed.action, observed.rx_port, observed.tx_port, observed.refused_port),
                (&observed.rule_hits, &observed.flow_log),
                &observed.events,
                hex(&observed.frame),
                expected.steps.join("; ")
            );
        }
        Ok(expected)
    }
}

/// Which program a timing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timed {
    /// The data path.
    Dataplane,
    /// The empty baseline program (`load_baseline` first).
    Baseline,
    /// The lookups of an established packet alone (`load_baseline` first): `XDP_PASS` when
    /// the frame's connection is in the table.
    Lookup,
}

impl Timed {
    /// The program's name in the object.
    fn name(self) -> &'static str {
        match self {
            Timed::Dataplane => names::PROG_ENI_INGRESS,
            Timed::Baseline => names::PROG_BENCH_EMPTY,
            Timed::Lookup => names::PROG_BENCH_LOOKUP,
        }
    }
}

impl Harness {
    /// Load the benchmarks' anchors, the empty program and the lookups alone, from the same
    /// object (over the same maps).
    pub fn load_baseline(&mut self) -> anyhow::Result<()> {
        for name in [names::PROG_BENCH_EMPTY, names::PROG_BENCH_LOOKUP, names::PROG_BENCH_RING] {
            crate::dataplane::loader::retrying(|| {
                let prog: &mut aya::programs::Xdp = self.loaded.ebpf.program_mut(name).context("program missing")?.try_into()?;
                Ok(prog.load()?)
            })
            .with_context(|| format!("loading {name}"))?;
        }
        Ok(())
    }

    /// Run `frame` from `ifindex` `repeat` times back to back in the kernel; returns the XDP
    /// action and the kernel's average time per run. The runs share one buffer, so a program's
    /// rewrites (the TTL decrement) accumulate: keep `repeat` below the frame's TTL.
    pub fn time(&self, program: Timed, ifindex: u32, frame: &[u8], repeat: u32) -> anyhow::Result<(u32, std::time::Duration)> {
        let name = program.name();
        let prog: &aya::programs::Xdp = self.loaded.ebpf.program(name).context("program missing")?.try_into()?;
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        let result = prog.test_run(TestRunOptions { data_in: Some(frame), ctx_in: Some(&ctx), repeat, ..Default::default() })?;
        Ok((result.return_value, result.duration))
    }
}

impl Harness {
    /// Run `frames` from `ifindex` through `program`, each `passes` times in turn, in one test
    /// run (the ring driver: `vpc_bench_ring`); returns the kernel's average time per frame, in
    /// ns. Fails unless every run ended in `want` (the last run's action, and no drop counted).
    pub fn time_ring(&mut self, program: Timed, ifindex: u32, frames: &[Vec<u8>], passes: u32, want: u32) -> anyhow::Result<f64> {
        use aya::maps::{Array, PerCpuValues, ProgramArray};
        const RING: usize = 16_384;
        anyhow::ensure!(!frames.is_empty() && frames.len() <= RING, "a ring holds 1 to {RING} frames, not {}", frames.len());
        let ebpf = &mut self.loaded.ebpf;
        let mut ring: Array<_, [u8; 64]> = Array::try_from(ebpf.map_mut("BENCH_RING").context("BENCH_RING")?)?;
        for (i, frame) in frames.iter().enumerate() {
            ring.set(i as u32, <[u8; 64]>::try_from(frame.as_slice()).context("ring frames are 64 bytes")?, 0)?;
        }
        Array::<_, u32>::try_from(ebpf.map_mut("BENCH_RING_LEN").context("BENCH_RING_LEN")?)?.set(0, frames.len() as u32, 0)?;
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
        let mut seq: PerCpuArray<_, u32> = PerCpuArray::try_from(ebpf.map_mut("BENCH_SEQ").context("BENCH_SEQ")?)?;
        seq.set(0, PerCpuValues::try_from(vec![0u32; cpus])?, 0)?;
        let name = program.name();
        let target: &aya::programs::Xdp = ebpf.program(name).context("program missing")?.try_into()?;
        let fd = target.fd()?.try_clone()?;
        ProgramArray::try_from(ebpf.map_mut("BENCH_PROGS").context("BENCH_PROGS")?)?.set(0, &fd, 0)?;
        let drops_before = self.drops_counted()?;
        let driver: &aya::programs::Xdp = self.loaded.ebpf.program(names::PROG_BENCH_RING).context("ring driver missing")?.try_into()?;
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&64u32.to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        let repeat = frames.len() as u32 * passes;
        let result = driver.test_run(TestRunOptions { data_in: Some(&frames[0]), ctx_in: Some(&ctx), repeat, ..Default::default() })?;
        let dropped = self.drops_counted()? - drops_before;
        anyhow::ensure!(
            result.return_value == want && dropped == 0,
            "{program:?} over the ring ended in XDP action {} with {dropped} drops, expected {want} and none: the bench would measure the wrong path",
            result.return_value
        );
        Ok(result.duration.as_nanos() as f64)
    }

    /// Drops the data path counted, all reasons and CPUs.
    fn drops_counted(&self) -> anyhow::Result<u64> {
        let drops: PerCpuArray<_, u64> = PerCpuArray::try_from(crate::dataplane::stats::open(&self.dataplane.pins, names::DROP_STATS)?)?;
        let mut total = 0;
        for reason in 0..drops.len() {
            total += drops.get(&reason, 0)?.iter().sum::<u64>();
        }
        Ok(total)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
