//! `vpc fuzz` (what `cargo xtask fuzz` runs): random topologies, then random and malformed
//! frames -- truncated at every length, bad IHL and total length, IP options, VLAN tags, other
//! ethertypes, ARP variants, TTL 0 and 1, multicast -- and what a hostile guest sends: replies
//! to earlier packets, ICMP errors about them from their peer or from a third guest (honest or
//! with a lying quote), datagrams cut into fragments sent in order, shuffled, duplicated or
//! overlapping, and floods of new connections against connection limits. Every frame goes
//! through the model and the loaded XDP program (`testrun::Harness::check`: verdict, redirect
//! target, output bytes, counters, rule and flow-log counts, connections held per port). A
//! disagreement is shrunk to a small frame and reported with the seed that reproduces it.
//!
//! Each topology runs a bounded number of frames: the model keeps no clock, so a harness must
//! finish well inside the shortest idle timeout (10 s) of the program's connection table.

use std::net::Ipv4Addr;

use crate::{
    model::{Topology, normalize::normalize, spec::TopologySpec, topology::Quotas},
    packet::{self, Ipv4},
    tools::testrun::{Harness, with_harness},
};

/// A small deterministic generator (xorshift64*), shared with the randomized tests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub frames: u64,
    pub topologies: u64,
    /// Frames per outcome (drop reason, `delivered`, `host`).
    pub outcomes: std::collections::BTreeMap<String, u64>,
}

const ENIS: [(&str, &str, &str); 6] = [
    ("w1", "web", "10.1.0.10"),
    ("w2", "web", "10.1.0.11"),
    ("n1", "web", "10.1.0.12"),
    ("a1", "app", "10.2.0.10"),
    ("a2", "app", "10.2.0.11"),
    ("p1", "pp", "172.16.1.10"),
];

/// A random topology: two VPCs with routes between them, a gateway, security groups with
/// random rules, a flow log and a multicast group.
fn topology(rng: &mut Rng) -> Topology {
    topology_on(rng, &[])
}

/// `topology`, each ENI placed on one of `hosts` at random (none: a single host).
fn topology_on(rng: &mut Rng, hosts: &[&str]) -> Topology {
    let rule = |rng: &mut Rng| {
        let dir = if rng.chance(70) { "ingress" } else { "egress" };
        let policy = if rng.chance(75) { "accept" } else { "drop" };
        let proto = *rng.pick(&["tcp", "udp", "icmp", "gre", "all"]);
        let ports = if matches!(proto, "tcp" | "udp") && rng.chance(70) {
            let lo = *rng.pick(&[1u16, 22, 53, 80, 443, 1000, 5000]);
            format!("{lo}/{}", lo + *rng.pick(&[0u16, 0, 10, 1000]))
        } else {
            "-1/-1".into()
        };
        let peer = *rng.pick(&["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/24", "10.2.0.10/32", "172.16.0.0/12", "{group: ga}"]);
        format!("{{direction: {dir}, policy: {policy}, protocol: {proto}, ports: {ports}, peer: {peer}, priority: {}}}", 1 + rng.below(100))
    };
    let mut groups = String::new();
    for g in ["ga", "gb"] {
        let rules: Vec<String> = (0..rng.below(12)).map(|_| rule(rng)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        groups += &format!(
            "      - {{name: {g}, intra_group: {}, rules: [{}]}}\n",
            if rng.chance(30) { "drop" } else { "accept" },
            rules.join(", ")
        );
    }
    let member = |rng: &mut Rng| *rng.pick(&["[ga]", "[gb]", "[ga, gb]", "[default]"]);
    let mut enis = String::new();
    for (name, vsw, ip) in ENIS.iter().filter(|e| e.2.starts_with("10.")) {
        let sdc = if *name == "n1" { ", source_dest_check: false" } else { "" };
        // Some ENIs with small connection limits, so floods meet them.
        let limit = if rng.chance(25) { format!(", conntrack_limit: {}", *rng.pick(&[4u32, 25, 60])) } else { String::new() };
        let host = if hosts.is_empty() { String::new() } else { format!(", host: {}", rng.pick(hosts)) };
        enis += &format!("      - {{name: {name}, vswitch: {vsw}, ip: {ip}, security_groups: {}{sdc}{limit}{host}}}\n", member(rng));
    }
    let p1_host = if hosts.is_empty() { String::new() } else { format!(", host: {}", rng.pick(hosts)) };
    let vpc_limit = *rng.pick(&[100u32, 400, 32_768]);
    let yaml = format!(
        "vpcs:
  - name: prod
    cidr: 10.0.0.0/8
    conntrack_limit: {vpc_limit}
    vswitches:
      - {{name: web, cidr: 10.1.0.0/24, zone: a}}
      - {{name: app, cidr: 10.2.0.0/24, zone: a}}
    gateways: [{{name: g1, networks: [192.168.50.0/24]}}]
    route_tables:
      - name: system
        routes:
          - {{dst: 172.16.0.0/12, next_hop: {{type: vpc, vpc: peer}}}}
          - {{dst: 192.168.50.0/24, next_hop: {{type: gateway, gateway: g1}}}}
          - {{dst: 0.0.0.0/0, next_hop: {{type: eni, eni: n1}}}}
          - {{dst: 10.9.0.0/16, next_hop: {{type: blackhole}}}}
    security_groups:
{groups}    enis:
{enis}    multicast_groups:
      - {{group: 239.1.1.1, senders: [w1, a1], members: [w2, a2, n1]}}
  - name: peer
    cidr: 172.16.0.0/12
    vswitches: [{{name: pp, cidr: 172.16.1.0/24, zone: a}}]
    route_tables: [{{name: system, routes: [{{dst: 10.0.0.0/8, next_hop: {{type: vpc, vpc: prod}}}}]}}]
    enis:
      - {{name: p1, vswitch: pp, ip: 172.16.1.10{p1_host}}}
flow_logs:
  - {{name: fl, resource: {{vpc: prod, vswitch: web}}}}
"
    );
    let spec = normalize(&TopologySpec::default(), TopologySpec::from_yaml(&yaml).expect("fuzz topology parses"));
    Topology::from_spec(&spec, &Quotas::unlimited()).unwrap_or_else(|e| panic!("fuzz topology is valid: {e}\n{yaml}"))
}

/// Who a sender is: its MAC, its gateway's MAC (where its frames go), its address.
fn sender(t: &Topology, from: &str) -> ([u8; 6], [u8; 6], Ipv4Addr) {
    match t.eni(from) {
        Some((_, vsw, eni)) => (eni.mac, vsw.gateway_mac, eni.ip),
        None => {
            let gw = t.vpcs.iter().flat_map(|v| &v.gateways).find(|g| g.name == from).expect("gateway");
            (gw.mac, gw.local_mac, Ipv4Addr::new(192, 168, 50, 7))
        }
    }
}

/// The sender that owns `addr` (the ENI with it, or the gateway for its network), if any.
fn owner(addr: Ipv4Addr) -> Option<&'static str> {
    if let Some(e) = ENIS.iter().find(|e| e.2.parse::<Ipv4Addr>().is_ok_and(|a| a == addr)) {
        return Some(e.0);
    }
    (addr.octets()[..3] == [192, 168, 50]).then_some("g1")
}

/// A random packet from `from`, well formed.
fn packet(rng: &mut Rng, from_ip: Ipv4Addr) -> Ipv4 {
    // Mostly its own address; else another guest's (a NAT instance borrowing a group member's),
    // or anything.
    let src = match rng.below(20) {
        0 => rng.pick(&ENIS).2.parse().expect("address"),
        1 => Ipv4Addr::from(rng.next() as u32),
        _ => from_ip,
    };
    let dst = match rng.below(10) {
        0..=4 => rng.pick(&ENIS).2.parse().expect("address"),
        5 => Ipv4Addr::new(239, 1, 1, 1),
        6 => Ipv4Addr::new(224, 0, 0, 22),
        7 => Ipv4Addr::new(10, 9, rng.below(256) as u8, 1),
        8 => Ipv4Addr::new(192, 168, 50, 1 + rng.below(200) as u8),
        _ => Ipv4Addr::from(rng.next() as u32),
    };
    let ports = (*rng.pick(&[1024u16, 22, 53, 80, 443, 5000, 40000]), *rng.pick(&[22u16, 53, 80, 443, 1000, 5000, 6000]));
    let mut ip = match rng.below(7) {
        0 | 1 => Ipv4::udp(src, dst, ports.0, ports.1, &vec![0x5a; rng.below(40) as usize]),
        2 | 3 => Ipv4::tcp(
            src,
            dst,
            ports.0,
            ports.1,
            *rng.pick(&[packet::TCP_SYN, packet::TCP_SYN | packet::TCP_ACK, packet::TCP_ACK, packet::TCP_RST, 0x11]),
        ),
        4 => Ipv4::new(src, dst, 1, packet::icmp_echo(*rng.pick(&[0u8, 8, 8, 13, 14]), *rng.pick(&[0u16, 1, 2, 0x108, 0x10d]), 1, b"fz")),
        5 => {
            // An ICMP error quoting some packet.
            let quoted = Ipv4::udp(dst, src, ports.1, ports.0, b"q").bytes();
            Ipv4::new(src, dst, 1, packet::icmp_error(*rng.pick(&[3u8, 3, 11, 12, 4, 5]), 0, 0, &quoted))
        }
        _ => Ipv4::new(src, dst, *rng.pick(&[47u8, 50, 132, 0]), vec![0x11; 8]),
    };
    ip.ttl = *rng.pick(&[64u8, 64, 64, 2, 1, 0]);
    if rng.chance(3) {
        ip.options = vec![1; 4 * (1 + rng.below(3) as usize)];
    }
    if rng.chance(3) {
        ip.frag_off = *rng.pick(&[0x2000u16, 0x0010, 0x2010, 0x4000, 0x0001]);
    }
    ip
}

/// Break a frame in one of many ways, or leave it alone (most of the time).
fn mutate(rng: &mut Rng, mut f: Vec<u8>, src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    match rng.below(30) {
        // BPF_PROG_TEST_RUN takes no frame shorter than an Ethernet header.
        0 => f.truncate(14 + rng.below(f.len() as u64 - 14) as usize),
        1 => f[14] = 0x40 | (rng.below(16) as u8),
        2 => {
            let bad = rng.below(2000) as u16;
            f[16..18].copy_from_slice(&bad.to_be_bytes());
        }
        3 => f[14] = (rng.below(16) as u8) << 4 | 5,
        4 => {
            // An 802.1Q tag.
            let mut tagged = f[..12].to_vec();
            tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
            tagged.extend_from_slice(&f[12..]);
            f = tagged;
        }
        5 => f[12..14].copy_from_slice(&[0x86, 0xdd]),
        6 => f = packet::arp_request(src_mac, src, dst),
        7 => {
            let mut arp = packet::arp_request(src_mac, src, dst);
            arp[21] = *rng.pick(&[2u8, 3, 0]);
            f = arp;
        }
        8 => f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, rng.below(255) as u8]),
        9 => {
            let at = rng.below(f.len() as u64) as usize;
            f[at] ^= 1 << rng.below(8);
        }
        _ => {}
    }
    f
}

/// A well-formed packet sent earlier, remembered so later frames can answer it, quote it or
/// follow it.
#[derive(Clone)]
struct Sent {
    from: &'static str,
    ip: Ipv4,
}

/// The reverse of `ip`: the reply its peer would send (swapped addresses and ports; an echo
/// reply for an echo request).
fn reverse(ip: &Ipv4) -> Ipv4 {
    let mut r = Ipv4 { src: ip.dst, dst: ip.src, ttl: 64, options: Vec::new(), frag_off: 0x4000, ..ip.clone() };
    match ip.protocol {
        packet::PROTO_TCP | packet::PROTO_UDP if r.payload.len() >= 4 => {
            let (s, d) = ([r.payload[0], r.payload[1]], [r.payload[2], r.payload[3]]);
            r.payload[0..2].copy_from_slice(&d);
            r.payload[2..4].copy_from_slice(&s);
            if ip.protocol == packet::PROTO_TCP && r.payload.len() > 13 {
                r.payload[13] = packet::TCP_SYN | packet::TCP_ACK;
            }
        }
        packet::PROTO_ICMP if r.payload.first() == Some(&8) => r.payload[0] = 0,
        _ => {}
    }
    r
}

/// The next frames, each with its sender: one random frame most of the time, or a reply, an
/// ICMP error about an earlier packet, a fragmented datagram, or a flood.
fn burst(rng: &mut Rng, t: &Topology, senders: &[&'static str], history: &mut Vec<Sent>) -> Vec<(&'static str, Vec<u8>)> {
    let frame_of = |from: &'static str, ip: &Ipv4| {
        let (mac, gw, _) = sender(t, from);
        (from, ip.frame(gw, mac))
    };
    let earlier = (!history.is_empty()).then(|| history[rng.below(history.len() as u64) as usize].clone());
    match (rng.below(100), earlier) {
        (0..=11, Some(sent)) => {
            // The peer's reply.
            let Some(peer) = owner(sent.ip.dst) else { return Vec::new() };
            vec![frame_of(peer, &reverse(&sent.ip))]
        }
        (12..=19, Some(sent)) => {
            // An ICMP error about it: from its peer or from a third guest, honest or lying.
            let from = match owner(sent.ip.dst) {
                Some(peer) if rng.chance(60) => peer,
                _ => *rng.pick(&senders.iter().copied().filter(|s| *s != sent.from).collect::<Vec<_>>()),
            };
            let (_, _, from_ip) = sender(t, from);
            let mut quote = sent.ip.bytes();
            match rng.below(8) {
                0 => quote[2..4].copy_from_slice(&20u16.to_be_bytes()),
                1 => quote[0] = 0x44,
                2 => quote[9] = packet::PROTO_ICMP,
                _ => {}
            }
            let mut icmp = packet::icmp_error(*rng.pick(&[3u8, 3, 11, 12]), *rng.pick(&[0u8, 3, 4]), 0, &quote);
            if rng.chance(10) {
                icmp.extend(std::iter::repeat_n(0xee, 600));
            }
            let src = if from == "g1" { Ipv4Addr::new(192, 168, 50, 9) } else { from_ip };
            vec![frame_of(from, &Ipv4::new(src, sent.ip.src, packet::PROTO_ICMP, icmp))]
        }
        (20..=27, _) => {
            // A datagram in fragments with its real transport header in the first.
            let from = *rng.pick(senders);
            let (_, _, from_ip) = sender(t, from);
            let mut ip = packet(rng, from_ip);
            ip.frag_off = 0;
            ip.options.clear();
            // A handful of pieces (a first piece too small for its header now and then).
            let chunk = *rng.pick(&[8usize, 24, 24, 64, 512, 1480, 1480]);
            ip.payload.extend(std::iter::repeat_n(0x77, 16 + rng.below((chunk * 6).min(3000) as u64) as usize));
            if ip.protocol == packet::PROTO_ICMP && ip.payload.len() > 3 {
                ip.payload[2..4].copy_from_slice(&[0, 0]);
            }
            let mut pieces = packet::fragments(&ip, chunk);
            match rng.below(6) {
                0 => pieces.reverse(),
                1 if pieces.len() > 2 => pieces[1..].reverse(),
                2 if pieces.len() > 1 => pieces.push(pieces[0].clone()),
                3 if pieces.len() > 1 => {
                    let mut over = pieces[1].clone();
                    over.frag_off = (over.frag_off & 0x2000) | rng.below(3) as u16;
                    pieces.insert(1, over);
                }
                4 if pieces.len() > 1 => {
                    pieces.remove(0);
                }
                _ => {}
            }
            history.push(Sent { from, ip: ip.clone() });
            pieces.iter().map(|p| frame_of(from, p)).collect()
        }
        (28..=31, _) => {
            // A flood of new connections from one guest.
            let from = *rng.pick(senders);
            let (_, _, from_ip) = sender(t, from);
            let dst: Ipv4Addr = rng.pick(&ENIS).2.parse().expect("address");
            let base = 20_000 + rng.below(20_000) as u16;
            (0..10 + rng.below(80) as u16).map(|i| frame_of(from, &Ipv4::udp(from_ip, dst, base + i, 5000, b"flood"))).collect()
        }
        _ => {
            let from = *rng.pick(senders);
            let (mac, gw, from_ip) = sender(t, from);
            let ip = packet(rng, from_ip);
            if ip.frag_off & 0x3fff == 0 && ip.options.is_empty() {
                history.push(Sent { from, ip: ip.clone() });
                if history.len() > 64 {
                    history.remove(0);
                }
            }
            vec![(from, mutate(rng, ip.frame(gw, mac), mac, ip.src, ip.dst))]
        }
    }
}

/// Shrink a frame that makes the model and the program disagree: shorter, then with bytes
/// past the headers zeroed, as long as they still disagree.
fn shrink(h: &mut Harness, ifindex: u32, frame: &[u8]) -> Vec<u8> {
    let mut best = frame.to_vec();
    let disagrees = |h: &mut Harness, f: &[u8]| {
        h.reset_conntrack();
        h.check(ifindex, f).is_err()
    };
    let mut len = best.len();
    while len > 15 {
        len -= 1;
        if disagrees(h, &best[..len]) {
            best.truncate(len);
        }
    }
    for at in 34..best.len() {
        if best[at] != 0 {
            let mut candidate = best.clone();
            candidate[at] = 0;
            if disagrees(h, &candidate) {
                best = candidate;
            }
        }
    }
    best
}

/// `frames` frames over topologies of `per_topology` frames each, from `seed`: `part` runs
/// one topology's (its seed, how many) and says what happened.
fn over_topologies(frames: u64, per_topology: u64, seed: u64, part: impl Fn(u64, u64) -> anyhow::Result<Report>) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut rng = Rng::new(seed);
    while report.frames < frames {
        let topology_seed = rng.next();
        let part = part(topology_seed, per_topology.min(frames - report.frames))?;
        report.frames += part.frames;
        report.topologies += 1;
        for (k, v) in part.outcomes {
            *report.outcomes.entry(k).or_default() += v;
        }
    }
    Ok(report)
}

/// Run `frames` frames over topologies of `per_topology` frames each, from `seed`.
pub fn run(frames: u64, per_topology: u64, seed: u64) -> anyhow::Result<Report> {
    over_topologies(frames, per_topology, seed, |topology_seed, count| {
        with_harness(topology(&mut Rng::new(topology_seed)), move |h| {
            let mut rng = Rng::new(topology_seed ^ 0x5eed);
            let mut part = Report { topologies: 1, ..Default::default() };
            let senders: Vec<&'static str> = ENIS.iter().map(|e| e.0).chain(["g1"]).collect();
            let t = h.topology.clone();
            let mut history = Vec::new();
            let mut pending = std::collections::VecDeque::new();
            for i in 0..count {
                while pending.is_empty() {
                    pending.extend(burst(&mut rng, &t, &senders, &mut history));
                }
                let (from, f) = pending.pop_front().expect("refilled above");
                let ifindex = h.ifindex(from);
                match h.check(ifindex, &f) {
                    Ok(outcome) => {
                        let kind = match outcome.action {
                            crate::model::forward::Action::Drop(r) => r.name().to_string(),
                            crate::model::forward::Action::Redirect { .. } => "delivered".into(),
                            crate::model::forward::Action::Pass => "host".into(),
                        };
                        *part.outcomes.entry(kind).or_default() += 1;
                    }
                    Err(e) => {
                        let small = shrink(h, ifindex, &f);
                        anyhow::bail!(
                            "disagreement on frame {i} of topology seed {topology_seed:#x} from {from}: {e:#}\n  \
                             reproduce: the topology of that seed, then this frame alone (conntrack reset):\n  {}",
                            small.iter().map(|b| format!("{b:02x}")).collect::<String>()
                        );
                    }
                }
                part.frames += 1;
            }
            Ok(part)
        })
    })
}

/// Hosts of a cluster fuzz run.
const HOSTS: [&str; 3] = ["h1", "h2", "h3"];

/// Corrupt the outer headers of an encapsulated frame the way a broken or hostile peer could:
/// a bit flip anywhere in them (with the IPv4 checksum redone or not), a cut, another VNI,
/// source or destination ENI number, outer source, option or port.
fn mutate_outer(rng: &mut Rng, mut f: Vec<u8>) -> Vec<u8> {
    use vpc_common::tunnel::OUTER_LEN;
    let fix_checksum = |f: &mut Vec<u8>| {
        f[24..26].copy_from_slice(&[0, 0]);
        let check = packet::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&check.to_be_bytes());
    };
    match rng.below(9) {
        0 => {
            let at = rng.below(OUTER_LEN as u64) as usize;
            f[at] ^= 1 << rng.below(8);
            if at < 34 && rng.chance(50) {
                fix_checksum(&mut f);
            }
        }
        // (A test run takes no frame shorter than an Ethernet header.)
        1 => f.truncate(14 + rng.below(f.len() as u64 - 14) as usize),
        2 => f[46..49].copy_from_slice(&(rng.below(8) as u32).to_be_bytes()[1..]),
        3 => f[54..58].copy_from_slice(&(rng.below(10) as u32).to_be_bytes()),
        4 => f[58..62].copy_from_slice(&(rng.below(10) as u32).to_be_bytes()),
        5 => {
            f[29] = 1 + rng.below(4) as u8;
            fix_checksum(&mut f);
        }
        6 => f[50 + rng.below(4) as usize] ^= 0x01,
        7 => f[36..38].copy_from_slice(&rng.pick(&[6082u16, 4789, 53]).to_be_bytes()),
        _ => {
            // An inner packet from another address than the sending ENI's.
            f[62 + 12..62 + 16].copy_from_slice(&rng.pick(&ENIS).2.parse::<Ipv4Addr>().expect("address").octets());
        }
    }
    f
}

/// `run` across `HOSTS`: every ENI on a random host (one harness each). A frame is checked on
/// its sender's host; what leaves encapsulated is checked on the receiving host's underlay,
/// now and then with its outer headers corrupted (`mutate_outer`), and the outcomes there are
/// counted as `overlay ...`.
pub fn run_hosts(frames: u64, per_topology: u64, seed: u64) -> anyhow::Result<Report> {
    over_topologies(frames, per_topology, seed, |topology_seed, count| {
        let t = topology_on(&mut Rng::new(topology_seed), &HOSTS);
        crate::tools::testrun::with_cluster(t, &HOSTS, move |hosts| {
            let mut rng = Rng::new(topology_seed ^ 0x5eed);
            let mut part = Report { topologies: 1, ..Default::default() };
            let senders: Vec<&'static str> = ENIS.iter().map(|e| e.0).chain(["g1"]).collect();
            let t = hosts[0].topology.clone();
            let host_of = |name: &str| -> usize {
                let placed = t.eni(name).and_then(|(_, _, e)| e.host.clone());
                placed.and_then(|h| HOSTS.iter().position(|x| *x == h)).unwrap_or(0)
            };
            let mut history = Vec::new();
            let mut pending = std::collections::VecDeque::new();
            let name = |action: &crate::model::forward::Action| match action {
                crate::model::forward::Action::Drop(r) => r.name().to_string(),
                crate::model::forward::Action::Redirect { .. } => "delivered".into(),
                crate::model::forward::Action::Pass => "host".into(),
            };
            for i in 0..count {
                while pending.is_empty() {
                    pending.extend(burst(&mut rng, &t, &senders, &mut history));
                }
                let (from, f) = pending.pop_front().expect("refilled above");
                let at = host_of(from);
                let ifindex = hosts[at].ifindex(from);
                let disagreement = |e: anyhow::Error, what: &str, f: &[u8]| {
                    anyhow::anyhow!(
                        "disagreement on frame {i} of topology seed {topology_seed:#x} from {from} ({what}): {e:#}\n  frame: {}",
                        f.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    )
                };
                let outcome = hosts[at].check(ifindex, &f).map_err(|e| disagreement(e, "its own host", &f))?;
                *part.outcomes.entry(name(&outcome.action)).or_default() += 1;
                part.frames += 1;
                let crate::model::forward::Action::Redirect { port } = outcome.action else { continue };
                let to = hosts[at].port_name(port);
                if t.eni(&to).is_none() || host_of(&to) == at {
                    continue;
                }
                let there = host_of(&to);
                let wire = if rng.chance(25) { mutate_outer(&mut rng, outcome.frame.clone()) } else { outcome.frame.clone() };
                let underlay = hosts[there].underlay();
                let arrived = hosts[there].check(underlay, &wire).map_err(|e| disagreement(e, "the receiving host's underlay", &wire))?;
                *part.outcomes.entry(format!("overlay {}", name(&arrived.action))).or_default() += 1;
            }
            Ok(part)
        })
    })
}
