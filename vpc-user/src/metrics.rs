//! Prometheus text exposition of the agent and the data path: per-ENI packets and bytes, drops by
//! reason, map occupancy, API requests.

use std::{collections::BTreeMap, fmt::Write as _, sync::Mutex};

use vpc_common::maps::decl;

use crate::agent::Agent;

/// API requests by (action, result code).
#[derive(Default)]
pub struct ApiCounters(Mutex<BTreeMap<(String, String), u64>>);

impl ApiCounters {
    pub fn count(&self, action: &str, code: &str) {
        if let Ok(mut map) = self.0.lock() {
            *map.entry((action.to_string(), code.to_string())).or_default() += 1;
        }
    }
}

/// Monitoring events the kernel held back, per ENI, event type and cause.
fn monitor(out: &mut String, agent: &Agent) {
    use vpc_common::monitor::{KERNEL_KINDS, MonSuppressed, slot};
    let ids = &agent.stored().ids;
    let enis: Vec<_> = agent.topology().enis().map(|(vpc, vsw, eni)| (vpc, vsw, eni, ids.port(&eni.id))).collect();
    let slots = enis.iter().flat_map(|e| KERNEL_KINDS.map(|k| slot(e.3, k)));
    let Ok(held) = crate::dataplane::stats::sums::<MonSuppressed>(&agent.dataplane().pins, vpc_common::maps::MON_SUPPRESSED, slots) else {
        return;
    };
    family(
        out,
        "vpc_monitor_suppressed_total",
        "counter",
        "Monitoring events not written, by ENI, type and cause (the per-ENI limiter, a full ring).",
    );
    for (vpc, vsw, eni, port) in &enis {
        for what in KERNEL_KINDS {
            let h = held.get(&slot(*port, what)).copied().unwrap_or_default();
            let l = format!(
                "eni=\"{}\",vpc=\"{}\",vswitch=\"{}\",type=\"{}\"",
                label(&eni.name),
                label(&vpc.name),
                label(&vsw.name),
                crate::monitor::event::type_of(what)
            );
            let _ = writeln!(out, "vpc_monitor_suppressed_total{{{l},cause=\"limiter\"}} {}", h.limited);
            let _ = writeln!(out, "vpc_monitor_suppressed_total{{{l},cause=\"ring_full\"}} {}", h.ring_full);
        }
    }
}

/// The configuration's revision this host holds (in a cluster: equal on every host that has
/// followed the store), and the newest one its watch has seen.
fn cluster(out: &mut String, agent: &Agent) {
    family(out, "vpc_store_revision", "gauge", "The configuration's revision this host's data path holds (the store's commits).");
    let _ = writeln!(out, "vpc_store_revision {}", agent.revision());
    if let Some(watched) = agent.watched_revision() {
        family(
            out,
            "vpc_store_watched_revision",
            "gauge",
            "The newest revision the shared store's watch has told of (ahead of vpc_store_revision while this host catches up).",
        );
        let _ = writeln!(out, "vpc_store_watched_revision {watched}");
    }
    let (incremental, whole) = agent.follows();
    family(
        out,
        "vpc_store_follows_total",
        "counter",
        "Commits of other writers this host followed: on the incremental path (the rows they wrote), or whole (validated and compiled again).",
    );
    let _ = writeln!(out, "vpc_store_follows_total{{path=\"incremental\"}} {incremental}");
    let _ = writeln!(out, "vpc_store_follows_total{{path=\"whole\"}} {whole}");
}

/// Multicast groups' and members' packet counters.
fn multicast(out: &mut String, agent: &Agent) {
    let ids = &agent.stored().ids;
    let pins = agent.dataplane().pins;
    let Ok(groups) = crate::dataplane::stats::sums::<vpc_common::mcast::McastCounters>(
        &pins,
        vpc_common::maps::MCAST_STATS,
        ids.mcast_groups.values().copied(),
    ) else {
        return;
    };
    let Ok(members) = crate::dataplane::stats::sums::<vpc_common::mcast::McastCounters>(
        &pins,
        vpc_common::maps::MCAST_MEMBER_STATS,
        ids.mcast_members.values().copied(),
    ) else {
        return;
    };
    let families = [
        ("vpc_mcast_packets_total", "Packets the senders of a multicast group sent (each replicated to its members)."),
        ("vpc_mcast_refused_total", "Packets to a multicast group from ENIs that are not its senders."),
        ("vpc_mcast_member_packets_total", "Copies delivered to a multicast group member."),
        ("vpc_mcast_member_refused_total", "Copies a member's security groups refused."),
    ];
    let mut lines: [Vec<String>; 4] = Default::default();
    for vpc in &agent.topology().vpcs {
        for g in &vpc.multicast_groups {
            let c = ids.mcast_groups.get(&g.id).and_then(|n| groups.get(n)).copied().unwrap_or_default();
            let l = format!("vpc=\"{}\",group=\"{}\"", label(&vpc.name), g.group);
            lines[0].push(format!("{{{l}}} {}", c.packets));
            lines[1].push(format!("{{{l}}} {}", c.refused));
            for name in &g.members {
                let Some(eni) = vpc.eni(name) else { continue };
                let key = crate::model::ids::mcast_member(&g.id, &eni.id);
                let m = ids.mcast_members.get(&key).and_then(|n| members.get(n)).copied().unwrap_or_default();
                lines[2].push(format!("{{{l},member=\"{}\"}} {}", label(name), m.packets));
                lines[3].push(format!("{{{l},member=\"{}\"}} {}", label(name), m.refused));
            }
        }
    }
    for ((name, help), lines) in families.iter().zip(lines) {
        family(out, name, "counter", help);
        for line in lines {
            let _ = writeln!(out, "{name}{line}");
        }
    }
}

/// Escape a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub fn render(agent: &Agent, api: &ApiCounters) -> String {
    let mut out = String::new();
    match agent.stats() {
        Ok(stats) => {
            let metrics: [(&str, &str, &str, fn(&crate::agent::EniStats) -> u64); 7] = [
                ("vpc_eni_rx_packets_total", "counter", "Frames the ENI sent into the data path.", |e| e.rx_packets),
                ("vpc_eni_rx_bytes_total", "counter", "Bytes the ENI sent into the data path.", |e| e.rx_bytes),
                ("vpc_eni_tx_packets_total", "counter", "Frames the data path delivered to the ENI.", |e| e.tx_packets),
                ("vpc_eni_tx_bytes_total", "counter", "Bytes the data path delivered to the ENI.", |e| e.tx_bytes),
                ("vpc_eni_connections", "gauge", "Connection-table entries the ENI holds.", |e| e.connections),
                ("vpc_eni_connection_limit", "gauge", "Connection-table entries the ENI may hold.", |e| u64::from(e.connection_limit)),
                (
                    "vpc_eni_conntrack_refused_total",
                    "counter",
                    "New connections refused because the ENI was at its connection limit.",
                    |e| e.conntrack_refused,
                ),
            ];
            for (name, kind, help, get) in metrics {
                family(&mut out, name, kind, help);
                for e in &stats.enis {
                    let _ = writeln!(
                        out,
                        "{name}{{eni=\"{}\",eni_id=\"{}\",vpc=\"{}\",vswitch=\"{}\"}} {}",
                        label(&e.eni),
                        label(&e.id),
                        label(&e.vpc),
                        label(&e.vswitch),
                        get(e)
                    );
                }
            }
            family(&mut out, "vpc_drops_total", "counter", "Frames the data path dropped, by reason.");
            for d in &stats.drops {
                let _ = writeln!(out, "vpc_drops_total{{reason=\"{}\"}} {}", label(&d.reason), d.packets);
            }
            family(&mut out, "vpc_events_total", "counter", "Things the data path did besides forwarding, by event.");
            for e in &stats.events {
                let _ = writeln!(out, "vpc_events_total{{event=\"{}\"}} {}", label(&e.event), e.count);
            }
            let ct = &stats.conntrack;
            family(&mut out, "vpc_conntrack_entries", "gauge", "Connections in the conntrack table.");
            let _ = writeln!(out, "vpc_conntrack_entries {}", ct.entries);
            family(&mut out, "vpc_conntrack_capacity", "gauge", "Size of the conntrack table (--map-size conntrack=N).");
            let _ = writeln!(out, "vpc_conntrack_capacity {}", ct.capacity);
            family(&mut out, "vpc_conntrack_swept_total", "counter", "Connection-table entries the sweeper removed (expired).");
            let _ = writeln!(out, "vpc_conntrack_swept_total {}", ct.swept);
            family(
                &mut out,
                "vpc_conntrack_refused_total",
                "counter",
                "New connections refused, by cause (a port's limit, the table full).",
            );
            let _ = writeln!(out, "vpc_conntrack_refused_total{{cause=\"limit\"}} {}", ct.refused);
            let _ = writeln!(out, "vpc_conntrack_refused_total{{cause=\"full\"}} {}", ct.full);
            multicast(&mut out, agent);
            monitor(&mut out, agent);
            cluster(&mut out, agent);
        }
        Err(_) => {
            family(&mut out, "vpc_dataplane_up", "gauge", "Whether the data path is applied.");
            let _ = writeln!(out, "vpc_dataplane_up 0");
        }
    }
    let entries = agent.entries();
    let limits = agent.opts.limits;
    let mcast_groups = entries.mcast_groups.len();
    family(&mut out, "vpc_map_entries", "gauge", "Entries in each config map.");
    let maps = [
        (decl::ENIS, entries.enis.len()),
        (decl::ENI_ADDRS, entries.addrs.len()),
        (decl::ROUTES, entries.routes.len()),
        (decl::TX_PORTS, entries.ports.len()),
        (decl::MCAST_GROUPS, mcast_groups),
    ];
    for (map, n) in &maps {
        let _ = writeln!(out, "vpc_map_entries{{map=\"{}\"}} {n}", map.name);
    }
    family(&mut out, "vpc_map_capacity", "gauge", "Maximum entries of each config map.");
    for (map, _) in &maps {
        let _ = writeln!(out, "vpc_map_capacity{{map=\"{}\"}} {}", map.name, limits.entries(map));
    }
    family(&mut out, "vpc_api_requests_total", "counter", "API requests by action and result code.");
    if let Ok(map) = api.0.lock() {
        for ((action, code), n) in map.iter() {
            let _ = writeln!(out, "vpc_api_requests_total{{action=\"{}\",code=\"{}\"}} {n}", label(action), label(code));
        }
    }
    out
}
