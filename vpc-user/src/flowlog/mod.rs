//! Flow logs: the agent side. Every second the collector moves the data path to a new tick
//! (`CONFIG` slot `CONFIG_FLOWLOG_TICK`), takes the counts of ticks that ended at least a second
//! ago out of `FLOW_LOG` (nothing writes them any more), adds them to the capture window of
//! every flow log that covers the ENI, and writes a window's records once every tick inside it
//! is drained.
//!
//! Exactness across restarts: the collector's state (windows in progress, the last tick
//! drained) is written to the state directory *before* the drained entries are deleted from
//! the kernel. A restart finds either the entries still in the kernel and not in the state, or
//! in the state and marked drained (then they are deleted unread): each packet is counted once.
//! While the agent is down the kernel keeps counting into the last tick; those counts are
//! exact but cannot be split by time, so the windows the outage spans are written as SKIPDATA.

pub mod file;
pub mod ipfix;
pub mod record;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    path::{Component, Path, PathBuf},
};

use anyhow::Context as _;
use aya::maps::{Array, MapData, PerCpuArray, PerCpuHashMap};
use serde::{Deserialize, Serialize};
use vpc_common::{
    flowlog::{CONFIG_FLOWLOG_TICK, FlCounters, FlKey, FlPairKey, action, direction},
    maps as names,
};

pub use record::{EniInfo, Record};

use crate::{
    dataplane::{bpffs::PinDirs, stats::open},
    model::{
        Invalid, Topology,
        error::{Problems, code},
        flowlog::{FlowLog, Sink},
        ids::Ids,
    },
};

/// A tick longer than this means the agent was not running.
const OUTAGE_MS: u64 = 3_000;
/// Ticks the counts of a port no known flow log covers are kept for a scope that covers it.
const UNKNOWN_PORT_TICKS: u32 = 30;

/// Catching up after an outage writes at most this many windows one by one; the rest of the
/// outage becomes one SKIPDATA record per ENI.
const MAX_CATCH_UP_WINDOWS: u64 = 100;

/// One flow of one ENI in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowId {
    pub port: u32,
    pub direction: u8,
    pub saddr: Ipv4Addr,
    pub sport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    pub proto: u8,
    pub accepted: bool,
    /// The counter of the rule that decided (`ct::NO_RULE`: none did).
    #[serde(default = "no_rule")]
    pub rule: u32,
}

fn no_rule() -> u32 {
    vpc_common::ct::NO_RULE
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub packets: u64,
    pub bytes: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.packets += other.packets;
        self.bytes += other.bytes;
    }
}

/// A flow log's window in progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Window {
    /// Unix seconds.
    start: u64,
    #[serde(with = "pairs")]
    flows: BTreeMap<FlowId, Counts>,
    /// Per port: what a full table made the data path lose.
    lost: BTreeMap<u32, Counts>,
}

/// What survives a restart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// The tick the data path counts in now.
    tick: u32,
    /// Start (Unix ms) of every tick not yet drained.
    tick_start: BTreeMap<u32, u64>,
    /// Ticks up to this one are drained (their entries, if still in the kernel, are stale).
    drained_through: u32,
    /// `FLOW_LOG_LOST` as last read, per port.
    lost_seen: BTreeMap<u32, Counts>,
    /// Flow log ID -> its window in progress.
    windows: BTreeMap<String, Window>,
    /// Times (Unix s) the agent was not running and the data path counted into one tick.
    outages: Vec<(u64, u64)>,
}

/// The flow logs in force, and who each port is.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub logs: Vec<FlowLog>,
    /// Flow log ID -> the ports it covers.
    pub covered: BTreeMap<String, BTreeSet<u32>>,
    pub enis: BTreeMap<u32, EniInfo>,
    /// Rule counter -> the security-group rule's ID (records name the rule that decided).
    pub rules: BTreeMap<u32, String>,
}

impl Scope {
    pub fn of(topology: &Topology, ids: &Ids, ifindex: &BTreeMap<String, u32>) -> Scope {
        let mut scope = Scope::default();
        for (vpc, vsw, eni) in topology.enis() {
            let Some(&port) = ids.ports.get(&eni.id) else { continue };
            scope.enis.insert(
                port,
                EniInfo {
                    eni_id: eni.id.clone(),
                    eni_name: eni.name.clone(),
                    vswitch_id: vsw.id.clone(),
                    vpc_id: vpc.id.clone(),
                    port,
                    ifindex: ifindex.get(&eni.id).copied().unwrap_or(0),
                },
            );
            for log in topology.flow_logs.iter().filter(|f| f.active && f.covers(&vpc.name, &vsw.name, &eni.name)) {
                scope.covered.entry(log.id.clone()).or_default().insert(port);
            }
        }
        scope.logs = topology.flow_logs.iter().filter(|f| f.active).cloned().collect();
        scope.rules = ids.rules_by_counter();
        scope
    }
}

pub struct Collector {
    pins: PinDirs,
    state_path: PathBuf,
    /// The only directory file sinks write in (those without a path write `NAME.jsonl`).
    flow_log_dir: PathBuf,
    account: String,
    state: State,
    /// Ticks an earlier run drained (saved in its state) whose table entries may have outlived
    /// it: counted already, never again.
    drained_before: u32,
    scope: Scope,
    sinks: BTreeMap<String, Box<dyn RecordSink>>,
}

/// Where a flow log's records go.
pub trait RecordSink: Send {
    fn write(&mut self, records: &[Record]) -> anyhow::Result<()>;
}

/// The file a flow log with a file sink writes to.
pub fn file_path(flow_log_dir: &Path, log: &FlowLog) -> Option<PathBuf> {
    match &log.sink {
        Sink::File(Some(path)) => Some(path.clone()),
        Sink::File(None) => Some(flow_log_dir.join(format!("{}.jsonl", log.name))),
        Sink::Ipfix(_) => None,
    }
}

/// Every file sink of `topology` writes inside `flow_log_dir`: named by an absolute path under it,
/// with no `.` or `..` in the way (a flow log is not a way to write anywhere as root).
pub fn check_confined(topology: &Topology, flow_log_dir: &Path) -> Result<(), Invalid> {
    let mut problems = Problems::default();
    for (i, log) in topology.flow_logs.iter().enumerate() {
        let Sink::File(Some(path)) = &log.sink else { continue };
        let plain = path.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        if !plain || !path.starts_with(flow_log_dir) || path == flow_log_dir {
            problems.add(
                code::FLOW_LOG_SINK,
                format!("flow_logs[{i}].sink.file"),
                format!(
                    "'{}' is not a file inside the flow-log directory {} (the agent's --flow-log-dir)",
                    path.display(),
                    flow_log_dir.display()
                ),
            );
        }
    }
    problems.finish(())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Collector {
    /// The collector of an agent whose pins are `pins`, state lives in `state_dir` and flow
    /// logs write in `flow_log_dir`.
    pub fn open(pins: PinDirs, state_dir: &Path, flow_log_dir: &Path, account: &str) -> Collector {
        let state_path = state_dir.join("flowlog-state.json");
        let state: State = std::fs::read(&state_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        Collector {
            drained_before: state.drained_through,
            pins,
            state_path,
            flow_log_dir: flow_log_dir.to_path_buf(),
            account: account.to_string(),
            state,
            scope: Scope::default(),
            sinks: BTreeMap::new(),
        }
    }

    /// Take a new configuration: flow logs that left get their partial window written.
    pub fn set_scope(&mut self, scope: Scope) {
        let now_s = unix_ms() / 1000;
        let gone: Vec<String> = self.state.windows.keys().filter(|id| !scope.logs.iter().any(|l| &l.id == *id)).cloned().collect();
        for id in gone {
            if let Some(window) = self.state.windows.remove(&id)
                && let Some(log) = self.scope.logs.iter().find(|l| l.id == id).cloned()
            {
                let records = self.records(&log, &window, window.start, now_s.max(window.start + 1));
                self.emit(&log, &records);
            }
            self.sinks.remove(&id);
        }
        // A changed sink is reopened.
        for log in &scope.logs {
            if self.scope.logs.iter().find(|l| l.id == log.id).is_some_and(|old| old.sink != log.sink || old.name != log.name) {
                self.sinks.remove(&log.id);
            }
        }
        self.scope = scope;
    }

    /// One second's work: a new tick, drain what is settled, write finished windows.
    pub fn tick(&mut self) -> anyhow::Result<()> {
        let now = unix_ms();
        let mut config: Array<MapData, u64> = Array::try_from(open(&self.pins, names::CONFIG)?)?;
        // The kernel's tick is the truth (a crash may have come between writing it and saving).
        let kernel_tick = config.get(&CONFIG_FLOWLOG_TICK, 0).unwrap_or(0) as u32;
        if kernel_tick > self.state.tick || !self.state.tick_start.contains_key(&self.state.tick) {
            let last = self.state.tick_start.values().max().copied().unwrap_or(now);
            self.state.tick = self.state.tick.max(kernel_tick);
            self.state.tick_start.insert(self.state.tick, last);
        }
        let ending = self.state.tick;
        let began = self.state.tick_start[&ending];
        if now.saturating_sub(began) > OUTAGE_MS {
            self.state.outages.push((began / 1000 + 1, now / 1000));
        }
        let next = ending + 1;
        config.set(CONFIG_FLOWLOG_TICK, u64::from(next), 0).context("advancing the flow-log tick")?;
        self.state.tick = next;
        self.state.tick_start.insert(next, now);

        // Ticks before `ending` are settled: nothing has counted into them for a second.
        let settled = ending.saturating_sub(1);
        let mut table: PerCpuHashMap<MapData, FlPairKey, FlCounters> = PerCpuHashMap::try_from(open(&self.pins, names::FLOW_LOG)?)?;
        // A port no flow log of the scope covers counted for a flow log the scope does not know
        // yet (just created, the agent busy): its counts (and its packets' other side's: one
        // entry holds both) wait for the next scope, a while.
        let known =
            |k: &FlPairKey| k.sides().iter().flatten().all(|side| self.scope.covered.values().any(|ports| ports.contains(&side.port)));
        let keys: Vec<FlPairKey> = table
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.tick <= settled && (known(k) || settled.saturating_sub(k.tick) > UNKNOWN_PORT_TICKS))
            .collect();
        let mut fresh = Vec::new();
        for key in &keys {
            if key.tick <= self.drained_before && self.drained_before > 0 {
                continue; // counted before a restart; only its deletion was lost
            }
            let Ok(values) = table.get(key, 0) else { continue };
            let mut sum = FlCounters::default();
            values.iter().for_each(|v| sum.add(v));
            fresh.push((*key, sum));
        }
        for (key, sum) in fresh {
            let at = self.state.tick_start.get(&key.tick).copied().unwrap_or(now) / 1000;
            for side in key.sides().iter().flatten() {
                self.add(side, Counts { packets: sum.packets, bytes: sum.bytes }, at);
            }
        }
        self.read_lost(now / 1000)?;
        self.state.drained_through = self.state.drained_through.max(settled);
        let settled_until = self.state.tick_start.get(&ending).copied().unwrap_or(now) / 1000;
        self.state.tick_start.retain(|t, _| *t >= ending);
        self.flush(settled_until);
        self.save()?;
        for key in keys {
            let _ = table.remove(&key);
        }
        Ok(())
    }

    fn add(&mut self, key: &FlKey, counts: Counts, at_s: u64) {
        let accepted = key.action == action::ACCEPT;
        let id = FlowId {
            port: key.port,
            direction: key.direction,
            saddr: Ipv4Addr::from(vpc_common::addr_from_raw(key.saddr)),
            sport: key.sport,
            daddr: Ipv4Addr::from(vpc_common::addr_from_raw(key.daddr)),
            dport: key.dport,
            proto: key.proto,
            accepted,
            rule: key.rule,
        };
        let logs: Vec<FlowLog> = self
            .scope
            .logs
            .iter()
            .filter(|l| l.traffic.keeps(accepted) && self.scope.covered.get(&l.id).is_some_and(|p| p.contains(&key.port)))
            .cloned()
            .collect();
        for log in logs {
            self.window_at(&log, at_s).flows.entry(id).or_default().add(counts);
        }
    }

    /// Deltas of `FLOW_LOG_LOST` since the last read, into the current windows.
    fn read_lost(&mut self, now_s: u64) -> anyhow::Result<()> {
        let lost: PerCpuArray<MapData, FlCounters> = PerCpuArray::try_from(open(&self.pins, names::FLOW_LOG_LOST)?)?;
        let ports: Vec<u32> = self.scope.enis.keys().copied().collect();
        for port in ports {
            let Ok(values) = lost.get(&port, 0) else { continue };
            let mut sum = FlCounters::default();
            values.iter().for_each(|v| sum.add(v));
            let seen = self.state.lost_seen.entry(port).or_default();
            let delta = Counts { packets: sum.packets.saturating_sub(seen.packets), bytes: sum.bytes.saturating_sub(seen.bytes) };
            *seen = Counts { packets: sum.packets, bytes: sum.bytes };
            if delta.packets == 0 {
                continue;
            }
            let logs: Vec<FlowLog> =
                self.scope.logs.iter().filter(|l| self.scope.covered.get(&l.id).is_some_and(|p| p.contains(&port))).cloned().collect();
            for log in logs {
                self.window_at(&log, now_s).lost.entry(port).or_default().add(delta);
            }
        }
        Ok(())
    }

    /// The window of `log` that `at_s` falls in, writing out earlier windows first.
    fn window_at(&mut self, log: &FlowLog, at_s: u64) -> &mut Window {
        let w = u64::from(log.window_s);
        let start = at_s / w * w;
        let current = self.state.windows.get(&log.id).map(|win| win.start);
        match current {
            None => {
                self.state.windows.insert(log.id.clone(), Window { start, ..Default::default() });
            }
            Some(s) if s < start => self.flush_log(log, start),
            Some(_) => {}
        }
        self.state.windows.get_mut(&log.id).expect("inserted above")
    }

    /// Write every window that ended by `until` (Unix s) of every flow log.
    fn flush(&mut self, until: u64) {
        for log in self.scope.logs.clone() {
            let w = u64::from(log.window_s);
            if !self.state.windows.contains_key(&log.id) {
                self.state.windows.insert(log.id.clone(), Window { start: until / w * w, ..Default::default() });
            }
            self.flush_log(&log, until / w * w);
        }
    }

    /// Write the windows of `log` that end by `until` (a window boundary).
    fn flush_log(&mut self, log: &FlowLog, until: u64) {
        let w = u64::from(log.window_s);
        loop {
            let Some(window) = self.state.windows.get(&log.id) else { return };
            if window.start + w > until {
                return;
            }
            let start = window.start;
            let mut end = start + w;
            // A long empty stretch (the agent was down) is one record per ENI, not thousands.
            if window.flows.is_empty() && window.lost.is_empty() && (until - start) / w > MAX_CATCH_UP_WINDOWS {
                end = until;
            }
            let window = self.state.windows.insert(log.id.clone(), Window { start: end, ..Default::default() }).expect("present");
            let records = self.records(log, &window, start, end);
            self.emit(log, &records);
        }
    }

    /// The records of one window of `log`.
    fn records(&self, log: &FlowLog, window: &Window, start: u64, end: u64) -> Vec<Record> {
        let mut out = Vec::new();
        let outage = self.state.outages.iter().find(|(from, to)| *from < end && start <= *to);
        for port in self.scope.covered.get(&log.id).into_iter().flatten() {
            let Some(eni) = self.scope.enis.get(port) else { continue };
            let mut any = false;
            for (id, counts) in window.flows.range(FlowId::first(*port)..=FlowId::last(*port)) {
                any = true;
                out.push(Record {
                    srcaddr: Some(id.saddr),
                    srcport: Some(id.sport),
                    dstaddr: Some(id.daddr),
                    dstport: Some(id.dport),
                    protocol: Some(id.proto),
                    direction: Some(if id.direction == direction::IN { "in" } else { "out" }.into()),
                    packets: Some(counts.packets),
                    bytes: Some(counts.bytes),
                    action: Some(if id.accepted { "ACCEPT" } else { "REJECT" }.into()),
                    rule_id: self.scope.rules.get(&id.rule).cloned(),
                    ..Record::empty(eni, &self.account, start, end, if outage.is_some() { "SKIPDATA" } else { "OK" })
                });
                if let Some((from, to)) = outage {
                    let last = out.last_mut().expect("pushed");
                    last.skipped_reason = Some(format!("agent not running from {from} to {to}: counts exact, window boundaries not"));
                }
            }
            let lost = window.lost.get(port).copied().unwrap_or_default();
            if lost.packets > 0 {
                out.push(Record {
                    skipped_packets: Some(lost.packets),
                    skipped_bytes: Some(lost.bytes),
                    skipped_reason: Some("flow table full".into()),
                    ..Record::empty(eni, &self.account, start, end, "SKIPDATA")
                });
            } else if !any {
                let mut record = Record::empty(eni, &self.account, start, end, if outage.is_some() { "SKIPDATA" } else { "NODATA" });
                if let Some((from, to)) = outage {
                    record.skipped_reason = Some(format!("agent not running from {from} to {to}"));
                }
                out.push(record);
            }
        }
        out
    }

    fn emit(&mut self, log: &FlowLog, records: &[Record]) {
        if records.is_empty() {
            return;
        }
        if !self.sinks.contains_key(&log.id) {
            let sink: anyhow::Result<Box<dyn RecordSink>> = match &log.sink {
                Sink::Ipfix(addr) => ipfix::Exporter::open(*addr).map(|e| Box::new(e) as Box<dyn RecordSink>),
                Sink::File(_) => {
                    let path = file_path(&self.flow_log_dir, log).expect("file sink");
                    file::JsonLines::open_in(&self.flow_log_dir, &path, file::Rotation::default())
                        .map(|f| Box::new(f) as Box<dyn RecordSink>)
                }
            };
            match sink {
                Ok(sink) => {
                    self.sinks.insert(log.id.clone(), sink);
                }
                Err(e) => {
                    log::error!("flow log {}: opening its sink: {e:#}; {} records lost", log.name, records.len());
                    return;
                }
            }
        }
        if let Some(sink) = self.sinks.get_mut(&log.id)
            && let Err(e) = sink.write(records)
        {
            log::error!("flow log {}: writing {} records: {e:#}", log.name, records.len());
            self.sinks.remove(&log.id);
        }
    }

    fn save(&mut self) -> anyhow::Result<()> {
        // Outages matter while a window they overlap is still open.
        let oldest = self.state.windows.values().map(|w| w.start).min().unwrap_or(u64::MAX);
        self.state.outages.retain(|(_, to)| *to >= oldest);
        let tmp = self.state_path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&self.state)?).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.state_path)?;
        Ok(())
    }
}

impl FlowId {
    fn first(port: u32) -> FlowId {
        FlowId {
            port,
            direction: 0,
            saddr: Ipv4Addr::UNSPECIFIED,
            sport: 0,
            daddr: Ipv4Addr::UNSPECIFIED,
            dport: 0,
            proto: 0,
            accepted: false,
            rule: 0,
        }
    }
    fn last(port: u32) -> FlowId {
        FlowId {
            port,
            direction: u8::MAX,
            saddr: Ipv4Addr::BROADCAST,
            sport: u16::MAX,
            daddr: Ipv4Addr::BROADCAST,
            dport: u16::MAX,
            proto: u8::MAX,
            accepted: true,
            rule: u32::MAX,
        }
    }
}

/// A map with non-string keys as a JSON list of pairs.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<K, V>, D::Error> {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_sink(file: &str) -> Topology {
        Topology::from_yaml(&format!(
            "vpcs:\n  - {{name: prod, cidr: 10.0.0.0/16}}\nflow_logs:\n  - {{name: fl-a, resource: {{vpc: prod}}, traffic: all, sink: {{file: {file}}}}}\n"
        ))
        .unwrap()
    }

    #[test]
    fn file_sinks_are_confined_to_the_flow_log_directory() {
        let dir = Path::new("/var/lib/vpc/flowlogs");
        assert!(check_confined(&with_sink("/var/lib/vpc/flowlogs/a.jsonl"), dir).is_ok());
        assert!(check_confined(&with_sink("/var/lib/vpc/flowlogs/web/a.jsonl"), dir).is_ok());
        for outside in ["/etc/cron.d/x", "/var/lib/vpc/flowlogs/../vpc.redb", "/var/lib/vpc/flowlogs", "/var/lib/vpc/flowlogsX/a"] {
            let err = check_confined(&with_sink(outside), dir).expect_err(outside);
            assert_eq!((err.0[0].code.as_str(), err.0[0].field.as_str()), (code::FLOW_LOG_SINK, "flow_logs[0].sink.file"), "{outside}");
        }
    }
}
