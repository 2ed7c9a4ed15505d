//! The agent's side of the connection table (`vpc_common::ct`): how many entries each port
//! holds, and the sweeper that deletes expired entries. Nothing else ever removes an entry, so
//! the sweeper is what gives ports their room back; it also credits each deletion to the
//! entry's port (`CT_CLOSED`), which is how the data path knows what a port holds.

use std::collections::{BTreeMap, BTreeSet};

use aya::maps::{Array, HashMap, MapData};
use vpc_common::{
    CtEntry, CtKey,
    ct::{TICK_SHIFT, peer_key, route, timeout},
    maps as names,
};

use super::{bpffs::PinDirs, stats::open};

/// The connection clock as the data path reads it (`bpf_ktime_get_coarse_ns() >> TICK_SHIFT`):
/// CLOCK_MONOTONIC_COARSE is the same clock.
pub fn now() -> u32 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    let ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    (ns >> TICK_SHIFT) as u32
}

/// Entries in the table now (one syscall per entry: for stats, not hot paths).
pub fn entries(pins: &PinDirs) -> anyhow::Result<u64> {
    let table: HashMap<_, CtKey, CtEntry> = HashMap::try_from(open(pins, names::CONNTRACK)?)?;
    Ok(table.keys().filter(Result::is_ok).count() as u64)
}

/// Entries each of `ports` holds: what the data path created for it minus what was deleted.
pub fn held(pins: &PinDirs, ports: impl IntoIterator<Item = u32>) -> anyhow::Result<BTreeMap<u32, u64>> {
    let opened: Array<_, u64> = Array::try_from(open(pins, names::CT_OPENED)?)?;
    let closed: Array<_, u64> = Array::try_from(open(pins, names::CT_CLOSED)?)?;
    let mut out = BTreeMap::new();
    for port in ports {
        out.insert(port, opened.get(&port, 0)?.saturating_sub(closed.get(&port, 0)?));
    }
    Ok(out)
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Entries looked at, and deleted (expired, or of a port that is gone).
    pub seen: u64,
    pub deleted: u64,
    /// The connections whose opening side's entry was deleted, for the monitoring stream.
    pub ended: Vec<Ended>,
}

/// A connection the sweeper ended: its opening side's entry and, when it had one, the other
/// side's (the replies' counts), as they were just before deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub key: CtKey,
    pub entry: CtEntry,
    pub peer: Option<CtEntry>,
    /// Deleted because its port is gone, not because it expired.
    pub released: bool,
}

/// Whether `entry` at `key` has been idle past its timeout at `now`, its connection's other side
/// too (the data path's `alive`, negated).
fn expired(table: &HashMap<MapData, CtKey, CtEntry>, key: &CtKey, entry: &CtEntry, now: u32) -> bool {
    let limit = timeout(key.proto, entry.state);
    if now.wrapping_sub(entry.last_seen) <= limit {
        return false;
    }
    if entry.route == route::HOST {
        return true;
    }
    match table.get(&peer_key(key, entry.hop.port), 0) {
        Ok(peer) => now.wrapping_sub(peer.last_seen) > limit,
        Err(_) => true,
    }
}

/// Delete every expired entry, and every entry of a port in `released` (an ENI or gateway that
/// is gone: a port number handed to a new ENI must not inherit connections). Each deletion is
/// credited to its port in `CT_CLOSED`.
pub fn sweep(pins: &PinDirs, released: &BTreeSet<u32>, now: u32) -> anyhow::Result<Swept> {
    // One sweep at a time in the process: `CT_CLOSED` is read, added to and written back.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut table: HashMap<MapData, CtKey, CtEntry> = HashMap::try_from(open(pins, names::CONNTRACK)?)?;
    let keys: Vec<CtKey> = table.keys().filter_map(Result::ok).collect();
    let mut swept = Swept { seen: keys.len() as u64, ..Swept::default() };
    let mut closed: BTreeMap<u32, u64> = BTreeMap::new();
    let mut deleted: BTreeMap<CtKey, CtEntry> = BTreeMap::new();
    for key in keys {
        // Read again just before deciding: the data path may have used it meanwhile.
        let Ok(entry) = table.get(&key, 0) else { continue };
        if !released.contains(&key.port) && !expired(&table, &key, &entry, now) {
            continue;
        }
        if table.remove(&key).is_ok() {
            *closed.entry(key.port).or_default() += 1;
            swept.deleted += 1;
            deleted.insert(key, entry);
        }
    }
    credit_closed(pins, closed)?;
    for (key, entry) in &deleted {
        if entry.origin != vpc_common::ct::origin::OUT {
            continue;
        }
        let peer = (entry.route != route::HOST).then(|| peer_key(key, entry.hop.port));
        let peer = peer.and_then(|k| deleted.get(&k).copied().or_else(|| table.get(&k, 0).ok()));
        swept.ended.push(Ended { key: *key, entry: *entry, peer, released: released.contains(&key.port) });
    }
    Ok(swept)
}

/// Delete the entries of `keys` (those still there), each credited to its port in `CT_CLOSED`
/// as the sweeper does. How many were deleted.
pub fn remove(pins: &PinDirs, keys: impl IntoIterator<Item = CtKey>) -> anyhow::Result<u64> {
    let mut table: HashMap<MapData, CtKey, CtEntry> = HashMap::try_from(open(pins, names::CONNTRACK)?)?;
    let mut closed: BTreeMap<u32, u64> = BTreeMap::new();
    for key in keys {
        if table.remove(&key).is_ok() {
            *closed.entry(key.port).or_default() += 1;
        }
    }
    let deleted = closed.values().sum();
    credit_closed(pins, closed)?;
    Ok(deleted)
}

fn credit_closed(pins: &PinDirs, closed: BTreeMap<u32, u64>) -> anyhow::Result<()> {
    if closed.is_empty() {
        return Ok(());
    }
    let mut counts: Array<MapData, u64> = Array::try_from(open(pins, names::CT_CLOSED)?)?;
    for (port, n) in closed {
        let before = counts.get(&port, 0)?;
        counts.set(port, before.wrapping_add(n), 0)?;
    }
    Ok(())
}
