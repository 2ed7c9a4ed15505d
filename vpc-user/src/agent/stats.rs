//! What the data path counted, as the API reports it: per ENI, per drop reason, per event and
//! the connection table; and every security-group rule's hits.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Serialize;

use super::Agent;

impl Agent {
    /// Hit counters of every security-group rule: rule ID (or `ids::intra_rule(group)`) ->
    /// (packets, bytes) of the packets it decided.
    pub fn rule_hits(&self) -> anyhow::Result<BTreeMap<String, (u64, u64)>> {
        let dataplane = self.dataplane();
        anyhow::ensure!(dataplane.is_up(), "nothing is applied under {}", self.opts.bpffs.display());
        let rules = &self.stored.ids.sg_rules;
        let counts = crate::dataplane::stats::sums::<vpc_common::sg::RuleCounters>(
            &dataplane.pins,
            vpc_common::maps::SG_RULE_STATS,
            rules.values().copied(),
        )?;
        Ok(rules.iter().map(|(key, n)| (key.clone(), counts.get(n).map_or((0, 0), |c| (c.packets, c.bytes)))).collect())
    }

    pub fn stats(&self) -> anyhow::Result<Stats> {
        let dataplane = self.dataplane();
        anyhow::ensure!(dataplane.is_up(), "nothing is applied under {} (run `vpc apply` first)", self.opts.bpffs.display());
        let ids = &self.stored.ids;
        let counters = dataplane.counters(ids.ports.values().copied()).context("reading counters")?;
        let held = crate::dataplane::conntrack::held(&dataplane.pins, ids.ports.values().copied()).context("reading CT_OPENED")?;
        let enis = self
            .topology
            .enis()
            .map(|(vpc, vsw, eni)| {
                let port = ids.port(&eni.id);
                let c = counters.port(port);
                EniStats {
                    eni: eni.name.clone(),
                    id: eni.id.clone(),
                    vpc: vpc.name.clone(),
                    vswitch: vsw.name.clone(),
                    ip: eni.ip.to_string(),
                    attached: self.binding.ifindex.contains_key(&eni.id),
                    rx_packets: c.rx_packets,
                    rx_bytes: c.rx_bytes,
                    tx_packets: c.tx_packets,
                    tx_bytes: c.tx_bytes,
                    connections: held.get(&port).copied().unwrap_or(0),
                    connection_limit: eni.conntrack_limit,
                    conntrack_refused: c.ct_refused,
                }
            })
            .collect();
        let drops = counters
            .drops
            .iter()
            .map(|(r, n)| DropStats { reason: r.name().into(), packets: *n, meaning: r.describe().trim().into() })
            .collect();
        let events = counters.events.iter().map(|(name, n)| EventStats { event: (*name).into(), count: *n }).collect();
        let entries = crate::dataplane::conntrack::entries(&dataplane.pins).context("reading CONNTRACK")?;
        let created = counters.events.get(vpc_common::event::NAMES[vpc_common::event::CT_CREATED as usize]).copied().unwrap_or(0);
        let conntrack = ConntrackStats {
            entries,
            capacity: u64::from(self.opts.limits[vpc_common::maps::Size::Conntrack]),
            created,
            // Entries leave the table only through the sweeper (expired ones are also reused in
            // place): what was created and is not there was swept.
            swept: created.saturating_sub(entries),
            refused: counters.drop(vpc_common::DropReason::ConntrackLimit),
            full: counters.drop(vpc_common::DropReason::ConntrackFull),
        };
        Ok(Stats { enis, drops, events, conntrack })
    }
}

/// DescribeStatistics' response, with the API's PascalCase keys (an ENI's facts under the keys
/// DescribeNetworkInterfaces gives them).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stats {
    pub enis: Vec<EniStats>,
    pub drops: Vec<DropStats>,
    /// Things the data path did besides forwarding: ICMP errors sent, flow cache hits and misses.
    #[serde(default)]
    pub events: Vec<EventStats>,
    #[serde(default)]
    pub conntrack: ConntrackStats,
}

/// The connection table: occupancy against its size. Nothing is evicted: a new connection
/// beyond a port's limit is refused, and one that finds the table full too.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConntrackStats {
    pub entries: u64,
    pub capacity: u64,
    /// Entries created since the table was (two per connection between ports).
    pub created: u64,
    /// Entries the sweeper removed (expired, or of a port that is gone).
    #[serde(default)]
    pub swept: u64,
    /// New connections refused: a port at its connection limit / the table full.
    #[serde(default)]
    pub refused: u64,
    #[serde(default)]
    pub full: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EniStats {
    #[serde(rename = "NetworkInterfaceName")]
    pub eni: String,
    #[serde(rename = "NetworkInterfaceId")]
    pub id: String,
    #[serde(rename = "VpcName")]
    pub vpc: String,
    #[serde(rename = "VSwitchName")]
    pub vswitch: String,
    #[serde(rename = "PrivateIpAddress")]
    pub ip: String,
    /// Whether the ENI's interface exists (the ENI is in the data path).
    pub attached: bool,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Connection-table entries the ENI holds, its limit, and the new connections its limit
    /// refused (as sender or receiver).
    #[serde(default)]
    pub connections: u64,
    #[serde(default, rename = "ConntrackLimit")]
    pub connection_limit: u32,
    #[serde(default)]
    pub conntrack_refused: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventStats {
    pub event: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DropStats {
    pub reason: String,
    pub packets: u64,
    pub meaning: String,
}
