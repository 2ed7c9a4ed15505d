//! A hostile guest on real traffic: crafted frames sent from inside a lab namespace (AF_PACKET,
//! built by the project's packet builder) and what really arrives at the other guests
//! (captured there). Fragments follow their first fragment, connection limits keep one guest
//! from hurting another, a revoked rule stays in force whatever happens to the connection table,
//! ICMP cannot be forged into a reply or a related error, TTL probes do not map hosts, VLAN tags
//! are dropped however they travel, and frames over a receiver's MTU are answered or counted.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;
use vpc::{
    netns,
    packet::{self, Ipv4, TCP_ACK, TCP_SYN},
    tools::lab::probe::{self, Capture, Whoami},
};
use vpc_tests::TestLab;

/// What the capture saw of an IPv4 frame.
#[derive(Debug)]
struct Seen {
    proto: u8,
    src: Ipv4Addr,
    id: u16,
    ttl: u8,
    /// The transport bytes (or the fragment's payload).
    l4: Vec<u8>,
}

fn ipv4(frame: &[u8]) -> Option<Seen> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let header = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    Some(Seen {
        proto: ip[9],
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        id: u16::from_be_bytes([ip[4], ip[5]]),
        ttl: ip[8],
        l4: ip.get(header..total)?.to_vec(),
    })
}

fn seen(frames: &[Vec<u8>]) -> Vec<Seen> {
    frames.iter().filter_map(|f| ipv4(f)).collect()
}

/// Send `packets` as frames of ENI `eni`: its own MAC, to its VSwitch gateway.
fn send(lab: &TestLab, eni: &str, packets: &[Ipv4]) {
    let t = lab.topology();
    let (_, vsw, e) = t.eni(eni).unwrap();
    let frames = packets.iter().map(|p| p.frame(vsw.gateway_mac, e.mac)).collect();
    probe::send_frames(&lab.ns(eni), "eth0", frames).unwrap();
}

fn event(lab: &TestLab, name: &str) -> u64 {
    lab.stats().events.iter().find(|e| e.event == name).map(|e| e.count).unwrap_or(0)
}

/// A UDP socket bound in a lab namespace.
fn udp_in(lab: &TestLab, who: &str, port: u16) -> UdpSocket {
    let sock = netns::in_netns(&netns::path(&lab.ns(who)), move || Ok(UdpSocket::bind(("0.0.0.0", port))?)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    sock
}

/// A TCP SYN from `src:sport` to `dst:dport` carrying `data` (so it can be cut into fragments).
fn syn(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: usize, id: u16) -> Ipv4 {
    let mut segment = packet::tcp(sport, dport, TCP_SYN);
    segment.extend(std::iter::repeat_n(0x55, data));
    let mut p = Ipv4::new(src, dst, packet::PROTO_TCP, segment).checksummed();
    p.id = id;
    p.frag_off = 0;
    p
}

/// Run `send` while capturing at `at`'s interface; what arrived there.
fn arriving(lab: &TestLab, at: &str, send: impl FnOnce()) -> Vec<Seen> {
    let capture = Capture::start(&lab.ns(at), "eth0").unwrap();
    send();
    seen(&capture.stop())
}

#[test]
fn fragments_follow_their_first_fragment() {
    let lab = TestLab::up("h1", &vpc_tests::hostile(""));
    let (cl, sv) = (lab.ip("cl"), lab.ip("sv"));

    // A SYN cut into fragments, to the port the server's drop rule covers (an accept rule for
    // every TCP port from the client's group sits below it): nothing of it arrives.
    let before = lab.drops("sg_ingress");
    let pieces = packet::fragments(&syn(cl, sv, 40000, 22, 40, 101), 24);
    assert_eq!(pieces.len(), 3);
    let got = arriving(&lab, "sv", || send(&lab, "cl", &pieces));
    assert!(
        !got.iter().any(|s| s.proto == packet::PROTO_TCP && s.id == 101),
        "a fragment of the SYN to port 22 reached the server: {got:?}"
    );
    assert_eq!(lab.drops("sg_ingress") - before, 3, "every fragment is dropped by the rule that drops its first fragment");
    // The same through the sender's egress drop rule (port 2222).
    let before = lab.drops("sg_egress");
    let pieces = packet::fragments(&syn(cl, sv, 40000, 2222, 40, 102), 24);
    let got = arriving(&lab, "sv", || send(&lab, "cl", &pieces));
    assert!(!got.iter().any(|s| s.proto == packet::PROTO_TCP && s.id == 102), "{got:?}");
    assert_eq!(lab.drops("sg_egress") - before, 3);

    // Allowed fragmented UDP: the client kernel cuts 4,000-byte datagrams into three fragments;
    // every datagram arrives whole.
    let tracked = event(&lab, "fragments_tracked");
    let server = udp_in(&lab, "sv", 5201);
    let client = udp_in(&lab, "cl", 5000);
    for i in 0..20u8 {
        let payload = vec![i; 4000];
        client.send_to(&payload, (sv, 5201)).unwrap();
        let mut buf = [0u8; 8192];
        let (n, from) = server.recv_from(&mut buf).unwrap_or_else(|e| panic!("datagram {i} lost: {e}"));
        assert_eq!((n, from), (4000, (cl, 5000).into()));
        assert_eq!(&buf[..n], &payload[..], "datagram {i} arrived intact");
    }
    assert!(event(&lab, "fragments_tracked") - tracked >= 20);

    // Allowed fragmented TCP: a SYN carrying 2,000 bytes to port 80, in two fragments, is
    // reassembled by the server, whose SYN-ACK comes back as the connection's reply.
    let _web = Whoami::start(&lab.ns("sv"), "sv", 80).unwrap();
    let pieces = packet::fragments(&syn(cl, sv, 40001, 80, 2000, 103), 1480);
    assert_eq!(pieces.len(), 2);
    let mut at_server = Vec::new();
    let back = arriving(&lab, "cl", || at_server = arriving(&lab, "sv", || send(&lab, "cl", &pieces)));
    assert_eq!(at_server.iter().filter(|s| s.id == 103).count(), 2, "both fragments reached the server: {at_server:?}");
    let syn_ack = back.iter().find(|s| s.proto == packet::PROTO_TCP && s.src == sv && s.l4.get(13) == Some(&(TCP_SYN | TCP_ACK)));
    assert!(syn_ack.is_some_and(|s| s.l4[0..4] == [0, 80, 0x9c, 0x41]), "the server answered the reassembled SYN: {back:?}");

    // RFC 1858 and overlaps, each with its own counter.
    let counts = |lab: &TestLab| ["frag_tiny", "frag_offset_one", "frag_overlap", "frag_no_first"].map(|r| lab.drops(r));
    let before = counts(&lab);
    let mut tiny = syn(cl, sv, 40002, 80, 0, 104);
    tiny.payload.truncate(16);
    tiny.frag_off = 0x2000;
    let mut offset_one = syn(cl, sv, 40002, 80, 0, 105);
    offset_one.frag_off = 0x0001;
    let first = packet::fragments(&syn(cl, sv, 40003, 80, 40, 106), 24);
    let mut overlapping = first[1].clone();
    overlapping.frag_off = 0x2002; // 16 bytes in: over the first fragment's TCP header
    let mut orphan = syn(cl, sv, 40004, 80, 0, 107);
    orphan.frag_off = 0x0008;
    let got = arriving(&lab, "sv", || send(&lab, "cl", &[tiny, offset_one, first[0].clone(), overlapping, orphan]));
    let after = counts(&lab);
    assert_eq!([after[0] - before[0], after[1] - before[1], after[2] - before[2], after[3] - before[3]], [1, 1, 1, 1]);
    let ids: Vec<u16> = got.iter().filter(|s| s.proto == packet::PROTO_TCP).map(|s| s.id).collect();
    assert_eq!(ids, vec![106], "only the honest first fragment arrived: {got:?}");
}

const TENANTS: &str = "
vpcs:
  - name: tenant-a
    cidr: 10.61.0.0/16
    conntrack_limit: 1000
    vswitches: [{name: sw, cidr: 10.61.1.0/24, zone: a}]
    enis:
      - {name: flooder, vswitch: sw, ip: 10.61.1.10}
      - {name: target, vswitch: sw, ip: 10.61.1.20}
  - name: tenant-b
    cidr: 10.62.0.0/16
    vswitches: [{name: sw, cidr: 10.62.1.0/24, zone: a}]
    enis:
      - {name: bcl, vswitch: sw, ip: 10.62.1.10}
      - {name: bsv, vswitch: sw, ip: 10.62.1.20}
";

/// A TCP echo server in `ns` on `port`: every connection gets its bytes back.
fn echo_server(ns: &str, port: u16) {
    let listener = netns::in_netns(&netns::path(ns), move || Ok(TcpListener::bind(("0.0.0.0", port))?)).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

#[test]
fn a_flood_from_one_guest_hurts_nobody_else() {
    const FLOWS: u16 = 30_000;
    let mut opts = vpc_tests::options("h2");
    // A table a quarter of the flood: without limits it would be full in a moment.
    opts.limits[vpc_common::maps::Size::Conntrack] = 8192;
    let lab = TestLab::up_with(opts, TENANTS);
    let (flooder, target, bsv) = (lab.ip("flooder"), lab.ip("target"), lab.ip("bsv"));
    // Another tenant's slow request/response stream, established before the flood.
    echo_server(&lab.ns("bsv"), 7000);
    let mut stream =
        netns::in_netns(&netns::path(&lab.ns("bcl")), move || Ok(TcpStream::connect_timeout(&(bsv, 7000).into(), Duration::from_secs(2))?))
            .unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (failures, rounds, slowest) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let talker = {
        let (stop, failures, rounds, slowest) = (stop.clone(), failures.clone(), rounds.clone(), slowest.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let mut back = [0u8; 4];
                if stream.write_all(b"ping").is_err() || stream.read_exact(&mut back).is_err() || &back != b"ping" {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                slowest.fetch_max(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                rounds.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    // The flood: a new UDP connection per frame from the flooder to its neighbour.
    let limit_drops = lab.drops("conntrack_limit");
    let packets: Vec<Ipv4> = (0..FLOWS).map(|i| Ipv4::udp(flooder, target, 10_000 + i, 9, b"x")).collect();
    for chunk in packets.chunks(2000) {
        send(&lab, "flooder", chunk);
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    talker.join().unwrap();
    let stats = lab.stats();
    let eni = |name: &str| stats.enis.iter().find(|e| e.eni == name).unwrap().clone();
    let (f, t) = (eni("flooder"), eni("target"));
    eprintln!(
        "flooder {}/{} refused {}; target {}/{}; {:?}",
        f.connections, f.connection_limit, f.conntrack_refused, t.connections, t.connection_limit, stats.conntrack
    );
    assert_eq!((f.connections, f.connection_limit), (1000, 1000), "the flooder holds exactly its limit");
    assert_eq!(t.connections, 1000, "the other side of each of its connections");
    assert_eq!(f.conntrack_refused, u64::from(FLOWS) - 1000, "every connection beyond the limit is refused and counted at the flooder");
    assert_eq!(t.conntrack_refused, 0);
    assert_eq!(lab.drops("conntrack_limit") - limit_drops, u64::from(FLOWS) - 1000);
    assert_eq!(lab.drops("conntrack_full"), 0, "the table never filled");
    assert!(stats.conntrack.entries <= stats.conntrack.capacity / 2, "{:?}", stats.conntrack);
    // The other tenant did not notice.
    assert!(rounds.load(Ordering::Relaxed) >= 10, "the stream kept talking");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no request or reply of the other tenant was lost");
    assert!(slowest.load(Ordering::Relaxed) < 500, "slowest round trip {} ms", slowest.load(Ordering::Relaxed));
    // And it can still open new connections.
    let fresh =
        netns::in_netns(&netns::path(&lab.ns("bcl")), move || Ok(TcpStream::connect_timeout(&(bsv, 7000).into(), Duration::from_secs(2))?));
    assert!(fresh.is_ok(), "a new connection in the other tenant: {fresh:?}");
    // `vpc stats` shows the refusals and the table.
    let out = lab.cli().arg("stats").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("conntrack_limit") && text.contains("conntrack: ") && text.contains("1000/1000"), "{text}");
}

const PAIR: &str = "
vpcs:
  - name: prod
    cidr: 10.63.0.0/16
    conntrack_limit: 2000
    vswitches: [{name: sw, cidr: 10.63.1.0/24, zone: a}]
    security_groups:
      - {name: client, intra_group: drop}
      - name: relay
      - name: server
        rules:
          - {direction: ingress, protocol: tcp, ports: 7000/7000, peer: {group: client}}
          - {direction: ingress, protocol: udp, ports: 7001/7001, peer: {group: client}}
    enis:
      - {name: cl, vswitch: sw, ip: 10.63.1.10, security_groups: [client]}
      - {name: sv, vswitch: sw, ip: 10.63.1.20, security_groups: [server]}
      - {name: ev, vswitch: sw, ip: 10.63.1.30, security_groups: [client]}
";

/// Delete the connection-table entries of `port` (all of them with `None`) straight from the
/// pinned map, as if the table had lost them.
fn forget_connections(lab: &TestLab, port: Option<u32>) -> usize {
    let pins = vpc::dataplane::PinDirs::new(&lab.opts.bpffs);
    let map = vpc::dataplane::stats::open(&pins, vpc_common::maps::CONNTRACK).unwrap();
    let mut table: aya::maps::HashMap<_, vpc_common::CtKey, vpc_common::CtEntry> = aya::maps::HashMap::try_from(map).unwrap();
    let keys: Vec<vpc_common::CtKey> = table.keys().filter_map(Result::ok).filter(|k| port.is_none_or(|p| k.port == p)).collect();
    keys.iter().filter(|k| table.remove(k).is_ok()).count()
}

#[test]
fn a_revoked_rule_stays_in_force_whatever_happens_to_the_table() {
    let lab = TestLab::up("h3", PAIR);
    let (sv, ev_ip) = (lab.ip("sv"), lab.ip("ev"));
    // A stream both ways: the client writes, the server writes back.
    let listener = netns::in_netns(&netns::path(&lab.ns("sv")), || Ok(TcpListener::bind(("0.0.0.0", 7000))?)).unwrap();
    let to_server = Arc::new(AtomicU64::new(0));
    let (stop, counted) = (Arc::new(AtomicBool::new(false)), to_server.clone());
    let flag = stop.clone();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            conn.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut buf = [0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                if let Ok(n) = conn.read(&mut buf) {
                    counted.fetch_add(n as u64, Ordering::Relaxed);
                }
                let _ = conn.write_all(&[9u8; 50]);
            }
        }
    });
    let mut client =
        netns::in_netns(&netns::path(&lab.ns("cl")), move || Ok(TcpStream::connect_timeout(&(sv, 7000).into(), Duration::from_secs(2))?))
            .unwrap();
    client.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let to_client = Arc::new(AtomicU64::new(0));
    let (flag, counted) = (stop.clone(), to_client.clone());
    let talker = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !flag.load(Ordering::Relaxed) {
            let _ = client.write_all(&[7u8; 50]);
            if let Ok(n) = client.read(&mut buf) {
                counted.fetch_add(n as u64, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    std::thread::sleep(Duration::from_millis(400));
    assert!(to_server.load(Ordering::Relaxed) > 0 && to_client.load(Ordering::Relaxed) > 0, "the stream flows both ways");
    // Revoke the rule that let the connection in.
    let groups = lab.call("DescribeSecurityGroups", json!({"SecurityGroupName": "server"}));
    let sg = groups["SecurityGroups"][0]["SecurityGroupId"].as_str().unwrap().to_string();
    let attr = lab.call("DescribeSecurityGroupAttribute", json!({"SecurityGroupId": sg}));
    let rule = attr["Permissions"].as_array().unwrap().iter().find(|r| r["PortRange"] == "7000/7000").unwrap()["SecurityGroupRuleId"]
        .as_str()
        .unwrap()
        .to_string();
    lab.call("RevokeSecurityGroup", json!({"SecurityGroupId": sg, "SecurityGroupRuleId": rule}));
    std::thread::sleep(Duration::from_millis(500));
    let cut = (to_server.load(Ordering::Relaxed), to_client.load(Ordering::Relaxed));
    // A flood from a third guest churns the table...
    let ev_frames: Vec<Ipv4> = (0..5000u16).map(|i| Ipv4::udp(ev_ip, sv, 20_000 + i, 7001, b"x")).collect();
    send(&lab, "ev", &ev_frames);
    std::thread::sleep(Duration::from_millis(300));
    // ...the server's side of the connection is lost (its next packets are judged as new, by
    // both sides' current rules)...
    let sv_port = lab.binding().ids.ports[&lab.topology().eni("sv").unwrap().2.id];
    assert!(forget_connections(&lab, Some(sv_port)) > 0);
    std::thread::sleep(Duration::from_millis(500));
    // ...and then every connection.
    assert!(forget_connections(&lab, None) > 0);
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    talker.join().unwrap();
    assert_eq!((to_server.load(Ordering::Relaxed), to_client.load(Ordering::Relaxed)), cut, "nothing moved either way after the revoke");
    assert!(lab.drops("sg_ingress") > 0);
}

#[test]
fn icmp_cannot_be_forged_into_a_reply_or_a_related_error() {
    let lab = TestLab::up("h4", &vpc_tests::hostile(""));
    let (cl, sv, ev) = (lab.ip("cl"), lab.ip("sv"), lab.ip("ev"));
    let echo = |src, dst, kind, id: u16| Ipv4::new(src, dst, packet::PROTO_ICMP, packet::icmp_echo(kind, id, 1, b"abcdefgh"));
    // The client pings the server with identifier 777 (the server's groups allow ICMP from
    // clients); the reply comes back.
    let back = arriving(&lab, "cl", || send(&lab, "cl", &[echo(cl, sv, 8, 777)]));
    assert!(back.iter().any(|s| s.src == sv && s.l4[0] == 0), "the echo reply: {back:?}");
    // The server's own echo request with the same identifier is a new connection, judged by the
    // client's rules (none accepts ICMP): it never reaches the client. Nor a timestamp request,
    // nor anything after a ping with identifier 0.
    send(&lab, "cl", &[echo(cl, sv, 8, 0)]);
    let before = lab.drops("sg_ingress");
    let timestamp = Ipv4::new(sv, cl, packet::PROTO_ICMP, vec![13, 0, 0, 0, 0, 0, 0, 1]);
    let got = arriving(&lab, "cl", || send(&lab, "sv", &[echo(sv, cl, 8, 777), echo(sv, cl, 8, 0), timestamp]));
    assert!(!got.iter().any(|s| s.proto == packet::PROTO_ICMP), "{got:?}");
    assert_eq!(lab.drops("sg_ingress") - before, 3);
    // Nor with an identifier that spells a query's tag (0x108: echo's).
    send(&lab, "cl", &[echo(cl, sv, 8, 0x108)]);
    let before = lab.drops("sg_ingress");
    let got = arriving(&lab, "cl", || send(&lab, "sv", &[echo(sv, cl, 8, 0x108)]));
    assert!(!got.iter().any(|s| s.proto == packet::PROTO_ICMP), "{got:?}");
    assert_eq!(lab.drops("sg_ingress") - before, 1);
    // A guest's redirect or source quench never reaches anyone.
    let about = Ipv4::udp(sv, cl, 5201, 5000, b"hello").bytes();
    let before = lab.drops("icmp_invalid");
    let redirect = Ipv4::new(cl, sv, packet::PROTO_ICMP, packet::icmp_error(5, 1, u32::from(cl), &about));
    let quench = Ipv4::new(cl, sv, packet::PROTO_ICMP, packet::icmp_error(4, 0, 0, &about));
    let got = arriving(&lab, "sv", || send(&lab, "cl", &[redirect, quench]));
    assert!(!got.iter().any(|s| s.proto == packet::PROTO_ICMP), "{got:?}");
    assert_eq!(lab.drops("icmp_invalid") - before, 2);
    // A live connection of the client: UDP to the server's port 5201.
    let _server = udp_in(&lab, "sv", 5201);
    let client = udp_in(&lab, "cl", 5000);
    client.send_to(b"hello", (sv, 5201)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let quoted = Ipv4::udp(cl, sv, 5000, 5201, b"hello").bytes();
    let unreachable = |from| Ipv4::new(from, cl, packet::PROTO_ICMP, packet::icmp_error(3, 3, 0, &quoted));
    // A third guest's error about that connection is not related: the client's rules judge it.
    let before = lab.drops("sg_ingress");
    let got = arriving(&lab, "cl", || send(&lab, "ev", &[unreachable(ev)]));
    assert!(!got.iter().any(|s| s.proto == packet::PROTO_ICMP), "{got:?}");
    assert_eq!(lab.drops("sg_ingress") - before, 1);
    // The same error from the connection's other side is related and passes.
    let got = arriving(&lab, "cl", || send(&lab, "sv", &[unreachable(sv)]));
    assert!(got.iter().any(|s| s.proto == packet::PROTO_ICMP && s.src == sv && s.l4[0] == 3), "{got:?}");
    // Not with 880 bytes of payload behind the quote, nor with a quote that says otherwise.
    let mut padded = packet::icmp_error(3, 3, 0, &quoted);
    padded.extend(std::iter::repeat_n(0xaa, 880));
    let mut lying = quoted.clone();
    lying[2..4].copy_from_slice(&20u16.to_be_bytes()); // the quote is longer than the datagram was
    let before = lab.drops("icmp_invalid");
    let got = arriving(&lab, "cl", || {
        send(
            &lab,
            "sv",
            &[Ipv4::new(sv, cl, packet::PROTO_ICMP, padded), Ipv4::new(sv, cl, packet::PROTO_ICMP, packet::icmp_error(3, 3, 0, &lying))],
        )
    });
    assert!(!got.iter().any(|s| s.proto == packet::PROTO_ICMP), "{got:?}");
    assert_eq!(lab.drops("icmp_invalid") - before, 2);
}

#[test]
fn a_member_address_sent_by_a_nat_instance_is_not_the_member() {
    let lab = TestLab::up("h8", &vpc_tests::hostile(""));
    let (cl, sv, relay) = (lab.ip("cl"), lab.ip("sv"), lab.ip("relay"));
    let server = udp_in(&lab, "sv", 5201);
    let mut buf = [0u8; 64];
    // The server lets UDP 5201 in from the client group. The client's datagram arrives.
    send(&lab, "cl", &[Ipv4::udp(cl, sv, 5000, 5201, b"member").checksummed()]);
    let (n, from) = server.recv_from(&mut buf).expect("the member's datagram");
    assert_eq!((&buf[..n], from), (&b"member"[..], (cl, 5000).into()));
    // The relay (source/destination check off: it may send others' addresses) with the
    // client's address: not the member, so the group rule does not let it in.
    let before = lab.drops("sg_ingress");
    send(&lab, "relay", &[Ipv4::udp(cl, sv, 5001, 5201, b"spoofed").checksummed(), Ipv4::udp(relay, sv, 5002, 5201, b"own").checksummed()]);
    assert!(server.recv_from(&mut buf).is_err(), "a datagram from the relay arrived: {:?}", &buf[..8]);
    assert_eq!(lab.drops("sg_ingress") - before, 2);
}

#[test]
fn an_expiring_probe_is_answered_whatever_is_behind_it() {
    let lab = TestLab::up("h5", &vpc_tests::hostile(""));
    let (cl, sv) = (lab.ip("cl"), lab.ip("sv"));
    let gateway: Ipv4Addr = "10.60.1.253".parse().unwrap();
    // TTL 1 to a port the server allows, to one it drops, and to an address nobody has.
    let probes: Vec<Ipv4> = [(sv, 80), (sv, 22), ("10.60.1.99".parse().unwrap(), 80)]
        .iter()
        .map(|(dst, port)| Ipv4::udp(cl, *dst, 33434, *port, b"probe").ttl(1))
        .collect();
    let got = arriving(&lab, "cl", || send(&lab, "cl", &probes));
    let answers: Vec<&Seen> = got.iter().filter(|s| s.proto == packet::PROTO_ICMP && s.src == gateway && s.l4[0] == 11).collect();
    assert_eq!(answers.len(), 3, "every probe is answered the same way: {got:?}");
}

#[test]
fn vlan_tags_are_dropped_however_they_travel() {
    let lab = TestLab::up("h6", &vpc_tests::hostile(""));
    let t = lab.topology();
    let (_, vsw, e) = t.eni("cl").unwrap();
    let ns = lab.ns("cl");
    let udp = Ipv4::udp(e.ip, lab.ip("sv"), 1000, 5201, b"tagged").bytes();
    let mut tagged = packet::ethernet(vsw.gateway_mac, e.mac, packet::ETH_P_8021Q, &[0, 100, 0x08, 0x00]);
    tagged.extend_from_slice(&udp);
    // In the frame.
    let before = lab.drops("vlan_tagged");
    probe::send_frames(&ns, "eth0", vec![tagged.clone()]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(lab.drops("vlan_tagged") - before, 1);
    // In the packet's metadata: a bridge in the guest takes the tagged frame from a port of
    // its own and sends it out of eth0 with the tag moved into the skb (tx-vlan offload), where
    // an XDP program cannot see it; the VLAN gate does.
    for cmd in [
        "ip link add x0 type veth peer name x1",
        "ip link add br0 type bridge",
        "ip link set x1 master br0",
        "ip link set eth0 master br0",
        "ip link set x0 up",
        "ip link set x1 up",
        "ip link set br0 up",
    ] {
        lab.exec("cl", &cmd.split(' ').collect::<Vec<_>>()).unwrap();
    }
    let features = lab.exec("cl", &["ethtool", "-k", "eth0"]).unwrap();
    assert!(features.contains("tx-vlan-offload: on"), "{features}");
    // What the new ports send on their own (the bridge's IGMP reports, twice a second apart)
    // has gone by: the guest has been quiet for a while.
    let mut quiet = (lab.counters("cl").0, Instant::now());
    while quiet.1.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(100));
        let now = lab.counters("cl").0;
        if now != quiet.0 {
            quiet = (now, Instant::now());
        }
    }
    let (rx_before, before) = (lab.counters("cl").0, lab.drops("vlan_tagged"));
    let got = arriving(&lab, "sv", || probe::send_frames(&ns, "x0", vec![tagged.clone(); 5]).unwrap());
    assert_eq!(lab.drops("vlan_tagged") - before, 5, "dropped and counted by the gate");
    assert_eq!(lab.counters("cl").0, rx_before, "the data path never saw them");
    assert!(!got.iter().any(|s| s.proto == packet::PROTO_UDP), "{got:?}");
}

#[test]
fn a_frame_over_the_receivers_mtu_is_answered_or_counted() {
    let lab = TestLab::up("h7", &vpc_tests::hostile(""));
    let (cl, sv) = (lab.ip("cl"), lab.ip("small"));
    let gateway: Ipv4Addr = "10.60.1.253".parse().unwrap();
    // The receiver's MTU is 1400: a 1500-byte datagram with DF gets fragmentation needed naming it.
    let mut big = Ipv4::udp(cl, sv, 5000, 5201, &[1u8; 1472]);
    big.frag_off = 0x4000;
    let got = arriving(&lab, "cl", || send(&lab, "cl", std::slice::from_ref(&big)));
    let answer = got.iter().find(|s| s.proto == packet::PROTO_ICMP && s.src == gateway).unwrap_or_else(|| panic!("{got:?}"));
    assert_eq!((answer.l4[0], answer.l4[1]), (3, 4), "fragmentation needed");
    assert_eq!(u16::from_be_bytes([answer.l4[6], answer.l4[7]]), 1400, "with the receiver's MTU");
    assert!(answer.ttl > 1);
    assert_eq!(event(&lab, "icmp_frag_needed_sent"), 1);
    // Without DF it cannot be fragmented here: dropped and counted.
    big.frag_off = 0;
    let before = lab.drops("too_big");
    let got = arriving(&lab, "small", || send(&lab, "cl", &[big]));
    assert!(!got.iter().any(|s| s.proto == packet::PROTO_UDP), "{got:?}");
    assert_eq!(lab.drops("too_big") - before, 1);
    // The guest's own path-MTU discovery learns it: 1372 bytes of ping fit, 1373 do not.
    let ping = |size: &str| lab.exec("cl", &["ping", "-c", "1", "-W", "1", "-M", "do", "-s", size, &sv.to_string()]);
    assert!(ping("1372").is_ok());
    let refused = ping("1373").unwrap_err();
    assert!(refused.contains("mtu = 1400") || refused.contains("Message too long") || refused.contains("Frag needed"), "{refused}");
}
