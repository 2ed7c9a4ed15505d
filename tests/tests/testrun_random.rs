//! Random route tables (overlapping prefixes, /0 and /32, every next-hop type, hops down) and
//! random frames, through the model and the loaded XDP program: zero disagreements.

use std::{collections::BTreeSet, net::Ipv4Addr};

use vpc::{
    model::Topology,
    packet::{self, Ipv4},
    tools::testrun::with_harness_detached,
};
use vpc_tests::rng::Rng;

/// A topology with two VPCs joined by a CEN and a third reached by a route, gateways, ENIs that
/// may use any address, and `routes` random custom entries in each of prod's two tables.
fn topology(rng: &mut Rng, routes: usize) -> String {
    let mut yaml = String::from(
        "vpcs:
  - name: prod
    cidr: 10.0.0.0/8
    vswitches:
      - {name: web, cidr: 10.1.0.0/24, zone: a}
      - {name: app, cidr: 10.2.0.0/24, zone: a, route_table: edge}
    gateways: [{name: g1, networks: [172.30.0.0/16]}, {name: g2}]
    enis:
      - {name: w1, vswitch: web, ip: 10.1.0.10}
      - {name: n1, vswitch: web, ip: 10.1.0.11, source_dest_check: false}
      - {name: n2, vswitch: web, ip: 10.1.0.12, source_dest_check: false}
      - {name: off, vswitch: web, ip: 10.1.0.13}
      - {name: a1, vswitch: app, ip: 10.2.0.10}
    route_tables:
",
    );
    for table in ["system", "edge"] {
        yaml += &format!("      - name: {table}\n        routes:\n");
        let mut dsts = BTreeSet::new();
        for _ in 0..routes {
            let len = *rng.pick(&[0u8, 8, 9, 12, 16, 20, 23, 24, 25, 28, 30, 31, 32, 32, 24, 16]);
            let base = *rng.pick(&[0x0a01_0000u32, 0x0a02_0000, 0x0a00_0000, 0xac10_0000, 0xc0a8_0000, 0x0800_0000, 0x6440_0000]);
            let addr = base | (rng.next() as u32 & 0x0003_ffff);
            let net = ipnet::Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc();
            let system = ["100.64.0.0/10", "10.1.0.0/24", "10.2.0.0/24"];
            if system.contains(&net.to_string().as_str()) || !dsts.insert(net) {
                continue;
            }
            let hop = match rng.below(8) {
                0 => "{type: eni, eni: n1}".to_string(),
                1 => "{type: eni, eni: off}".to_string(),
                2 => "{type: gateway, gateway: g1}".to_string(),
                3 => "{type: vpc, vpc: peer}".to_string(),
                4 => "{type: blackhole}".to_string(),
                5 => "{type: ecmp, hops: [{eni: n1}, {eni: n2, weight: 30}, {gateway: g2, weight: 255}]}".to_string(),
                6 => "{type: ecmp, hops: [{eni: n1}, {eni: off}, {gateway: g1}, {gateway: g2}]}".to_string(),
                _ => "{type: active_standby, hops: [{eni: n2}, {gateway: g1}]}".to_string(),
            };
            yaml += &format!("          - {{dst: {net}, next_hop: {hop}}}\n");
        }
    }
    yaml += "  - name: peer
    cidr: 172.16.0.0/12
    vswitches: [{name: pp, cidr: 172.16.1.0/24, zone: a}]
    route_tables: [{name: system, routes: [{dst: 10.0.0.0/8, next_hop: {type: vpc, vpc: prod}}, {dst: 192.168.0.0/16, next_hop: {type: vpc, vpc: third}}]}]
    enis: [{name: p1, vswitch: pp, ip: 172.16.1.10}]
  - name: third
    cidr: 192.168.0.0/16
    vswitches: [{name: tt, cidr: 192.168.5.0/24, zone: a}]
    enis: [{name: t1, vswitch: tt, ip: 192.168.5.10}]
cens: [{name: cen1, vpcs: [peer, third]}]
";
    yaml
}

/// A random frame from a random sender towards an address the tables make interesting.
fn frame(rng: &mut Rng, t: &Topology) -> (String, Vec<u8>) {
    let senders = ["w1", "n1", "n2", "a1", "p1", "t1", "g1", "g2"];
    let from = rng.pick(&senders).to_string();
    let (mac, gw_mac, src) = match t.eni(&from) {
        Some((_, vsw, eni)) => (eni.mac, vsw.gateway_mac, eni.ip),
        None => {
            let gw = t.vpcs.iter().flat_map(|v| &v.gateways).find(|g| g.name == from).unwrap();
            (gw.mac, gw.local_mac, Ipv4Addr::new(172, 30, 0, 9))
        }
    };
    let src = if rng.chance(5) { Ipv4Addr::from(rng.next() as u32) } else { src };
    let base = *rng.pick(&[0x0a01_0000u32, 0x0a02_0000, 0x0a00_0000, 0xac10_0100, 0xc0a8_0500, 0x0800_0000, 0x6440_0000, 0xac1e_0000]);
    let dst = Ipv4Addr::from(base | (rng.next() as u32 & *rng.pick(&[0xffu32, 0xffff, 0x3_ffff])));
    let (sport, dport) = (rng.next() as u16, rng.next() as u16);
    let mut ip = match rng.below(3) {
        0 => Ipv4::udp(src, dst, sport, dport, b"random"),
        1 => Ipv4::tcp(src, dst, sport, dport, packet::TCP_SYN),
        _ => Ipv4::icmp_echo(src, dst, sport, 1),
    };
    ip.ttl = *rng.pick(&[64, 64, 64, 2, 1]);
    if rng.chance(5) {
        ip.frag_off = 0x2000;
    }
    (from, ip.frame(gw_mac, mac))
}

#[test]
fn random_tables_and_frames_agree() {
    for seed in 1..=4u64 {
        let mut rng = Rng::new(seed);
        let topology = Topology::from_yaml(&topology(&mut rng, 40)).unwrap();
        with_harness_detached(topology, &["off"], move |h| {
            // Health checks found some hops down.
            let mut down = BTreeSet::new();
            for table in &h.topology.vpc("prod").unwrap().route_tables {
                for route in &table.routes {
                    for hop in 0..2 {
                        if rng.chance(30) {
                            down.insert((route.id.clone(), hop));
                        }
                    }
                }
            }
            h.set_down(down)?;
            let t = h.topology.clone();
            let mut verdicts = std::collections::BTreeMap::new();
            for i in 0..600 {
                let (from, frame) = frame(&mut rng, &t);
                let outcome = h.check(h.ifindex(&from), &frame).map_err(|e| anyhow::anyhow!("seed {seed} frame {i} from {from}: {e:#}"))?;
                let kind = match outcome.action {
                    vpc::model::forward::Action::Drop(reason) => reason.name(),
                    vpc::model::forward::Action::Redirect { .. } => "redirect",
                    vpc::model::forward::Action::Pass => "pass",
                };
                *verdicts.entry(kind).or_insert(0) += 1;
            }
            eprintln!("seed {seed}: {verdicts:?}");
            // The tables are rich enough to exercise every kind of outcome.
            for want in ["redirect", "pass", "no_route", "blackhole", "port_down", "unknown_destination", "ttl_exceeded"] {
                anyhow::ensure!(verdicts.contains_key(want), "seed {seed}: no {want} in {verdicts:?}");
            }
            Ok(())
        })
        .unwrap();
    }
}
