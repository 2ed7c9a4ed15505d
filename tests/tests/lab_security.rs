//! Security groups on real traffic: the guide's chapter 3 cases (intranet communication, denying
//! a CIDR or a port, allowing one address, HTTP/HTTPS from anywhere), stateful replies, rules
//! revoked under an established stream, rules authorized and revoked on a daemon (the next
//! packet sees them, a new rule counts from zero), and a full conntrack table (which refuses,
//! never evicts).

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream, UdpSocket},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use vpc::{
    netns,
    tools::lab::probe::{self, Whoami},
};
use vpc_tests::{DaemonLab, TestLab};

const T: Duration = Duration::from_secs(2);
/// Long enough for a SYN to be answered on a veth, short enough to keep blocked probes cheap.
const BLOCKED: Duration = Duration::from_millis(400);

/// Whether a TCP connection from `from` to `to:port` reaches the whoami server there.
fn reaches(lab: &TestLab, from: &str, to: &str, port: u16) -> bool {
    match probe::whoami(&lab.ns(from), lab.ip(to), port, T) {
        Ok(name) => {
            assert_eq!(name, to, "{from} -> {to}:{port} reached the wrong guest");
            true
        }
        Err(_) => false,
    }
}

fn blocked(lab: &TestLab, from: &str, to: &str, port: u16) -> bool {
    probe::whoami(&lab.ns(from), lab.ip(to), port, BLOCKED).is_err()
}

fn serve(lab: &TestLab, enis: &[&str], ports: &[u16]) -> Vec<Whoami> {
    enis.iter().flat_map(|e| ports.iter().map(move |p| Whoami::start(&lab.ns(e), e, *p).unwrap())).collect()
}

fn group_id(lab: &TestLab, name: &str) -> String {
    let groups = lab.call("DescribeSecurityGroups", json!({"SecurityGroupName": name}));
    groups["SecurityGroups"][0]["SecurityGroupId"].as_str().unwrap_or_else(|| panic!("no group {name}: {groups}")).to_string()
}

/// The hit counters of a group's rules: rule ID -> packets.
fn rule_hits(lab: &TestLab, group: &str) -> Vec<Value> {
    let attr = lab.call("DescribeSecurityGroupAttribute", json!({"SecurityGroupId": group_id(lab, group)}));
    assert_eq!(attr["StatisticsAvailable"], true, "{attr}");
    attr["Permissions"].as_array().unwrap().clone()
}

fn hits_of(rules: &[Value], port_range: &str, peer: &str, policy: &str) -> u64 {
    rules
        .iter()
        .find(|r| r["PortRange"] == port_range && (r["SourceCidrIp"] == peer || r["DestCidrIp"] == peer) && r["Policy"] == policy)
        .unwrap_or_else(|| panic!("no rule {port_range} {peer} {policy} in {rules:?}"))["Packets"]
        .as_u64()
        .unwrap()
}

#[test]
fn guide_case_1_intranet_within_a_vpc_and_between_vpcs() {
    // VPC 1 and VPC 2 connected (Express Connect: a route each way). Inside VPC 1, members of a
    // group reach each other by default; between VPCs the rules of the guide's table decide:
    // RDP from one private address, SSH from anywhere, a custom TCP port from the other VPC.
    let lab = TestLab::up(
        "s1",
        "
vpcs:
  - name: vpc1
    cidr: 172.16.0.0/12
    vswitches: [{name: s1, cidr: 172.16.1.0/24, zone: a}]
    route_tables: [{name: system, routes: [{dst: 192.168.0.0/16, next_hop: {type: vpc, vpc: vpc2}}]}]
    security_groups:
      - name: app
        rules:
          - {direction: ingress, protocol: tcp, ports: 3389/3389, peer: 192.168.1.10/32}
          - {direction: ingress, protocol: tcp, ports: 22/22, peer: 0.0.0.0/0}
          - {direction: ingress, protocol: tcp, ports: 7100/7100, peer: 192.168.0.0/16}
      - name: other
    enis:
      - {name: w1, vswitch: s1, ip: 172.16.1.10, security_groups: [app]}
      - {name: w2, vswitch: s1, ip: 172.16.1.11, security_groups: [app]}
      - {name: w3, vswitch: s1, ip: 172.16.1.12, security_groups: [other]}
  - name: vpc2
    cidr: 192.168.0.0/16
    vswitches: [{name: s2, cidr: 192.168.1.0/24, zone: a}]
    route_tables: [{name: system, routes: [{dst: 172.16.0.0/12, next_hop: {type: vpc, vpc: vpc1}}]}]
    security_groups:
      - name: app
        rules:
          - {direction: ingress, protocol: tcp, ports: 3389/3389, peer: 172.16.1.10/32}
          - {direction: ingress, protocol: tcp, ports: 22/22, peer: 0.0.0.0/0}
          - {direction: ingress, protocol: tcp, ports: 7100/7100, peer: 172.16.0.0/12}
    enis:
      - {name: v1, vswitch: s2, ip: 192.168.1.10, security_groups: [app]}
",
    );
    let _servers = serve(&lab, &["w1", "w2", "w3", "v1"], &[22, 3389, 7100, 7200]);
    // Same group: every port, both ways.
    for port in [22, 3389, 7100, 7200] {
        assert!(reaches(&lab, "w1", "w2", port), "w1 -> w2:{port} (same group)");
        assert!(reaches(&lab, "w2", "w1", port), "w2 -> w1:{port} (same group)");
    }
    // Different groups of one VPC: only what the rules allow (SSH from anywhere).
    assert!(reaches(&lab, "w3", "w1", 22));
    assert!(blocked(&lab, "w3", "w1", 7200), "no rule lets group other reach app on 7200");
    assert!(blocked(&lab, "w1", "w3", 22), "group other has no ingress rules");
    // Between VPCs, as the guide's table says.
    assert!(reaches(&lab, "w1", "v1", 3389), "RDP from w1's private address");
    assert!(blocked(&lab, "w2", "v1", 3389), "RDP from any other address is refused");
    assert!(reaches(&lab, "w2", "v1", 22), "SSH from anywhere");
    assert!(reaches(&lab, "w3", "v1", 7100), "custom TCP from VPC 1");
    assert!(blocked(&lab, "w1", "v1", 7200), "no rule for 7200");
    assert!(reaches(&lab, "v1", "w1", 3389) && reaches(&lab, "v1", "w2", 22) && reaches(&lab, "v1", "w1", 7100));
    // The refusals were the security groups', counted as such.
    assert!(lab.drops("sg_ingress") > 0);
}

const SERVER_VPC: &str = "
vpcs:
  - name: prod
    cidr: 10.20.0.0/16
    vswitches: [{name: sw, cidr: 10.20.1.0/24, zone: a}]
    security_groups:
      - name: srv
        rules: [RULES]
    enis:
      - {name: srv, vswitch: sw, ip: 10.20.1.10, security_groups: [srv]}
      - {name: c1, vswitch: sw, ip: 10.20.1.11}
      - {name: c2, vswitch: sw, ip: 10.20.1.12}
      - {name: c3, vswitch: sw, ip: 10.20.1.13}
";

fn server_lab(tag: &str, rules: &str) -> TestLab {
    TestLab::up(tag, &SERVER_VPC.replace("[RULES]", &format!("\n{rules}")))
}

#[test]
fn guide_case_2_drop_a_cidr_on_all_ports_and_on_port_22() {
    let lab = server_lab(
        "s2",
        "
          - {direction: ingress, policy: accept, protocol: tcp, ports: 1/65535, peer: 10.20.0.0/16, priority: 10}
          - {direction: ingress, policy: accept, protocol: icmp, ports: -1/-1, peer: 10.20.0.0/16, priority: 10}
          - {direction: ingress, policy: drop, protocol: all, ports: -1/-1, peer: 10.20.1.11/32, priority: 1}
          - {direction: ingress, policy: drop, protocol: tcp, ports: 22/22, peer: 10.20.1.12/32, priority: 1}
          - {direction: ingress, policy: accept, protocol: tcp, ports: 22/22, peer: 10.20.1.12/32, priority: 1}",
    );
    let _servers = serve(&lab, &["srv"], &[22, 80]);
    let srv = lab.ip("srv");
    // c1's whole address is refused: every port and ICMP.
    assert!(blocked(&lab, "c1", "srv", 22) && blocked(&lab, "c1", "srv", 80));
    assert!(!probe::ping(&lab.ns("c1"), srv, 1));
    // c2 is refused on 22 only (drop beats accept at the same priority), the rest is open.
    assert!(blocked(&lab, "c2", "srv", 22));
    assert!(reaches(&lab, "c2", "srv", 80));
    assert!(probe::ping(&lab.ns("c2"), srv, 1));
    // Everyone else reaches both.
    assert!(reaches(&lab, "c3", "srv", 22) && reaches(&lab, "c3", "srv", 80));
    // Every rule counted what it decided (first packets: SYNs and retransmitted SYNs).
    let rules = rule_hits(&lab, "srv");
    assert!(hits_of(&rules, "-1/-1", "10.20.1.11/32", "drop") >= 3, "c1's SYNs to 22 and 80 and its ping: {rules:?}");
    assert!(hits_of(&rules, "22/22", "10.20.1.12/32", "drop") >= 1);
    assert_eq!(hits_of(&rules, "22/22", "10.20.1.12/32", "accept"), 0, "the accept at the same priority never decides");
    assert!(hits_of(&rules, "1/65535", "10.20.0.0/16", "accept") >= 2, "c2 -> 80 and c3 -> 22, 80");
    // The CLI shows them too.
    let out = lab.cli().args(["get", "security-groups", "--stats"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("PACKETS") && text.contains("10.20.1.11/32") && text.contains("(intra-group)"), "{text}");
}

#[test]
fn guide_case_3_ssh_and_rdp_from_one_address_only() {
    let lab = server_lab(
        "s3",
        "
          - {direction: ingress, protocol: tcp, ports: 22/22, peer: 10.20.1.11}
          - {direction: ingress, protocol: tcp, ports: 3389/3389, peer: 10.20.1.11/32}",
    );
    let _servers = serve(&lab, &["srv"], &[22, 3389]);
    assert!(reaches(&lab, "c1", "srv", 22) && reaches(&lab, "c1", "srv", 3389));
    for other in ["c2", "c3"] {
        assert!(blocked(&lab, other, "srv", 22) && blocked(&lab, other, "srv", 3389), "{other} is not the allowed address");
    }
    // Open it to everyone through the API: the same rule with 0.0.0.0/0.
    let sg = group_id(&lab, "srv");
    let rule = lab.call(
        "AuthorizeSecurityGroup",
        json!({"SecurityGroupId": sg, "IpProtocol": "tcp", "PortRange": "22/22", "SourceCidrIp": "0.0.0.0/0"}),
    );
    assert!(rule["SecurityGroupRuleId"].as_str().unwrap().starts_with("sgr-"));
    assert!(reaches(&lab, "c2", "srv", 22));
    assert!(blocked(&lab, "c2", "srv", 3389), "RDP still from c1 only");
}

/// A process in a lab namespace, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_in(lab: &TestLab, who: &str, cmd: &[&str], dir: &std::path::Path) -> Server {
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns(who)])
        .args(cmd)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    Server(child)
}

/// `curl` from `who`; the body when it answered.
fn curl(lab: &TestLab, who: &str, url: &str, max_time: &str) -> Option<String> {
    lab.exec(who, &["curl", "-sk", "--max-time", max_time, url]).ok()
}

#[test]
fn guide_case_4_http_and_https_from_the_internet() {
    let lab = TestLab::up(
        "s4",
        "
vpcs:
  - name: site
    cidr: 10.30.0.0/16
    vswitches: [{name: web, cidr: 10.30.1.0/24, zone: a}]
    gateways: [{name: internet, networks: [203.0.113.0/24]}]
    route_tables: [{name: system, routes: [{dst: 0.0.0.0/0, next_hop: {type: gateway, gateway: internet}}]}]
    security_groups:
      - name: web-sg
        rules:
          - {direction: ingress, policy: accept, protocol: tcp, ports: 80/80, peer: 0.0.0.0/0, priority: 1}
          - {direction: ingress, policy: accept, protocol: tcp, ports: 443/443, peer: 0.0.0.0/0, priority: 1}
    enis:
      - {name: web1, vswitch: web, ip: 10.30.1.10, security_groups: [web-sg]}
",
    );
    let dir = std::env::temp_dir().join("vpc-t-s4-site");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "hello from web1\n").unwrap();
    let openssl = |args: &[&str]| assert!(Command::new("openssl").args(args).current_dir(&dir).output().unwrap().status.success());
    openssl(&[
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "1", "-subj", "/CN=web1",
    ]);
    let _http = spawn_in(&lab, "web1", &["python3", "-m", "http.server", "80", "--bind", "0.0.0.0"], &dir);
    let _https =
        spawn_in(&lab, "web1", &["openssl", "s_server", "-accept", "443", "-cert", "cert.pem", "-key", "key.pem", "-www", "-quiet"], &dir);
    let _other = Whoami::start(&lab.ns("web1"), "web1", 8080).unwrap();
    // The servers take a moment to listen: ask from inside first.
    let started = Instant::now();
    while curl(&lab, "web1", "http://127.0.0.1/", "1").is_none() || curl(&lab, "web1", "https://127.0.0.1/", "1").is_none() {
        assert!(started.elapsed() < Duration::from_secs(10), "the web servers did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // From the Internet (the gateway's network), a real client.
    assert_eq!(curl(&lab, "internet", "http://10.30.1.10/", "3").as_deref(), Some("hello from web1\n"));
    let page = curl(&lab, "internet", "https://10.30.1.10/", "3").expect("HTTPS answered");
    assert!(page.contains("s_server"), "{page}");
    // Nothing else is open.
    assert!(probe::whoami(&lab.ns("internet"), "10.30.1.10".parse().unwrap(), 8080, BLOCKED).is_err());
    assert!(!probe::ping(&lab.ns("internet"), "10.30.1.10".parse().unwrap(), 1), "no ICMP rule in web-sg");
    let _ = std::fs::remove_dir_all(&dir);
}

const PAIR: &str = "
vpcs:
  - name: prod
    cidr: 10.40.0.0/16
    vswitches: [{name: sw, cidr: 10.40.1.0/24, zone: a}]
    security_groups:
      - {name: client, intra_group: drop}
      - name: server
        rules:
          - {direction: ingress, protocol: tcp, ports: 7000/7000, peer: {group: client}}
          - {direction: ingress, protocol: udp, ports: 7001/7001, peer: {group: client}}
          - {direction: ingress, protocol: icmp, peer: {group: client}}
    enis:
      - {name: cl, vswitch: sw, ip: 10.40.1.10, security_groups: [client]}
      - {name: sv, vswitch: sw, ip: 10.40.1.20, security_groups: [server]}
";

/// A UDP socket bound in a lab namespace.
fn udp_in(lab: &TestLab, who: &str, port: u16) -> UdpSocket {
    let sock = netns::in_netns(&netns::path(&lab.ns(who)), move || Ok(UdpSocket::bind(("0.0.0.0", port))?)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    sock
}

fn received(sock: &UdpSocket) -> Option<(Vec<u8>, std::net::SocketAddr)> {
    let mut buf = [0u8; 1500];
    sock.recv_from(&mut buf).ok().map(|(n, from)| (buf[..n].to_vec(), from))
}

#[test]
fn replies_pass_without_ingress_rules_and_unsolicited_packets_do_not() {
    let lab = TestLab::up("s5", PAIR);
    let (cl, sv) = (lab.ip("cl"), lab.ip("sv"));
    let _servers = serve(&lab, &["sv", "cl"], &[7000]);
    let client = udp_in(&lab, "cl", 5000);
    let server = udp_in(&lab, "sv", 7001);
    // Unsolicited: the server's packet on the 5-tuple a reply would use, before any request.
    server.send_to(b"early", (cl, 5000)).unwrap();
    assert!(received(&client).is_none(), "client has no ingress rule: unsolicited UDP must not pass");
    // The request opens the connection; the reply on the reverse 5-tuple then passes.
    client.send_to(b"ping", (sv, 7001)).unwrap();
    let (data, from) = received(&server).expect("request reached the server");
    assert_eq!((data.as_slice(), from), (&b"ping"[..], (cl, 5000).into()));
    server.send_to(b"pong", from).unwrap();
    assert_eq!(received(&client).map(|(d, _)| d), Some(b"pong".to_vec()), "the reply passes");
    // Another source port of the server is another 5-tuple: still unsolicited.
    let stranger = udp_in(&lab, "sv", 7002);
    stranger.send_to(b"sneak", (cl, 5000)).unwrap();
    assert!(received(&client).is_none(), "only the tracked 5-tuple's replies pass");
    // TCP: the handshake's replies pass, a connection the other way does not.
    assert!(reaches(&lab, "cl", "sv", 7000));
    assert!(blocked(&lab, "sv", "cl", 7000));
    // ICMP echo: the reply is matched by id.
    assert!(probe::ping(&lab.ns("cl"), sv, 2));
    assert!(!probe::ping(&lab.ns("sv"), cl, 1));
    let stats = lab.stats();
    assert!(stats.conntrack.entries > 0 && stats.conntrack.entries <= stats.conntrack.capacity, "{:?}", stats.conntrack);
}

#[test]
fn a_revoked_rule_cuts_an_established_tcp_stream_within_a_second() {
    let lab = TestLab::up("s6", PAIR);
    let sv = lab.ip("sv");
    // The server records when bytes last arrived.
    let listener = netns::in_netns(&netns::path(&lab.ns("sv")), || Ok(TcpListener::bind(("0.0.0.0", 7000))?)).unwrap();
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let (l2, t2) = (last.clone(), total.clone());
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 {
                    break;
                }
                t2.fetch_add(n as u64, Ordering::Relaxed);
                l2.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut stream = netns::in_netns(&netns::path(&lab.ns("cl")), move || Ok(TcpStream::connect_timeout(&(sv, 7000).into(), T)?)).unwrap();
    let flag = stop.clone();
    let writer = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            if stream.write_all(&[7u8; 100]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(total.load(Ordering::Relaxed) > 0, "the stream flows");
    // Revoke the rule that let the connection in.
    let sg = group_id(&lab, "server");
    let rules = rule_hits(&lab, "server");
    let rule = rules.iter().find(|r| r["PortRange"] == "7000/7000").unwrap()["SecurityGroupRuleId"].as_str().unwrap().to_string();
    lab.call("RevokeSecurityGroup", json!({"SecurityGroupId": sg, "SecurityGroupRuleId": rule}));
    let revoked = start.elapsed().as_millis() as u64;
    std::thread::sleep(Duration::from_millis(1500));
    let before = total.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(total.load(Ordering::Relaxed), before, "nothing arrives after the revoke");
    let cut = last.load(Ordering::Relaxed);
    assert!(cut <= revoked + 1000, "bytes arrived {} ms after the revoke", cut.saturating_sub(revoked));
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    assert!(lab.drops("sg_ingress") > 0);
}

#[test]
fn an_authorized_rule_lets_the_next_packet_in_and_a_new_rule_counts_from_zero() {
    // A daemon: rules are authorized and revoked on its incremental path (a fresh agent per
    // call, as `TestLab` has, takes the whole-document one).
    let lab = DaemonLab::up("s8", PAIR, &[]);
    let sv = lab.ip("sv");
    let udp = |who: &str, port: u16| {
        let sock = netns::in_netns(&netns::path(&lab.ns(who)), move || Ok(UdpSocket::bind(("0.0.0.0", port))?)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        sock
    };
    let group =
        |name: &str| lab.call("DescribeSecurityGroups", json!({"SecurityGroupName": name}))["SecurityGroups"][0]["SecurityGroupId"].clone();
    let (server, client) = (udp("sv", 7002), udp("cl", 27002));
    let (sg, client_group) = (group("server"), group("client"));
    client.send_to(b"before", (sv, 7002)).unwrap();
    assert!(received(&server).is_none(), "no rule lets UDP 7002 in yet");
    let authorize = |port: &str| {
        let rule = json!({"SecurityGroupId": sg, "IpProtocol": "udp", "PortRange": port, "SourceGroupId": client_group});
        lab.call("AuthorizeSecurityGroup", rule)["SecurityGroupRuleId"].as_str().unwrap().to_string()
    };
    let first = authorize("7002/7002");
    // The change is in the kernel when the call returns: the very next packet gets in.
    client.send_to(b"after", (sv, 7002)).unwrap();
    assert_eq!(received(&server).map(|(data, _)| data), Some(b"after".to_vec()));
    let packets = |id: &str| {
        let attr = lab.call("DescribeSecurityGroupAttribute", json!({"SecurityGroupId": sg}));
        let rules = attr["Permissions"].as_array().unwrap().clone();
        rules.iter().find(|r| r["SecurityGroupRuleId"] == id).unwrap_or_else(|| panic!("no rule {id}: {rules:?}"))["Packets"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(packets(&first), 1, "the rule decided the connection's first packet");
    // A rule authorized after one was revoked takes the freed counter: it starts from zero.
    lab.call("RevokeSecurityGroup", json!({"SecurityGroupId": sg, "SecurityGroupRuleId": first}));
    client.send_to(b"revoked", (sv, 7002)).unwrap();
    assert!(received(&server).is_none(), "the revoked rule lets nothing in");
    let second = authorize("7003/7003");
    assert_eq!(packets(&second), 0, "a new rule has decided nothing");
    let server3 = udp("sv", 7003);
    client.send_to(b"third", (sv, 7003)).unwrap();
    assert!(received(&server3).is_some());
    assert_eq!(packets(&second), 1);
}

#[test]
fn a_full_conntrack_table_refuses_new_connections_and_never_accepts_by_mistake() {
    const CAPACITY: u32 = 64;
    const FLOWS: u16 = 400;
    let mut opts = vpc_tests::options("s7");
    opts.limits[vpc_common::maps::Size::Conntrack] = CAPACITY;
    let lab = TestLab::up_with(opts, PAIR);
    let (cl, sv) = (lab.ip("cl"), lab.ip("sv"));
    let server = udp_in(&lab, "sv", 7001);
    // FLOWS connections from distinct client ports: far more than the table holds. Each takes
    // two entries (the client's and the server's side); nothing is ever evicted for a new one.
    let clients: Vec<UdpSocket> = (0..FLOWS).map(|i| udp_in(&lab, "cl", 20000 + i)).collect();
    let full_before = lab.drops("conntrack_full");
    for c in &clients {
        c.send_to(b"open", (sv, 7001)).unwrap();
    }
    // Only the connections that got in reach the server (few enough for its socket buffer).
    let mut opened = Vec::new();
    while let Some((_, from)) = received(&server) {
        opened.push(usize::from(from.port() - 20000));
    }
    let refused = lab.drops("conntrack_full") - full_before;
    assert_eq!(opened.len() as u32, CAPACITY / 2, "the table holds {CAPACITY} entries: two per connection");
    assert_eq!(opened, (0..opened.len()).collect::<Vec<_>>(), "the first connections got in, the later ones were refused");
    assert_eq!(refused, u64::from(FLOWS) - opened.len() as u64, "every refused connection is counted");
    // Replies to every client port: those of the connections the table holds pass, nothing else.
    let dropped_before = lab.drops("sg_ingress");
    let mut delivered = Vec::new();
    for i in 0..FLOWS {
        server.send_to(b"reply", (cl, 20000 + i)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    for (i, c) in clients.iter().enumerate() {
        c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        while received(c).is_some() {
            delivered.push(i);
        }
    }
    assert_eq!(delivered, opened, "exactly the tracked connections' replies arrived");
    assert_eq!(lab.drops("sg_ingress") - dropped_before, u64::from(FLOWS) - opened.len() as u64);
    let ct = lab.stats().conntrack;
    eprintln!("{} opened, {refused} refused; {ct:?}", opened.len());
    assert_eq!((ct.entries, ct.capacity), (u64::from(CAPACITY), u64::from(CAPACITY)), "{ct:?}");
    assert_eq!(ct.full, refused);
}
