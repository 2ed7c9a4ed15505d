//! The one reader of the kernel's ring (`EVENTS`): waits for events, takes them out, and reads
//! what the kernel held back (`MON_SUPPRESSED`) as deltas since its last look.

use std::{
    collections::BTreeMap,
    os::fd::AsRawFd as _,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use vpc_common::{
    maps as names,
    monitor::{KERNEL_KINDS, MonEvent, MonSuppressed, NO_PORT, slot},
};

use super::{Event, Names};
use crate::dataplane::{PinDirs, stats::open};

pub struct Reader {
    ring: RingBuf<MapData>,
    held: PerCpuArray<MapData, MonSuppressed>,
    /// Per slot: the (limited, ring_full) totals already reported.
    reported: BTreeMap<u32, (u64, u64)>,

    /// The ring's size in bytes.
    pub ring_bytes: u64,
    /// When `read` last reported what the kernel held back.
    held_at: Instant,
}

/// The event in a ring record (`None`: too short to be one).
pub fn event_of(record: &[u8]) -> Option<MonEvent> {
    // SAFETY: the length is checked; read unaligned from the ring's bytes.
    (record.len() >= size_of::<MonEvent>()).then(|| unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) })
}

fn monotonic_ns() -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

fn wall_ns() -> i128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128)
}

impl Reader {
    /// Open the pinned ring. What the kernel held back before now (the counts outlive agents)
    /// is taken as reported: a new reader reports from here on.
    pub fn open(pins: &PinDirs, ring_bytes: u64) -> anyhow::Result<Reader> {
        let ring = RingBuf::try_from(open(pins, names::EVENTS)?).context("EVENTS")?;
        let held: PerCpuArray<MapData, MonSuppressed> =
            PerCpuArray::try_from(open(pins, names::MON_SUPPRESSED)?).context("MON_SUPPRESSED")?;
        let mut reported = BTreeMap::new();
        for at in 0..held.len() {
            if let Ok(values) = held.get(&at, 0) {
                let counts = Self::sum(&values);
                if counts != (0, 0) {
                    reported.insert(at, counts);
                }
            }
        }
        Ok(Reader { ring, held, reported, ring_bytes, held_at: Instant::now() })
    }

    fn sum(values: &aya::maps::PerCpuValues<MonSuppressed>) -> (u64, u64) {
        let mut sum = MonSuppressed::default();
        values.iter().for_each(|v| sum.add(v));
        (sum.limited, sum.ring_full)
    }

    /// Wait up to `timeout` for the ring to have something.
    pub fn wait(&self, timeout: Duration) {
        let mut fd = libc::pollfd { fd: self.ring.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut fd, 1, timeout.as_millis().min(i32::MAX as u128) as i32) };
    }

    /// What one wake-up found, named: the kernel's events, then (once a second) what it held
    /// back; and the bytes the events took in the ring.
    pub fn read(&mut self, names: &Names) -> (Vec<Event>, u64) {
        let (kernel, bytes) = self.drain();
        let held = if self.held_at.elapsed() >= Duration::from_secs(1) {
            self.held_at = Instant::now();
            self.suppressed(names.ports.keys().copied().collect::<Vec<_>>())
        } else {
            Vec::new()
        };
        (super::collect(names, &kernel, &[], &held, super::unix_ms()), bytes)
    }

    /// Every event waiting, with its wall-clock time in milliseconds; and the bytes they took.
    pub fn drain(&mut self) -> (Vec<(MonEvent, u64)>, u64) {
        // `bpf_ktime_get_ns` is the monotonic clock; taken again each time (the wall clock steps).
        let offset_ns = wall_ns() - monotonic_ns();
        let (mut out, mut bytes) = (Vec::new(), 0u64);
        while let Some(item) = self.ring.next() {
            // A record's 8-byte header, its length rounded up to 8.
            bytes += 8 + (item.len() as u64).next_multiple_of(8);
            let Some(event) = event_of(&item) else { continue };
            let ms = ((i128::from(event.ktime) + offset_ns) / 1_000_000).max(0) as u64;
            out.push((event, ms));
        }
        (out, bytes)
    }

    /// What the kernel held back for `ports` (and frames from no ENI) since the last call:
    /// (port, kind, by the limiter, by a full ring), only where something was.
    pub fn suppressed(&mut self, ports: impl IntoIterator<Item = u32>) -> Vec<(u32, u8, u64, u64)> {
        let mut out = Vec::new();
        for port in ports.into_iter().chain([NO_PORT]) {
            for what in KERNEL_KINDS {
                let at = slot(port, what);
                let Ok(values) = self.held.get(&at, 0) else { continue };
                let (limited, ring_full) = Self::sum(&values);
                let (was_limited, was_full) = self.reported.insert(at, (limited, ring_full)).unwrap_or((0, 0));
                let (l, r) = (limited.saturating_sub(was_limited), ring_full.saturating_sub(was_full));
                if l + r > 0 {
                    out.push((port, what, l, r));
                }
            }
        }
        out
    }
}
