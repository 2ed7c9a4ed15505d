//! Make the kernel's config maps equal to the compiled entries, touching only what differs.
//!
//! Two phases so that traffic never sees a hole: `upsert` writes every new or changed entry
//! (each map update is atomic per key), then `remove` deletes what is no longer wanted.

use std::{collections::BTreeMap, os::fd::AsFd as _};

use anyhow::Context as _;
use aya::{
    Ebpf, Pod,
    maps::{Array, DevMap, HashMap, LpmTrie, Map, MapData, lpm_trie::Key},
};
use vpc_common::{AddrKey, CONFIG_EPOCH, Eni, Group, Port, Route, RouteKey};

use super::{bpffs::PinDirs, sys};
use crate::compile::LpmKey;

/// What one sync changed in one map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Changes {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added + self.changed + self.removed == 0
    }
}

/// A config map as a key/value store.
pub trait ConfigMap {
    type K: Ord + Clone;
    type V: PartialEq + Clone;
    fn current(&self) -> anyhow::Result<BTreeMap<Self::K, Self::V>>;
    fn put(&mut self, key: &Self::K, value: &Self::V) -> anyhow::Result<()>;
    fn delete(&mut self, key: &Self::K) -> anyhow::Result<()>;
}

/// A sync in progress on one map: phase one done, phase two pending.
pub struct Pending<K> {
    stale: Vec<K>,
    pub changes: Changes,
}

/// Nothing to delete.
impl<K> Default for Pending<K> {
    fn default() -> Self {
        Pending { stale: Vec::new(), changes: Changes::default() }
    }
}

/// Where a sync finds its maps by name: a loaded instance, or the pinned maps (`Pinned`).
pub trait MapSource {
    fn maps<const N: usize>(&mut self, names: [&'static str; N]) -> anyhow::Result<[&mut Map; N]>;

    fn map(&mut self, name: &'static str) -> anyhow::Result<&mut Map> {
        let [map] = self.maps([name])?;
        Ok(map)
    }
}

impl MapSource for Ebpf {
    fn maps<const N: usize>(&mut self, names: [&'static str; N]) -> anyhow::Result<[&mut Map; N]> {
        every(names, self.maps_disjoint_mut(names), "missing from the XDP object")
    }
}

/// The maps pinned under a pin root, opened when first asked for.
pub struct Pinned<'p> {
    pins: &'p PinDirs,
    open: std::collections::HashMap<&'static str, Map>,
}

impl<'p> Pinned<'p> {
    pub fn new(pins: &'p PinDirs) -> Self {
        Pinned { pins, open: Default::default() }
    }
}

impl MapSource for Pinned<'_> {
    fn maps<const N: usize>(&mut self, names: [&'static str; N]) -> anyhow::Result<[&mut Map; N]> {
        for name in names {
            if !self.open.contains_key(name) {
                let data = MapData::from_pin(self.pins.map(name)).with_context(|| format!("opening pinned {name}"))?;
                self.open.insert(name, Map::from_map_data(data)?);
            }
        }
        every(names, self.open.get_disjoint_mut(names), "not pinned")
    }
}

/// All of `found`, or an error naming the first map missing.
fn every<T, const N: usize>(names: [&str; N], found: [Option<T>; N], missing: &str) -> anyhow::Result<[T; N]> {
    if let Some(i) = found.iter().position(Option::is_none) {
        anyhow::bail!("map {} {missing}", names[i]);
    }
    Ok(found.map(|map| map.expect("checked above")))
}

/// Phase one: write new and changed entries. `known` is what the map holds when the caller
/// knows it (it wrote it last); otherwise the map is read.
pub fn upsert<M: ConfigMap>(
    map: &mut M,
    want: &BTreeMap<M::K, M::V>,
    known: Option<&BTreeMap<M::K, M::V>>,
) -> anyhow::Result<Pending<M::K>> {
    let read;
    let current = match known {
        Some(known) => known,
        None => {
            read = map.current()?;
            &read
        }
    };
    let mut changes = Changes::default();
    for (key, value) in want {
        match current.get(key) {
            Some(existing) if existing == value => {}
            Some(_) => {
                map.put(key, value)?;
                changes.changed += 1;
            }
            None => {
                map.put(key, value)?;
                changes.added += 1;
            }
        }
    }
    let stale: Vec<M::K> = current.keys().filter(|k| !want.contains_key(k)).cloned().collect();
    changes.removed = stale.len();
    Ok(Pending { stale, changes })
}

/// Phase two: delete entries nobody wants any more.
pub fn remove<M: ConfigMap>(map: &mut M, pending: &Pending<M::K>) -> anyhow::Result<()> {
    for key in &pending.stale {
        map.delete(key)?;
    }
    Ok(())
}

/// Hash maps keyed and valued by plain data.
pub struct Hash<'a, K: Pod, V: Pod>(pub HashMap<&'a mut MapData, K, V>);

impl<'a, K: Pod, V: Pod> Hash<'a, K, V> {
    pub fn open(map: &'a mut Map) -> anyhow::Result<Self> {
        Ok(Hash(HashMap::try_from(map)?))
    }
}

impl<K: Pod + Ord, V: Pod + PartialEq> ConfigMap for Hash<'_, K, V> {
    type K = K;
    type V = V;
    fn current(&self) -> anyhow::Result<BTreeMap<K, V>> {
        self.0.iter().map(|r| r.context("reading hash map")).collect()
    }
    fn put(&mut self, key: &K, value: &V) -> anyhow::Result<()> {
        self.0.insert(key, value, 0).context("updating hash map")
    }
    fn delete(&mut self, key: &K) -> anyhow::Result<()> {
        self.0.remove(key).context("deleting from hash map")
    }
}

pub type Enis<'a> = Hash<'a, u32, Eni>;
pub type Addrs<'a> = Hash<'a, AddrKey, Port>;
pub type McastGroups<'a> = Hash<'a, vpc_common::mcast::McastKey, vpc_common::mcast::McastGroup>;
pub type McastSenders<'a> = Hash<'a, vpc_common::mcast::McastSenderKey, u32>;

/// The route LPM trie.
pub struct Routes<'a>(pub LpmTrie<&'a mut MapData, RouteKey, Route>);

impl<'a> Routes<'a> {
    pub fn open(map: &'a mut Map) -> anyhow::Result<Self> {
        Ok(Routes(LpmTrie::try_from(map)?))
    }
}

impl ConfigMap for Routes<'_> {
    type K = LpmKey;
    type V = Route;
    fn current(&self) -> anyhow::Result<BTreeMap<LpmKey, Route>> {
        self.0.iter().map(|r| r.map(|(k, v)| (LpmKey { prefix_len: k.prefix_len(), key: k.data() }, v)).context("reading routes")).collect()
    }
    fn put(&mut self, key: &LpmKey, value: &Route) -> anyhow::Result<()> {
        self.0.insert(&Key::new(key.prefix_len, key.key), value, 0).context("updating routes")
    }
    fn delete(&mut self, key: &LpmKey) -> anyhow::Result<()> {
        self.0.remove(&Key::new(key.prefix_len, key.key)).context("deleting a route")
    }
}

/// The DEVMAP of redirect targets: port -> ifindex.
pub struct Ports<'a>(pub DevMap<&'a mut MapData>);

impl<'a> Ports<'a> {
    pub fn open(map: &'a mut Map) -> anyhow::Result<Self> {
        Ok(Ports(DevMap::try_from(map)?))
    }
}

impl ConfigMap for Ports<'_> {
    type K = u32;
    type V = u32;
    fn current(&self) -> anyhow::Result<BTreeMap<u32, u32>> {
        let mut out = BTreeMap::new();
        for (port, entry) in self.0.iter().enumerate() {
            if let Ok(entry) = entry {
                out.insert(port as u32, entry.if_index);
            }
        }
        Ok(out)
    }
    fn put(&mut self, port: &u32, ifindex: &u32) -> anyhow::Result<()> {
        self.0.set(*port, *ifindex, None, 0).with_context(|| format!("setting port {port} to ifindex {ifindex}"))
    }
    fn delete(&mut self, port: &u32) -> anyhow::Result<()> {
        let fd = aya::maps::IterableMap::map(&self.0).fd().as_fd();
        sys::map_delete(fd, port).with_context(|| format!("clearing port {port}"))
    }
}

/// The array of ECMP / active-standby groups: an unused slot holds the default (empty) group.
pub struct Groups<'a>(pub Array<&'a mut MapData, Group>);

impl<'a> Groups<'a> {
    pub fn open(map: &'a mut Map) -> anyhow::Result<Self> {
        Ok(Groups(Array::try_from(map)?))
    }
}

impl ConfigMap for Groups<'_> {
    type K = u32;
    type V = Group;
    fn current(&self) -> anyhow::Result<BTreeMap<u32, Group>> {
        let mut out = BTreeMap::new();
        for (i, group) in self.0.iter().enumerate() {
            let group = group.context("reading groups")?;
            if group != Group::default() {
                out.insert(i as u32, group);
            }
        }
        Ok(out)
    }
    fn put(&mut self, index: &u32, group: &Group) -> anyhow::Result<()> {
        self.0.set(*index, group, 0).with_context(|| format!("setting group {index}"))
    }
    fn delete(&mut self, index: &u32) -> anyhow::Result<()> {
        self.0.set(*index, Group::default(), 0).with_context(|| format!("clearing group {index}"))
    }
}

/// Bump the configuration epoch: every cached flow decision is taken again.
pub fn bump_epoch(map: &mut Map) -> anyhow::Result<u64> {
    let mut config: Array<&mut MapData, u64> = Array::try_from(map)?;
    let epoch = config.get(&CONFIG_EPOCH, 0).context("reading the epoch")? + 1;
    config.set(CONFIG_EPOCH, epoch, 0).context("writing the epoch")?;
    Ok(epoch)
}
