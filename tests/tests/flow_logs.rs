//! Flow logs on real traffic through a real agent: ENI-, VSwitch- and VPC-level logs with each
//! traffic type, counts exact across window boundaries, NODATA windows, a full table reported
//! as SKIPDATA with the exact loss, an agent restart, and IPFIX read back by tshark.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use vpc::{
    flowlog::Record,
    netns,
    tools::lab::probe::{self, Whoami},
};
use vpc_tests::DaemonLab;

fn topology(dir: &Path, window: &str, extra_logs: &str) -> String {
    format!(
        "
vpcs:
  - name: prod
    cidr: 10.70.0.0/16
    vswitches:
      - {{name: web, cidr: 10.70.1.0/24, zone: a}}
      - {{name: db, cidr: 10.70.2.0/24, zone: a}}
    security_groups:
      - name: web-sg
      - name: db-sg
        rules:
          - {{direction: ingress, protocol: udp, ports: 9000/9000, peer: {{group: web-sg}}}}
          - {{direction: ingress, protocol: tcp, ports: 9001/9001, peer: {{group: web-sg}}}}
          - {{direction: ingress, protocol: icmp, peer: 10.70.0.0/16}}
          - {{direction: ingress, policy: drop, protocol: udp, ports: 9600/9600, peer: 10.70.0.0/16, priority: 1}}
    enis:
      - {{name: w1, vswitch: web, ip: 10.70.1.10, security_groups: [web-sg]}}
      - {{name: w2, vswitch: web, ip: 10.70.1.11, security_groups: [web-sg]}}
      - {{name: d1, vswitch: db, ip: 10.70.2.10, security_groups: [db-sg]}}
flow_logs:
  - {{name: fl-web, resource: {{vpc: prod, vswitch: web}}, traffic: all, window: {window}, sink: {{file: {web}}}}}
  - {{name: fl-d1, resource: {{eni: d1}}, traffic: drop, window: {window}, sink: {{file: {d1}}}}}
  - {{name: fl-vpc, resource: {{vpc: prod}}, traffic: allow, window: {window}, sink: {{file: {vpc}}}}}
{extra_logs}",
        web = dir.join("web.jsonl").display(),
        d1 = dir.join("d1.jsonl").display(),
        vpc = dir.join("vpc.jsonl").display(),
    )
}

fn records(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every key of every record, exactly the guide's names.
fn keys_of(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Map<String, Value>>(l).unwrap().keys().cloned().collect())
        .collect()
}

/// (eni, direction, src, sport, dst, dport, protocol, action) -> (packets, bytes), summed over windows.
type Totals = BTreeMap<(String, String, Ipv4Addr, u16, Ipv4Addr, u16, u8, String), (u64, u64)>;

fn totals(records: &[Record]) -> Totals {
    let mut out = Totals::new();
    for r in records.iter().filter(|r| r.packets.is_some()) {
        let key = (
            r.vm_id.clone(),
            r.direction.clone().unwrap(),
            r.srcaddr.unwrap(),
            r.srcport.unwrap(),
            r.dstaddr.unwrap(),
            r.dstport.unwrap(),
            r.protocol.unwrap(),
            r.action.clone().unwrap(),
        );
        let t = out.entry(key).or_default();
        t.0 += r.packets.unwrap();
        t.1 += r.bytes.unwrap();
    }
    out
}

/// Send `count` UDP datagrams of `payload` bytes from `from` (port `sport`) to `to:dport`,
/// spread over `over`.
fn udp_burst(lab: &DaemonLab, from: &str, sport: u16, to: Ipv4Addr, dport: u16, count: usize, payload: usize, over: Duration) {
    let sock = netns::in_netns(&netns::path(&lab.ns(from)), move || Ok(UdpSocket::bind(("0.0.0.0", sport))?)).unwrap();
    let gap = over / count.max(1) as u32;
    for i in 0..count {
        sock.send_to(&vec![i as u8; payload], (to, dport)).unwrap();
        std::thread::sleep(gap);
    }
}

/// Wait until `path` has a record whose window ends after `t` (Unix s) for every ENI listed.
fn wait_for_window_after(path: &Path, t: u64, enis: &[&str]) -> Vec<Record> {
    let started = Instant::now();
    loop {
        let rs = records(path);
        if enis.iter().all(|e| rs.iter().any(|r| r.vm_id == *e && r.end > t)) {
            return rs;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no window after {t} in {}: {rs:?}", path.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn key(
    eni: &str,
    dir: &str,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    proto: u8,
    action: &str,
) -> (String, String, Ipv4Addr, u16, Ipv4Addr, u16, u8, String) {
    (eni.into(), dir.into(), src, sport, dst, dport, proto, action.into())
}

#[test]
fn records_are_exact_per_eni_vswitch_and_vpc_with_each_traffic_type() {
    let dir = std::env::temp_dir().join("vpc-t-f1-logs");
    let _ = std::fs::remove_dir_all(&dir);
    let lab = DaemonLab::up("f1", &topology(&dir, "2s", ""), &["--flow-log-dir", dir.to_str().unwrap()]);
    let (w1, w2, d1) = (lab.ip("w1"), lab.ip("w2"), lab.ip("d1"));
    let server = netns::in_netns(&netns::path(&lab.ns("d1")), || Ok(UdpSocket::bind(("0.0.0.0", 9000))?)).unwrap();
    // Accepted UDP across at least one window boundary: 40 datagrams of 100 bytes over 3 s.
    udp_burst(&lab, "w1", 40000, d1, 9000, 40, 100, Duration::from_secs(3));
    // Rejected by d1's ingress rules (no rule for 9500): 7 datagrams of 50 bytes.
    udp_burst(&lab, "w1", 40001, d1, 9500, 7, 50, Duration::from_millis(70));
    // Rejected by an explicit drop rule: its records name the rule.
    udp_burst(&lab, "w1", 40002, d1, 9600, 5, 50, Duration::from_millis(50));
    // ICMP from w2, and a TCP connection w1 -> d1:9001.
    assert!(probe::ping(&lab.ns("w2"), d1, 3));
    let _whoami = Whoami::start(&lab.ns("d1"), "d1", 9001).unwrap();
    assert_eq!(probe::whoami(&lab.ns("w1"), d1, 9001, Duration::from_secs(2)).unwrap(), "d1");
    let sent_at = unix_now();
    drop(server);

    // Wait for windows after the traffic, in every file.
    let web = wait_for_window_after(&dir.join("web.jsonl"), sent_at + 2, &["w1", "w2"]);
    let only_d1 = wait_for_window_after(&dir.join("d1.jsonl"), sent_at + 2, &["d1"]);
    let vpc = wait_for_window_after(&dir.join("vpc.jsonl"), sent_at + 2, &["w1", "w2", "d1"]);

    // Exactly the guide's fields, in every record (the VSwitch's ENIs' verdicts here are decided
    // by no rule; a record whose verdict a rule decided adds its rule-id, below).
    let guide = [
        "version",
        "vswitch-id",
        "vm-id",
        "vpc-id",
        "account-id",
        "eni-id",
        "srcaddr",
        "srcport",
        "dstaddr",
        "dstport",
        "protocol",
        "direction",
        "packets",
        "bytes",
        "start",
        "end",
        "log-status",
        "action",
    ];
    for keys in keys_of(&dir.join("web.jsonl")) {
        let mut want: Vec<String> = guide.iter().map(|s| s.to_string()).collect();
        want.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, want);
    }

    let udp = 20 + 8;
    let t = totals(&web);
    // The VSwitch log: w1's and w2's side, everything.
    assert_eq!(t[&key("w1", "out", w1, 40000, d1, 9000, 17, "ACCEPT")], (40, 40 * (udp + 100)), "exact across windows");
    assert_eq!(t[&key("w1", "out", w1, 40001, d1, 9500, 17, "ACCEPT")], (7, 7 * (udp + 50)), "w1's egress accepted what d1 dropped");
    assert_eq!(t[&key("w2", "out", w2, 0, d1, 0, 1, "ACCEPT")].0, 3, "pings out");
    assert_eq!(t[&key("w2", "in", d1, 0, w2, 0, 1, "ACCEPT")].0, 3, "replies in");
    assert!(t.keys().all(|k| k.0 == "w1" || k.0 == "w2"), "only the VSwitch's ENIs");
    assert!(t.keys().any(|k| k.6 == 6 && k.1 == "in"), "the TCP replies to w1");
    // d1's log keeps only what its security groups dropped.
    let t1 = totals(&only_d1);
    assert_eq!(t1.len(), 2, "{t1:?}");
    assert_eq!(t1[&key("d1", "in", w1, 40001, d1, 9500, 17, "REJECT")], (7, 7 * (udp + 50)));
    assert_eq!(t1[&key("d1", "in", w1, 40002, d1, 9600, 17, "REJECT")], (5, 5 * (udp + 50)));
    // Which rule decided: the drop rule for 9600, none for 9500 (no rule accepted), the accept
    // rule for 9000.
    let group = lab.call("DescribeSecurityGroups", json!({"SecurityGroupName": "db-sg"}))["SecurityGroups"][0]["SecurityGroupId"].clone();
    let rules = lab.call("DescribeSecurityGroupAttribute", json!({"SecurityGroupId": group}))["Permissions"].as_array().unwrap().clone();
    let rule = |range: &str| rules.iter().find(|r| r["PortRange"] == range).unwrap()["SecurityGroupRuleId"].as_str().unwrap().to_string();
    let rule_of = |records: &[Record], dport: u16| {
        let ids: std::collections::BTreeSet<Option<String>> =
            records.iter().filter(|r| r.vm_id == "d1" && r.dstport == Some(dport)).map(|r| r.rule_id.clone()).collect();
        assert_eq!(ids.len(), 1, "one deciding rule for d1's records to {dport}: {ids:?}");
        ids.into_iter().next().unwrap()
    };
    assert_eq!(rule_of(&only_d1, 9600), Some(rule("9600/9600")));
    assert_eq!(rule_of(&only_d1, 9500), None);
    assert_eq!(rule_of(&vpc, 9000), Some(rule("9000/9000")));
    // The VPC log keeps what was allowed, on both sides.
    let tv = totals(&vpc);
    assert_eq!(tv[&key("d1", "in", w1, 40000, d1, 9000, 17, "ACCEPT")], (40, 40 * (udp + 100)));
    assert_eq!(tv[&key("w1", "out", w1, 40000, d1, 9000, 17, "ACCEPT")], (40, 40 * (udp + 100)));
    assert!(tv.keys().all(|k| k.7 == "ACCEPT"));
    // Windows: 2 s long, aligned; OK records carry the window; quiet windows say NODATA.
    for r in web.iter().chain(&vpc) {
        assert_eq!(r.end - r.start, 2);
        assert_eq!(r.start % 2, 0);
    }
    let statuses: std::collections::BTreeSet<&str> = web.iter().map(|r| r.log_status.as_str()).collect();
    assert!(statuses.contains("OK") && statuses.contains("NODATA"), "{statuses:?}");
    assert!(web.iter().all(|r| r.log_status != "NODATA" || r.packets.is_none()));
    let ids = lab.call("DescribeFlowLogs", json!({}));
    assert_eq!(ids["TotalCount"], 3);
    // `vpc trace` says in words what the flow logs make of a packet.
    let d1s = d1.to_string();
    let trace = |dport: &str| {
        let out = lab.daemon.cli(&["trace", "--from", "w1", "--to", &d1s, "--proto", "udp", "--sport", "40001", "--dport", dport]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dropped = trace("9500");
    assert!(
        dropped.contains("flow log: fl-web, fl-vpc counts this sent packet")
            && dropped.contains("at w1 as accepted by its security groups"),
        "{dropped}"
    );
    assert!(
        dropped.contains("flow log: fl-d1 counts this received packet")
            && dropped.contains("at d1 as rejected by its security groups (record action REJECT)"),
        "{dropped}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_table_is_reported_as_skipdata_with_the_exact_loss() {
    let dir = std::env::temp_dir().join("vpc-t-f2-logs");
    let _ = std::fs::remove_dir_all(&dir);
    // Room for 16 records per tick: 60 distinct flows in one second cannot all fit.
    let lab = DaemonLab::up("f2", &topology(&dir, "5s", ""), &["--map-size", "flow-log=16", "--flow-log-dir", dir.to_str().unwrap()]);
    let d1 = lab.ip("d1");
    let sock = netns::in_netns(&netns::path(&lab.ns("w1")), || Ok(UdpSocket::bind(("0.0.0.0", 0))?)).unwrap();
    let started = unix_now();
    for i in 0..60u16 {
        // Distinct destination ports: distinct flows. 9500 is not allowed in, 9000 is; use 9000
        // and ports around it that d1 drops.
        sock.send_to(&[1u8; 10], (d1, 9100 + i)).unwrap();
    }
    let web = wait_for_window_after(&dir.join("web.jsonl"), started + 5, &["w1"]);
    let w1: Vec<&Record> = web.iter().filter(|r| r.vm_id == "w1").collect();
    let counted: u64 = w1.iter().filter_map(|r| r.packets).sum();
    let skipped: u64 = w1.iter().filter_map(|r| r.skipped_packets).sum();
    assert!(skipped > 0, "the table overflowed: {w1:?}");
    assert_eq!(counted + skipped, 60, "every packet is either in a record or counted as skipped");
    assert!(w1.iter().any(|r| r.log_status == "SKIPDATA" && r.skipped_bytes == Some(r.skipped_packets.unwrap() * 38)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn counts_stay_exact_across_an_agent_restart() {
    let dir = std::env::temp_dir().join("vpc-t-f3-logs");
    let _ = std::fs::remove_dir_all(&dir);
    let mut lab = DaemonLab::up("f3", &topology(&dir, "3s", ""), &["--flow-log-dir", dir.to_str().unwrap()]);
    let d1 = lab.ip("d1");
    let _server = netns::in_netns(&netns::path(&lab.ns("d1")), || Ok(UdpSocket::bind(("0.0.0.0", 9000))?)).unwrap();
    udp_burst(&lab, "w1", 41000, d1, 9000, 20, 10, Duration::from_millis(600));
    lab.daemon.kill9();
    // Traffic while no agent runs is still counted by the data path.
    udp_burst(&lab, "w1", 41000, d1, 9000, 15, 10, Duration::from_millis(300));
    std::thread::sleep(Duration::from_secs(4));
    lab.daemon.spawn(&[]);
    udp_burst(&lab, "w1", 41000, d1, 9000, 10, 10, Duration::from_millis(300));
    let after = unix_now();
    let web = wait_for_window_after(&dir.join("web.jsonl"), after + 3, &["w1"]);
    let t = totals(&web);
    let w1 = lab.ip("w1");
    assert_eq!(t[&key("w1", "out", w1, 41000, d1, 9000, 17, "ACCEPT")], (45, 45 * 38), "before, during and after the outage, once each");
    assert!(
        web.iter().any(|r| r.log_status == "SKIPDATA" && r.skipped_reason.as_deref().is_some_and(|s| s.contains("not running"))),
        "the outage is said"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pcap file of UDP datagrams (as received) to `port`, for tshark.
fn pcap(datagrams: &[(SocketAddr, Vec<u8>)], port: u16, path: &Path) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&101u32.to_le_bytes()); // LINKTYPE_RAW: IPv4 packets
    for (i, (from, data)) in datagrams.iter().enumerate() {
        let SocketAddr::V4(from) = from else { panic!("IPv4") };
        let udp_len = 8 + data.len();
        let mut p = vpc::packet::Ipv4::new(*from.ip(), Ipv4Addr::LOCALHOST, 17, {
            let mut u = Vec::new();
            u.extend_from_slice(&from.port().to_be_bytes());
            u.extend_from_slice(&port.to_be_bytes());
            u.extend_from_slice(&(udp_len as u16).to_be_bytes());
            u.extend_from_slice(&[0, 0]);
            u.extend_from_slice(data);
            u
        })
        .bytes();
        let ts = i as u32;
        out.extend_from_slice(&ts.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.append(&mut p);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn ipfix_export_is_read_by_tshark_with_every_field_right() {
    let collector = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    let port = collector.local_addr().unwrap().port();
    collector.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let dir = std::env::temp_dir().join("vpc-t-f4-logs");
    let _ = std::fs::remove_dir_all(&dir);
    let extra = format!("  - {{name: fl-ipfix, resource: {{eni: w1}}, traffic: all, window: 2s, sink: {{ipfix: 127.0.0.1:{port}}}}}\n");
    let lab = DaemonLab::up("f4", &topology(&dir, "2s", &extra), &["--flow-log-dir", dir.to_str().unwrap()]);
    let (w1, d1) = (lab.ip("w1"), lab.ip("d1"));
    let _server = netns::in_netns(&netns::path(&lab.ns("d1")), || Ok(UdpSocket::bind(("0.0.0.0", 9000))?)).unwrap();
    udp_burst(&lab, "w1", 42000, d1, 9000, 5, 72, Duration::from_millis(50));
    let started = Instant::now();
    let mut datagrams = Vec::new();
    let mut buf = [0u8; 65535];
    // Collect until a message with the flow arrived and a little more.
    while started.elapsed() < Duration::from_secs(8) {
        if let Ok((n, from)) = collector.recv_from(&mut buf) {
            datagrams.push((from, buf[..n].to_vec()));
        }
        if datagrams.len() >= 3 {
            break;
        }
    }
    assert!(!datagrams.is_empty(), "the collector got IPFIX messages");
    let file = dir.join("ipfix.pcap");
    std::fs::create_dir_all(&dir).unwrap();
    pcap(&datagrams, port, &file);
    let fields = [
        "cflow.srcaddr",
        "cflow.dstaddr",
        "cflow.srcport",
        "cflow.dstport",
        "cflow.protocol",
        "cflow.packets",
        "cflow.octets",
        "cflow.direction",
        "cflow.inputint",
        "cflow.outputint",
        "cflow.abstimestart",
        "cflow.firewall_event",
    ];
    let mut cmd = std::process::Command::new("tshark");
    cmd.args([
        "-r",
        &file.display().to_string(),
        "-d",
        &format!("udp.port=={port},cflow"),
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = lab.topology();
    let ifindex = vpc::dataplane::ifindex(&lab.daemon.opts.naming.host_ifname(t.eni("w1").unwrap().2)).unwrap();
    // Find the records of our flow among all records of all messages (the burst may straddle a
    // window boundary: two records, counts exact in their sum).
    let (mut found, mut packets, mut octets) = (false, 0u64, 0u64);
    for line in text.lines() {
        let cols: Vec<Vec<&str>> = line.split('|').map(|c| c.split(',').collect()).collect();
        for i in 0..cols[0].len() {
            let get = |k: usize| cols.get(k).and_then(|c| c.get(i)).copied().unwrap_or("");
            if get(0) == w1.to_string() && get(2) == "42000" {
                assert_eq!(get(1), d1.to_string());
                assert_eq!(get(3), "9000");
                assert_eq!(get(4), "17");
                packets += get(5).parse::<u64>().unwrap();
                octets += get(6).parse::<u64>().unwrap();
                assert_eq!(get(7), "1", "egress: from the ENI");
                assert_eq!((get(8), get(9)), (ifindex.to_string().as_str(), "0"), "from the ENI's host interface");
                assert_eq!(get(11), "1", "firewallEvent: created (ACCEPT)");
                assert!(!get(10).is_empty(), "flowStartMilliseconds decoded");
                found = true;
            }
        }
    }
    assert!(found, "tshark shows the flow: {text}");
    assert_eq!((packets, octets), (5, 5 * (28 + 72)), "packets and octets of the flow: {text}");
    // The enterprise elements travel too: the ENI's ID is in the messages.
    let eni_id = lab.topology().eni("w1").unwrap().2.id.clone();
    assert!(datagrams.iter().any(|(_, d)| d.windows(eni_id.len()).any(|w| w == eni_id.as_bytes())));
    let _ = std::fs::remove_dir_all(&dir);
    let _: PathBuf = file;
}

/// `vpc lab down` on drop, whatever the test did.
struct LabDown(Vec<String>);

impl Drop for LabDown {
    fn drop(&mut self) {
        let _ = std::process::Command::new(vpc_tests::vpc_bin()).args(&self.0).args(["lab", "down"]).output();
    }
}

#[test]
fn traffic_sent_as_lab_up_returns_is_recorded() {
    // `vpc lab up` starts the agent and applies while its flow-log collector ticks: the ticks
    // must not wait for the agent (that looked like an outage: SKIPDATA), nor drop counts of a
    // flow log the collector has not seen yet.
    let dir = std::env::temp_dir().join("vpc-t-f5-logs");
    let state = std::env::temp_dir().join("vpc-t-f5-state");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = format!(
        "vpcs:
  - name: p5
    cidr: 10.75.0.0/16
    vswitches: [{{name: sw, cidr: 10.75.1.0/24, zone: a}}]
    enis:
      - {{name: a5, vswitch: sw, ip: 10.75.1.10}}
      - {{name: b5, vswitch: sw, ip: 10.75.1.11}}
flow_logs:
  - {{name: fl5, resource: {{vpc: p5}}, traffic: all, window: 1s, sink: {{file: {}}}}}
",
        dir.join("fl.jsonl").display()
    );
    let file = dir.join("topology.yaml");
    std::fs::write(&file, yaml).unwrap();
    let global: Vec<String> = [
        "--bpffs",
        "/sys/fs/bpf/vpc-t-f5",
        "--state-dir",
        state.to_str().unwrap(),
        "--prefix",
        "vt5-",
        "--flow-log-dir",
        dir.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let _down = LabDown(global.clone());
    let vpc = |args: &[&str]| std::process::Command::new(vpc_tests::vpc_bin()).args(&global).args(args).output().unwrap();
    let up = vpc(&["lab", "up", "--file", file.to_str().unwrap()]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let ping = vpc(&["lab", "exec", "a5", "--", "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.75.1.11"]);
    assert!(ping.status.success(), "{}", String::from_utf8_lossy(&ping.stdout));
    let sent = unix_now();
    let records = wait_for_window_after(&dir.join("fl.jsonl"), sent + 1, &["a5", "b5"]);
    assert!(!records.iter().any(|r| r.log_status == "SKIPDATA"), "no outage: {records:?}");
    let t = totals(&records);
    let echo: Vec<u64> = t.iter().filter(|(k, _)| k.6 == 1).map(|(_, v)| v.0).collect();
    assert_eq!(echo, vec![3, 3, 3, 3], "3 requests and 3 replies, at each ENI: {t:?}");
}

#[test]
fn traffic_sent_as_a_flow_log_is_activated_or_an_eni_joins_it_is_recorded() {
    let dir = std::env::temp_dir().join("vpc-t-f6-logs");
    let _ = std::fs::remove_dir_all(&dir);
    let yaml = |extra_eni: &str, active: bool| {
        format!(
            "vpcs:
  - name: p6
    cidr: 10.76.0.0/16
    vswitches: [{{name: sw, cidr: 10.76.1.0/24, zone: a}}]
    enis:
      - {{name: a6, vswitch: sw, ip: 10.76.1.10}}
      - {{name: b6, vswitch: sw, ip: 10.76.1.11}}
{extra_eni}flow_logs:
  - {{name: fl6, resource: {{vpc: p6, vswitch: sw}}, traffic: all, window: 1s, active: {active}, sink: {{file: {}}}}}
",
            dir.join("fl.jsonl").display()
        )
    };
    let mut lab = DaemonLab::up("f6", &yaml("", false), &["--flow-log-dir", dir.to_str().unwrap()]);
    let (a, b) = (lab.ip("a6"), lab.ip("b6"));
    let id = lab.call("DescribeFlowLogs", json!({}))["FlowLogs"][0]["FlowLogId"].as_str().unwrap().to_string();
    // Activation: traffic the moment the call returns.
    lab.call("ActiveFlowLog", json!({"FlowLogId": id}));
    assert!(probe::ping(&lab.ns("a6"), b, 3));
    // An ENI joining the VSwitch the flow log covers: traffic the moment the apply returns.
    lab.reapply(&yaml("      - {name: c6, vswitch: sw, ip: 10.76.1.12}\n", true));
    let c = lab.ip("c6");
    assert!(probe::ping(&lab.ns("c6"), a, 3));
    let sent = unix_now();
    let records = wait_for_window_after(&dir.join("fl.jsonl"), sent + 1, &["a6", "b6", "c6"]);
    assert!(!records.iter().any(|r| r.log_status == "SKIPDATA"), "nothing unrecorded: {records:?}");
    let t = totals(&records);
    let pings = |eni: &str, dir: &str, from, to| t.get(&key(eni, dir, from, 0, to, 0, 1, "ACCEPT")).map(|c| c.0);
    assert_eq!(
        [pings("a6", "out", a, b), pings("b6", "in", a, b), pings("b6", "out", b, a), pings("a6", "in", b, a)],
        [Some(3); 4],
        "activated: every echo and reply at both ENIs: {t:?}"
    );
    assert_eq!(
        [pings("c6", "out", c, a), pings("a6", "in", c, a), pings("a6", "out", a, c), pings("c6", "in", a, c)],
        [Some(3); 4],
        "joined: every echo and reply at both ENIs: {t:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
