//! Live monitoring: the data path's events (`vpc_common::monitor`), named and numbered in one
//! stream. The agent is the single reader of the kernel's ring (`reader`); clients follow the
//! stream over the API (`hub`); connections ending come from the sweeper. `vpc monitor` shows it.

pub mod event;
pub mod hub;
pub mod reader;

pub use event::{Event, Names};
pub use hub::{Filter, Hub, Page, Stats};

/// Connections a sweep ended, with the names they had when they ended (a sweep that released
/// ports runs after their ENIs left the topology); `None`: the stream's current names.
pub struct EndedBatch {
    pub ended: Vec<crate::dataplane::conntrack::Ended>,
    pub names: Option<Names>,
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Milliseconds per connection-clock tick (`vpc_common::ct::TICK_SHIFT`).
pub const TICK_MS: u64 = (1u64 << vpc_common::ct::TICK_SHIFT) / 1_000_000;

/// Turn what one wake-up of the reader found into events, in order: the kernel's, then the
/// connections the sweeper ended, then what the kernel held back.
pub fn collect(
    names: &Names,
    kernel: &[(vpc_common::monitor::MonEvent, u64)],
    ended: &[crate::dataplane::conntrack::Ended],
    held: &[(u32, u8, u64, u64)],
    now_ms: u64,
) -> Vec<Event> {
    let mut out: Vec<Event> = kernel.iter().map(|(raw, ms)| event::from_kernel(raw, names, *ms)).collect();
    out.extend(ended.iter().map(|e| event::from_ended(e, names, now_ms, TICK_MS)));
    out.extend(held.iter().map(|&(port, what, limited, full)| event::suppressed(port, what, limited, full, names, now_ms)));
    out
}
