//! The foundation's data path, case by case, through the model and the loaded XDP program
//! (BPF_PROG_TEST_RUN): verdict, output port, output bytes and counters must agree, and each
//! case also states the verdict it expects so a model bug cannot hide behind agreement.

use std::net::Ipv4Addr;

use vpc::{
    model::{Topology, forward::Action},
    packet::{self, Ipv4},
    tools::testrun::{Harness, with_harness, with_harness_detached, with_harness_sized},
};
use vpc_common::DropReason;

const TOPOLOGY: &str = "
vpcs:
  - name: prod
    cidr: 192.168.0.0/16
    vswitches:
      - {name: web, cidr: 192.168.1.0/24, zone: zone-a}
      - {name: db, cidr: 192.168.2.0/24, zone: zone-b}
      - {name: small, cidr: 192.168.3.0/29, zone: zone-b}
    enis:
      - {name: web1, vswitch: web, ip: 192.168.1.10}
      - {name: web2, vswitch: web, ip: 192.168.1.11}
      - {name: db1, vswitch: db, ip: 192.168.2.10}
  - name: other
    cidr: 192.168.0.0/16
    vswitches:
      - {name: web, cidr: 192.168.1.0/24, zone: zone-a}
    enis:
      - {name: oweb1, vswitch: web, ip: 192.168.1.10}
      - {name: oweb2, vswitch: web, ip: 192.168.1.20}
";

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

struct Case {
    what: &'static str,
    from: &'static str,
    frame: Vec<u8>,
    expect: Expect,
}

#[derive(Debug)]
enum Expect {
    Drop(DropReason),
    RedirectTo(&'static str),
    ArpReply,
    ToHost,
    /// ICMP time exceeded back to the sender.
    IcmpBack,
}

fn cases(h: &Harness) -> Vec<Case> {
    let t = &h.topology;
    let mac = |eni: &str| t.eni(eni).unwrap().2.mac;
    let gw = |eni: &str| t.eni(eni).unwrap().1.gateway_mac;
    let web1 = mac("web1");
    let udp = |src: &str, dst: &str| Ipv4::udp(ip(src), ip(dst), 4000, 53, b"hello");
    let mut truncated_ip = udp("192.168.1.10", "192.168.2.10").frame(gw("web1"), web1);
    truncated_ip.truncate(14 + 19);
    let mut bad_len = udp("192.168.1.10", "192.168.2.10").bytes();
    bad_len[2..4].copy_from_slice(&200u16.to_be_bytes());
    let mut bad_ihl = udp("192.168.1.10", "192.168.2.10").bytes();
    bad_ihl[0] = 0x44;
    let mut v6_in_v4 = udp("192.168.1.10", "192.168.2.10").bytes();
    v6_in_v4[0] = 0x65;
    let mut with_options = udp("192.168.1.10", "192.168.2.10");
    with_options.options = vec![0x94, 0x04, 0, 0]; // router alert
    let mut padded = udp("192.168.1.10", "192.168.2.10").frame(gw("web1"), web1);
    padded.resize(64, 0);
    let mut arp_reply = packet::arp_request(web1, ip("192.168.1.10"), ip("192.168.1.11"));
    arp_reply[21] = 2;
    // A guest's reply to the host (whose interface has the gateway MAC): for the host stack.
    let mut arp_reply_to_host = arp_reply.clone();
    arp_reply_to_host[32..38].copy_from_slice(&gw("web1"));
    let mut arp_reply_spoofed = arp_reply_to_host.clone();
    arp_reply_spoofed[28..32].copy_from_slice(&[192, 168, 1, 11]);
    let mut arp_bad_hlen = packet::arp_request(web1, ip("192.168.1.10"), ip("192.168.1.11"));
    arp_bad_hlen[18] = 8;
    let mut arp_short = packet::arp_request(web1, ip("192.168.1.10"), ip("192.168.1.11"));
    arp_short.truncate(40);
    let mut checksum_ffff = udp("192.168.1.10", "192.168.2.10").bytes();
    // Force the checksum carry edge: pick an id whose header checksum is 0xfeff, so +0x0100 wraps.
    for id in 0..=u16::MAX {
        checksum_ffff[4..6].copy_from_slice(&id.to_be_bytes());
        checksum_ffff[10..12].copy_from_slice(&[0, 0]);
        let c = packet::checksum(&checksum_ffff[..20]);
        if c == 0xfeff {
            checksum_ffff[10..12].copy_from_slice(&c.to_be_bytes());
            break;
        }
    }

    use Expect::*;
    vec![
        Case {
            what: "UDP across VSwitches",
            from: "web1",
            frame: udp("192.168.1.10", "192.168.2.10").frame(gw("web1"), web1),
            expect: RedirectTo("db1"),
        },
        Case {
            what: "UDP within a VSwitch",
            from: "web1",
            frame: udp("192.168.1.10", "192.168.1.11").frame(gw("web1"), web1),
            expect: RedirectTo("web2"),
        },
        Case {
            what: "reply direction",
            from: "db1",
            frame: udp("192.168.2.10", "192.168.1.10").frame(gw("db1"), mac("db1")),
            expect: RedirectTo("web1"),
        },
        Case {
            what: "TCP SYN",
            from: "web1",
            frame: Ipv4::tcp(ip("192.168.1.10"), ip("192.168.2.10"), 40000, 22, packet::TCP_SYN).frame(gw("web1"), web1),
            expect: RedirectTo("db1"),
        },
        Case {
            what: "ICMP echo",
            from: "web1",
            frame: Ipv4::icmp_echo(ip("192.168.1.10"), ip("192.168.2.10"), 7, 1).frame(gw("web1"), web1),
            expect: RedirectTo("db1"),
        },
        Case {
            what: "dst MAC does not matter",
            from: "web1",
            frame: udp("192.168.1.10", "192.168.2.10").frame(packet::BROADCAST, web1),
            expect: RedirectTo("db1"),
        },
        Case { what: "IP options kept", from: "web1", frame: with_options.frame(gw("web1"), web1), expect: RedirectTo("db1") },
        Case { what: "Ethernet padding allowed", from: "web1", frame: padded, expect: RedirectTo("db1") },
        Case {
            what: "checksum carry edge",
            from: "web1",
            frame: packet::ethernet(gw("web1"), web1, packet::ETH_P_IP, &checksum_ffff),
            expect: RedirectTo("db1"),
        },
        Case {
            what: "same address, other VPC",
            from: "oweb2",
            frame: udp("192.168.1.20", "192.168.1.10").frame(gw("oweb2"), mac("oweb2")),
            expect: RedirectTo("oweb1"),
        },
        Case {
            what: "TTL 2 forwarded",
            from: "web1",
            frame: udp("192.168.1.10", "192.168.2.10").ttl(2).frame(gw("web1"), web1),
            expect: RedirectTo("db1"),
        },
        Case {
            what: "TTL 1 expires: time exceeded back",
            from: "web1",
            frame: udp("192.168.1.10", "192.168.2.10").ttl(1).frame(gw("web1"), web1),
            expect: IcmpBack,
        },
        Case {
            what: "TTL 0 expires: time exceeded back",
            from: "web1",
            frame: udp("192.168.1.10", "192.168.2.10").ttl(0).frame(gw("web1"), web1),
            expect: IcmpBack,
        },
        Case {
            what: "expired ping: time exceeded back",
            from: "web1",
            frame: Ipv4::icmp_echo(ip("192.168.1.10"), ip("192.168.2.10"), 9, 1).ttl(1).frame(gw("web1"), web1),
            expect: IcmpBack,
        },
        Case {
            what: "expired ICMP error: silence",
            from: "web1",
            frame: Ipv4::new(
                ip("192.168.1.10"),
                ip("192.168.2.10"),
                packet::PROTO_ICMP,
                packet::icmp_error(3, 3, 0, &udp("192.168.2.10", "192.168.1.10").bytes()),
            )
            .ttl(1)
            .frame(gw("web1"), web1),
            expect: Drop(DropReason::TtlExceeded),
        },
        Case {
            what: "ICMP error with an unreadable quote",
            from: "web1",
            frame: Ipv4::new(ip("192.168.1.10"), ip("192.168.2.10"), packet::PROTO_ICMP, packet::icmp_echo(3, 0, 0, b"quoted.."))
                .frame(gw("web1"), web1),
            expect: Drop(DropReason::IcmpInvalid),
        },
        Case {
            what: "expired with IP options: silence",
            from: "web1",
            frame: {
                let mut o = udp("192.168.1.10", "192.168.2.10").ttl(1);
                o.options = vec![1, 1, 1, 1];
                o.frame(gw("web1"), web1)
            },
            expect: Drop(DropReason::TtlExceeded),
        },
        Case {
            what: "first fragment",
            from: "web1",
            frame: {
                let mut f = udp("192.168.1.10", "192.168.2.10");
                f.id = 77;
                f.frag_off = 0x2000;
                f.frame(gw("web1"), web1)
            },
            expect: RedirectTo("db1"),
        },
        Case {
            what: "expired later fragment: silence",
            from: "web1",
            frame: {
                let mut f = udp("192.168.1.10", "192.168.2.10").ttl(1);
                f.id = 77;
                f.frag_off = 0x0010;
                f.frame(gw("web1"), web1)
            },
            expect: Drop(DropReason::TtlExceeded),
        },
        Case {
            what: "expiring into the host stack: passed",
            from: "web1",
            frame: udp("192.168.1.10", "100.64.0.9").ttl(1).frame(gw("web1"), web1),
            expect: ToHost,
        },
        Case {
            what: "first fragment of UDP",
            from: "web1",
            frame: {
                let mut f = udp("192.168.1.10", "192.168.2.10");
                f.frag_off = 0x2000;
                f.frame(gw("web1"), web1)
            },
            expect: RedirectTo("db1"),
        },
        Case {
            what: "UDP header cut off",
            from: "web1",
            frame: packet::ethernet(
                gw("web1"),
                web1,
                packet::ETH_P_IP,
                &Ipv4::new(ip("192.168.1.10"), ip("192.168.2.10"), packet::PROTO_UDP, vec![0, 1]).bytes(),
            ),
            expect: Drop(DropReason::Malformed),
        },
        Case {
            what: "spoofed source MAC",
            from: "web1",
            frame: udp("192.168.1.10", "192.168.2.10").frame(gw("web1"), mac("web2")),
            expect: Drop(DropReason::SpoofedMac),
        },
        Case {
            what: "spoofed source IP",
            from: "web1",
            frame: udp("192.168.1.11", "192.168.2.10").frame(gw("web1"), web1),
            expect: Drop(DropReason::SpoofedIp),
        },
        Case {
            what: "no ENI at that address",
            from: "web1",
            frame: udp("192.168.1.10", "192.168.2.99").frame(gw("web1"), web1),
            expect: Drop(DropReason::UnknownDestination),
        },
        Case {
            what: "gateway address has no ENI",
            from: "web1",
            frame: udp("192.168.1.10", "192.168.1.253").frame(gw("web1"), web1),
            expect: Drop(DropReason::UnknownDestination),
        },
        Case {
            what: "VPC address in no VSwitch",
            from: "web1",
            frame: udp("192.168.1.10", "192.168.9.1").frame(gw("web1"), web1),
            expect: Drop(DropReason::NoRoute),
        },
        Case {
            what: "outside the VPC",
            from: "web1",
            frame: udp("192.168.1.10", "8.8.8.8").frame(gw("web1"), web1),
            expect: Drop(DropReason::NoRoute),
        },
        Case {
            what: "other VPC's ENI is unreachable",
            from: "oweb2",
            frame: udp("192.168.1.20", "192.168.2.10").frame(gw("oweb2"), mac("oweb2")),
            expect: Drop(DropReason::NoRoute),
        },
        Case {
            what: "IPv6",
            from: "web1",
            frame: packet::ethernet(gw("web1"), web1, packet::ETH_P_IPV6, &[0x60; 40]),
            expect: Drop(DropReason::NotIpv4),
        },
        Case {
            what: "VLAN tag",
            from: "web1",
            frame: packet::ethernet(gw("web1"), web1, packet::ETH_P_8021Q, &[0, 1, 8, 0, 0x45]),
            expect: Drop(DropReason::VlanTagged),
        },
        Case {
            what: "802.1ad tag",
            from: "web1",
            frame: packet::ethernet(gw("web1"), web1, 0x88a8, &[0, 1, 0x81, 0, 0, 2, 8, 0, 0x45]),
            expect: Drop(DropReason::VlanTagged),
        },
        Case { what: "truncated IPv4 header", from: "web1", frame: truncated_ip, expect: Drop(DropReason::Malformed) },
        Case {
            what: "total length beyond frame",
            from: "web1",
            frame: packet::ethernet(gw("web1"), web1, packet::ETH_P_IP, &bad_len),
            expect: Drop(DropReason::Malformed),
        },
        Case {
            what: "IHL beyond total length",
            from: "web1",
            frame: packet::ethernet(gw("web1"), web1, packet::ETH_P_IP, &bad_ihl),
            expect: Drop(DropReason::Malformed),
        },
        Case {
            what: "version 6 in an IPv4 frame",
            from: "web1",
            frame: packet::ethernet(gw("web1"), web1, packet::ETH_P_IP, &v6_in_v4),
            expect: Drop(DropReason::Malformed),
        },
        Case {
            what: "ARP for a neighbour",
            from: "web1",
            frame: packet::arp_request(web1, ip("192.168.1.10"), ip("192.168.1.11")),
            expect: ArpReply,
        },
        Case {
            what: "ARP for the gateway",
            from: "web1",
            frame: packet::arp_request(web1, ip("192.168.1.10"), ip("192.168.1.253")),
            expect: ArpReply,
        },
        Case {
            what: "ARP for another VSwitch's address",
            from: "db1",
            frame: packet::arp_request(mac("db1"), ip("192.168.2.10"), ip("192.168.1.10")),
            expect: ArpReply,
        },
        Case {
            what: "ARP for own address",
            from: "web1",
            frame: packet::arp_request(web1, ip("192.168.1.10"), ip("192.168.1.10")),
            expect: Drop(DropReason::ArpIgnored),
        },
        Case {
            what: "ARP probe",
            from: "web1",
            frame: packet::arp_request(web1, ip("0.0.0.0"), ip("192.168.1.77")),
            expect: Drop(DropReason::ArpIgnored),
        },
        Case {
            what: "ARP outside the VPC",
            from: "web1",
            frame: packet::arp_request(web1, ip("192.168.1.10"), ip("10.0.0.1")),
            expect: Drop(DropReason::ArpIgnored),
        },
        Case { what: "ARP reply to another guest", from: "web1", frame: arp_reply, expect: Drop(DropReason::ArpIgnored) },
        Case { what: "ARP reply to the host", from: "web1", frame: arp_reply_to_host, expect: ToHost },
        Case { what: "ARP reply with a spoofed sender", from: "web1", frame: arp_reply_spoofed, expect: Drop(DropReason::SpoofedIp) },
        Case {
            what: "ARP with spoofed sender IP",
            from: "web1",
            frame: packet::arp_request(web1, ip("192.168.1.11"), ip("192.168.1.253")),
            expect: Drop(DropReason::SpoofedIp),
        },
        Case { what: "ARP with bad hardware length", from: "web1", frame: arp_bad_hlen, expect: Drop(DropReason::Malformed) },
        Case { what: "truncated ARP", from: "web1", frame: arp_short, expect: Drop(DropReason::Malformed) },
    ]
}

#[test]
fn model_and_program_agree_on_every_case() {
    let topology = Topology::from_yaml(TOPOLOGY).unwrap();
    with_harness(topology, agree_on_every_case).unwrap();
}

/// Interfaces beyond `ENI_INDEX` (here: all of them) find their ENI in `ENIS` alone.
#[test]
fn every_case_agrees_when_senders_are_found_in_the_hash_alone() {
    let topology = Topology::from_yaml(TOPOLOGY).unwrap();
    let limits = vpc::tools::testrun::TEST_LIMITS.with(vpc_common::maps::Size::EniIndex, 1);
    with_harness_sized(topology, &[] as &[&str], limits, |h| {
        anyhow::ensure!(h.eni_index()?.is_empty(), "no interface is in a one-entry index");
        agree_on_every_case(h)
    })
    .unwrap();
}

/// The index mirrors `ENIS`; a changed ENI is written to its port's other slot and the index
/// switched, the slot it pointed at left whole.
#[test]
fn the_eni_index_mirrors_enis_and_a_change_goes_to_the_other_slot() {
    let topology = Topology::from_yaml(TOPOLOGY).unwrap();
    with_harness(topology, |h| {
        let mirrored = |h: &Harness| -> anyhow::Result<std::collections::BTreeMap<u32, (u32, vpc_common::Eni)>> {
            let index = h.eni_index()?;
            let enis: std::collections::BTreeMap<u32, vpc_common::Eni> = index.iter().map(|(i, (_, e))| (*i, *e)).collect();
            anyhow::ensure!(&enis == h.enis(), "the index gives {enis:?}, ENIS holds {:?}", h.enis());
            Ok(index)
        };
        let before = mirrored(h)?;
        let web2 = h.ifindex("web2");
        let mut changed = h.topology.clone();
        let eni = changed.vpcs[0].enis.iter_mut().find(|e| e.name == "web2").unwrap();
        eni.source_dest_check = false;
        h.apply(changed)?;
        let after = mirrored(h)?;
        let (old_slot, old) = before[&web2];
        let (new_slot, new) = after[&web2];
        anyhow::ensure!(new.flags != old.flags, "the change reached the slot");
        anyhow::ensure!(new_slot == old_slot ^ 1, "slot {old_slot} -> {new_slot}: the other of the port's pair");
        anyhow::ensure!(h.eni_slot(old_slot)? == old, "the slot the index pointed at was not written");
        for (ifindex, entry) in &before {
            if *ifindex != web2 {
                anyhow::ensure!(after.get(ifindex) == Some(entry), "an unchanged ENI keeps its slot");
            }
        }
        agree_on_every_case(h)
    })
    .unwrap();
}

fn agree_on_every_case(h: &mut Harness) -> anyhow::Result<()> {
    {
        for case in cases(h) {
            let ifindex = h.ifindex(case.from);
            let outcome = h.check(ifindex, &case.frame).map_err(|e| anyhow::anyhow!("{}: {e}", case.what))?;
            let ok = match (&case.expect, outcome.action) {
                (Expect::Drop(want), Action::Drop(got)) => *want == got,
                (Expect::RedirectTo(eni), Action::Redirect { port }) => h.port(eni) == port,
                (Expect::ArpReply, Action::Redirect { port }) => h.port(case.from) == port,
                (Expect::ToHost, Action::Pass) => true,
                (Expect::IcmpBack, Action::Redirect { port }) => {
                    h.port(case.from) == port && outcome.frame[23] == 1 && outcome.frame[34] == 11
                }
                _ => false,
            };
            anyhow::ensure!(ok, "{}: expected {:?}, both said {:?}", case.what, case.expect, outcome.action);
        }
        Ok(())
    }
}

#[test]
fn forwarded_frame_bytes_are_exactly_rewritten() {
    let topology = Topology::from_yaml(TOPOLOGY).unwrap();
    with_harness(topology, |h| {
        let (_, web, web1) = h.topology.eni("web1").unwrap();
        let (_, db, db1) = h.topology.eni("db1").unwrap();
        let input = Ipv4::udp(ip("192.168.1.10"), ip("192.168.2.10"), 4000, 53, b"hello").frame(web.gateway_mac, web1.mac);
        let out = h.run(h.ifindex("web1"), &input)?;
        let mut want = Ipv4::udp(ip("192.168.1.10"), ip("192.168.2.10"), 4000, 53, b"hello").ttl(63).frame(db1.mac, db.gateway_mac);
        assert_eq!(packet::checksum(&want[14..34]), 0);
        assert_eq!(out.frame, want, "dst = destination ENI, src = its gateway, TTL-1, checksum valid");
        want.clear();
        // The ARP reply: gateway MAC for the asked address, addressed back to the asker.
        let arp = h.run(h.ifindex("web1"), &packet::arp_request(web1.mac, web1.ip, ip("192.168.1.11")))?;
        let f = &arp.frame;
        assert_eq!(&f[0..6], &web1.mac);
        assert_eq!(&f[6..12], &web.gateway_mac);
        assert_eq!(&f[20..22], &[0, 2]);
        assert_eq!(&f[22..28], &web.gateway_mac);
        assert_eq!(&f[28..32], &[192, 168, 1, 11]);
        assert_eq!(&f[32..38], &web1.mac);
        assert_eq!(&f[38..42], &[192, 168, 1, 10]);
        Ok(())
    })
    .unwrap();
}

#[test]
fn frame_from_an_unknown_interface_is_dropped_and_counted() {
    let topology = Topology::from_yaml(TOPOLOGY).unwrap();
    with_harness(topology, |h| {
        let stranger = vpc::dataplane::netlink::add_veth("stranger", "stranger-g")?;
        let frame = Ipv4::udp(ip("192.168.1.10"), ip("192.168.2.10"), 1, 2, b"").frame(packet::BROADCAST, [2, 0, 0, 0, 0, 9]);
        let outcome = h.check(stranger, &frame)?;
        assert_eq!(outcome.action, Action::Drop(DropReason::UnknownEni));
        assert_eq!(outcome.rx_port, None);
        Ok(())
    })
    .unwrap();
}

const ROUTED: &str = "
vpcs:
  - name: prod
    cidr: 10.0.0.0/16
    vswitches:
      - {name: web, cidr: 10.0.1.0/24, zone: a}
      - {name: app, cidr: 10.0.2.0/24, zone: a, route_table: edge}
    route_tables:
      - name: system
        routes: [{dst: 10.0.1.128/25, next_hop: {type: blackhole}}]
      - name: edge
        routes:
          - {dst: 0.0.0.0/0, next_hop: {type: eni, eni: nat}}
          - {dst: 10.0.0.0/24, next_hop: {type: eni, eni: fw}}
          - {dst: 10.0.1.200/32, next_hop: {type: blackhole}}
    security_groups:
      - name: web-sg        # web1 serves UDP 80 to anyone (a NAT instance relays outside sources)
        rules: [{direction: ingress, protocol: udp, ports: 80/80, peer: 0.0.0.0/0}]
    enis:
      - {name: web1, vswitch: web, ip: 10.0.1.10, security_groups: [default, web-sg]}
      - {name: web2, vswitch: web, ip: 10.0.1.200}
      - {name: nat, vswitch: web, ip: 10.0.1.5, source_dest_check: false}
      - {name: fw, vswitch: web, ip: 10.0.1.6, source_dest_check: false}
      - {name: app1, vswitch: app, ip: 10.0.2.10}
      - {name: ghost, vswitch: app, ip: 10.0.2.99}
";

#[derive(Debug)]
enum Want {
    To(&'static str),
    Drop(DropReason),
    Host,
}

#[test]
fn route_tables_custom_entries_and_next_hops() {
    let topology = Topology::from_yaml(ROUTED).unwrap();
    with_harness_detached(topology, &["ghost"], |h| {
        let t = h.topology.clone();
        let frame = |from: &str, src: &str, dst: &str| {
            let (_, vsw, eni) = t.eni(from).unwrap();
            Ipv4::udp(ip(src), ip(dst), 1234, 80, b"routed").frame(vsw.gateway_mac, eni.mac)
        };
        use Want::*;
        let cases: Vec<(&str, &str, Vec<u8>, Want)> = vec![
            ("custom table default route to a NAT ENI", "app1", frame("app1", "10.0.2.10", "8.8.8.8"), To("nat")),
            ("a more specific custom entry wins", "app1", frame("app1", "10.0.2.10", "10.0.0.5"), To("fw")),
            ("system VSwitch entry beats 0.0.0.0/0", "app1", frame("app1", "10.0.2.10", "10.0.1.10"), To("web1")),
            ("a /32 blackhole beats the VSwitch entry", "app1", frame("app1", "10.0.2.10", "10.0.1.200"), Drop(DropReason::Blackhole)),
            (
                "custom /25 in the system table overrides its /24",
                "web1",
                frame("web1", "10.0.1.10", "10.0.1.200"),
                Drop(DropReason::Blackhole),
            ),
            ("the system table's own /24 still holds below .128", "web1", frame("web1", "10.0.1.10", "10.0.1.6"), To("fw")),
            ("no default route in the system table", "web1", frame("web1", "10.0.1.10", "8.8.8.8"), Drop(DropReason::NoRoute)),
            ("cloud services range goes to the host", "web1", frame("web1", "10.0.1.10", "100.64.1.1"), Host),
            ("... from a custom table too, over 0.0.0.0/0", "app1", frame("app1", "10.0.2.10", "100.100.100.200"), Host),
            ("an ENI without interface", "web1", frame("web1", "10.0.1.10", "10.0.2.99"), Drop(DropReason::PortDown)),
            ("NAT ENI may send from any address", "nat", frame("nat", "8.8.8.8", "10.0.1.10"), To("web1")),
            ("others may not", "web1", frame("web1", "8.8.8.8", "10.0.1.6"), Drop(DropReason::SpoofedIp)),
        ];
        for (what, from, frame, want) in cases {
            let outcome = h.check(h.ifindex(from), &frame).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
            let ok = match (&want, outcome.action) {
                (To(eni), Action::Redirect { port }) => h.port(eni) == port,
                (Drop(reason), Action::Drop(got)) => *reason == got,
                (Host, Action::Pass) => true,
                _ => false,
            };
            anyhow::ensure!(ok, "{what}: expected {want:?}, both said {:?} ({})", outcome.action, outcome.steps.join("; "));
        }
        // The frame a NAT ENI receives is addressed to it, from the gateway of its VSwitch.
        let out = h.run(h.ifindex("app1"), &frame("app1", "10.0.2.10", "8.8.8.8"))?;
        let (_, web, nat) = t.eni("nat").unwrap();
        assert_eq!((&out.frame[0..6], &out.frame[6..12]), (&nat.mac[..], &web.gateway_mac[..]));
        // An ARP request from an address the NAT ENI does not own is still answered.
        let (_, _, nat_eni) = t.eni("nat").unwrap();
        let arp = packet::arp_request(nat_eni.mac, ip("10.0.1.77"), ip("10.0.1.253"));
        assert_eq!(h.check(h.ifindex("nat"), &arp)?.action, Action::Redirect { port: h.port("nat") });
        Ok(())
    })
    .unwrap();
}

#[test]
fn icmp_errors_are_rate_limited() {
    let topology = Topology::from_yaml(TOPOLOGY).unwrap();
    with_harness(topology, |h| {
        let (_, web, web1) = h.topology.eni("web1").unwrap();
        let expired = Ipv4::udp(web1.ip, ip("192.168.2.10"), 33434, 33434, b"probe").ttl(1).frame(web.gateway_mac, web1.mac);
        // A burst of expiring probes (the first check fills the bucket): the burst is answered,
        // the rest dropped and counted, on this CPU.
        h.check(h.ifindex("web1"), &expired)?;
        let mut answered = 0;
        let mut dropped = 0;
        let started = std::time::Instant::now();
        for _ in 0..100 {
            match h.run(h.ifindex("web1"), &expired)?.action {
                Action::Redirect { .. } => answered += 1,
                Action::Drop(DropReason::TtlExceeded) => dropped += 1,
                other => anyhow::bail!("unexpected {other:?}"),
            }
        }
        let burst = vpc_common::ICMP_ERRORS_BURST as usize;
        // Two answers went to `check`; during the loop the bucket refills at the configured
        // rate, no faster.
        let refilled = (started.elapsed().as_secs_f64() * vpc_common::ICMP_ERRORS_PER_SEC as f64).ceil() as usize;
        anyhow::ensure!(
            (burst - 2..=burst + refilled).contains(&answered),
            "{answered} answered, {dropped} dropped; the bucket allows {burst} - 2 + {refilled} refilled"
        );
        anyhow::ensure!(dropped > 0, "the rate limit never dropped");
        anyhow::ensure!(answered + dropped == 100);
        // The budget is web1's own: another guest's probe is still answered.
        let (_, web, web2) = h.topology.eni("web2").unwrap();
        let other = Ipv4::udp(web2.ip, ip("192.168.2.10"), 33434, 33434, b"probe").ttl(1).frame(web.gateway_mac, web2.mac);
        let got = h.run(h.ifindex("web2"), &other)?.action;
        anyhow::ensure!(matches!(got, Action::Redirect { .. }), "web2's probe after web1's flood: {got:?}");
        Ok(())
    })
    .unwrap();
}
