//! The multicast decision through the model and the loaded programs: XDP (unknown group,
//! non-sender, the sender's egress rules) and the TC program's copies (which members, which of
//! them their ingress rules refuse), for random senders, groups, protocols and ports.

use std::{collections::BTreeMap, net::Ipv4Addr};

use vpc::{
    model::{Topology, forward::Action, normalize::normalize, spec::TopologySpec, topology::Quotas},
    packet::Ipv4,
    tools::testrun::with_harness,
};
use vpc_tests::rng::Rng;

const YAML: &str = "
vpcs:
  - name: prod
    cidr: 10.0.0.0/16
    vswitches: [{name: s1, cidr: 10.0.1.0/24, zone: a}, {name: s2, cidr: 10.0.2.0/24, zone: a}]
    security_groups:
      - {name: udp5000, rules: [{direction: ingress, protocol: udp, ports: 5000/5000, peer: 10.0.0.0/16}]}
      - {name: onlyicmp, rules: [{direction: ingress, protocol: icmp, peer: 0.0.0.0/0}]}
      - {name: noudp, rules: [{direction: egress, policy: drop, protocol: udp, ports: 5001/5001, peer: 0.0.0.0/0}]}
    enis:
      - {name: e1, vswitch: s1, ip: 10.0.1.10}
      - {name: e2, vswitch: s1, ip: 10.0.1.11, security_groups: [udp5000]}
      - {name: e3, vswitch: s1, ip: 10.0.1.12, security_groups: [onlyicmp]}
      - {name: e4, vswitch: s2, ip: 10.0.2.10, security_groups: [noudp]}
      - {name: e5, vswitch: s2, ip: 10.0.2.11, mtu: 1200}
    multicast_groups:
      - {group: 239.1.1.1, senders: [e1, e4], members: [e1, e2, e3, e5]}
      - {group: 239.2.2.2, senders: [e2], members: [e4, e5]}
  - name: other
    cidr: 10.1.0.0/16
    vswitches: [{name: s1, cidr: 10.1.1.0/24, zone: a}]
    enis:
      - {name: o1, vswitch: s1, ip: 10.1.1.10}
    multicast_groups:
      - {group: 239.1.1.1, senders: [o1], members: [o1]}
";

/// e4 twice: its egress rule (drop UDP 5001) is the only way to an `sg_egress` drop.
const SENDERS: [&str; 7] = ["e1", "e2", "e3", "e4", "e4", "e5", "o1"];
const GROUPS: [Ipv4Addr; 3] = [Ipv4Addr::new(239, 1, 1, 1), Ipv4Addr::new(239, 2, 2, 2), Ipv4Addr::new(239, 9, 9, 9)];

#[test]
fn multicast_decisions_and_copies_agree() {
    let spec = normalize(&TopologySpec::default(), TopologySpec::from_yaml(YAML).unwrap());
    let t = Topology::from_spec(&spec, &Quotas::unlimited()).unwrap();
    with_harness(t, |h| {
        let mut rng = Rng::new(77);
        let mut tally: BTreeMap<String, u32> = BTreeMap::new();
        for i in 0..1000 {
            let from = *rng.pick(&SENDERS);
            let group = *rng.pick(&GROUPS);
            let t = h.topology.clone();
            let (_, vsw, eni) = t.eni(from).unwrap();
            // Some longer than e5's MTU (1200): its copy is refused, the others' delivered.
            let payload = vec![0x42; *rng.pick(&[20usize, 20, 1300])];
            let ip = match rng.below(3) {
                0 => Ipv4::udp(eni.ip, group, 40000 + i as u16, *rng.pick(&[5000u16, 5001, 5001, 6000]), &payload),
                1 => Ipv4::new(eni.ip, group, 1, vpc::packet::icmp_echo(8, i as u16, 1, b"mc")),
                _ => Ipv4::new(eni.ip, group, 47, payload.clone()),
            };
            let frame = ip.frame(vsw.gateway_mac, eni.mac);
            let ifindex = h.ifindex(from);
            let outcome = h.check(ifindex, &frame).map_err(|e| anyhow::anyhow!("packet {i} from {from} to {group}: {e:#}"))?;
            let kind = match outcome.action {
                Action::Drop(reason) => reason.name().to_string(),
                Action::Pass => "passed".into(),
                Action::Redirect { .. } => "redirect".into(),
            };
            *tally.entry(kind).or_default() += 1;
            if outcome.action != Action::Pass {
                continue;
            }
            // The TC program's copies: exactly the model's, counted per member.
            let (code, moved) = h.run_mcast(ifindex, &frame)?;
            anyhow::ensure!(code == 2, "packet {i}: TC returned {code}, not TC_ACT_SHOT");
            let ids = &h.binding.ids;
            let group_id = &h.topology.eni(from).unwrap().0.multicast_groups.iter().find(|g| g.group == group).unwrap().id;
            let want: BTreeMap<u32, (u64, u64)> = outcome
                .copies
                .iter()
                .map(|(port, ok)| {
                    let eni = h.topology.enis().find(|(_, _, e)| ids.port(&e.id) == *port).unwrap().2;
                    let counter = ids.mcast_members[&vpc::model::ids::mcast_member(group_id, &eni.id)];
                    (counter, if *ok { (1, 0) } else { (0, 1) })
                })
                .collect();
            anyhow::ensure!(
                moved == want,
                "packet {i} from {from} to {group}: program copies {moved:?}, model {want:?} ({})",
                outcome.steps.join("; ")
            );
            *tally.entry("copies".into()).or_default() += outcome.copies.iter().filter(|c| c.1).count() as u32;
            *tally.entry("refused copies".into()).or_default() += outcome.copies.iter().filter(|c| !c.1).count() as u32;
            let e5 = ids.port(&h.topology.eni("e5").unwrap().2.id);
            if frame.len() - 14 > 1200 && outcome.copies.contains(&(e5, false)) && outcome.copies.iter().any(|c| c.1) {
                *tally.entry("too long for e5 only".into()).or_default() += 1;
            }
        }
        eprintln!("{tally:?}");
        for (kind, least) in [
            ("passed", 50),
            ("mcast_not_sender", 50),
            ("mcast_unknown_group", 50),
            ("sg_egress", 8),
            ("copies", 50),
            ("refused copies", 50),
            ("too long for e5 only", 1),
        ] {
            anyhow::ensure!(tally.get(kind).copied().unwrap_or(0) >= least, "too few {kind}: {tally:?}");
        }
        Ok(())
    })
    .unwrap();
}
