//! What a hostile guest tries, case by case, through the model and the loaded XDP program
//! (BPF_PROG_TEST_RUN): fragments, ICMP forged as replies or related errors, TTL probes, frames
//! over a receiver's MTU, connection limits and a full table, a revoked rule with its
//! connections lost. Both must agree on every frame (verdict, bytes, counters, the connections
//! each port holds), and each case states the verdict it expects.

use std::net::Ipv4Addr;

use vpc::{
    model::{Topology, forward::Action},
    packet::{self, Ipv4, TCP_ACK, TCP_SYN},
    tools::testrun::{Harness, TEST_LIMITS, with_harness, with_harness_sized},
};
use vpc_common::{DropReason, maps::Size};

/// After the shared hostile VPC (`vpc_tests::hostile`): its crossing to a peer VPC, the peer, and
/// a VPC with small connection limits.
const EXTRA: &str = "    route_tables: [{name: system, routes: [{dst: 10.62.0.0/16, next_hop: {type: vpc, vpc: peer}}]}]
  - name: peer
    cidr: 10.62.0.0/16
    vswitches: [{name: sw, cidr: 10.62.1.0/24, zone: a}]
    security_groups:
      - name: open
        rules: [{direction: ingress, protocol: all, ports: -1/-1, peer: 0.0.0.0/0}]
    enis: [{name: pe, vswitch: sw, ip: 10.62.1.10, security_groups: [open]}]
    route_tables: [{name: system, routes: [{dst: 10.60.0.0/16, next_hop: {type: vpc, vpc: prod}}]}]
  - name: limited
    cidr: 10.61.0.0/16
    conntrack_limit: 3
    vswitches: [{name: sw, cidr: 10.61.1.0/24, zone: a}]
    enis:
      - {name: f1, vswitch: sw, ip: 10.61.1.10}
      - {name: f2, vswitch: sw, ip: 10.61.1.11}
      - {name: tg, vswitch: sw, ip: 10.61.1.20, conntrack_limit: 4}
";

fn hostile() -> String {
    vpc_tests::hostile(EXTRA)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Want {
    To(&'static str),
    Drop(DropReason),
    /// An ICMP error of this type back to the sender, from its VSwitch gateway.
    Back(u8),
    Host,
}
use Want::*;

/// Check `ip` sent by `from` through the model and the program, and that the outcome is `want`.
fn case(h: &mut Harness, what: &str, from: &str, ip: &Ipv4, want: Want) -> anyhow::Result<vpc::model::forward::Outcome> {
    let (_, vsw, eni) = h.topology.eni(from).map(|(v, s, e)| (v.clone(), s.clone(), e.clone())).unwrap();
    let frame = ip.frame(vsw.gateway_mac, eni.mac);
    let outcome = h.check(h.ifindex(from), &frame).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    let ok = match (want, outcome.action) {
        (To(eni), Action::Redirect { port }) => h.port(eni) == port,
        (Drop(reason), Action::Drop(got)) => reason == got,
        (Back(kind), Action::Redirect { port }) => port == h.port(from) && outcome.frame[23] == 1 && outcome.frame[34] == kind,
        (Host, Action::Pass) => true,
        _ => false,
    };
    anyhow::ensure!(ok, "{what}: expected {want:?}, both said {:?} ({})", outcome.action, outcome.steps.join("; "));
    Ok(outcome)
}

fn syn(src: &str, dst: &str, sport: u16, dport: u16, data: usize, id: u16) -> Ipv4 {
    let mut segment = packet::tcp(sport, dport, TCP_SYN);
    segment.extend(std::iter::repeat_n(0x55, data));
    let mut p = Ipv4::new(ip(src), ip(dst), packet::PROTO_TCP, segment);
    p.id = id;
    p.frag_off = 0;
    p
}

fn udp(src: &str, dst: &str, sport: u16, dport: u16, len: usize, id: u16) -> Ipv4 {
    let mut p = Ipv4::udp(ip(src), ip(dst), sport, dport, &vec![0x33; len]);
    p.id = id;
    p.frag_off = 0;
    p
}

/// A datagram from the server to the client, for errors to quote.
fn quoted_probe() -> Vec<u8> {
    Ipv4::udp(ip("10.60.1.20"), ip("10.60.1.10"), 5201, 5000, b"hello").bytes()
}

#[test]
fn group_rules_match_members_not_their_addresses() {
    with_harness(Topology::from_yaml(&hostile()).unwrap(), |h| {
        let to_server = |src: &str| Ipv4::udp(ip(src), ip("10.60.1.20"), 5000, 5201, b"x");
        case(h, "the client, a member of the group the server lets in", "cl", &to_server("10.60.1.10"), To("sv"))?;
        // A NAT instance (source/destination check off) may send any source, but a group rule
        // matches the group's members, not a member's address on someone else's packet.
        case(h, "the relay with the client's address", "relay", &to_server("10.60.1.10"), Drop(DropReason::SgIngress))?;
        case(h, "the relay with another member's address", "relay", &to_server("10.60.1.30"), Drop(DropReason::SgIngress))?;
        let tcp = Ipv4::tcp(ip("10.60.1.10"), ip("10.60.1.20"), 40000, 8080, TCP_SYN);
        case(h, "a TCP SYN from the relay with the client's address", "relay", &tcp, Drop(DropReason::SgIngress))?;
        case(h, "the same SYN from the client", "cl", &tcp, To("sv"))?;
        // The intra-group rule is a group rule too: ev and cl are in `client`, which drops
        // between members; the relay with ev's address is no member, so the default decides.
        case(
            h,
            "cl to ev (intra-group drop)",
            "cl",
            &Ipv4::udp(ip("10.60.1.10"), ip("10.60.1.30"), 1, 2, b"x"),
            Drop(DropReason::SgIngress),
        )?;
        // A peer VPC takes the sender VPC's own addresses only: peering is no transit.
        let to_peer = |src: &str| Ipv4::udp(ip(src), ip("10.62.1.10"), 5000, 53, b"x");
        case(h, "the client to the peer VPC", "cl", &to_peer("10.60.1.10"), To("pe"))?;
        case(h, "the relay with its own address to the peer VPC", "relay", &to_peer("10.60.1.50"), To("pe"))?;
        case(h, "the relay with another VPC-internal address", "relay", &to_peer("10.60.7.7"), To("pe"))?;
        case(h, "the relay forwarding a foreign source to the peer", "relay", &to_peer("192.0.2.1"), Drop(DropReason::VpcForeignSource))?;
        case(
            h,
            "the relay forwarding a foreign source inside its VPC",
            "relay",
            &Ipv4::udp(ip("192.0.2.1"), ip("10.60.1.10"), 1, 2, b"x"),
            Drop(DropReason::SgIngress),
        )?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_guest_with_many_datagrams_in_flight_evicts_only_its_own() {
    with_harness(Topology::from_yaml(&hostile()).unwrap(), |h| {
        let cl = packet::fragments(&udp("10.60.1.10", "10.60.1.20", 5000, 5201, 3000, 7), 1480);
        case(h, "the client's first fragment", "cl", &cl[0], To("sv"))?;
        // ev floods first fragments of 200 datagrams (to an allowed port of the server).
        for id in 0..200u16 {
            let p = packet::fragments(&udp("10.60.1.30", "10.60.1.20", 6000, 5201, 3000, 1000 + id), 1480);
            case(h, &format!("ev's first fragment {id}"), "ev", &p[0], To("sv"))?;
        }
        case(h, "the client's second fragment", "cl", &cl[1], To("sv"))?;
        case(h, "the client's last fragment", "cl", &cl[2], To("sv"))?;
        // ev's oldest datagrams lost their entries to its newer ones.
        let first = packet::fragments(&udp("10.60.1.30", "10.60.1.20", 6000, 5201, 3000, 1000), 1480);
        case(h, "ev's oldest datagram, continued", "ev", &first[1], Drop(DropReason::FragNoFirst))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn fragments_follow_their_first_fragment() {
    with_harness(Topology::from_yaml(&hostile()).unwrap(), |h| {
        // A SYN cut in three, to the port the server's drop rule covers: every piece dropped by it.
        let pieces = packet::fragments(&syn("10.60.1.10", "10.60.1.20", 40000, 22, 40, 101), 24);
        for (i, p) in pieces.iter().enumerate() {
            case(h, &format!("SYN to port 22, fragment {i}"), "cl", p, Drop(DropReason::SgIngress))?;
        }
        // By the sender's egress drop rule too.
        for (i, p) in packet::fragments(&syn("10.60.1.10", "10.60.1.20", 40000, 2222, 40, 102), 24).iter().enumerate() {
            case(h, &format!("SYN to port 2222, fragment {i}"), "cl", p, Drop(DropReason::SgEgress))?;
        }
        // Allowed UDP, in order, and with the last fragment before the middle one.
        for (i, p) in packet::fragments(&udp("10.60.1.10", "10.60.1.20", 5000, 5201, 4000, 103), 1480).iter().enumerate() {
            case(h, &format!("UDP 5201 fragment {i}"), "cl", p, To("sv"))?;
        }
        let pieces = packet::fragments(&udp("10.60.1.10", "10.60.1.20", 5000, 5201, 4000, 104), 1480);
        for i in [0, 2, 1] {
            case(h, &format!("UDP 5201 out of order, fragment {i}"), "cl", &pieces[i], To("sv"))?;
        }
        // The reply (from the allowed port) comes back as the connection's, in fragments too.
        for (i, p) in packet::fragments(&udp("10.60.1.20", "10.60.1.10", 5201, 5000, 3000, 105), 1480).iter().enumerate() {
            case(h, &format!("UDP reply fragment {i}"), "sv", p, To("cl"))?;
        }
        // A big ping and its reply.
        let mut ping = Ipv4::new(ip("10.60.1.10"), ip("10.60.1.20"), packet::PROTO_ICMP, packet::icmp_echo(8, 9, 1, &[1; 3000]));
        ping.frag_off = 0;
        ping.id = 106;
        for p in packet::fragments(&ping, 1480) {
            case(h, "big ping", "cl", &p, To("sv"))?;
        }
        let mut pong = Ipv4::new(ip("10.60.1.20"), ip("10.60.1.10"), packet::PROTO_ICMP, packet::icmp_echo(0, 9, 1, &[1; 3000]));
        pong.frag_off = 0;
        for p in packet::fragments(&pong, 1480) {
            case(h, "its reply", "sv", &p, To("cl"))?;
        }
        // RFC 1858 and overlaps.
        let orphan = {
            let mut p = udp("10.60.1.10", "10.60.1.20", 5000, 5201, 100, 107);
            p.frag_off = 0x0010;
            p
        };
        case(h, "a later fragment whose first was never seen", "cl", &orphan, Drop(DropReason::FragNoFirst))?;
        let tiny = {
            let mut p = syn("10.60.1.10", "10.60.1.20", 40001, 80, 0, 108);
            p.payload.truncate(16);
            p.frag_off = 0x2000;
            p
        };
        case(h, "a first fragment without the whole TCP header", "cl", &tiny, Drop(DropReason::FragTiny))?;
        let tiny_udp = {
            let mut p = udp("10.60.1.10", "10.60.1.20", 5000, 5201, 0, 109);
            p.payload.truncate(4);
            p.frag_off = 0x2000;
            p
        };
        case(h, "a first fragment without the whole UDP header", "cl", &tiny_udp, Drop(DropReason::FragTiny))?;
        let one = {
            let mut p = syn("10.60.1.10", "10.60.1.20", 40001, 80, 0, 110);
            p.frag_off = 0x0001;
            p
        };
        case(h, "a fragment at offset 1", "cl", &one, Drop(DropReason::FragOffsetOne))?;
        let first = packet::fragments(&syn("10.60.1.10", "10.60.1.20", 40002, 80, 40, 111), 24);
        case(h, "an honest first fragment", "cl", &first[0], To("sv"))?;
        let over = {
            let mut p = first[1].clone();
            p.frag_off = 0x2002;
            p
        };
        case(h, "a fragment over its TCP header", "cl", &over, Drop(DropReason::FragOverlap))?;
        let again = {
            let mut p = first[0].clone();
            p.payload[2..4].copy_from_slice(&22u16.to_be_bytes());
            p
        };
        case(h, "a second first fragment, to another port", "cl", &again, Drop(DropReason::FragOverlap))?;
        case(h, "the honest rest", "cl", &first[1], To("sv"))?;
        // An ICMP error never comes in fragments.
        let quoted = Ipv4::udp(ip("10.60.1.20"), ip("10.60.1.10"), 5201, 5000, b"x").bytes();
        let mut error = Ipv4::new(ip("10.60.1.10"), ip("10.60.1.20"), packet::PROTO_ICMP, packet::icmp_error(3, 3, 0, &quoted));
        error.frag_off = 0x2000;
        case(h, "a fragmented ICMP error", "cl", &error, Drop(DropReason::IcmpInvalid))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn icmp_is_no_reply_and_no_related_error_unless_it_is_one() {
    with_harness(Topology::from_yaml(&hostile()).unwrap(), |h| {
        let echo =
            |src: &str, dst: &str, kind, id| Ipv4::new(ip(src), ip(dst), packet::PROTO_ICMP, packet::icmp_echo(kind, id, 1, b"abcdefgh"));
        case(h, "the client pings with id 777", "cl", &echo("10.60.1.10", "10.60.1.20", 8, 777), To("sv"))?;
        case(h, "the reply", "sv", &echo("10.60.1.20", "10.60.1.10", 0, 777), To("cl"))?;
        case(h, "the server's own request with id 777", "sv", &echo("10.60.1.20", "10.60.1.10", 8, 777), Drop(DropReason::SgIngress))?;
        case(h, "the client pings with id 0", "cl", &echo("10.60.1.10", "10.60.1.20", 8, 0), To("sv"))?;
        case(h, "the server's request with id 0", "sv", &echo("10.60.1.20", "10.60.1.10", 8, 0), Drop(DropReason::SgIngress))?;
        // Identifiers that look like a query's tag in the other half of the ports.
        for id in [0x100, 0x108, 0x10d, 0x200, 0x208, 0x0801] {
            case(h, &format!("the client pings with id {id:#x}"), "cl", &echo("10.60.1.10", "10.60.1.20", 8, id), To("sv"))?;
            case(
                h,
                &format!("the server's request with id {id:#x}"),
                "sv",
                &echo("10.60.1.20", "10.60.1.10", 8, id),
                Drop(DropReason::SgIngress),
            )?;
            case(h, &format!("the reply to id {id:#x}"), "sv", &echo("10.60.1.20", "10.60.1.10", 0, id), To("cl"))?;
        }
        // A guest never redirects or quenches another.
        let redirect = Ipv4::new(
            ip("10.60.1.10"),
            ip("10.60.1.20"),
            packet::PROTO_ICMP,
            packet::icmp_error(5, 1, u32::from_be_bytes([10, 60, 1, 10]), &quoted_probe()),
        );
        case(h, "a redirect", "cl", &redirect, Drop(DropReason::IcmpInvalid))?;
        let quench = Ipv4::new(ip("10.60.1.10"), ip("10.60.1.20"), packet::PROTO_ICMP, packet::icmp_error(4, 0, 0, &quoted_probe()));
        case(h, "a source quench", "cl", &quench, Drop(DropReason::IcmpInvalid))?;
        let timestamp = Ipv4::new(ip("10.60.1.20"), ip("10.60.1.10"), packet::PROTO_ICMP, vec![13, 0, 0, 0, 0, 0, 0, 1]);
        case(h, "a timestamp request", "sv", &timestamp, Drop(DropReason::SgIngress))?;
        case(h, "an echo reply nobody asked for", "sv", &echo("10.60.1.20", "10.60.1.10", 0, 31), Drop(DropReason::SgIngress))?;
        let garbage = Ipv4::new(ip("10.60.1.20"), ip("10.60.1.10"), packet::PROTO_ICMP, packet::icmp_echo(3, 0, 0, b"quoted.."));
        case(h, "an error with an unreadable quote", "sv", &garbage, Drop(DropReason::IcmpInvalid))?;
        // A live connection of the client, and errors about it.
        case(h, "the client's UDP to 5201", "cl", &Ipv4::udp(ip("10.60.1.10"), ip("10.60.1.20"), 5000, 5201, b"hello"), To("sv"))?;
        let quoted = Ipv4::udp(ip("10.60.1.10"), ip("10.60.1.20"), 5000, 5201, b"hello").bytes();
        let unreachable =
            |from: &str, quote: &[u8]| Ipv4::new(ip(from), ip("10.60.1.10"), packet::PROTO_ICMP, packet::icmp_error(3, 3, 0, quote));
        case(h, "a third guest's error about it", "ev", &unreachable("10.60.1.30", &quoted), Drop(DropReason::SgIngress))?;
        case(h, "the other side's error about it", "sv", &unreachable("10.60.1.20", &quoted), To("cl"))?;
        let mut padded = packet::icmp_error(3, 3, 0, &quoted);
        padded.extend(std::iter::repeat_n(0xaa, 880));
        case(
            h,
            "with 880 bytes more",
            "sv",
            &Ipv4::new(ip("10.60.1.20"), ip("10.60.1.10"), packet::PROTO_ICMP, padded),
            Drop(DropReason::IcmpInvalid),
        )?;
        let mut lying = quoted.clone();
        lying[2..4].copy_from_slice(&20u16.to_be_bytes());
        case(h, "a quote longer than its datagram", "sv", &unreachable("10.60.1.20", &lying), Drop(DropReason::IcmpInvalid))?;
        let about_error = Ipv4::new(ip("10.60.1.10"), ip("10.60.1.20"), packet::PROTO_ICMP, packet::icmp_error(11, 0, 0, &quoted)).bytes();
        case(h, "an error about an error", "sv", &unreachable("10.60.1.20", &about_error), Drop(DropReason::IcmpInvalid))?;
        let about_other = Ipv4::udp(ip("10.60.1.10"), ip("10.60.1.20"), 5001, 5201, b"hello").bytes();
        case(h, "an error about no connection", "sv", &unreachable("10.60.1.20", &about_other), Drop(DropReason::SgIngress))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn expiring_probes_and_big_frames_are_answered_alike() {
    with_harness(Topology::from_yaml(&hostile()).unwrap(), |h| {
        let probe = |dst: &str, port| Ipv4::udp(ip("10.60.1.10"), ip(dst), 33434, port, b"probe").ttl(1);
        case(h, "TTL 1 to an allowed port", "cl", &probe("10.60.1.20", 5201), Back(11))?;
        case(h, "TTL 1 to a port the receiver drops", "cl", &probe("10.60.1.20", 22), Back(11))?;
        case(h, "TTL 1 to an address nobody has", "cl", &probe("10.60.1.99", 80), Back(11))?;
        case(h, "TTL 1 into the host stack", "cl", &probe("100.64.0.1", 80), Host)?;
        // A connection's cached route does not skip the check.
        case(h, "a connection", "cl", &Ipv4::udp(ip("10.60.1.10"), ip("10.60.1.20"), 33434, 5201, b"x"), To("sv"))?;
        case(h, "TTL 1 on it", "cl", &probe("10.60.1.20", 5201), Back(11))?;
        // Over the receiver's MTU (1400).
        let mut big = Ipv4::udp(ip("10.60.1.10"), ip("10.60.1.40"), 5000, 5201, &[1u8; 1472]);
        big.frag_off = 0x4000;
        let out = case(h, "1500 bytes with DF", "cl", &big, Back(3))?;
        anyhow::ensure!(out.frame[35] == 4 && u16::from_be_bytes([out.frame[40], out.frame[41]]) == 1400, "fragmentation needed, MTU 1400");
        big.frag_off = 0;
        case(h, "1500 bytes without DF", "cl", &big, Drop(DropReason::TooBig))?;
        let fits = Ipv4::udp(ip("10.60.1.10"), ip("10.60.1.40"), 5000, 5201, &[1u8; 1372]);
        case(h, "1400 bytes", "cl", &fits, To("small"))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn connection_limits_refuse_and_never_evict() {
    with_harness(Topology::from_yaml(&hostile()).unwrap(), |h| {
        let flow = |from: &str, sport| Ipv4::udp(ip(from), ip("10.61.1.20"), sport, 9, b"x");
        // f1 may hold 3 entries: 3 connections, the 4th refused at f1.
        for sport in 1..=3 {
            case(h, "f1 within its limit", "f1", &flow("10.61.1.10", sport), To("tg"))?;
        }
        let out = case(h, "f1 beyond its limit", "f1", &flow("10.61.1.10", 4), Drop(DropReason::ConntrackLimit))?;
        anyhow::ensure!(out.refused_port == Some(h.port("f1")));
        case(h, "f1's first connection still flows", "f1", &flow("10.61.1.10", 1), To("tg"))?;
        // tg may hold 4: one more connection (from f2), then tg refuses.
        case(h, "f2 to tg", "f2", &flow("10.61.1.11", 1), To("tg"))?;
        let out = case(h, "f2 to tg, beyond tg's limit", "f2", &flow("10.61.1.11", 2), Drop(DropReason::ConntrackLimit))?;
        anyhow::ensure!(out.refused_port == Some(h.port("tg")));
        // Replies on established connections need no new entry.
        case(h, "tg answers f1", "tg", &Ipv4::udp(ip("10.61.1.20"), ip("10.61.1.10"), 9, 2, b"y"), To("f1"))?;
        // A side given its room back takes new connections again (tg keeps its own entries).
        h.forget_port(h.port("f1"))?;
        let out = case(h, "f1 to tg after f1's entries went", "f1", &flow("10.61.1.10", 5), Drop(DropReason::ConntrackLimit))?;
        anyhow::ensure!(out.refused_port == Some(h.port("tg")), "refused at tg, which is still full");
        case(h, "f1 to f2", "f1", &Ipv4::udp(ip("10.61.1.10"), ip("10.61.1.11"), 5, 9, b"x"), To("f2"))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_full_table_refuses_new_connections() {
    let limits = TEST_LIMITS.with(Size::Conntrack, 8);
    with_harness_sized(Topology::from_yaml(&hostile()).unwrap(), &[] as &[&str], limits, |h| {
        let flow = |sport| Ipv4::udp(ip("10.60.1.10"), ip("10.60.1.20"), sport, 5201, b"x");
        for sport in 1..=4 {
            case(h, "a connection (two entries)", "cl", &flow(sport), To("sv"))?;
        }
        case(h, "with the table full", "cl", &flow(5), Drop(DropReason::ConntrackFull))?;
        case(h, "an established one", "cl", &flow(2), To("sv"))?;
        case(h, "its reply", "sv", &Ipv4::udp(ip("10.60.1.20"), ip("10.60.1.10"), 5201, 3, b"y"), To("cl"))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_revoked_rule_holds_whatever_happens_to_the_table() {
    use vpc::model::{normalize::normalize, spec::TopologySpec, topology::Quotas};
    let doc = normalize(&TopologySpec::default(), TopologySpec::from_yaml(&hostile()).unwrap());
    let topology = |doc: &TopologySpec| Topology::from_spec(doc, &Quotas::unlimited()).unwrap();
    with_harness(topology(&doc), move |h| {
        let there = |flags| Ipv4::tcp(ip("10.60.1.10"), ip("10.60.1.20"), 40000, 8080, flags);
        let back = |flags| Ipv4::tcp(ip("10.60.1.20"), ip("10.60.1.10"), 8080, 40000, flags);
        case(h, "SYN", "cl", &there(TCP_SYN), To("sv"))?;
        case(h, "SYN-ACK", "sv", &back(TCP_SYN | TCP_ACK), To("cl"))?;
        case(h, "ACK", "cl", &there(TCP_ACK), To("sv"))?;
        // Revoke the server's rule for TCP from the client group.
        let mut revoked = doc.clone();
        revoked.vpcs[0]
            .security_groups
            .iter_mut()
            .find(|g| g.name == "server")
            .unwrap()
            .rules
            .retain(|r| r.protocol != "tcp" || r.policy.as_deref() == Some("drop"));
        let revoked = normalize(&doc, revoked);
        h.apply(topology(&revoked))?;
        case(h, "the client's data after the revoke", "cl", &there(TCP_ACK), Drop(DropReason::SgIngress))?;
        case(h, "the server's data after the revoke", "sv", &back(TCP_ACK), Drop(DropReason::SgEgress))?;
        // The server's side of the connection is lost: its next packet is a new connection,
        // which the client's rules judge (and refuse).
        h.forget_port(h.port("sv"))?;
        case(h, "the server's data with its side lost", "sv", &back(TCP_ACK), Drop(DropReason::SgIngress))?;
        case(h, "the client's data", "cl", &there(TCP_ACK), Drop(DropReason::SgIngress))?;
        // Every connection lost.
        h.reset_conntrack();
        case(h, "the client's data with the table empty", "cl", &there(TCP_ACK), Drop(DropReason::SgIngress))?;
        case(h, "the server's data with the table empty", "sv", &back(TCP_ACK), Drop(DropReason::SgIngress))?;
        Ok(())
    })
    .unwrap();
}
