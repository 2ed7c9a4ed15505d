//! One VPC across three hosts, on real packets, brought up as a user would with `vpc lab up -f`:
//! each host is a network namespace with its own agent (pin root, state directory, socket:
//! `vpc daemon --host --underlay --peer`) and an underlay veth on a bridge in a fabric namespace;
//! guests on different hosts reach each other through the Geneve overlay. Checked: ping and TCP within and across VSwitches, identical
//! CIDRs of two VPCs kept apart (by the VNI on the wire, read off the fabric), a 4 MB transfer
//! through the overlay's smaller MTU (path-MTU discovery from the gateway's fragmentation
//! needed), exact overlay counters for a burst of datagrams, the hosts each agent sees, and a
//! spoofed Geneve frame from the fabric dropped and counted.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use vpc::{
    agent::HostOptions,
    api::Conn,
    cli::parse_topology,
    netns,
    tools::lab::{
        self,
        hosts::{self, LabHost},
        probe::{self, Capture, Whoami},
    },
};
use vpc_common::tunnel::{self, OUTER_LEN, Outer};
use vpc_tests::{checked, options, vpc_bin};

const TOPOLOGY: &str = "
vpcs:
  - name: prod
    cidr: 10.0.0.0/8
    vswitches: [{name: s1, cidr: 10.1.0.0/24, zone: a}, {name: s2, cidr: 10.1.1.0/24, zone: b}]
    security_groups:
      - name: web
        rules:
          - {direction: ingress, policy: accept, protocol: icmp, ports: -1/-1, peer: 10.0.0.0/8, priority: 1}
          - {direction: ingress, policy: accept, protocol: tcp, ports: 5201/5202, peer: {group: web}, priority: 1}
          - {direction: ingress, policy: accept, protocol: udp, ports: 7000/7000, peer: 10.0.0.0/8, priority: 1}
    enis:
      - {name: a1, vswitch: s1, ip: 10.1.0.10, security_groups: [web], host: h1}
      - {name: b1, vswitch: s1, ip: 10.1.0.20, security_groups: [web], host: h2}
      - {name: b2, vswitch: s2, ip: 10.1.1.20, security_groups: [web], host: h2}
      - {name: c1, vswitch: s2, ip: 10.1.1.30, security_groups: [web], host: h3}
  - name: dev
    cidr: 10.0.0.0/8
    vswitches: [{name: d1, cidr: 10.1.0.0/24, zone: a}]
    security_groups:
      - name: open
        rules: [{direction: ingress, policy: accept, protocol: all, ports: -1/-1, peer: 0.0.0.0/0, priority: 1}]
    enis:
      - {name: x1, vswitch: d1, ip: 10.1.0.10, security_groups: [open], host: h1}
      - {name: x2, vswitch: d1, ip: 10.1.0.20, security_groups: [open], host: h2}
";

/// A host of the lab: its namespace and agent (made by `vpc lab up`).
struct Host(LabHost);

impl Host {
    fn conn(&self) -> Conn {
        Conn::Remote(self.0.opts.socket())
    }

    fn call(&self, action: &str, body: Value) -> Value {
        checked(action, self.conn().call(action, body).unwrap_or_else(|e| panic!("{action} on {}: {e}\n{}", self.0.name, self.log())))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.0.opts.state_dir.join("daemon.log")).unwrap_or_default()
    }

    /// The data path's counters of ENI `name` here: (rx, tx) packets.
    fn counters(&self, name: &str) -> (u64, u64) {
        let stats = self.call("DescribeStatistics", json!({}));
        let eni = stats["Enis"].as_array().unwrap().iter().find(|e| e["NetworkInterfaceName"] == name).unwrap_or_else(|| panic!("{name}"));
        (eni["RxPackets"].as_u64().unwrap(), eni["TxPackets"].as_u64().unwrap())
    }

    /// What the data path counted here, for a failure's message.
    fn report(&self) -> String {
        let stats = self.call("DescribeStatistics", json!({}));
        let drops: Vec<String> = stats["Drops"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["Packets"] != 0)
            .map(|d| format!("{}={}", d["Reason"], d["Packets"]))
            .collect();
        let enis: Vec<String> = stats["Enis"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{} rx {} tx {}", e["NetworkInterfaceName"], e["RxPackets"], e["TxPackets"]))
            .collect();
        format!("drops [{}], ENIs [{}], hosts {}\n{}", drops.join(", "), enis.join(", "), self.call("DescribeHosts", json!({})), self.log())
    }

    /// An event counter of the data path here (`vpc stats`' events).
    fn event(&self, name: &str) -> u64 {
        let stats = self.call("DescribeStatistics", json!({}));
        stats["Events"].as_array().unwrap().iter().find(|e| e["Event"] == name).map_or(0, |e| e["Count"].as_u64().unwrap())
    }

    fn drops(&self, reason: &str) -> u64 {
        let stats = self.call("DescribeStatistics", json!({}));
        stats["Drops"].as_array().unwrap().iter().find(|d| d["Reason"] == reason).map_or(0, |d| d["Packets"].as_u64().unwrap())
    }
}

/// The lab across hosts as `vpc lab up -f` makes it; `vpc lab down -f` on drop, even when the
/// test fails.
struct Cluster {
    opts: HostOptions,
    file: std::path::PathBuf,
    hosts: Vec<Host>,
}

impl Cluster {
    fn up() -> Cluster {
        let opts = options("mh");
        std::fs::create_dir_all(&opts.state_dir).unwrap();
        let file = opts.state_dir.join("topology.yaml");
        std::fs::write(&file, TOPOLOGY).unwrap();
        // What an aborted run left goes first.
        let _ = lab_command(&opts, "down", &file);
        let out = lab_command(&opts, "up", &file);
        assert!(out.status.success(), "vpc lab up: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let spec = parse_topology("mh", TOPOLOGY).unwrap();
        let hosts = hosts::lab_hosts(&opts, &spec).into_iter().map(Host).collect();
        Cluster { opts, file, hosts }
    }

    fn guest(&self, eni: &str) -> String {
        self.opts.naming.netns(eni)
    }

    fn fabric(&self) -> String {
        hosts::fabric(&self.opts)
    }

    /// The fabric side of host `i`'s underlay.
    fn fabric_side(&self, i: usize) -> String {
        format!("{}f{}", self.opts.naming.prefix, i + 1)
    }

    fn underlay_ip(&self, i: usize) -> Ipv4Addr {
        self.hosts[i].0.underlay_ip
    }

    /// Wait until each agent sees the other host up (its underlay neighbour resolved).
    fn wait_up(&self) {
        for host in &self.hosts {
            let start = Instant::now();
            loop {
                let hosts = host.call("DescribeHosts", json!({}));
                if hosts["Hosts"].as_array().unwrap().iter().all(|h| h["Status"] != "Down") {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(15), "{}: {hosts}\n{}", host.0.name, host.log());
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// `vpc lab up|down -f FILE` with this lab's options.
fn lab_command(opts: &HostOptions, what: &str, file: &std::path::Path) -> std::process::Output {
    Command::new(vpc_bin())
        .args(["--bpffs", &opts.bpffs.display().to_string(), "--state-dir", &opts.state_dir.display().to_string()])
        .args(["--prefix", &opts.naming.prefix, "lab", what, "-f", &file.display().to_string()])
        .output()
        .expect("vpc binary")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = lab_command(&self.opts, "down", &self.file);
        if !out.status.success() {
            eprintln!("vpc lab down: {}", String::from_utf8_lossy(&out.stderr));
        }
        let _ = std::fs::remove_dir_all(&self.opts.state_dir);
    }
}

/// Datagrams of a VPC's packets on the fabric side of `host`'s underlay, as (VNI, source ENI,
/// destination ENI) read from their Geneve headers.
fn geneve(frames: &[Vec<u8>], to: Ipv4Addr) -> Vec<(u32, u32, u32)> {
    frames
        .iter()
        .filter(|f| f.len() > OUTER_LEN)
        .filter_map(|f| match tunnel::outer(f[..OUTER_LEN].try_into().unwrap(), f.len(), u32::from_ne_bytes(to.octets())) {
            Outer::Geneve { vni, src_eni, dst_eni, .. } => Some((vni, src_eni, dst_eni)),
            _ => None,
        })
        .collect()
}

#[test]
fn guests_on_three_hosts_talk_through_the_overlay() {
    let cluster = Cluster::up();
    cluster.wait_up();
    let (h1, h2) = (&cluster.hosts[0], &cluster.hosts[1]);
    let ids = h1.call("ExportTopology", json!({}))["Ids"].clone();
    let topology = lab::configured(&h1.conn()).unwrap();
    let vpc_number = |name: &str| ids["vpcs"][&topology.vpc(name).unwrap().id].as_u64().unwrap() as u32;
    let port = |eni: &str| ids["ports"][&topology.eni(eni).unwrap().2.id].as_u64().unwrap() as u32;
    let addr = |eni: &str| topology.eni(eni).unwrap().2.ip;

    // Each agent sees every host and where the ENIs are.
    let seen = h1.call("DescribeHosts", json!({}));
    assert_eq!(seen["Host"], "h1");
    let other = seen["Hosts"].as_array().unwrap().iter().find(|h| h["HostName"] == "h2").unwrap().clone();
    assert_eq!((other["Status"].clone(), other["UnderlayAddress"].clone()), (json!("Up"), json!("10.255.0.2")));
    assert_eq!(other["NetworkInterfaceNames"], json!(["b1", "b2", "x2"]));
    assert_eq!(seen["Underlay"]["TunnelMtu"], 1500 - 58);

    // Ping across hosts, in one VSwitch and across two; watched on the fabric.
    let capture = Capture::start(&cluster.fabric(), &cluster.fabric_side(0)).unwrap();
    assert!(probe::ping(&cluster.guest("a1"), addr("b1"), 3), "a1 -> b1: h1 {} / h2 {}", h1.report(), h2.report());
    assert!(probe::ping(&cluster.guest("a1"), addr("b2"), 3), "a1 -> b2");
    assert!(probe::ping(&cluster.guest("a1"), addr("c1"), 3), "a1 -> c1 (h1 to h3)");
    assert!(probe::ping(&cluster.guest("b1"), addr("c1"), 3), "b1 -> c1 (h2 to h3)");
    assert!(probe::ping(&cluster.guest("x1"), addr("x2"), 3), "x1 -> x2 (dev)");
    let seen = geneve(&capture.stop(), cluster.underlay_ip(1));
    assert!(seen.contains(&(vpc_number("prod"), port("a1"), port("b1"))), "prod's VNI from a1 to b1 on the wire: {seen:?}");
    assert!(seen.contains(&(vpc_number("dev"), port("x1"), port("x2"))), "dev's VNI from x1 to x2 on the wire: {seen:?}");
    assert_ne!(vpc_number("prod"), vpc_number("dev"));

    // The same address in two VPCs is two guests: TCP says who answered.
    let _b1 = Whoami::start(&cluster.guest("b1"), "b1", 5201).unwrap();
    let _x2 = Whoami::start(&cluster.guest("x2"), "x2", 5201).unwrap();
    let who = |from: &str| probe::whoami(&cluster.guest(from), addr("b1"), 5201, Duration::from_secs(3)).unwrap();
    assert_eq!((who("a1"), who("x1")), ("b1".to_string(), "x2".to_string()));

    // 4 MB of TCP a1 -> b2: the guests' MTU is 1500, the overlay's 1442, so the sender learns
    // the path MTU from its gateway's fragmentation-needed and the transfer completes.
    let sink = netns::in_netns(&netns::path(&cluster.guest("b2")), || Ok(TcpListener::bind(("0.0.0.0", 5202))?)).unwrap();
    let receiver = std::thread::spawn(move || {
        let (mut conn, _) = sink.accept().unwrap();
        let mut data = Vec::new();
        conn.read_to_end(&mut data).unwrap();
        data
    });
    let payload: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let sent = payload.clone();
    let to = addr("b2");
    netns::in_netns(&netns::path(&cluster.guest("a1")), move || {
        let mut conn = TcpStream::connect_timeout(&(to, 5202).into(), Duration::from_secs(3))?;
        conn.set_write_timeout(Some(Duration::from_secs(20)))?;
        conn.write_all(&sent)?;
        Ok(())
    })
    .unwrap();
    let received = receiver.join().unwrap();
    assert!(received == payload, "received {} of {} bytes intact", received.len(), payload.len());

    // Exact overlay counts: 50 datagrams a1 -> b1 are 50 encapsulated at h1 (on b1's tunnel
    // port there) and 50 decapsulated at h2 (on a1's tunnel port there), all received.
    let listener = netns::in_netns(&netns::path(&cluster.guest("b1")), || Ok(UdpSocket::bind(("0.0.0.0", 7000))?)).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let (before_h1, before_h2) = (h1.counters("b1"), h2.counters("a1"));
    let (encapsulated, decapsulated) = (h1.event("overlay_encapsulated"), h2.event("overlay_decapsulated"));
    netns::in_netns(&netns::path(&cluster.guest("a1")), move || {
        let socket = UdpSocket::bind(("0.0.0.0", 0))?;
        for i in 0..50u32 {
            socket.send_to(&i.to_be_bytes(), (to_b1(), 7000))?;
        }
        Ok(())
    })
    .unwrap();
    let mut got = 0;
    let mut buf = [0u8; 64];
    while got < 50 && listener.recv(&mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, 50, "every datagram arrived");
    let (after_h1, after_h2) = (h1.counters("b1"), h2.counters("a1"));
    assert_eq!(after_h1.1 - before_h1.1, 50, "encapsulated at h1 to b1");
    assert_eq!(after_h2.0 - before_h2.0, 50, "decapsulated at h2 from a1");
    assert_eq!(h1.event("overlay_encapsulated") - encapsulated, 50);
    assert_eq!(h2.event("overlay_decapsulated") - decapsulated, 50);

    // A frame on the fabric claiming h1 but naming b2 (an ENI of h2 itself) as its source.
    let capture = Capture::start(&cluster.fabric(), &cluster.fabric_side(0)).unwrap();
    assert!(probe::ping(&cluster.guest("a1"), addr("b1"), 1));
    let good =
        capture.stop().into_iter().find(|f| !geneve(std::slice::from_ref(f), cluster.underlay_ip(1)).is_empty()).expect("a Geneve frame");
    let mut spoofed = good.clone();
    spoofed[54..58].copy_from_slice(&port("b2").to_be_bytes());
    let before = h2.drops("tunnel_spoofed");
    probe::send_frames(&cluster.fabric(), &cluster.fabric_side(1), vec![spoofed; 5]).unwrap();
    let start = Instant::now();
    while h2.drops("tunnel_spoofed") < before + 5 && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(h2.drops("tunnel_spoofed") - before, 5, "spoofed source ENI dropped and counted at h2");

    // One configuration for the cluster, in the lab's etcd: both hosts hold the same IDs and
    // numbers, and a rule authorized through h1 reaches h2, where b1 is: ICMP from a1 is refused.
    assert_eq!(ids, h2.call("ExportTopology", json!({}))["Ids"], "the same numbers on both hosts");
    assert_eq!(h1.call("DescribeHosts", json!({}))["Revision"], h2.call("DescribeHosts", json!({}))["Revision"], "at one revision");
    let web = topology.vpc("prod").unwrap().security_group("web").unwrap().id.clone();
    let changed = Instant::now();
    let rule = h1.call(
        "AuthorizeSecurityGroup",
        json!({"SecurityGroupId": web, "IpProtocol": "icmp", "SourceCidrIp": "10.1.0.10/32", "Policy": "drop", "Priority": 1}),
    )["SecurityGroupRuleId"]
        .clone();
    // h2 has it when its agent holds it: it writes its data path before it says so.
    while !h2.call("ExportTopology", json!({}))["Topology"].to_string().contains(rule.as_str().unwrap()) {
        assert!(changed.elapsed() < Duration::from_secs(5), "the rule never reached h2: {}", h2.report());
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("a rule authorized on h1 was in h2's data path {:?} after the call", changed.elapsed());
    assert!(!probe::ping(&cluster.guest("a1"), addr("b1"), 1), "ICMP refused at h2");
    assert!(!probe::ping(&cluster.guest("a1"), addr("b2"), 1), "b2 is in the group too");
    assert!(probe::ping(&cluster.guest("x1"), addr("x2"), 1), "another VPC's guests are untouched");

    // h2's agent killed: its registration lapses, and h1 sends it nothing more (counted as
    // host_down); started again by lab up, it registers again and traffic flows.
    let agent: i32 = std::fs::read_to_string(h2.0.opts.state_dir.join("lab-agent")).unwrap().trim().parse().unwrap();
    let killed = Instant::now();
    // SAFETY: killing the lab's agent of h2.
    unsafe { libc::kill(agent, libc::SIGKILL) };
    let status = |h: &Host, of: &str| {
        h.call("DescribeHosts", json!({}))["Hosts"].as_array().unwrap().iter().find(|x| x["HostName"] == of).unwrap()["Status"].clone()
    };
    while status(h1, "h2") != "Down" {
        assert!(killed.elapsed() < Duration::from_secs(15), "h2 still up at h1 after its agent died: {}", h1.report());
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("h1 saw h2 down {:?} after its agent was killed", killed.elapsed());
    let before = h1.drops("host_down");
    assert!(!probe::ping(&cluster.guest("x1"), addr("x2"), 1));
    assert!(h1.drops("host_down") > before, "counted at h1");
    let out = lab_command(&cluster.opts, "up", &cluster.file);
    assert!(out.status.success(), "lab up again: {}", String::from_utf8_lossy(&out.stderr));
    let restarted = Instant::now();
    while status(h1, "h2") != "Up" {
        assert!(restarted.elapsed() < Duration::from_secs(10), "h2 never came back: {}", h1.report());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(probe::ping(&cluster.guest("x1"), addr("x2"), 3), "traffic flows to h2 again");

    // etcd gone: forwarding goes on as configured, and a change is refused with a clear error.
    let pid: i32 = std::fs::read_to_string(cluster.opts.state_dir.join("etcd.pid")).unwrap().trim().parse().unwrap();
    // SAFETY: killing the lab's etcd.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(300));
    assert!(probe::ping(&cluster.guest("x1"), addr("x2"), 3), "forwarding without the store");
    let refused = h1.conn().call("CreateVpc", json!({"CidrBlock": "192.168.0.0/16", "VpcName": "late"}));
    let message = format!("{}", refused.expect_err("a change without the store"));
    assert!(message.contains("etcd"), "the error names the store: {message}");
}

fn to_b1() -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, 20)
}
