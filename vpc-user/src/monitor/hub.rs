//! The agent's stream: every event numbered in order, a short history for `--last` and for
//! clients that fall behind, and the counts `vpc monitor --stats` shows. One reader (the
//! agent's) feeds it; any number of clients read from it by sequence number.

use std::{
    collections::{BTreeMap, VecDeque},
    net::Ipv4Addr,
    sync::{Condvar, Mutex},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use super::event::Event;

/// Events the history keeps (the oldest go first).
pub const HISTORY: usize = 10_000;

#[derive(Default)]
struct Inner {
    history: VecDeque<Event>,
    /// The last sequence number given.
    seq: u64,
    /// Events by type since the agent started, and the same a window ago (for rates).
    totals: BTreeMap<String, u64>,
    window: VecDeque<(Instant, BTreeMap<String, u64>)>,
    /// Held back in the kernel (by the limiter, by a full ring), reported so far.
    limited: u64,
    ring_full: u64,
    /// Bytes waiting in the ring at the reader's last wake-up, and its size.
    pending_bytes: u64,
    ring_bytes: u64,
}

pub struct Hub {
    inner: Mutex<Inner>,
    arrived: Condvar,
    /// This stream's identity: a client holding sequence numbers of another (an agent that
    /// restarted) starts from now instead of waiting for the new numbers to catch up.
    pub id: u64,
}

impl Default for Hub {
    fn default() -> Hub {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Hub { inner: Mutex::default(), arrived: Condvar::new(), id: now ^ u64::from(std::process::id()) << 40 }
    }
}

/// A page of the stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub events: Vec<Event>,
    /// Ask with `since` = this next time.
    pub next: u64,
    /// The stream's identity (`Hub::id`): pass it back.
    pub stream: u64,
    /// Events after `since` the history no longer kept: the client fell behind by this many.
    pub gap: u64,
}

/// `vpc monitor --stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Events by type since the agent started.
    pub totals: BTreeMap<String, u64>,
    /// Events per second by type, over the last ten seconds.
    pub per_second: BTreeMap<String, f64>,
    /// Events the kernel held back: by the per-ENI limiter, and because the ring was full.
    pub suppressed_by_limiter: u64,
    pub lost_ring_full: u64,
    /// The ring: bytes waiting when the reader last woke, of its size.
    pub ring_pending_bytes: u64,
    pub ring_bytes: u64,
    /// The last sequence number.
    pub seq: u64,
}

impl Hub {
    /// Number and keep `events`, and wake who waits.
    pub fn push(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        for mut event in events {
            inner.seq += 1;
            event.seq = inner.seq;
            *inner.totals.entry(event.kind.clone()).or_default() += 1;
            if event.kind == "suppressed" {
                inner.limited += event.limited.unwrap_or(0);
                inner.ring_full += event.ring_full.unwrap_or(0);
            }
            if inner.history.len() == HISTORY {
                inner.history.pop_front();
            }
            inner.history.push_back(event);
        }
        drop(inner);
        self.arrived.notify_all();
    }

    /// Note the ring's state at the reader's wake-up; keep a point for the rates once a second.
    pub fn ring(&self, pending_bytes: u64, ring_bytes: u64) {
        let Ok(mut inner) = self.inner.lock() else { return };
        inner.pending_bytes = pending_bytes;
        inner.ring_bytes = ring_bytes;
        let now = Instant::now();
        if inner.window.back().is_none_or(|(at, _)| now.duration_since(*at) >= Duration::from_secs(1)) {
            let totals = inner.totals.clone();
            inner.window.push_back((now, totals));
            while inner.window.len() > 11 {
                inner.window.pop_front();
            }
        }
    }

    /// Events after `since` that `filter` keeps (at most `max`, at least one), waiting up to
    /// `wait` for one. `stream`: the stream `since` counts in (another one's: from now on).
    pub fn since(&self, since: u64, stream: Option<u64>, filter: &Filter, max: usize, wait: Duration) -> Page {
        let deadline = Instant::now() + wait;
        let max = max.max(1);
        let Ok(mut inner) = self.inner.lock() else { return Page { next: since, stream: self.id, ..Page::default() } };
        let since = if stream.is_some_and(|s| s != self.id) || since > inner.seq { inner.seq } else { since };
        let oldest = inner.history.front().map_or(inner.seq + 1, |e| e.seq);
        let gap = oldest.saturating_sub(since + 1);
        loop {
            let found: Vec<Event> = inner.history.iter().filter(|e| e.seq > since && filter.keeps(e)).take(max).cloned().collect();
            let next = found.last().map_or(inner.seq, |e| if found.len() == max { e.seq } else { inner.seq });
            let now = Instant::now();
            if !found.is_empty() || now >= deadline {
                return Page { events: found, next, stream: self.id, gap };
            }
            inner = match self.arrived.wait_timeout(inner, deadline - now) {
                Ok((guard, _)) => guard,
                Err(_) => return Page { next: since, stream: self.id, gap, ..Page::default() },
            };
        }
    }

    /// The last `n` events `filter` keeps, oldest first.
    pub fn last(&self, n: usize, filter: &Filter) -> Page {
        let Ok(inner) = self.inner.lock() else { return Page { stream: self.id, ..Page::default() } };
        let mut found: Vec<Event> = inner.history.iter().rev().filter(|e| filter.keeps(e)).take(n).cloned().collect();
        found.reverse();
        Page { events: found, next: inner.seq, stream: self.id, gap: 0 }
    }

    pub fn stats(&self) -> Stats {
        let Ok(inner) = self.inner.lock() else { return Stats::default() };
        let mut per_second = BTreeMap::new();
        if let Some((at, then)) = inner.window.front() {
            let seconds = at.elapsed().as_secs_f64().max(1.0);
            for (kind, total) in &inner.totals {
                let before = then.get(kind).copied().unwrap_or(0);
                per_second.insert(kind.clone(), (total - before) as f64 / seconds);
            }
        }
        Stats {
            totals: inner.totals.clone(),
            per_second,
            suppressed_by_limiter: inner.limited,
            lost_ring_full: inner.ring_full,
            ring_pending_bytes: inner.pending_bytes,
            ring_bytes: inner.ring_bytes,
            seq: inner.seq,
        }
    }
}

/// Which events a client wants (`vpc monitor`'s options); every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// An ENI's name or ID, at either side.
    pub eni: Option<String>,
    pub vpc: Option<String>,
    pub vswitch: Option<String>,
    /// Event types (any of them).
    pub types: Vec<String>,
    /// A drop reason's name (or a close's reason).
    pub reason: Option<String>,
    /// "tcp", "udp", "icmp" or a number.
    pub proto: Option<String>,
    /// A TCP or UDP port, source or destination.
    pub port: Option<u16>,
    /// An address, source or destination.
    pub addr: Option<Ipv4Addr>,
}

impl Filter {
    pub fn keeps(&self, e: &Event) -> bool {
        let is = |want: &Option<String>, have: &[&Option<String>]| {
            want.as_ref().is_none_or(|w| have.iter().any(|h| h.as_deref() == Some(w.as_str())))
        };
        is(&self.eni, &[&e.eni, &e.eni_id, &e.peer_eni])
            && is(&self.vpc, &[&e.vpc])
            && is(&self.vswitch, &[&e.vswitch])
            && (self.types.is_empty() || self.types.contains(&e.kind))
            && is(&self.reason, &[&e.reason])
            && is(&self.proto, &[&e.proto])
            && self.port.is_none_or(|p| e.sport == Some(p) || e.dport == Some(p))
            && self.addr.is_none_or(|a| e.src == Some(a) || e.dst == Some(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, eni: &str, dport: u16) -> Event {
        Event { kind: kind.into(), eni: Some(eni.into()), dport: Some(dport), ..Event::default() }
    }

    #[test]
    fn events_are_numbered_in_order_and_read_from_a_sequence_number() {
        let hub = Hub::default();
        hub.push(vec![event("drop", "web1", 80), event("open", "web2", 22), event("drop", "web2", 443)]);
        let all = Filter::default();
        let first = hub.since(0, None, &all, 2, Duration::ZERO);
        assert_eq!(first.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(first.next, 2, "a full page continues after its last event");
        let rest = hub.since(first.next, Some(first.stream), &all, 10, Duration::ZERO);
        assert_eq!((rest.events.len(), rest.events[0].seq, rest.next), (1, 3, 3));
        let none = hub.since(3, Some(hub.id), &all, 10, Duration::from_millis(10));
        assert_eq!((none.events.len(), none.next), (0, 3));
        assert_eq!(hub.since(0, None, &all, 0, Duration::ZERO).events.len(), 1, "a page holds at least one event");
    }

    #[test]
    fn a_client_of_another_stream_starts_from_now_and_one_behind_is_told_its_gap() {
        let hub = Hub::default();
        hub.push((0..HISTORY + 5).map(|i| event("drop", "web1", i as u16)).collect());
        let behind = hub.since(2, Some(hub.id), &Filter::default(), 1, Duration::ZERO);
        assert_eq!((behind.gap, behind.events[0].seq), (3, 6), "events 3 to 5 are gone");
        let restarted = hub.since(7, Some(hub.id ^ 1), &Filter::default(), 10, Duration::ZERO);
        assert_eq!((restarted.events.len(), restarted.next), (0, (HISTORY + 5) as u64), "another stream's number: from now");
        let ahead = hub.since(u64::MAX / 2, None, &Filter::default(), 10, Duration::ZERO);
        assert_eq!(ahead.next, (HISTORY + 5) as u64);
    }

    #[test]
    fn filters_keep_only_what_matches_every_option() {
        let hub = Hub::default();
        hub.push(vec![event("drop", "web1", 80), event("open", "web2", 22), event("drop", "web2", 443)]);
        let drops_of_web2 = Filter { eni: Some("web2".into()), types: vec!["drop".into()], ..Filter::default() };
        let page = hub.since(0, None, &drops_of_web2, 10, Duration::ZERO);
        assert_eq!(page.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
        assert_eq!(page.next, 3);
        let port_80 = Filter { port: Some(80), ..Filter::default() };
        assert_eq!(hub.last(10, &port_80).events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
        assert_eq!(hub.last(2, &Filter::default()).events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn suppressed_counts_add_up_in_the_stats() {
        let hub = Hub::default();
        let held = Event { kind: "suppressed".into(), limited: Some(7), ring_full: Some(2), ..Event::default() };
        hub.push(vec![held.clone(), held]);
        let stats = hub.stats();
        assert_eq!((stats.suppressed_by_limiter, stats.lost_ring_full, stats.totals["suppressed"]), (14, 4, 2));
    }

    #[test]
    fn the_history_keeps_the_newest() {
        let hub = Hub::default();
        hub.push((0..HISTORY + 5).map(|i| event("drop", "web1", i as u16)).collect());
        let all = hub.last(HISTORY + 5, &Filter::default()).events;
        assert_eq!((all.len(), all[0].seq), (HISTORY, 6));
    }
}
