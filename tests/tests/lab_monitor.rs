//! Live monitoring on real traffic: a refused datagram shows one drop event naming the rule, a
//! TCP connection shows opened then closed with the exact packets and bytes each way, a verdict
//! flipped by a revoked rule is reported, a flood is limited and counted exactly while another
//! guest's events still arrive, a full ring's losses are counted exactly, and `vpc monitor`'s
//! filters, `--last`, `-o json` and `--stats`.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{TcpListener, TcpStream, UdpSocket},
    os::fd::AsRawFd as _,
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use vpc::{api::client, netns, tools::lab::probe::Capture};
use vpc_tests::{DaemonLab, TestLab};

const TOPOLOGY: &str = "
vpcs:
  - name: prod
    cidr: 10.41.0.0/16
    vswitches: [{name: sw, cidr: 10.41.1.0/24, zone: a}]
    security_groups:
      - {name: client, intra_group: drop}
      - name: server
        rules:
          - {direction: ingress, protocol: tcp, ports: 7000/7000, peer: {group: client}}
          - {direction: ingress, protocol: udp, ports: 7001/7001, peer: {group: client}}
          - {direction: ingress, policy: drop, protocol: udp, ports: 7009/7009, peer: 0.0.0.0/0, priority: 1}
    enis:
      - {name: cl, vswitch: sw, ip: 10.41.1.10, security_groups: [client]}
      - {name: sv, vswitch: sw, ip: 10.41.1.20, security_groups: [server]}
      - {name: other, vswitch: sw, ip: 10.41.1.30, security_groups: [client]}
";

fn udp(ns: &str, port: u16) -> UdpSocket {
    netns::in_netns(&netns::path(ns), move || Ok(UdpSocket::bind(("0.0.0.0", port))?)).unwrap()
}

/// One page of the agent's stream.
fn page(lab: &DaemonLab, request: Value) -> (Vec<Value>, u64) {
    let (status, text) = client::request(&lab.daemon.opts.socket(), "POST", "/monitor", &request.to_string()).unwrap();
    assert_eq!(status, 200, "{text}");
    let page: Value = serde_json::from_str(&text).unwrap();
    (page["events"].as_array().unwrap().clone(), page["next"].as_u64().unwrap())
}

/// The stream's current end.
fn now(lab: &DaemonLab) -> u64 {
    page(lab, json!({"last": 0})).1
}

/// Events after `since` that `filter` keeps, waiting until `enough` says so (or `wait` passed).
fn collect(lab: &DaemonLab, since: u64, filter: Value, wait: Duration, enough: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let (mut all, mut next, start) = (Vec::new(), since, Instant::now());
    while !enough(&all) && start.elapsed() < wait {
        let (events, after) = page(lab, json!({"since": next, "wait_ms": 500, "filter": filter}));
        all.extend(events);
        next = after;
    }
    all
}

fn rule_id(lab: &DaemonLab, group: &str, port_range: &str) -> String {
    let groups = lab.call("DescribeSecurityGroups", json!({"SecurityGroupName": group}));
    let id = groups["SecurityGroups"][0]["SecurityGroupId"].clone();
    let attr = lab.call("DescribeSecurityGroupAttribute", json!({"SecurityGroupId": id}));
    let rules = attr["Permissions"].as_array().unwrap().clone();
    rules.iter().find(|r| r["PortRange"] == port_range).unwrap_or_else(|| panic!("no rule {port_range}: {rules:?}"))["SecurityGroupRuleId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Packets and IP bytes of the TCP frames from `sport` to `dport` among `frames`.
fn tcp_counts(frames: &[Vec<u8>], sport: u16, dport: u16) -> (u64, u64) {
    frames
        .iter()
        .filter(|f| f.len() >= 14 + 20 + 4 && f[12..14] == [0x08, 0x00] && f[14 + 9] == 6)
        .filter(|f| {
            let l4 = 14 + usize::from(f[14] & 0x0f) * 4;
            f.len() >= l4 + 4 && u16::from_be_bytes([f[l4], f[l4 + 1]]) == sport && u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]) == dport
        })
        .fold((0, 0), |(p, b), f| (p + 1, b + u64::from(u16::from_be_bytes([f[16], f[17]]))))
}

/// `read`'s value once it stopped moving (frames in flight have landed).
fn settled(read: impl Fn() -> u64) -> u64 {
    let mut last = read();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = read();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn sg_ingress_drops(lab: &DaemonLab) -> u64 {
    let stats = lab.call("DescribeStatistics", json!({}));
    let drops = stats["Drops"].as_array().unwrap();
    drops.iter().find(|d| d["Reason"] == "sg_ingress").map_or(0, |d| d["Packets"].as_u64().unwrap())
}

#[test]
fn a_refused_datagram_names_its_rule_and_a_tcp_connection_opens_and_closes_with_exact_counts() {
    let lab = DaemonLab::up("m1", TOPOLOGY, &[]);
    let (cl, sv) = (lab.ip("cl"), lab.ip("sv"));
    let client = udp(&lab.ns("cl"), 30001);
    let drops = json!({"eni": "cl", "types": ["drop"]});

    // A datagram an explicit drop rule refuses: one drop event, naming that rule, in a second.
    let since = now(&lab);
    client.send_to(b"refused", (sv, 7009)).unwrap();
    let (events, _) = page(&lab, json!({"since": since, "wait_ms": 1000, "filter": drops}));
    assert_eq!(events.len(), 1, "one drop event within a second: {events:?}");
    let e = &events[0];
    assert_eq!((e["type"].as_str(), e["reason"].as_str(), e["direction"].as_str()), (Some("drop"), Some("sg_ingress"), Some("ingress")));
    assert_eq!(e["rule"].as_str(), Some(rule_id(&lab, "server", "7009/7009").as_str()), "{e}");
    assert_eq!(
        (e["eni"].as_str(), e["peer_eni"].as_str(), e["vpc"].as_str(), e["vswitch"].as_str()),
        (Some("cl"), Some("sv"), Some("prod"), Some("sw"))
    );
    assert_eq!((e["proto"].as_str(), e["src"].as_str(), e["sport"].as_u64()), (Some("udp"), Some("10.41.1.10"), Some(30001)));
    assert_eq!((e["dst"].as_str(), e["dport"].as_u64()), (Some("10.41.1.20"), Some(7009)));
    // No rule accepts UDP 7010: the event says so.
    let since = now(&lab);
    client.send_to(b"unmatched", (sv, 7010)).unwrap();
    let events = collect(&lab, since, drops.clone(), Duration::from_secs(5), |e| !e.is_empty());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["rule"].as_str(), Some("no rule accepted"), "{}", events[0]);

    // A TCP connection: opened (both sides' rules, the route table), then closed with the
    // packets and bytes each way, as captured on both guests.
    let (at_client, at_server) = (Capture::start(&lab.ns("cl"), "eth0").unwrap(), Capture::start(&lab.ns("sv"), "eth0").unwrap());
    let listener = netns::in_netns(&netns::path(&lab.ns("sv")), || Ok(TcpListener::bind(("0.0.0.0", 7000))?)).unwrap();
    let since = now(&lab);
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut hello = [0u8; 5];
        conn.read_exact(&mut hello).unwrap();
        conn.write_all(b"world, and then some").unwrap();
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest); // until the client's reset
    });
    let stream = netns::in_netns(&netns::path(&lab.ns("cl")), move || Ok(TcpStream::connect((sv, 7000))?)).unwrap();
    let sport = stream.local_addr().unwrap().port();
    let mut stream = stream;
    stream.write_all(b"hello").unwrap();
    let mut reply = [0u8; 20];
    stream.read_exact(&mut reply).unwrap();
    // Closed with a reset (SO_LINGER 0): the connection's entries expire in seconds, not minutes.
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket and option buffer.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as u32,
        )
    };
    drop(stream);
    server.join().unwrap();
    let (received_by_client, received_by_server) = (at_client.stop(), at_server.stop());
    let sent = tcp_counts(&received_by_server, sport, 7000);
    let replied = tcp_counts(&received_by_client, 7000, sport);
    assert!(sent.0 >= 4 && replied.0 >= 2, "the handshake, data and reset were captured: {sent:?} {replied:?}");

    let tcp = json!({"eni": "cl", "proto": "tcp", "port": sport});
    let events = collect(&lab, since, tcp, Duration::from_secs(25), |e| e.iter().any(|e| e["type"] == "close"));
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["open", "close"], "{events:?}");
    let (opened, closed) = (&events[0], &events[1]);
    assert_eq!(opened["rule"].as_str(), Some("no rule matched: egress accepts"), "the client has no egress rule: {opened}");
    assert_eq!(opened["peer_eni"].as_str(), Some("sv"));
    assert_eq!(opened["peer_rule"].as_str(), Some(rule_id(&lab, "server", "7000/7000").as_str()), "{opened}");
    assert!(opened["route_table"].as_str().is_some_and(|t| t.starts_with("vtb-")), "{opened}");
    assert_eq!(
        (opened["src"].as_str(), opened["dst"].as_str(), opened["dport"].as_u64()),
        (Some("10.41.1.10"), Some("10.41.1.20"), Some(7000))
    );
    assert_eq!(closed["reason"].as_str(), Some("reset"), "{closed}");
    assert_eq!(closed["packets"], json!([sent.0, replied.0]), "packets each way, as captured: {closed}");
    assert_eq!(closed["bytes"], json!([sent.1, replied.1]), "IP bytes each way, as captured: {closed}");
    assert_eq!(
        (closed["src"].as_str(), closed["sport"].as_u64(), closed["peer_eni"].as_str()),
        (Some("10.41.1.10"), Some(u64::from(sport)), Some("sv"))
    );

    // A verdict flipped by a revoked rule: the next datagram of an allowed flow is re-judged.
    let server_udp = udp(&lab.ns("sv"), 7001);
    server_udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    client.send_to(b"allowed", (sv, 7001)).unwrap();
    let mut buf = [0u8; 64];
    assert!(server_udp.recv_from(&mut buf).is_ok(), "UDP 7001 is allowed");
    let sg = lab.call("DescribeSecurityGroups", json!({"SecurityGroupName": "server"}))["SecurityGroups"][0]["SecurityGroupId"].clone();
    lab.call("RevokeSecurityGroup", json!({"SecurityGroupId": sg, "SecurityGroupRuleId": rule_id(&lab, "server", "7001/7001")}));
    let since = now(&lab);
    client.send_to(b"revoked", (sv, 7001)).unwrap();
    let policy = json!({"eni": "sv", "types": ["policy"]});
    let events = collect(&lab, since, policy, Duration::from_secs(5), |e| !e.is_empty());
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (e["verdict"].as_str(), e["direction"].as_str(), e["rule"].as_str()),
        (Some("deny"), Some("ingress"), Some("no rule accepted")),
        "{e}"
    );
    assert_eq!((e["src"].as_str(), e["dport"].as_u64()), (Some(cl.to_string().as_str()), Some(7001)), "{e}");

    // The command line: the kept history with filters, one JSON object per line; the table;
    // the stats; and following until a count.
    let out = lab.daemon.cli(&["monitor", "--last", "10", "--no-follow", "--eni", "cl", "--type", "drop", "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 3 && lines.iter().all(|e| e["type"] == "drop" && e["eni"] == "cl"), "{lines:?}");
    let table = lab.daemon.cli(&["monitor", "--last", "3", "--no-follow", "--type", "drop", "--port", "7009"]);
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(table.contains("sg_ingress") && table.contains(&rule_id(&lab, "server", "7009/7009")) && table.contains("cl -> sv"), "{table}");
    let stats = lab.daemon.cli(&["monitor", "--stats", "-o", "json"]);
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert!(stats["totals"]["drop"].as_u64().unwrap() >= 3 && stats["totals"]["close"].as_u64() == Some(1), "{stats}");

    let mut follower =
        lab.daemon.cli_command(&["monitor", "--eni", "other", "--type", "drop", "-o", "json", "--count", "1", "--timeout", "20"]);
    let mut child = follower.stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    std::thread::sleep(Duration::from_millis(500));
    udp(&lab.ns("other"), 30002).send_to(b"from other", (sv, 7009)).unwrap();
    let line = lines.next().expect("one event").unwrap();
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!((event["eni"].as_str(), event["dport"].as_u64()), (Some("other"), Some(7009)), "{event}");
    assert!(child.wait().unwrap().success(), "--count 1 stops after one event");
}

#[test]
fn a_flood_is_limited_and_counted_exactly_while_another_guest_still_reports() {
    const FLOOD: u32 = 100_000;
    let lab = DaemonLab::up("m2", TOPOLOGY, &[]);
    let sv = lab.ip("sv");
    let since = now(&lab);
    let before = sg_ingress_drops(&lab);
    let start = Instant::now();
    let flooder = udp(&lab.ns("cl"), 30003);
    for _ in 0..FLOOD {
        let _ = flooder.send_to(b"flood", (sv, 7009));
    }
    udp(&lab.ns("other"), 30004).send_to(b"still heard", (sv, 7009)).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let dropped = settled(|| sg_ingress_drops(&lab)) - before;
    // What the flood made, and what was held back (reported once a second).
    let events = collect(&lab, since, json!({}), Duration::from_secs(10), |e| {
        let held: u64 = e
            .iter()
            .filter(|e| e["type"] == "suppressed" && e["eni"] == "cl")
            .map(|e| e["limited"].as_u64().unwrap() + e["ring_full"].as_u64().unwrap())
            .sum();
        let made = e.iter().filter(|e| e["type"] == "drop" && e["eni"] == "cl").count() as u64;
        made + held + 1 >= dropped && e.iter().any(|e| e["type"] == "drop" && e["eni"] == "other")
    });
    let made = events.iter().filter(|e| e["type"] == "drop" && e["eni"] == "cl").count() as u64;
    let held: Vec<&Value> = events.iter().filter(|e| e["type"] == "suppressed" && e["eni"] == "cl").collect();
    let limited: u64 = held.iter().map(|e| e["limited"].as_u64().unwrap()).sum();
    let full: u64 = held.iter().map(|e| e["ring_full"].as_u64().unwrap()).sum();
    assert!(dropped > u64::from(FLOOD) / 2, "the flood reached the data path: {dropped} drops");
    assert_eq!(
        made + limited + full,
        dropped - 1,
        "every drop of the flood is an event or counted as held back ({made} + {limited} + {full})"
    );
    let cpus = aya::util::nr_cpus().unwrap() as u64;
    let budget = cpus * (vpc_common::monitor::EVENT_BURST + (vpc_common::monitor::EVENTS_PER_SECOND as f64 * (seconds + 1.0)) as u64);
    assert!(made <= budget, "{made} events beyond the limiter's budget {budget}");
    assert!(limited > 0 && held.iter().all(|e| e["suppressed_type"] == "drop"), "{held:?}");
    assert!(events.iter().any(|e| e["type"] == "drop" && e["eni"] == "other"), "another guest's event still arrives");
    let out = lab.daemon.cli(&["monitor", "--stats", "-o", "json"]);
    let stats: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\nthe agent's log:\n{}", String::from_utf8_lossy(&out.stderr), lab.daemon.log()));
    assert!(stats["suppressed_by_limiter"].as_u64().unwrap() >= limited, "{stats}");
    // And in the metrics, per ENI, type and cause.
    let (_, metrics) = client::request(&lab.daemon.opts.socket(), "GET", "/metrics", "").unwrap();
    let series = "vpc_monitor_suppressed_total{eni=\"cl\",vpc=\"prod\",vswitch=\"sw\",type=\"drop\",cause=\"limiter\"} ";
    let counted: u64 =
        metrics.lines().find_map(|l| l.strip_prefix(series)).unwrap_or_else(|| panic!("no {series}in {metrics}")).parse().unwrap();
    assert!(counted >= limited, "{counted} < {limited}");

    // An ENI removed with a connection open: the connection ends with it, named as it was.
    let since = now(&lab);
    let opener = udp(&lab.ns("other"), 30006);
    opener.send_to(b"opens a connection", (sv, 7001)).unwrap();
    let opened = collect(&lab, since, json!({"eni": "other", "types": ["open"]}), Duration::from_secs(5), |e| !e.is_empty());
    assert_eq!(opened.len(), 1, "{opened:?}");
    let other = lab.topology().eni("other").unwrap().2.id.clone();
    lab.call("DeleteNetworkInterface", json!({"NetworkInterfaceId": other}));
    let closed = collect(&lab, since, json!({"types": ["close"], "port": 30006}), Duration::from_secs(5), |e| !e.is_empty());
    assert_eq!(closed.len(), 1, "{closed:?}");
    let c = &closed[0];
    assert_eq!((c["eni"].as_str(), c["reason"].as_str(), c["peer_eni"].as_str()), (Some("other"), Some("port removed"), Some("sv")), "{c}");
    assert_eq!(c["packets"], json!([1, 0]), "{c}");
}

#[test]
fn a_full_ring_loses_events_only_with_an_exact_count() {
    // No agent reads the ring: a tiny one fills, and what did not fit is counted.
    let mut opts = vpc_tests::options("m3");
    opts.limits[vpc_common::maps::Size::EventRing] = 4096;
    let lab = TestLab::up_with(opts.clone(), TOPOLOGY);
    let sv = lab.ip("sv");
    let pins = vpc::dataplane::PinDirs::new(&opts.bpffs);
    let ring_pin = aya::maps::MapData::from_pin(pins.map(vpc_common::maps::EVENTS)).unwrap();
    let mut ring = aya::maps::RingBuf::try_from(aya::maps::Map::RingBuf(ring_pin)).unwrap();
    let held = || {
        let pin = aya::maps::MapData::from_pin(pins.map(vpc_common::maps::MON_SUPPRESSED)).unwrap();
        let map: aya::maps::PerCpuArray<_, vpc_common::monitor::MonSuppressed> =
            aya::maps::PerCpuArray::try_from(aya::maps::Map::PerCpuArray(pin)).unwrap();
        let port = lab.binding().ids.port(&lab.topology().eni("cl").unwrap().2.id);
        let values = map.get(&vpc_common::monitor::slot(port, vpc_common::monitor::kind::DROP), 0).unwrap();
        values.iter().fold((0, 0), |(l, r), v| (l + v.limited, r + v.ring_full))
    };
    while ring.next().is_some() {}
    let (limited_before, full_before) = held();
    let before = lab.drops("sg_ingress");
    let client = udp(&lab.ns("cl"), 30005);
    for _ in 0..150 {
        client.send_to(b"into a full ring", (sv, 7009)).unwrap();
    }
    let dropped = settled(|| lab.drops("sg_ingress")) - before;
    let mut written = 0u64;
    while ring.next().is_some() {
        written += 1;
    }
    let (limited, full) = held();
    let (limited, full) = (limited - limited_before, full - full_before);
    assert_eq!(dropped, 150);
    assert!(full > 0 && written <= 4096 / 64, "a 4 KiB ring holds at most 64 events: {written} written, {full} lost");
    assert_eq!(written + limited + full, dropped, "{written} written + {limited} limited + {full} lost to the full ring");
    drop(ring);

    // Without an agent, `vpc monitor` reads the ring itself (a datagram every 200 ms until it
    // has shown one: it starts reading at some point after it starts).
    let mut child = lab
        .cli()
        .args(["monitor", "--type", "drop", "-o", "json", "--count", "1", "--timeout", "30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = client.send_to(b"seen directly", (sv, 7009));
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let line = lines.next().expect("one event").unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().unwrap();
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (event["eni"].as_str(), event["dport"].as_u64(), event["reason"].as_str()),
        (Some("cl"), Some(7009), Some("sg_ingress")),
        "{event}"
    );
    assert!(event["rule"].as_str().is_some_and(|r| r.starts_with("sgr-")), "named by the stored state: {event}");
    assert!(child.wait().unwrap().success());
}
