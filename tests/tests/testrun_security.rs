//! Security groups through the model (a linear scan of the rules, the reference) and the loaded
//! XDP program (bit-vector classification, conntrack): random rule sets -- every priority, drop
//! and accept at the same priority, overlapping port ranges, CIDR and group peers, intra-group
//! policies, ENIs in several groups -- and random conversations (first packets, replies,
//! unsolicited reverse packets, TCP flag sequences, ICMP echo and related errors, fragments),
//! with the rules changed mid-way so established connections are re-checked. Zero disagreements,
//! rule counters included.

use std::net::Ipv4Addr;

use vpc::{
    model::{Topology, forward::Action, normalize::normalize, spec::TopologySpec, topology::Quotas},
    packet::{self, Ipv4},
    tools::testrun::with_harness,
};
use vpc_tests::rng::Rng;

const ENIS: [(&str, &str); 7] = [
    ("e1", "10.1.0.10"),
    ("e2", "10.1.0.11"),
    ("e3", "10.1.0.12"),
    ("e4", "10.1.0.13"),
    ("e5", "10.1.1.10"),
    ("e6", "10.1.1.11"),
    ("e7", "10.1.1.12"),
];
const GROUPS: [&str; 4] = ["ga", "gb", "gc", "gd"];
/// Ports rules and packets are drawn from, so ranges overlap and edges are hit.
const PORTS: [u16; 10] = [21, 22, 23, 79, 80, 81, 443, 1000, 3389, 8080];

fn rule(rng: &mut Rng) -> String {
    let direction = if rng.chance(60) { "ingress" } else { "egress" };
    let policy = if rng.chance(35) { "drop" } else { "accept" };
    let protocol = *rng.pick(&["tcp", "tcp", "udp", "udp", "icmp", "gre", "all"]);
    let ports = if matches!(protocol, "tcp" | "udp") && rng.chance(75) {
        let a = *rng.pick(&PORTS);
        let b = if rng.chance(50) { a } else { a.max(*rng.pick(&PORTS)) };
        format!("{a}/{b}")
    } else {
        "-1/-1".into()
    };
    let peer = match rng.below(10) {
        0 | 1 => format!("{{group: {}}}", rng.pick(&GROUPS)),
        2 => "0.0.0.0/0".into(),
        3 => "10.1.0.0/24".into(),
        4 => "10.1.1.0/24".into(),
        5 => "10.0.0.0/8".into(),
        6 => "10.1.0.8/30".into(),
        7 => "10.1.0.12/31".into(),
        _ => format!("{}/32", rng.pick(&ENIS).1),
    };
    let priority = if rng.chance(50) { rng.below(3) + 1 } else { rng.below(100) + 1 };
    format!("{{direction: {direction}, policy: {policy}, protocol: {protocol}, ports: '{ports}', peer: {peer}, priority: {priority}}}")
}

/// One VPC, two VSwitches, seven ENIs in random groups with random rules.
fn spec(rng: &mut Rng, rules: usize) -> TopologySpec {
    let mut yaml = String::from(
        "vpcs:
  - name: prod
    cidr: 10.0.0.0/8
    vswitches: [{name: s1, cidr: 10.1.0.0/24, zone: a}, {name: s2, cidr: 10.1.1.0/24, zone: a}]
    security_groups:
",
    );
    for g in GROUPS {
        let intra = if rng.chance(30) { "drop" } else { "accept" };
        yaml += &format!("      - name: {g}\n        intra_group: {intra}\n        rules:\n");
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..rules {
            let r = rule(rng);
            if seen.insert(r.clone()) {
                yaml += &format!("          - {r}\n");
            }
        }
    }
    yaml += "    enis:\n";
    for (name, ip) in ENIS {
        let vsw = if ip.starts_with("10.1.0.") { "s1" } else { "s2" };
        let mut groups: Vec<&str> = Vec::new();
        for _ in 0..=rng.below(3) {
            let g = *rng.pick(&GROUPS);
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        yaml += &format!("      - {{name: {name}, vswitch: {vsw}, ip: {ip}, security_groups: [{}]}}\n", groups.join(", "));
    }
    // Flow logs on one VSwitch and one ENI of the other: the program's counts must equal the
    // model's on every packet (those of ENIs no flow log captures are not counted at all).
    let (eni, _) = *rng.pick(&ENIS.iter().filter(|(_, ip)| ip.starts_with("10.1.1.")).copied().collect::<Vec<_>>());
    yaml += &format!(
        "flow_logs:\n  - {{name: fl-s1, resource: {{vpc: prod, vswitch: s1}}, traffic: all}}\n  - {{name: fl-one, resource: {{eni: {eni}}}, traffic: drop}}\n"
    );
    normalize(&TopologySpec::default(), TopologySpec::from_yaml(&yaml).unwrap())
}

fn topology(spec: &TopologySpec) -> Topology {
    Topology::from_spec(spec, &Quotas::unlimited()).unwrap()
}

/// A packet of a conversation between two ENIs.
#[derive(Clone)]
struct Conv {
    a: usize,
    b: usize,
    proto: u8,
    sport: u16,
    dport: u16,
}

fn ip(i: usize) -> Ipv4Addr {
    ENIS[i].1.parse().unwrap()
}

fn frame(t: &Topology, from: usize, ip: Ipv4) -> Vec<u8> {
    let (_, vsw, eni) = t.eni(ENIS[from].0).unwrap();
    ip.frame(vsw.gateway_mac, eni.mac)
}

/// The next packet of `c` (forward or reply), or an ICMP error about it.
fn packet(rng: &mut Rng, t: &Topology, c: &Conv) -> (usize, Vec<u8>) {
    let reply = rng.chance(40);
    let (from, to, sport, dport) = if reply { (c.b, c.a, c.dport, c.sport) } else { (c.a, c.b, c.sport, c.dport) };
    let (src, dst) = (ip(from), ip(to));
    let mut p = match c.proto {
        6 => {
            let flags =
                *rng.pick(&[packet::TCP_SYN, packet::TCP_SYN | packet::TCP_ACK, packet::TCP_ACK, packet::TCP_ACK, 0x19, 0x14, 0x04]);
            Ipv4::tcp(src, dst, sport, dport, flags)
        }
        17 => Ipv4::udp(src, dst, sport, dport, b"conversation"),
        1 => {
            if rng.chance(20) {
                // An error about the other direction's packet, from the receiver of that packet.
                let quoted = Ipv4::udp(dst, src, dport, sport, b"q").bytes();
                let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
                icmp.extend_from_slice(&quoted[..28]);
                Ipv4::new(src, dst, 1, icmp)
            } else {
                let kind = if reply { 0 } else { 8 };
                Ipv4::new(src, dst, 1, packet::icmp_echo(kind, c.sport, 1, b"echo"))
            }
        }
        proto => Ipv4::new(src, dst, proto, vec![0x11; 12]),
    };
    if rng.chance(4) {
        p.frag_off = if rng.chance(50) { 0x2000 } else { 0x0010 };
    }
    (from, frame(t, from, p))
}

#[test]
fn random_security_groups_and_conversations_agree() {
    for seed in 1..=4u64 {
        let mut rng = Rng::new(seed * 7919);
        let mut doc = spec(&mut rng, 24);
        with_harness(topology(&doc), move |h| {
            // The model keeps no clock, the program does: a seed must finish before the
            // shortest idle timeout (10 s after a TCP close) could expire a connection.
            let started = std::time::Instant::now();
            let mut convs: Vec<Conv> = Vec::new();
            let mut tally = std::collections::BTreeMap::new();
            for i in 0..1500 {
                if i == 750 {
                    // Change the rules: drop some, add others; established connections are re-checked.
                    for group in &mut doc.vpcs[0].security_groups {
                        group.rules.retain(|_| rng.chance(70));
                    }
                    let mut extra = spec(&mut rng, 6);
                    for (group, more) in doc.vpcs[0].security_groups.iter_mut().zip(std::mem::take(&mut extra.vpcs[0].security_groups)) {
                        for r in more.rules {
                            let key = vpc::model::security::rule_key(&r);
                            if !group.rules.iter().any(|x| vpc::model::security::rule_key(x) == key) {
                                group.rules.push(vpc::model::spec::SgRuleSpec { id: None, ..r });
                            }
                        }
                    }
                    doc = normalize(&doc, doc.clone());
                    h.apply(topology(&doc))?;
                }
                let t = h.topology.clone();
                if convs.is_empty() || rng.chance(30) {
                    let a = rng.below(ENIS.len() as u64) as usize;
                    let b = (a + 1 + rng.below(ENIS.len() as u64 - 1) as usize) % ENIS.len();
                    let proto = *rng.pick(&[6u8, 6, 17, 17, 1, 47, 99]);
                    convs.push(Conv { a, b, proto, sport: 30000 + i as u16, dport: *rng.pick(&PORTS) });
                }
                let c = convs[rng.below(convs.len() as u64) as usize].clone();
                let (from, frame) = packet(&mut rng, &t, &c);
                let outcome = h
                    .check(h.ifindex(ENIS[from].0), &frame)
                    .map_err(|e| anyhow::anyhow!("seed {seed} packet {i} from {}: {e:#}", ENIS[from].0))?;
                let kind = match outcome.action {
                    Action::Drop(reason) => reason.name(),
                    Action::Redirect { .. } => "delivered",
                    Action::Pass => "host",
                };
                *tally.entry(kind).or_insert(0) += 1;
            }
            eprintln!("seed {seed}: {tally:?} in {:?}", started.elapsed());
            anyhow::ensure!(
                started.elapsed() < std::time::Duration::from_secs(9),
                "seed {seed} ran past the model's no-timeout assumption"
            );
            // Rich enough: both security-group verdicts occur, and plenty of deliveries.
            for kind in ["delivered", "sg_ingress", "sg_egress"] {
                anyhow::ensure!(tally.get(kind).copied().unwrap_or(0) > 20, "seed {seed}: too few {kind}: {tally:?}");
            }
            Ok(())
        })
        .unwrap();
    }
}
