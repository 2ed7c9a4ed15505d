//! Reading the data path's per-CPU counters from the pinned maps.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aya::maps::{Map, MapData, PerCpuArray};
use vpc_common::{DropReason, EniCounters, maps as names};

use super::bpffs::PinDirs;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// port -> counters summed over CPUs (only ports with traffic or asked for).
    pub ports: BTreeMap<u32, EniCounters>,
    /// drop reason -> packets summed over CPUs.
    pub drops: BTreeMap<DropReason, u64>,
    /// event name -> count summed over CPUs.
    pub events: BTreeMap<&'static str, u64>,
}

impl Counters {
    pub fn port(&self, port: u32) -> EniCounters {
        self.ports.get(&port).copied().unwrap_or_default()
    }
    pub fn drop(&self, reason: DropReason) -> u64 {
        self.drops.get(&reason).copied().unwrap_or(0)
    }
}

/// A pinned map of the data path, by name.
pub fn open(pins: &PinDirs, name: &str) -> anyhow::Result<Map> {
    let path = pins.map(name);
    let data = MapData::from_pin(&path).with_context(|| format!("opening {} (is the dataplane applied?)", path.display()))?;
    Ok(Map::from_map_data(data)?)
}

/// Read counters of `ports` and every drop reason.
pub fn read(pins: &PinDirs, ports: impl IntoIterator<Item = u32>) -> anyhow::Result<Counters> {
    let mut out = Counters::default();
    let map = open(pins, names::ENI_STATS)?;
    let stats: PerCpuArray<_, EniCounters> = PerCpuArray::try_from(map)?;
    for port in ports {
        let mut sum = EniCounters::default();
        for cpu in stats.get(&port, 0)?.iter() {
            sum.add(cpu);
        }
        out.ports.insert(port, sum);
    }
    let map = open(pins, names::DROP_STATS)?;
    let drops: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
    for reason in DropReason::ALL {
        let total = drops.get(&(*reason as u32), 0)?.iter().sum();
        out.drops.insert(*reason, total);
    }
    if let Ok(map) = open(pins, names::EVENT_STATS) {
        let events: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
        for (i, name) in vpc_common::event::NAMES.iter().enumerate() {
            out.events.insert(name, events.get(&(i as u32), 0)?.iter().sum());
        }
    }
    Ok(out)
}

/// Zero the per-CPU counters at `keys` (a port or rule number handed to a new ENI or rule
/// starts from zero).
pub fn reset<T: aya::Pod + Default>(stats: &mut PerCpuArray<&mut MapData, T>, keys: impl IntoIterator<Item = u32>) -> anyhow::Result<()> {
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
    for key in keys {
        let zero = aya::maps::PerCpuValues::try_from((0..cpus).map(|_| T::default()).collect::<Vec<_>>())?;
        stats.set(key, zero, 0)?;
    }
    Ok(())
}

/// Per-CPU counter values that add up.
pub trait PerCpuSum: aya::Pod + Default {
    fn add(&mut self, other: &Self);
}

macro_rules! per_cpu_sum {
    ($($t:ty),+) => {$(
        impl PerCpuSum for $t {
            fn add(&mut self, other: &Self) {
                <$t>::add(self, other)
            }
        }
    )+};
}
per_cpu_sum!(vpc_common::sg::RuleCounters, vpc_common::mcast::McastCounters, vpc_common::monitor::MonSuppressed);

/// The counters at `keys` of per-CPU array `name`, summed over CPUs.
pub fn sums<T: PerCpuSum>(pins: &PinDirs, name: &str, keys: impl IntoIterator<Item = u32>) -> anyhow::Result<BTreeMap<u32, T>> {
    let stats: PerCpuArray<_, T> = PerCpuArray::try_from(open(pins, name)?)?;
    let mut out = BTreeMap::new();
    for key in keys {
        let mut sum = T::default();
        for cpu in stats.get(&key, 0)?.iter() {
            sum.add(cpu);
        }
        out.insert(key, sum);
    }
    Ok(out)
}
