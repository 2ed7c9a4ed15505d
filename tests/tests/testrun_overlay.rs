//! The overlay between hosts, through the model and the loaded programs of three hosts (one
//! harness each, with its own maps): a frame from an ENI on one host is checked there, and what
//! leaves encapsulated is fed to the receiving host's underlay program and checked there --
//! verdicts, bytes, counters, connections and events at both ends. Then what a hostile or
//! broken peer could send to an underlay, the overlay's MTU, a host that goes down, and random
//! conversations across the hosts.

use std::net::Ipv4Addr;

use vpc::{
    model::{
        Topology,
        forward::{Action, Outcome},
        normalize::normalize,
        spec::TopologySpec,
        topology::Quotas,
    },
    packet::{self, Ipv4, TCP_ACK, TCP_SYN},
    tools::testrun::{Harness, with_cluster},
};
use vpc_common::{
    DropReason, addr_raw,
    tunnel::{self, OUTER_LEN, Outer},
};
use vpc_tests::rng::Rng;

const HOSTS: [&str; 3] = ["h1", "h2", "h3"];

const YAML: &str = "
vpcs:
  - name: prod
    cidr: 10.0.0.0/8
    vswitches: [{name: s1, cidr: 10.1.0.0/24, zone: a}, {name: s2, cidr: 10.1.1.0/24, zone: b}]
    security_groups:
      - name: web
        rules:
          - {direction: ingress, policy: accept, protocol: tcp, ports: 22/22, peer: {group: admin}, priority: 1}
          - {direction: ingress, policy: accept, protocol: icmp, ports: -1/-1, peer: 10.0.0.0/8, priority: 1}
          - {direction: ingress, policy: accept, protocol: udp, ports: 5000/5100, peer: 10.1.0.0/16, priority: 2}
      - name: admin
        rules:
          - {direction: egress, policy: drop, protocol: udp, ports: 53/53, peer: 0.0.0.0/0, priority: 1}
          - {direction: ingress, policy: accept, protocol: all, ports: -1/-1, peer: {group: web}, priority: 5}
    enis:
      - {name: a1, vswitch: s1, ip: 10.1.0.10, security_groups: [admin], host: h1}
      - {name: a2, vswitch: s2, ip: 10.1.1.10, security_groups: [web], host: h1}
      - {name: b1, vswitch: s1, ip: 10.1.0.20, security_groups: [web], host: h2}
      - {name: b2, vswitch: s2, ip: 10.1.1.20, security_groups: [web], host: h2, mtu: 1400}
      - {name: c1, vswitch: s2, ip: 10.1.1.30, security_groups: [web, admin], host: h3}
    multicast_groups:
      - {group: 239.1.1.1, senders: [a1, b1], members: [a1, a2, b1, b2, c1]}
  - name: dev
    cidr: 10.0.0.0/8
    vswitches: [{name: d1, cidr: 10.1.0.0/24, zone: a}]
    security_groups:
      - name: open
        rules:
          - {direction: ingress, policy: accept, protocol: all, ports: -1/-1, peer: 0.0.0.0/0, priority: 1}
    enis:
      - {name: x1, vswitch: d1, ip: 10.1.0.10, security_groups: [open], host: h1}
      - {name: x2, vswitch: d1, ip: 10.1.0.20, security_groups: [open], host: h2}
";

fn topology() -> Topology {
    let spec = normalize(&TopologySpec::default(), TopologySpec::from_yaml(YAML).unwrap());
    Topology::from_spec(&spec, &Quotas::unlimited()).unwrap()
}

/// The host (index into `HOSTS`) ENI `name` is on.
fn host_of(t: &Topology, name: &str) -> usize {
    let (_, _, eni) = t.eni(name).unwrap();
    HOSTS.iter().position(|h| Some(*h) == eni.host.as_deref()).unwrap()
}

/// `ip` as sent by ENI `from`, framed to its gateway.
fn frame(t: &Topology, from: &str, ip: Ipv4) -> Vec<u8> {
    let (_, vsw, eni) = t.eni(from).unwrap();
    ip.frame(vsw.gateway_mac, eni.mac)
}

fn addr(t: &Topology, name: &str) -> Ipv4Addr {
    t.eni(name).unwrap().2.ip
}

/// `frame` from ENI `from`, checked on its host; when it leaves for another host, checked
/// there too, arriving on that host's underlay. The outcomes at the sending host and, if it
/// crossed, at the receiving one.
fn send(hosts: &mut [Harness], from: &str, frame: &[u8]) -> (Outcome, Option<Outcome>) {
    let t = hosts[0].topology.clone();
    let at = host_of(&t, from);
    let ifindex = hosts[at].ifindex(from);
    let sent = hosts[at].check(ifindex, frame).unwrap_or_else(|e| panic!("{e:#}"));
    let Action::Redirect { port } = sent.action else { return (sent, None) };
    let to = hosts[at].port_name(port);
    let Some((_, _, eni)) = t.eni(&to) else { return (sent, None) };
    let there = HOSTS.iter().position(|h| Some(*h) == eni.host.as_deref()).unwrap();
    if there == at {
        return (sent, None);
    }
    let underlay = hosts[there].underlay();
    let arrived = hosts[there].check(underlay, &sent.frame).unwrap_or_else(|e| panic!("{e:#}"));
    (sent, Some(arrived))
}

/// The frame as it arrives at `host`'s underlay after `edit`, the outer IPv4 checksum redone.
fn edited(frame: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut f = frame.to_vec();
    edit(&mut f);
    f[24..26].copy_from_slice(&[0, 0]);
    let check = packet::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&check.to_be_bytes());
    f
}

fn underlay_ip(host: usize) -> u32 {
    addr_raw([10, 255, 0, host as u8 + 1])
}

#[test]
fn across_hosts_both_ends_agree_with_the_model() {
    with_cluster(topology(), &HOSTS, |hosts| {
        let t = hosts[0].topology.clone();
        let (a1, b1) = (addr(&t, "a1"), addr(&t, "b1"));
        let syn = Ipv4::tcp(a1, b1, 40000, 22, TCP_SYN);

        // a1 on h1 opens ssh to b1 on h2: encapsulated on h1, delivered on h2.
        let (sent, arrived) = send(hosts, "a1", &frame(&t, "a1", syn.clone()));
        let port_b1 = hosts[0].port("b1");
        assert_eq!(sent.action, Action::Redirect { port: port_b1 }, "{:?}", sent.steps);
        assert_eq!(sent.frame.len(), OUTER_LEN + syn.bytes().len());
        let h: &[u8; OUTER_LEN] = sent.frame[..OUTER_LEN].try_into().unwrap();
        let prod = hosts[0].binding.ids.vpcs[&t.vpc("prod").unwrap().id];
        assert_eq!(
            tunnel::outer(h, sent.frame.len(), underlay_ip(1)),
            Outer::Geneve { src_ip: underlay_ip(0), vni: prod, src_eni: hosts[0].port("a1"), dst_eni: port_b1 }
        );
        assert_eq!(&sent.frame[0..6], &[2, 0xfe, 0, 0, 0, 2], "to h2's MAC");
        assert_eq!(&sent.frame[OUTER_LEN..], &syn.bytes()[..], "the inner packet as the guest sent it");
        let arrived = arrived.expect("crossed to h2");
        assert_eq!(arrived.action, Action::Redirect { port: port_b1 }, "{:?}", arrived.steps);
        let (_, s1, b1_eni) = t.eni("b1").unwrap();
        assert_eq!(arrived.frame, syn.clone().ttl(63).frame(b1_eni.mac, s1.gateway_mac));
        assert_eq!(arrived.rx_port, Some(hosts[1].port("a1")), "counted on a1's tunnel port at h2");
        assert!(arrived.opened.is_some() && sent.opened.is_some(), "a connection at both hosts");

        // The reply goes back the same way, as part of the connection.
        let (_, back) = send(hosts, "b1", &frame(&t, "b1", Ipv4::tcp(b1, a1, 22, 40000, TCP_SYN | TCP_ACK)));
        assert_eq!(back.expect("crossed to h1").action, Action::Redirect { port: hosts[0].port("a1") });
        let (_, more) = send(hosts, "a1", &frame(&t, "a1", Ipv4::tcp(a1, b1, 40000, 22, TCP_ACK)));
        assert_eq!(more.unwrap().action, Action::Redirect { port: port_b1 });

        // h2 judges b1's side: telnet leaves h1 and is dropped on h2 by b1's groups.
        let (sent, arrived) = send(hosts, "a1", &frame(&t, "a1", Ipv4::tcp(a1, b1, 40001, 23, TCP_SYN)));
        assert_eq!(sent.action, Action::Redirect { port: port_b1 });
        assert_eq!(arrived.unwrap().action, Action::Drop(DropReason::SgIngress));
        // h1 judges a1's side: its egress rule drops DNS before anything leaves.
        let (sent, arrived) = send(hosts, "a1", &frame(&t, "a1", Ipv4::udp(a1, b1, 4000, 53, b"q")));
        assert_eq!((sent.action, arrived), (Action::Drop(DropReason::SgEgress), None));

        // Same addresses in another VPC: its own VNI, its own ENI.
        let x = Ipv4::udp(addr(&t, "x1"), addr(&t, "x2"), 7000, 7001, b"dev");
        let (sent, arrived) = send(hosts, "x1", &frame(&t, "x1", x));
        let dev = hosts[0].binding.ids.vpcs[&t.vpc("dev").unwrap().id];
        assert_ne!(dev, prod);
        assert!(matches!(tunnel::outer(sent.frame[..OUTER_LEN].try_into().unwrap(), sent.frame.len(), underlay_ip(1)), Outer::Geneve { vni, .. } if vni == dev));
        assert_eq!(arrived.unwrap().action, Action::Redirect { port: hosts[1].port("x2") });

        // Between VSwitches, two hosts, ICMP.
        let (_, arrived) = send(hosts, "a1", &frame(&t, "a1", Ipv4::icmp_echo(a1, addr(&t, "c1"), 7, 1)));
        assert_eq!(arrived.unwrap().action, Action::Redirect { port: hosts[2].port("c1") });
        Ok(())
    })
    .unwrap();
}

/// XDP cannot transmit on h1's underlay: the encapsulated frame passes to the TC program with
/// `TcXmit` in front (the same bytes the redirect would send, counted the same), and h2 takes
/// them as it takes a redirected one. The TC program sends on only what carries that metadata:
/// the same frame without it (as a guest could send it) goes on untouched.
#[test]
fn where_xdp_cannot_transmit_the_tc_program_sends_the_same_frame() {
    with_cluster(topology(), &HOSTS, |hosts| {
        let t = hosts[0].topology.clone();
        let mut cluster = hosts[0].binding.cluster.clone();
        cluster.underlay.as_mut().unwrap().tc_xmit = true;
        hosts[0].set_cluster(cluster)?;
        let (a1, b1) = (addr(&t, "a1"), addr(&t, "b1"));
        let syn = Ipv4::tcp(a1, b1, 40000, 22, TCP_SYN);
        let sent = hosts[0].check(hosts[0].ifindex("a1"), &frame(&t, "a1", syn.clone())).unwrap_or_else(|e| panic!("{e:#}"));
        let port_b1 = hosts[0].port("b1");
        assert_eq!((sent.action, sent.tx_port), (Action::Pass, Some(port_b1)), "{:?}", sent.steps);
        let meta = tunnel::TcXmit { magic: tunnel::TC_XMIT_MAGIC, port: port_b1 };
        assert_eq!(&sent.frame[..4], &meta.magic.to_ne_bytes());
        assert_eq!(&sent.frame[4..8], &meta.port.to_ne_bytes());
        let wire = &sent.frame[8..];
        assert_eq!(wire.len(), OUTER_LEN + syn.bytes().len());
        let prod = hosts[0].binding.ids.vpcs[&t.vpc("prod").unwrap().id];
        assert_eq!(
            tunnel::outer(wire[..OUTER_LEN].try_into().unwrap(), wire.len(), underlay_ip(1)),
            Outer::Geneve { src_ip: underlay_ip(0), vni: prod, src_eni: hosts[0].port("a1"), dst_eni: port_b1 }
        );
        let underlay = hosts[1].underlay();
        let arrived = hosts[1].check(underlay, wire).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(arrived.action, Action::Redirect { port: port_b1 }, "{:?}", arrived.steps);
        assert_eq!(hosts[0].run_mcast(hosts[0].ifindex("a1"), wire)?.0, 0, "TC_ACT_OK: no metadata, not ours to send");
        Ok(())
    })
    .unwrap();
}

#[test]
fn an_underlay_takes_only_what_a_registered_host_may_send() {
    with_cluster(topology(), &HOSTS, |hosts| {
        let t = hosts[0].topology.clone();
        let (a1, b1) = (addr(&t, "a1"), addr(&t, "b1"));
        let udp = Ipv4::udp(a1, b1, 5555, 5001, b"fine");
        let (sent, arrived) = send(hosts, "a1", &frame(&t, "a1", udp.clone()));
        assert_eq!(arrived.unwrap().action, Action::Redirect { port: hosts[1].port("b1") });
        let good = sent.frame;
        let dev = hosts[0].binding.ids.vpcs[&t.vpc("dev").unwrap().id];
        let port = |name: &str| hosts[0].port(name);
        let cases: Vec<(&str, Vec<u8>, Action)> = vec![
            (
                "the VNI of another VPC",
                edited(&good, |f| f[46..49].copy_from_slice(&dev.to_be_bytes()[1..])),
                Action::Drop(DropReason::UnknownVni),
            ),
            (
                "from an unregistered address",
                edited(&good, |f| f[26..30].copy_from_slice(&[10, 255, 0, 9])),
                Action::Drop(DropReason::UnknownHost),
            ),
            (
                "h3 claiming a1, which is on h1",
                edited(&good, |f| f[26..30].copy_from_slice(&[10, 255, 0, 3])),
                Action::Drop(DropReason::TunnelSpoofed),
            ),
            (
                "h1 claiming b2, which is on h2",
                edited(&good, |f| f[54..58].copy_from_slice(&port("b2").to_be_bytes())),
                Action::Drop(DropReason::TunnelSpoofed),
            ),
            (
                "to c1, which is on h3",
                edited(&good, |f| f[58..62].copy_from_slice(&port("c1").to_be_bytes())),
                Action::Drop(DropReason::TunnelLoop),
            ),
            (
                "to no ENI",
                edited(&good, |f| f[58..62].copy_from_slice(&999u32.to_be_bytes())),
                Action::Drop(DropReason::UnknownDestination),
            ),
            (
                "a broken outer checksum",
                {
                    let mut f = good.clone();
                    f[25] ^= 0x40;
                    f
                },
                Action::Drop(DropReason::BadGeneve),
            ),
            ("an unknown critical option", edited(&good, |f| f[52] = 0x82), Action::Drop(DropReason::BadGeneve)),
            ("a fragmented outer packet", edited(&good, |f| f[20] = 0x20), Action::Drop(DropReason::BadGeneve)),
            (
                "a1's tunnel, another inner source",
                {
                    let spoofed = Ipv4::udp(Ipv4Addr::new(10, 1, 0, 99), b1, 5555, 5001, b"fine").bytes();
                    let mut f = good[..OUTER_LEN].to_vec();
                    f.extend_from_slice(&spoofed);
                    f
                },
                Action::Drop(DropReason::SpoofedIp),
            ),
            ("UDP to another port", edited(&good, |f| f[36..38].copy_from_slice(&6082u16.to_be_bytes())), Action::Pass),
            ("to another address", edited(&good, |f| f[30..34].copy_from_slice(&[10, 255, 0, 7])), Action::Pass),
            ("ARP", packet::arp_request([2, 0xfe, 0, 0, 0, 1], Ipv4Addr::new(10, 255, 0, 1), Ipv4Addr::new(10, 255, 0, 2)), Action::Pass),
            ("a short frame", good[..40].to_vec(), Action::Pass),
        ];
        let underlay = hosts[1].underlay();
        for (what, frame, want) in cases {
            let got = hosts[1].check(underlay, &frame).unwrap_or_else(|e| panic!("{what}: {e:#}"));
            assert_eq!(got.action, want, "{what}: {:?}", got.steps);
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn the_overlay_takes_from_the_mtu_and_a_host_that_is_down_gets_nothing() {
    with_cluster(topology(), &HOSTS, |hosts| {
        let t = hosts[0].topology.clone();
        let (a1, b1, b2) = (addr(&t, "a1"), addr(&t, "b1"), addr(&t, "b2"));
        let big = |dst: Ipv4Addr, len: usize, df: bool| {
            let mut ip = Ipv4::udp(a1, dst, 5555, 5002, &vec![0x5a; len - 28]);
            ip.frag_off = if df { 0x4000 } else { 0 };
            ip
        };
        // b1's MTU is 1500; through an underlay of 1500 it is 1500 - 58.
        let (_, arrived) = send(hosts, "a1", &frame(&t, "a1", big(b1, 1442, true)));
        assert_eq!(arrived.unwrap().action, Action::Redirect { port: hosts[1].port("b1") });
        let (sent, arrived) = send(hosts, "a1", &frame(&t, "a1", big(b1, 1443, true)));
        assert_eq!((sent.icmp_sent, arrived), (Some(3 << 8 | 4), None), "fragmentation needed from a1's gateway");
        assert_eq!(u16::from_be_bytes([sent.frame[14 + 26], sent.frame[14 + 27]]), 1442, "with the overlay's MTU");
        let (sent, _) = send(hosts, "a1", &frame(&t, "a1", big(b1, 1443, false)));
        assert_eq!(sent.action, Action::Drop(DropReason::TooBig));
        // b2's own MTU is smaller than the overlay's.
        let (sent, _) = send(hosts, "a1", &frame(&t, "a1", big(b2, 1401, true)));
        assert_eq!(u16::from_be_bytes([sent.frame[14 + 26], sent.frame[14 + 27]]), 1400);

        // h2 goes down as h1 sees it: nothing is sent to it, and h3 still gets its packets.
        let mut cluster = hosts[0].binding.cluster.clone();
        cluster.hosts.get_mut("h2").unwrap().up = false;
        hosts[0].set_cluster(cluster).unwrap();
        let (sent, _) = send(hosts, "a1", &frame(&t, "a1", Ipv4::udp(a1, b1, 5556, 5003, b"down")));
        assert_eq!(sent.action, Action::Drop(DropReason::HostDown));
        let (_, arrived) = send(hosts, "a1", &frame(&t, "a1", Ipv4::icmp_echo(a1, addr(&t, "c1"), 9, 1)));
        assert_eq!(arrived.unwrap().action, Action::Redirect { port: hosts[2].port("c1") });
        Ok(())
    })
    .unwrap();
}

#[test]
fn random_conversations_across_hosts_agree_with_the_model() {
    const ENIS: [&str; 5] = ["a1", "a2", "b1", "b2", "c1"];
    with_cluster(topology(), &HOSTS, |hosts| {
        let t = hosts[0].topology.clone();
        let mut rng = Rng::new(0x0e1a_7a11);
        let (mut crossed, mut delivered) = (0, 0);
        for _ in 0..400 {
            let (a, b) = (*rng.pick(&ENIS), *rng.pick(&ENIS));
            let (src, dst) = (addr(&t, a), addr(&t, b));
            let port = *rng.pick(&[22u16, 23, 53, 5000, 5050, 5100, 8080]);
            let ip = match rng.below(4) {
                0 => Ipv4::tcp(src, dst, 40000 + rng.below(4) as u16, port, *rng.pick(&[TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK, 0x11, 0x04])),
                1 => Ipv4::tcp(dst, src, port, 40000 + rng.below(4) as u16, *rng.pick(&[TCP_SYN | TCP_ACK, TCP_ACK])),
                2 => Ipv4::udp(src, dst, 5000 + rng.below(3) as u16, port, b"datagram"),
                _ => Ipv4::icmp_echo(src, dst, rng.below(3) as u16, 1).ttl(*rng.pick(&[64, 2, 1])),
            };
            // The reply kinds are sent by the destination.
            let from = if ip.src == src { a } else { b };
            let (_, arrived) = send(hosts, from, &frame(&t, from, ip));
            if let Some(arrived) = arrived {
                crossed += 1;
                delivered += usize::from(matches!(arrived.action, Action::Redirect { .. }));
            }
        }
        assert!(crossed > 100 && delivered > 30, "the walk crossed hosts ({crossed}) and delivered ({delivered})");
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_revoke_on_either_host_cuts_an_established_connection() {
    with_cluster(topology(), &HOSTS, |hosts| {
        let t = hosts[0].topology.clone();
        let (a1, b1) = (addr(&t, "a1"), addr(&t, "b1"));
        let ack = || frame(&t, "a1", Ipv4::tcp(a1, b1, 41000, 22, TCP_ACK));
        send(hosts, "a1", &frame(&t, "a1", Ipv4::tcp(a1, b1, 41000, 22, TCP_SYN)));
        send(hosts, "b1", &frame(&t, "b1", Ipv4::tcp(b1, a1, 22, 41000, TCP_SYN | TCP_ACK)));
        assert_eq!(send(hosts, "a1", &ack()).1.unwrap().action, Action::Redirect { port: hosts[1].port("b1") });

        // h2 revokes b1's ssh rule: the connection's next segment leaves h1 and stops at h2.
        let mut revoked = t.clone();
        let web = revoked.vpcs[0].security_groups.iter_mut().find(|g| g.name == "web").unwrap();
        web.rules.retain(|r| r.ports != Some((22, 22)));
        hosts[1].apply(revoked).unwrap();
        let (sent, arrived) = send(hosts, "a1", &ack());
        assert_eq!(sent.action, Action::Redirect { port: hosts[1].port("b1") }, "h1 still lets it go");
        assert_eq!(arrived.unwrap().action, Action::Drop(DropReason::SgIngress), "h2 judges its own ENI");
        // Given back, the same connection goes on.
        hosts[1].apply(t.clone()).unwrap();
        assert_eq!(send(hosts, "a1", &ack()).1.unwrap().action, Action::Redirect { port: hosts[1].port("b1") });

        // h1 forbids a1's ssh egress: the segment never leaves h1.
        let mut denied = t.clone();
        let admin = denied.vpcs[0].security_groups.iter_mut().find(|g| g.name == "admin").unwrap();
        let mut rule = admin.rules[0].clone();
        (rule.id, rule.protocol, rule.ports) = ("sgr-deny-ssh".into(), vpc::model::security::Protocol::Tcp, Some((22, 22)));
        admin.rules.push(rule);
        hosts[0].apply(denied).unwrap();
        let (sent, arrived) = send(hosts, "a1", &ack());
        assert_eq!((sent.action, arrived), (Action::Drop(DropReason::SgEgress), None));
        Ok(())
    })
    .unwrap();
}

/// A NAT instance and two ECMP firewalls on other hosts than the sender.
const HOPS: &str = "
vpcs:
  - name: prod
    cidr: 10.0.0.0/8
    vswitches:
      - {name: s1, cidr: 10.1.0.0/24, zone: a, route_table: out}
      - {name: s2, cidr: 10.1.1.0/24, zone: b}
    route_tables:
      - name: out
        routes:
          - {dst: 192.168.0.0/16, next_hop: {type: eni, eni: nat}}
          - {dst: 172.16.0.0/12, next_hop: {type: ecmp, hops: [{eni: fw1}, {eni: fw2}]}}
          - {dst: 198.51.100.0/24, next_hop: {type: gateway, gateway: net}}
    gateways: [{name: net, networks: [198.51.100.0/24], host: h3}]
    security_groups:
      - name: any
        rules: [{direction: ingress, policy: accept, protocol: all, ports: -1/-1, peer: 0.0.0.0/0, priority: 1}]
    enis:
      - {name: a1, vswitch: s1, ip: 10.1.0.10, security_groups: [any], host: h1}
      - {name: nat, vswitch: s2, ip: 10.1.1.5, source_dest_check: false, security_groups: [any], host: h2}
      - {name: fw1, vswitch: s2, ip: 10.1.1.6, source_dest_check: false, security_groups: [any], host: h2}
      - {name: fw2, vswitch: s2, ip: 10.1.1.7, source_dest_check: false, security_groups: [any], host: h3}
";

#[test]
fn next_hops_on_other_hosts_nat_and_ecmp_with_a_host_lost() {
    let spec = normalize(&TopologySpec::default(), TopologySpec::from_yaml(HOPS).unwrap());
    let t = Topology::from_spec(&spec, &Quotas::unlimited()).unwrap();
    with_cluster(t, &HOSTS, |hosts| {
        let t = hosts[0].topology.clone();
        let a1 = addr(&t, "a1");
        // Through the NAT instance on h2: the destination ENI is the hop, not the address.
        let out = Ipv4::udp(a1, Ipv4Addr::new(192, 168, 5, 5), 6000, 53, b"q");
        let (sent, arrived) = send(hosts, "a1", &frame(&t, "a1", out.clone()));
        let nat = hosts[0].port("nat");
        assert!(matches!(tunnel::outer(sent.frame[..OUTER_LEN].try_into().unwrap(), sent.frame.len(), underlay_ip(1)), Outer::Geneve { dst_eni, .. } if dst_eni == nat));
        let arrived = arrived.unwrap();
        assert_eq!(arrived.action, Action::Redirect { port: hosts[1].port("nat") });
        assert_eq!(&arrived.frame[14 + 16..14 + 20], &[192, 168, 5, 5], "the inner destination as sent");
        // Its answer, from an address that is not its own (source/destination check off).
        let back = Ipv4::udp(Ipv4Addr::new(192, 168, 5, 5), a1, 53, 6000, b"a");
        assert_eq!(send(hosts, "nat", &frame(&t, "nat", back)).1.unwrap().action, Action::Redirect { port: hosts[0].port("a1") });

        // 64 flows over firewalls on h2 and h3.
        let flow = |i: u16| frame(&t, "a1", Ipv4::udp(a1, Ipv4Addr::new(172, 16, 0, 9), 7000 + i, 443, b"f"));
        let hop_of = |hosts: &mut [Harness], i: u16| match send(hosts, "a1", &flow(i)).0.action {
            Action::Redirect { port } => port,
            other => panic!("flow {i}: {other:?}"),
        };
        let before: Vec<u32> = (0..64).map(|i| hop_of(hosts, i)).collect();
        let (fw1, fw2) = (hosts[0].port("fw1"), hosts[0].port("fw2"));
        assert!(before.contains(&fw1) && before.contains(&fw2), "both hosts' firewalls carry flows: {before:?}");
        // h3 is lost as h1 sees it: only its flows move, to h2's firewall.
        let mut cluster = hosts[0].binding.cluster.clone();
        cluster.hosts.get_mut("h3").unwrap().up = false;
        hosts[0].set_cluster(cluster).unwrap();
        let after: Vec<u32> = (0..64).map(|i| hop_of(hosts, i)).collect();
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            assert_eq!(*a, fw1, "flow {i} on fw1 after h3 is lost");
            assert!(*b == fw2 || a == b, "flow {i} stayed where it was");
        }
        Ok(())
    })
    .unwrap();
}

/// Multicast across hosts, head-end replication: a1's datagram to the group is copied by the TC
/// program at h1 to a2 there and sent once encapsulated to h2 and to h3; each copy arrives on
/// its host's underlay, where the model and the program agree on what passes to that host's
/// TC program (the group's Ethernet header, the sender in the metadata) and what is refused.
#[test]
fn multicast_goes_once_to_each_other_host_with_members() {
    with_cluster(topology(), &HOSTS, |hosts| {
        let t = hosts[0].topology.clone();
        let group = Ipv4Addr::new(239, 1, 1, 1);
        let ids = hosts[0].binding.ids.clone();
        let (prod, _, _) = t.eni("a1").unwrap();
        let group_id = prod.multicast_groups[0].id.clone();
        let counter = |eni: &str| ids.mcast_members[&vpc::model::ids::mcast_member(&group_id, &t.eni(eni).unwrap().2.id)];
        let datagram = |from: &str, dport: u16| frame(&t, from, Ipv4::udp(addr(&t, from), group, 40000, dport, b"to the group"));

        // At h1: XDP passes it on; the TC program copies it to a2 and sends h2 and h3 one each.
        let sent = datagram("a1", 5000);
        let at_h1 = hosts[0].check(hosts[0].ifindex("a1"), &sent).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(at_h1.action, Action::Pass);
        assert_eq!(at_h1.remote_copies, vec![2, 3], "{:?}", at_h1.steps);
        let before = hosts[0].event_count("overlay_encapsulated")?;
        let (code, moved) = hosts[0].run_mcast(hosts[0].ifindex("a1"), &sent)?;
        assert_eq!((code, moved), (2, [(counter("a2"), (1, 0))].into()), "TC_ACT_SHOT, a2's copy alone made here");
        assert_eq!(hosts[0].event_count("overlay_encapsulated")? - before, 2, "one copy to each other host");

        // The copy as h2 and h3 receive it (the layout the TC program writes with
        // `tunnel::header`): each passes it, decapsulated, to its own TC program.
        let cluster = hosts[0].binding.cluster.clone();
        let (a1, a2) = (hosts[0].port("a1"), hosts[0].port("a2"));
        let wire = |to: usize, src_eni: u32, inner: &[u8]| {
            let host = cluster.hosts[HOSTS[to]];
            let underlay = cluster.underlay.unwrap();
            let sport =
                tunnel::source_port(vpc_common::flow_hash(addr_raw([10, 1, 0, 10]), addr_raw(group.octets()), (40000 << 16) | 5000, 17));
            let header = tunnel::header(&tunnel::Encap {
                dst_mac: host.mac,
                src_mac: underlay.mac,
                src_ip: underlay_ip(0),
                dst_ip: addr_raw(host.ip.octets()),
                tos: 0,
                inner_len: (inner.len() - 14) as u16,
                sport,
                vni: ids.vpc(&prod.id),
                src_eni,
                dst_eni: tunnel::MCAST_ENI,
            });
            let mut f = header.to_vec();
            f.extend_from_slice(&inner[14..]);
            f
        };
        for to in [1, 2] {
            let underlay = hosts[to].underlay();
            let arrived = hosts[to].check(underlay, &wire(to, a1, &sent)).unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(arrived.action, Action::Pass, "{:?}", arrived.steps);
            let members: Vec<String> = arrived.copies.iter().map(|(p, _)| hosts[to].port_name(*p)).collect();
            assert_eq!(members, if to == 1 { vec!["b1", "b2"] } else { vec!["c1"] });
            // The decapsulated frame behind the metadata: the group's MAC, from a1.
            let inner = &arrived.frame[16..];
            assert_eq!(
                (&inner[..6], &inner[6..12]),
                (&vpc_common::mcast::group_mac(addr_raw(group.octets()))[..], &t.eni("a1").unwrap().2.mac[..])
            );
            // Without the metadata (not from the overlay) the TC program leaves the frame alone.
            assert_eq!(hosts[to].run_mcast(underlay, inner)?.0, 0, "TC_ACT_OK");
        }

        // What h2 refuses: a copy from an ENI that is not a sender (a2), to a group it does not
        // know, or a unicast packet sent as a group's copy.
        let h2 = &mut hosts[1];
        let underlay = h2.underlay();
        let mut refused = |wire: Vec<u8>| h2.check(underlay, &wire).unwrap_or_else(|e| panic!("{e:#}")).action;
        let from_a2 = datagram("a2", 5000);
        assert_eq!(refused(wire(1, a2, &from_a2)), Action::Drop(DropReason::McastNotSender));
        let elsewhere = frame(&t, "a1", Ipv4::udp(addr(&t, "a1"), Ipv4Addr::new(239, 9, 9, 9), 40000, 5000, b"x"));
        assert_eq!(refused(wire(1, a1, &elsewhere)), Action::Drop(DropReason::McastUnknownGroup));
        let unicast = frame(&t, "a1", Ipv4::udp(addr(&t, "a1"), addr(&t, "b1"), 40000, 5000, b"x"));
        assert_eq!(refused(wire(1, a1, &unicast)), Action::Drop(DropReason::UnknownDestination));
        Ok(())
    })
    .unwrap();
}

/// A gateway on another host than the sender: a1 (h1) reaches the network behind `net` (on h3)
/// through the overlay, and what enters from that network comes back to a1 from h3; a frame
/// claiming to come from the gateway by way of any other host is spoofed.
#[test]
fn a_gateway_on_another_host_carries_both_ways() {
    let spec = normalize(&TopologySpec::default(), TopologySpec::from_yaml(HOPS).unwrap());
    let t = Topology::from_spec(&spec, &Quotas::unlimited()).unwrap();
    with_cluster(t, &HOSTS, |hosts| {
        let t = hosts[0].topology.clone();
        let a1 = addr(&t, "a1");
        let far = Ipv4Addr::new(198, 51, 100, 7);
        let net = hosts[0].port("net");
        // Out: encapsulated at h1 for the gateway, delivered to its link at h3.
        let sent = hosts[0].check(hosts[0].ifindex("a1"), &frame(&t, "a1", Ipv4::udp(a1, far, 6000, 53, b"q")))?;
        assert_eq!(sent.action, Action::Redirect { port: net });
        let to_h3 = tunnel::outer(sent.frame[..OUTER_LEN].try_into().unwrap(), sent.frame.len(), underlay_ip(2));
        assert!(matches!(to_h3, Outer::Geneve { dst_eni, .. } if dst_eni == net), "{to_h3:?}");
        let underlay = hosts[2].underlay();
        let there = hosts[2].check(underlay, &sent.frame)?;
        assert_eq!(there.action, Action::Redirect { port: net }, "{:?}", there.steps);
        // Back: from the network behind it (any address), at h3, to a1 on h1.
        let gw = t.vpcs[0].gateway("net").unwrap().clone();
        let answer = Ipv4::udp(far, a1, 53, 6000, b"a").frame(gw.local_mac, gw.mac);
        let back = hosts[2].check(hosts[2].ifindex("net"), &answer)?;
        assert_eq!(back.action, Action::Redirect { port: hosts[2].port("a1") });
        let underlay = hosts[0].underlay();
        let home = hosts[0].check(underlay, &back.frame)?;
        assert_eq!(home.action, Action::Redirect { port: hosts[0].port("a1") }, "{:?}", home.steps);
        // The same frame as if h2 had sent it: the gateway is not on h2.
        let mut from_h2 = back.frame.clone();
        from_h2[26..30].copy_from_slice(&underlay_ip(1).to_ne_bytes());
        let from_h2 = edited(&from_h2, |_| {});
        assert_eq!(hosts[0].check(underlay, &from_h2)?.action, Action::Drop(DropReason::TunnelSpoofed));
        Ok(())
    })
    .unwrap();
}
