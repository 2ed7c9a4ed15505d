//! Per-packet cost of the data path through BPF_PROG_TEST_RUN, against the empty program.
//!
//! One VPC, a sender ENI and a receiver ENI, and `routes` /28 routes in the system table all
//! pointing at the receiver; 64-byte UDP frames to addresses spread over those routes. A second
//! series keeps one route and gives the receiver's security group `sg_rules` ingress rules
//! (see `sg_rules`: most of them match the sender's address, none its ports, one lets it in).
//! Cases:
//! - established, one flow: the same frame again and again; caches stay hot.
//! - established, many flows: `flows` primed flows, each once per round.
//! - first packet: flows never seen before (route lookup + flow cache insert); their entries
//!   are deleted after each round, so every round runs at the same table occupancy (one
//!   flow's and the many flows' entries, plus the idle ones a scale asks for: `Scale::entries`).
//!
//! Each case is one test run over a ring of its frames (`Harness::time_ring`): the ring driver
//! writes the next frame over the packet before every run (the data path rewrites it: MACs,
//! TTL) and tail-calls the program measured, so the kernel times N packets of a steady state
//! with no system call between them. The anchors run the same way over the same frames: the
//! empty program (what the driver and the test run cost) and the lookups alone. Priming runs
//! each frame once through a call of its own, checking its verdict.

use std::net::Ipv4Addr;

use anyhow::Context as _;
use serde::Serialize;

use super::{median, pin_to_last_cpu};
use vpc_common::maps::Size;

use crate::{
    model::{
        Topology,
        normalize::normalize,
        spec::{NextHopSpec, RouteSpec, RouteTableSpec, TopologySpec},
        topology::Quotas,
    },
    packet::Ipv4,
    tools::testrun::{Harness, Timed, with_harness_sized},
};

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
/// 14 Ethernet + 20 IPv4 + 8 UDP + 22 payload: a minimum-size frame without FCS.
const PAYLOAD: &[u8] = &[0x5a; 22];

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PacketResult {
    pub routes: usize,
    /// Ingress rules of the receiver's security group (0: the default group, intra-group accept).
    pub sg_rules: usize,
    /// Whether a flow log captured both ENIs.
    #[serde(default)]
    pub flow_log: bool,
    pub case: String,
    /// Median cost per packet of the data path, in ns.
    pub ns: f64,
    /// The empty program measured the same way in the same rounds.
    pub baseline_ns: f64,
    /// The lookups of an established packet alone (the sender, its connection), measured the
    /// same way over the case's frames (the many flows' for the first-packet case).
    #[serde(default)]
    pub lookup_ns: f64,
    pub above_baseline_ns: f64,
    /// Packets the data path ran in this case, over all rounds.
    pub packets: u64,
    /// Idle connection-table entries the series added (see `Scale::idle_entries`).
    #[serde(default)]
    pub idle_entries: usize,
    /// Connection-table entries while the established cases ran (the first-packet case adds
    /// its own).
    #[serde(default)]
    pub entries: u64,
}

/// What a series scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub routes: usize,
    pub sg_rules: usize,
    /// A flow log capturing both ENIs (every packet counted twice).
    pub flow_log: bool,
    /// Idle connection-table entries besides the flows' (0: none).
    pub idle_entries: usize,
}

/// `n` ingress rules of which the last lets the bench traffic (UDP from 192.168.1.0/24) in.
/// The others are built to make the classifier work: a quarter name the sender's whole VPC as
/// peer (its address bitmap is dense) with port ranges the flows never use, the rest name
/// other /32s; priorities, policies and protocols vary.
pub(super) fn sg_rules(n: usize) -> Vec<crate::model::spec::SgRuleSpec> {
    use crate::model::spec::{PeerSpec, SgRuleSpec};
    let rule = |protocol: &str, ports: String, peer: String, priority: u32, policy: &str| SgRuleSpec {
        id: None,
        direction: "ingress".into(),
        policy: Some(policy.into()),
        protocol: protocol.into(),
        ports: Some(ports),
        peer: PeerSpec::Cidr(peer),
        priority: Some(priority),
        description: None,
    };
    let mut out: Vec<SgRuleSpec> = (0..n.saturating_sub(1))
        .map(|i| {
            let port = 2000 + (i * 7) % 60_000;
            let ports = format!("{port}/{}", port + i % 5);
            let peer = if i % 4 == 0 {
                "192.168.0.0/16".to_string()
            } else {
                format!("172.{}.{}.{}/32", 16 + (i >> 16) % 16, (i >> 8) & 255, i & 255)
            };
            let protocol = if i % 2 == 0 { "udp" } else { "tcp" };
            rule(protocol, ports, peer, 1 + (i % 99) as u32, if i % 3 == 0 { "drop" } else { "accept" })
        })
        .collect();
    out.push(rule("udp", "-1/-1".into(), "192.168.1.0/24".into(), 100, "accept"));
    out
}

/// The bench topology for `scale`.
fn topology(scale: Scale) -> anyhow::Result<Topology> {
    let routes = scale.routes;
    anyhow::ensure!((1..=1 << 20).contains(&routes), "route count must be 1..=1048576 (/28s of 10.0.0.0/8)");
    let mut spec = TopologySpec::from_yaml(
        "vpcs:
  - name: bench
    cidr: 192.168.0.0/16
    # Every round opens its flows anew: no connection limit gets in the way.
    conntrack_limit: 16777216
    vswitches: [{name: bench, cidr: 192.168.1.0/24, zone: zone-a}]
    enis:
      - {name: src, vswitch: bench, ip: 192.168.1.10}
      - {name: dst, vswitch: bench, ip: 192.168.1.20, source_dest_check: false}",
    )?;
    let routes = (0..routes)
        .map(|i| RouteSpec {
            id: None,
            dst: format!("{}/28", route_net(i)),
            next_hop: NextHopSpec::Eni { eni: "dst".into() },
            name: None,
            description: None,
        })
        .collect();
    spec.vpcs[0].route_tables.push(RouteTableSpec { name: crate::model::constants::SYSTEM_TABLE.into(), routes, ..Default::default() });
    if scale.sg_rules > 0 {
        spec.vpcs[0].security_groups.push(crate::model::spec::SecurityGroupSpec {
            name: "big".into(),
            rules: sg_rules(scale.sg_rules),
            ..Default::default()
        });
        spec.vpcs[0].enis[1].security_groups = vec!["big".into()];
    }
    if scale.flow_log {
        spec.flow_logs.push(crate::model::spec::FlowLogSpec {
            name: "bench".into(),
            resource: crate::model::spec::FlowLogResourceSpec { vpc: Some("bench".into()), ..Default::default() },
            ..Default::default()
        });
    }
    Topology::from_spec(&normalize(&TopologySpec::default(), spec), &Quotas::unlimited())
        .map_err(|e| anyhow::anyhow!("bench topology: {e}"))
}

/// The network of route `i`: the i-th /28 of 10.0.0.0/8.
fn route_net(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000u32 + ((i as u32) << 4))
}

/// Distinct flows from `src` to hosts under random routes (splitmix64 from a fixed seed).
struct Flows {
    src: Ipv4Addr,
    macs: ([u8; 6], [u8; 6]),
    routes: usize,
    next: u64,
    state: u64,
}

impl Flows {
    fn frame(&mut self) -> Vec<u8> {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let route = (z % self.routes as u64) as usize;
        let host = 1 + ((z >> 32) % 14) as u32;
        let n = self.next;
        self.next += 1;
        let dst = Ipv4Addr::from(u32::from(route_net(route)) + host);
        let (sport, dport) = (1024 + (n % 60_000) as u16, 1 + (n / 60_000) as u16);
        Ipv4::udp(self.src, dst, sport, dport, PAYLOAD).frame(self.macs.0, self.macs.1)
    }
}

/// Median time of one run of each of `frames`, each its own call, checking the verdict (the
/// priming).
fn time_each(h: &Harness, program: Timed, ifindex: u32, frames: &[Vec<u8>]) -> anyhow::Result<f64> {
    let want = if program == Timed::Dataplane { XDP_REDIRECT } else { XDP_PASS };
    let mut ns = Vec::with_capacity(frames.len());
    for frame in frames {
        let (action, took) = h.time(program, ifindex, frame, 1)?;
        if action != want {
            let why = if program == Timed::Dataplane { format!("{:?}", h.run(ifindex, frame)?.action) } else { String::new() };
            anyhow::bail!("{program:?} returned XDP action {action} {why}, expected {want}: the bench would measure the wrong path");
        }
        ns.push(took.as_nanos() as f64);
    }
    Ok(median(&mut ns))
}

/// One round: ns per packet of (for one flow: the empty program, the data path, the lookups
/// alone; the same for the many flows; first packets) -- each case beside its anchors, the
/// first packets (which fill the table) last; and the table's entries while the established
/// cases ran.
struct Round {
    ns: [f64; 7],
    entries: usize,
}

/// A harness for one route count on a thread of its own (harnesses live in their own network
/// namespaces), measuring a round whenever asked: rounds of all route counts interleave, so a
/// slow patch of the machine hits every count alike.
struct Worker {
    ask: std::sync::mpsc::Sender<()>,
    answers: std::sync::mpsc::Receiver<anyhow::Result<Round>>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl Worker {
    fn start(scale: Scale, flows: usize, rounds: usize) -> anyhow::Result<Worker> {
        let routes = scale.routes;
        let topology = topology(scale)?;
        let (_, vswitch, src) = topology.eni("src").context("src ENI")?;
        let mut next_flow = Flows { src: src.ip, macs: (vswitch.gateway_mac, src.mac), routes, next: 0, state: 0x5eed };
        let limits = crate::tools::testrun::TEST_LIMITS
            .with(Size::Enis, 16)
            .with(Size::Routes, (routes + 64) as u32)
            .with(Size::Addrs, 64)
            .with(Size::Groups, 16)
            // Two entries per flow (the sender's and the receiver's side): the established
            // flows', a round's new ones (deleted after it), and the idle ones.
            .with(Size::Conntrack, (4 * flows + scale.idle_entries + 1024) as u32)
            .with(Size::SgRules, (scale.sg_rules + 1024) as u32)
            // A bitmap per class of each field (up to ~3 per rule here), each as long as the set.
            .with(Size::SgChunks, (3 * scale.sg_rules * (scale.sg_rules / 64 + 2) / 64 + 2048) as u32)
            .with(Size::SgNodes, 4096)
            .with(Size::FlowLog, (2 * (rounds + 2) * flows + 1024) as u32);
        let (ask, asked) = std::sync::mpsc::channel::<()>();
        let (answer, answers) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            with_harness_sized(topology, &[] as &[&str], limits, move |h| {
                pin_to_last_cpu();
                h.load_baseline()?;
                let ifindex = h.ifindex("src");
                let hot = vec![next_flow.frame(); flows];
                let established: Vec<Vec<u8>> = (0..flows).map(|_| next_flow.frame()).collect();
                // Prime the flow cache: these flows are established from now on.
                let ready = time_each(h, Timed::Dataplane, ifindex, &hot[..1])
                    .and(time_each(h, Timed::Dataplane, ifindex, &established))
                    .and(h.pad_connections(scale.idle_entries));
                let failed = ready.is_err();
                let _ = answer.send(ready.map(|_| Round { ns: [0.0; 7], entries: 0 }));
                if failed {
                    return Ok(());
                }
                while asked.recv().is_ok() {
                    let fresh: Vec<Vec<u8>> = (0..flows).map(|_| next_flow.frame()).collect();
                    let round = (|| -> anyhow::Result<Round> {
                        let before = h.connections()?;
                        // Each case one test run over a ring of its frames (`Harness::time_ring`).
                        let passes = flows as u32;
                        let ns = [
                            h.time_ring(Timed::Baseline, ifindex, &hot[..1], passes, XDP_PASS)?,
                            h.time_ring(Timed::Dataplane, ifindex, &hot[..1], passes, XDP_REDIRECT)?,
                            h.time_ring(Timed::Lookup, ifindex, &hot[..1], passes, XDP_PASS)?,
                            h.time_ring(Timed::Baseline, ifindex, &established, 1, XDP_PASS)?,
                            h.time_ring(Timed::Dataplane, ifindex, &established, 1, XDP_REDIRECT)?,
                            h.time_ring(Timed::Lookup, ifindex, &established, 1, XDP_PASS)?,
                            h.time_ring(Timed::Dataplane, ifindex, &fresh, 1, XDP_REDIRECT)?,
                        ];
                        // The new flows' entries go: the next round finds the table as this one did.
                        let made: Vec<vpc_common::CtKey> = h.connections()?.difference(&before).copied().collect();
                        h.drop_connections(made)?;
                        Ok(Round { ns, entries: before.len() })
                    })();
                    if answer.send(round).is_err() {
                        break;
                    }
                }
                Ok(())
            })
        });
        match answers.recv() {
            Ok(ready) => ready.map(|_| Worker { ask, answers, thread }),
            // The harness failed before measuring: its error says why.
            Err(_) => Err(match thread.join() {
                Ok(Err(e)) => e.context("bench harness"),
                _ => anyhow::anyhow!("bench harness thread died"),
            }),
        }
    }

    fn round(&self) -> anyhow::Result<Round> {
        self.ask.send(()).context("bench harness thread died")?;
        self.answers.recv().context("bench harness thread died")?
    }

    fn finish(self) -> anyhow::Result<()> {
        drop(self.ask);
        self.thread.join().map_err(|_| anyhow::anyhow!("bench harness thread panicked"))?
    }
}

/// Every case for every route count and rule count, rounds interleaved across all.
pub fn run(
    route_counts: &[usize],
    rule_counts: &[usize],
    flow_log: bool,
    flows: usize,
    idle_entries: usize,
    rounds: usize,
) -> anyhow::Result<Vec<PacketResult>> {
    let mut workers = Vec::new();
    let scales = route_counts
        .iter()
        .map(|&routes| Scale { routes, sg_rules: 0, flow_log: false, idle_entries: 0 })
        .chain(rule_counts.iter().map(|&sg_rules| Scale { routes: 1, sg_rules, flow_log: false, idle_entries: 0 }))
        .chain(flow_log.then_some(Scale { routes: 1, sg_rules: 0, flow_log: true, idle_entries: 0 }))
        .chain((idle_entries > 0).then_some(Scale { routes: 1, sg_rules: 0, flow_log: false, idle_entries }));
    for scale in scales {
        eprintln!(
            "bench: loading {} routes, {} security-group rules, flow log {} ...",
            scale.routes,
            scale.sg_rules,
            if scale.flow_log { "on" } else { "off" }
        );
        if scale.idle_entries > 0 {
            eprintln!("bench: ... and {} idle connection-table entries", scale.idle_entries);
        }
        match Worker::start(scale, flows, rounds) {
            Ok(worker) => workers.push((scale, worker)),
            Err(e) => {
                // Let the harnesses already up remove their pins before we give up.
                for (_, worker) in workers {
                    let _ = worker.finish();
                }
                return Err(e);
            }
        }
    }
    let mut samples: Vec<[Vec<f64>; 7]> = vec![Default::default(); workers.len()];
    let mut entries = vec![0; workers.len()];
    for round in 0..rounds {
        eprintln!("bench: round {} of {rounds} ...", round + 1);
        // A different count goes first each round: no count always follows the same one.
        for k in 0..workers.len() {
            let i = (k + round) % workers.len();
            let measured = workers[i].1.round()?;
            for (series, value) in samples[i].iter_mut().zip(measured.ns) {
                series.push(value);
            }
            entries[i] = measured.entries;
        }
    }
    let mut out = Vec::new();
    for (
        (
            (Scale { routes, sg_rules, flow_log, idle_entries }, worker),
            [mut base_hot, mut hot, mut hot_lookup, mut base_many, mut many, mut many_lookup, mut fresh],
        ),
        entries,
    ) in workers.into_iter().zip(samples).zip(entries)
    {
        worker.finish()?;
        let (base_hot, base_many, many_lookup) = (median(&mut base_hot), median(&mut base_many), median(&mut many_lookup));
        let cases = [
            ("established, one flow".to_string(), median(&mut hot), base_hot, median(&mut hot_lookup)),
            (format!("established, {flows} flows"), median(&mut many), base_many, many_lookup),
            ("first packet".to_string(), median(&mut fresh), base_many, many_lookup),
        ];
        for (case, ns, baseline_ns, lookup_ns) in cases {
            out.push(PacketResult {
                routes,
                sg_rules,
                flow_log,
                case,
                ns,
                baseline_ns,
                lookup_ns,
                above_baseline_ns: ns - baseline_ns,
                packets: (flows * rounds) as u64,
                idle_entries,
                entries: entries as u64,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_distinct_28s_of_10_8() {
        assert_eq!(route_net(0), Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(route_net(1), Ipv4Addr::new(10, 0, 0, 16));
        assert_eq!(route_net((1 << 20) - 1), Ipv4Addr::new(10, 255, 255, 240));
    }

    #[test]
    fn flows_are_distinct_and_routed() {
        let t = topology(Scale { routes: 1000, sg_rules: 0, flow_log: false, idle_entries: 0 }).unwrap();
        let (_, vsw, src) = t.eni("src").unwrap();
        let mut next_flow = Flows { src: src.ip, macs: (vsw.gateway_mac, src.mac), routes: 1000, next: 0, state: 1 };
        let frames: std::collections::BTreeSet<Vec<u8>> = (0..5000).map(|_| next_flow.frame()).collect();
        assert_eq!(frames.len(), 5000);
        assert!(
            frames
                .iter()
                .all(|f| f.len() == 64 && f[30] == 10 && u32::from_be_bytes([f[30], f[31], f[32], f[33]]) < 0x0a00_0000 + 1000 * 16)
        );
    }

    #[test]
    fn the_rule_series_is_valid_and_only_its_last_rule_admits_the_flows() {
        let t = topology(Scale { routes: 1, sg_rules: 10_000, flow_log: false, idle_entries: 0 }).unwrap();
        let group = t.vpcs[0].security_group("big").unwrap();
        assert_eq!(group.rules.len(), 10_000);
        let (_, vsw, src) = t.eni("src").unwrap();
        let mut next_flow = Flows { src: src.ip, macs: (vsw.gateway_mac, src.mac), routes: 1, next: 0, state: 1 };
        for _ in 0..100 {
            let f = next_flow.frame();
            let dport = u16::from_be_bytes([f[36], f[37]]);
            let matching: Vec<_> = group.rules.iter().filter(|r| r.matches(17, Some(dport), src.ip, &|_| vec![])).collect();
            assert_eq!(matching.len(), 1, "dport {dport}");
            assert_eq!(matching[0].priority, 100);
        }
    }
}
