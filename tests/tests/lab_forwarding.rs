//! The foundation on real traffic: guests in network namespaces, XDP on the host side of their
//! veths, packets from ping, TCP sockets and raw frames. Each test has its own lab names.

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    time::Duration,
};

use vpc::{
    netns,
    packet::{self, Ipv4},
    tools::lab::probe::{self, Whoami},
};
use vpc_tests::TestLab;

const ONE_VPC: &str = "
vpcs:
  - name: prod
    cidr: 192.168.0.0/16
    vswitches:
      - {name: web, cidr: 192.168.1.0/24, zone: zone-a}
      - {name: db, cidr: 192.168.2.0/24, zone: zone-b}
    enis:
      - {name: web1, vswitch: web, ip: 192.168.1.10}
      - {name: web2, vswitch: web, ip: 192.168.1.11}
      - {name: db1, vswitch: db, ip: 192.168.2.10}
";

const PORT: u16 = 7000;
const T: Duration = Duration::from_secs(2);

#[test]
fn ping_and_tcp_within_and_across_vswitches() {
    let lab = TestLab::up("a1", ONE_VPC);
    let _servers: Vec<Whoami> = ["web1", "web2", "db1"].iter().map(|e| Whoami::start(&lab.ns(e), e, PORT).unwrap()).collect();
    for (from, to) in [("web1", "web2"), ("web2", "web1"), ("web1", "db1"), ("db1", "web2")] {
        assert!(probe::ping(&lab.ns(from), lab.ip(to), 2), "ping {from} -> {to}");
        let who = probe::whoami(&lab.ns(from), lab.ip(to), PORT, T).unwrap_or_else(|e| panic!("TCP {from} -> {to}: {e}"));
        assert_eq!(who, to, "TCP {from} -> {to} reached the right guest");
    }
    // Redirected frames were really delivered: no silent veth drops on any host side.
    for eni in ["web1", "web2", "db1"] {
        let host = lab.opts.naming.host_ifname(lab.topology().eni(eni).unwrap().2);
        let stats = std::process::Command::new("ethtool").args(["-S", &host]).output().unwrap();
        let text = String::from_utf8_lossy(&stats.stdout);
        assert!(text.contains("rx_queue_0_drops: 0"), "{host}: {text}");
    }
}

#[test]
fn vpcs_with_the_same_cidr_are_isolated() {
    let lab = TestLab::up(
        "a2",
        "
vpcs:
  - name: prod
    cidr: 192.168.0.0/16
    vswitches: [{name: web, cidr: 192.168.1.0/24, zone: a}, {name: db, cidr: 192.168.2.0/24, zone: a}]
    enis:
      - {name: p1, vswitch: web, ip: 192.168.1.10}
      - {name: p2, vswitch: db, ip: 192.168.2.10}
  - name: dev
    cidr: 192.168.0.0/16
    vswitches: [{name: web, cidr: 192.168.1.0/24, zone: a}]
    enis:
      - {name: d1, vswitch: web, ip: 192.168.1.10}
      - {name: d2, vswitch: web, ip: 192.168.1.20}
",
    );
    let _servers: Vec<Whoami> = ["p1", "p2", "d1", "d2"].iter().map(|e| Whoami::start(&lab.ns(e), e, PORT).unwrap()).collect();
    // The same address answers from the sender's own VPC only.
    assert_eq!(probe::whoami(&lab.ns("d2"), "192.168.1.10".parse().unwrap(), PORT, T).unwrap(), "d1");
    assert_eq!(probe::whoami(&lab.ns("p2"), "192.168.1.10".parse().unwrap(), PORT, T).unwrap(), "p1");
    // An address that exists only in the other VPC is not reachable.
    let no_route_before = lab.drops("no_route");
    assert!(probe::whoami(&lab.ns("d2"), "192.168.2.10".parse().unwrap(), PORT, Duration::from_millis(500)).is_err());
    assert!(!probe::ping(&lab.ns("d1"), "192.168.2.10".parse().unwrap(), 1));
    assert!(lab.drops("no_route") > no_route_before, "the attempts were dropped as no_route");
    let p2_tx = lab.counters("p2").2;
    assert!(!probe::ping(&lab.ns("d2"), "192.168.1.11".parse().unwrap(), 1));
    assert_eq!(lab.counters("p2").2, p2_tx, "nothing from dev reached prod");
}

#[test]
fn spoofed_sources_are_dropped_and_counted_exactly() {
    let lab = TestLab::up("a3", ONE_VPC);
    let t = lab.topology();
    let (_, web, web1) = t.eni("web1").unwrap();
    let (_, _, web2) = t.eni("web2").unwrap();
    let db1 = lab.ip("db1");
    let db1_tx = lab.counters("db1").2;
    let (ip_before, mac_before) = (lab.drops("spoofed_ip"), lab.drops("spoofed_mac"));
    let spoof_ip: Vec<Vec<u8>> = (0..7).map(|i| Ipv4::udp(web2.ip, db1, 1000 + i, 53, b"spoof").frame(web.gateway_mac, web1.mac)).collect();
    let spoof_mac: Vec<Vec<u8>> =
        (0..5).map(|i| Ipv4::udp(web1.ip, db1, 2000 + i, 53, b"spoof").frame(web.gateway_mac, web2.mac)).collect();
    probe::send_frames(&lab.ns("web1"), "eth0", spoof_ip).unwrap();
    probe::send_frames(&lab.ns("web1"), "eth0", spoof_mac).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(lab.drops("spoofed_ip") - ip_before, 7);
    assert_eq!(lab.drops("spoofed_mac") - mac_before, 5);
    assert_eq!(lab.counters("db1").2, db1_tx, "no spoofed frame was delivered");
    // The same frames with honest sources are delivered, one for one. A socket on db1 keeps the
    // guest from answering with ICMP, and a ping first settles ARP, so the counts are exact.
    let _sink = netns::in_netns(&netns::path(&lab.ns("db1")), || Ok(std::net::UdpSocket::bind(("0.0.0.0", 53))?)).unwrap();
    assert!(probe::ping(&lab.ns("db1"), web1.ip, 1));
    let honest: Vec<Vec<u8>> = (0..4).map(|i| Ipv4::udp(web1.ip, db1, 3000 + i, 53, b"ok").frame(web.gateway_mac, web1.mac)).collect();
    let bytes: u64 = honest.iter().map(|f| f.len() as u64).sum();
    let (rx_p, rx_b, _, _) = lab.counters("web1");
    let (_, _, tx_p, tx_b) = lab.counters("db1");
    probe::send_frames(&lab.ns("web1"), "eth0", honest).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (rx_p2, rx_b2, _, _) = lab.counters("web1");
    let (_, _, tx_p2, tx_b2) = lab.counters("db1");
    assert_eq!((rx_p2 - rx_p, rx_b2 - rx_b), (4, bytes), "web1 rx counts exactly the frames sent");
    assert_eq!((tx_p2 - tx_p, tx_b2 - tx_b), (4, bytes), "db1 tx counts exactly the frames delivered");
}

#[test]
fn ttl_one_is_answered_or_dropped_and_counted() {
    let lab = TestLab::up("a4", ONE_VPC);
    let t = lab.topology();
    let (_, web, web1) = t.eni("web1").unwrap();
    let db1 = lab.ip("db1");
    let event = |name: &str| lab.stats().events.iter().find(|e| e.event == name).map(|e| e.count).unwrap_or(0);
    let (sent_before, dropped_before, db1_tx) = (event("icmp_time_exceeded_sent"), lab.drops("ttl_exceeded"), lab.counters("db1").2);
    // Plain datagrams whose TTL runs out are answered with ICMP time exceeded (well under the
    // rate limit's burst); one with IP options gets no answer and is dropped.
    let mut frames: Vec<Vec<u8>> = (0..3).map(|_| Ipv4::udp(web1.ip, db1, 5, 6, b"x").ttl(1).frame(web.gateway_mac, web1.mac)).collect();
    let mut with_options = Ipv4::udp(web1.ip, db1, 5, 6, b"x").ttl(1);
    with_options.options = vec![1, 1, 1, 0]; // NOP NOP NOP EOL
    frames.push(with_options.frame(web.gateway_mac, web1.mac));
    probe::send_frames(&lab.ns("web1"), "eth0", frames).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(event("icmp_time_exceeded_sent") - sent_before, 3);
    assert_eq!(lab.drops("ttl_exceeded") - dropped_before, 1);
    assert_eq!(lab.counters("db1").2, db1_tx, "nothing expired reached db1");
    let ipv6 = vec![packet::ethernet(web.gateway_mac, web1.mac, packet::ETH_P_IPV6, &[0x60; 40])];
    let before = lab.drops("not_ipv4");
    probe::send_frames(&lab.ns("web1"), "eth0", ipv6).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(lab.drops("not_ipv4") - before, 1);
}

#[test]
fn reapply_with_an_added_eni_keeps_an_open_tcp_connection() {
    let mut lab = TestLab::up("a5", ONE_VPC);
    let db1 = lab.ip("db1");
    let listener = netns::in_netns(&netns::path(&lab.ns("db1")), || Ok(TcpListener::bind(("0.0.0.0", PORT))?)).unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        // Echo every 4-byte message until the client closes.
        while conn.read_exact(&mut buf).is_ok() {
            conn.write_all(&buf).unwrap();
        }
    });
    let mut client = netns::in_netns(&netns::path(&lab.ns("web1")), move || {
        let c = TcpStream::connect_timeout(&(db1, PORT).into(), T)?;
        c.set_read_timeout(Some(T))?;
        Ok(c)
    })
    .unwrap();
    let echo = |c: &mut TcpStream, msg: &[u8; 4]| {
        c.write_all(msg).unwrap();
        let mut back = [0u8; 4];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, msg);
    };
    echo(&mut client, b"one!");
    let grown = ONE_VPC.to_string() + "      - {name: web3, vswitch: web, ip: 192.168.1.12}\n";
    let applied = lab.reapply(&grown);
    let report = &applied["Report"];
    assert_eq!(applied["Changes"], serde_json::json!(["+ eni web3"]));
    assert_eq!(report["Changes"]["Enis"]["Changed"], 0, "existing ENI entries are untouched: {report}");
    assert_eq!(report["Changes"]["Routes"], serde_json::json!({"Added": 0, "Changed": 0, "Removed": 0}));
    assert_eq!(report["Links"]["Detached"], 0);
    echo(&mut client, b"two!");
    let _w = Whoami::start(&lab.ns("web3"), "web3", PORT + 1).unwrap();
    assert_eq!(probe::whoami(&lab.ns("web1"), lab.ip("web3"), PORT + 1, T).unwrap(), "web3");
    // Applying the same file again changes nothing at all.
    let again = lab.reapply(&grown);
    assert_eq!(again["Changes"], serde_json::json!([]));
    let zero = serde_json::json!({"Added": 0, "Changed": 0, "Removed": 0});
    for map in ["Enis", "Addrs", "Routes", "Ports"] {
        assert_eq!(again["Report"]["Changes"][map], zero, "{map}");
    }
    echo(&mut client, b"3ree");
    drop(client);
    server.join().unwrap();
}

#[test]
fn cloud_services_range_reaches_the_host_stack() {
    let lab = TestLab::up("a6", ONE_VPC);
    let t = lab.topology();
    let (_, web, web1) = t.eni("web1").unwrap();
    let host = lab.opts.naming.host_ifname(web1);
    // The host side of the ENI carries the gateway's MAC, so frames the guest sends to the gateway
    // are local to the host once the data path passes them up.
    let mac = vpc::dataplane::iface::mac(&host).unwrap();
    assert_eq!(mac, web.gateway_mac);
    // A service of the host in 100.64.0.0/10, with a way back to the guest.
    vpc::tools::lab::ip(&["addr", "add", "100.64.6.1/32", "dev", &host]).unwrap();
    vpc::tools::lab::ip(&["route", "add", &format!("{}/32", web1.ip), "dev", &host]).unwrap();
    let before = lab.counters("web1").0;
    assert!(probe::ping(&lab.ns("web1"), "100.64.6.1".parse().unwrap(), 3), "the host answers from 100.64.6.1");
    assert!(lab.counters("web1").0 >= before + 3, "the requests crossed the XDP program");
    // Other ENIs are not affected: the address is only reachable through the host stack.
    assert!(!probe::ping(&lab.ns("db1"), "100.64.6.2".parse().unwrap(), 1));
}
