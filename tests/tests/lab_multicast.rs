//! Multicast on real traffic: ordinary UDP sockets joined to a group; exactly the members get
//! every datagram, a non-member and another VPC's ENIs get nothing, a non-sender is refused,
//! members' security groups are applied per copy, and statistics count exactly.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, UdpSocket},
    time::Duration,
};

use serde_json::json;
use vpc::netns;
use vpc_tests::TestLab;

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const PORT: u16 = 5000;

const LAB: &str = "
vpcs:
  - name: prod
    cidr: 10.90.0.0/16
    vswitches: [{name: sw, cidr: 10.90.1.0/24, zone: a}]
    security_groups:
      - {name: quiet, rules: [{direction: ingress, protocol: udp, ports: 6000/6000, peer: 0.0.0.0/0}]}
    enis:
      - {name: m0, vswitch: sw, ip: 10.90.1.10}
      - {name: m1, vswitch: sw, ip: 10.90.1.11}
      - {name: m2, vswitch: sw, ip: 10.90.1.12}
      - {name: m3, vswitch: sw, ip: 10.90.1.13}
      - {name: n1, vswitch: sw, ip: 10.90.1.20}
      - {name: q1, vswitch: sw, ip: 10.90.1.30, security_groups: [quiet]}
    multicast_groups:
      - {group: 239.1.1.1, senders: [m0], members: [m1, m2, m3, q1]}
  - name: other
    cidr: 10.91.0.0/16
    vswitches: [{name: sw, cidr: 10.91.1.0/24, zone: a}]
    enis:
      - {name: o1, vswitch: sw, ip: 10.91.1.11}
    multicast_groups:
      - {group: 239.1.1.1, senders: [], members: [o1]}
";

/// A socket in `who`'s namespace joined to the group on its eth0.
fn receiver(lab: &TestLab, who: &str) -> UdpSocket {
    let ip = lab.ip(who);
    let sock = netns::in_netns(&netns::path(&lab.ns(who)), move || {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PORT))?;
        s.join_multicast_v4(&GROUP, &ip)?;
        Ok(s)
    })
    .unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    sock
}

fn sender(lab: &TestLab, who: &str) -> UdpSocket {
    let ip = lab.ip(who);
    netns::in_netns(&netns::path(&lab.ns(who)), move || {
        let s = UdpSocket::bind((ip, 0))?;
        s.set_multicast_loop_v4(false)?;
        Ok(s)
    })
    .unwrap()
}

fn drain(sock: &UdpSocket) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

#[test]
fn exactly_the_members_receive_every_datagram() {
    let lab = TestLab::up("c1", LAB);
    let names = ["m1", "m2", "m3", "n1", "q1", "o1"];
    let socks: Vec<UdpSocket> = names.iter().map(|n| receiver(&lab, n)).collect();
    let tx = sender(&lab, "m0");
    const N: usize = 50;
    for i in 0..N {
        tx.send_to(format!("datagram {i}").as_bytes(), (GROUP, PORT)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(200));
    let got: Vec<usize> = socks.iter().map(|s| drain(s).len()).collect();
    assert_eq!(
        got,
        vec![N, N, N, 0, 0, 0],
        "m1 m2 m3 get all; the non-member, the member whose rules refuse port 5000, and another VPC's member none"
    );
    // A non-sender's datagram is refused and counted.
    let rogue = sender(&lab, "m1");
    rogue.send_to(b"not a sender", (GROUP, PORT)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(socks.iter().all(|s| drain(s).is_empty()));
    assert!(lab.drops("mcast_not_sender") >= 1);
    // The multis_admin / multic_admin way: n1 joins by address through the CLI, then quits.
    let cli = |args: &[&str]| {
        let out = lab.cli().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(&["multicast", "join", "239.1.1.1", "10.90.1.20", "--vpc", "prod"]);
    tx.send_to(b"to n1 too", (GROUP, PORT)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(drain(&socks[3]).len(), 1, "n1 joined");
    cli(&["multicast", "quit", "239.1.1.1", "n1", "--vpc", "prod"]);
    let listed: serde_json::Value = serde_json::from_str(&cli(&["multicast", "list", "-o", "json"])).unwrap();
    assert!(listed.as_array().unwrap().iter().all(|g| !g["Members"].as_array().unwrap().iter().any(|m| m == "n1")), "{listed}");
    assert!(cli(&["multicast", "list"]).contains("239.1.1.1"));
    let shown = cli(&["multicast", "stats", "239.1.1.1", "--vpc", "prod"]);
    assert!(shown.contains("m1") && shown.contains("REFUSED"), "{shown}");
    for s in &socks {
        drain(s);
    }
    let n = N + 1;
    // Statistics: the group sent N, each member got N, q1's rules refused N copies.
    let stats = lab.call("DescribeMulticastGroupStatistics", json!({}));
    let group = stats["Groups"].as_array().unwrap().iter().find(|g| g["VpcName"] == "prod").unwrap().clone();
    assert_eq!(group["Packets"], n as u64, "{group}");
    assert!(group["Refused"].as_u64().unwrap() >= 1, "the non-sender's datagram");
    for m in group["Members"].as_array().unwrap() {
        let (name, packets, refused) = (m["Member"].as_str().unwrap(), m["Packets"].as_u64().unwrap(), m["Refused"].as_u64().unwrap());
        match name {
            "q1" => assert_eq!((packets, refused), (0, n as u64)),
            _ => assert_eq!((packets, refused), (n as u64, 0), "{name}"),
        }
    }
}

#[test]
fn a_group_of_128_members_all_receive_and_the_129th_is_refused() {
    let mut yaml = String::from(
        "vpcs:\n  - name: big\n    cidr: 10.92.0.0/16\n    vswitches: [{name: sw, cidr: 10.92.0.0/23, zone: a}]\n    enis:\n      - {name: s0, vswitch: sw, ip: 10.92.0.5}\n",
    );
    for i in 0..129 {
        yaml += &format!("      - {{name: m{i}, vswitch: sw, ip: 10.92.1.{}}}\n", i + 1);
    }
    let members: Vec<String> = (0..128).map(|i| format!("m{i}")).collect();
    yaml += &format!("    multicast_groups:\n      - {{group: 239.5.5.5, senders: [s0], members: [{}]}}\n", members.join(", "));
    let lab = TestLab::up("c2", &yaml);
    let group = Ipv4Addr::new(239, 5, 5, 5);
    let socks: Vec<UdpSocket> = members
        .iter()
        .map(|m| {
            let ip = lab.ip(m);
            netns::in_netns(&netns::path(&lab.ns(m)), move || {
                let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PORT))?;
                s.join_multicast_v4(&group, &ip)?;
                s.set_read_timeout(Some(Duration::from_millis(50)))?;
                Ok(s)
            })
            .unwrap()
        })
        .collect();
    let tx = sender(&lab, "s0");
    for i in 0..5 {
        tx.send_to(&[i; 32], (group, PORT)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let short: Vec<(usize, usize)> = socks.iter().enumerate().map(|(i, s)| (i, drain(s).len())).filter(|(_, n)| *n != 5).collect();
    assert!(short.is_empty(), "members that did not get all 5: {short:?}");
    // The guide's limit: a 129th member is refused, with a clear error.
    let id = lab.call("DescribeMulticastGroups", json!({}))["Groups"][0]["GroupId"].as_str().unwrap().to_string();
    let err = lab.conn.call("JoinMulticastGroup", json!({"GroupId": id, "NetworkInterfaceId": "m128"})).unwrap_err();
    assert_eq!(err.code, "QuotaExceeded.Multicast", "{}", err.message);
    assert!(err.message.contains("128"), "{}", err.message);
}

#[test]
fn membership_changes_under_traffic_count_exactly_and_survive_an_agent_restart() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    };
    let mut lab = vpc_tests::DaemonLab::up("c3", LAB, &[]);
    let rx: Vec<(String, UdpSocket)> = ["m1", "m2", "m3"]
        .iter()
        .map(|n| {
            let ip = lab.ip(n);
            let s = netns::in_netns(&netns::path(&lab.ns(n)), move || {
                let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PORT))?;
                s.join_multicast_v4(&GROUP, &ip)?;
                s.set_read_timeout(Some(Duration::from_millis(50)))?;
                Ok(s)
            })
            .unwrap();
            (n.to_string(), s)
        })
        .collect();
    // Receivers read as the datagrams come (a socket buffer holds only a few hundred).
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<(String, std::thread::JoinHandle<u64>)> = rx
        .into_iter()
        .map(|(n, s)| {
            let done = done.clone();
            (
                n,
                std::thread::spawn(move || {
                    let mut buf = [0u8; 2048];
                    let mut count = 0;
                    loop {
                        match s.recv_from(&mut buf) {
                            Ok(_) => count += 1,
                            Err(_) if done.load(Ordering::Relaxed) => return count,
                            Err(_) => {}
                        }
                    }
                }),
            )
        })
        .collect();
    let m0 = lab.ip("m0");
    let tx = netns::in_netns(&netns::path(&lab.ns("m0")), move || Ok(UdpSocket::bind((m0, 0))?)).unwrap();
    let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let (flag, count) = (stop.clone(), sent.clone());
    let sending = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            if tx.send_to(b"tick", (GROUP, PORT)).is_ok() {
                count.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    });
    let group = lab.call("DescribeMulticastGroups", json!({}))["Groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["Members"].as_array().unwrap().iter().any(|m| m == "m1"))
        .unwrap()["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(300));
    lab.call("LeaveMulticastGroup", json!({"GroupId": group, "NetworkInterfaceId": "m2"}));
    std::thread::sleep(Duration::from_millis(300));
    lab.call("JoinMulticastGroup", json!({"GroupId": group, "NetworkInterfaceId": "m2"}));
    std::thread::sleep(Duration::from_millis(300));
    // The agent dies: forwarding and replication go on in the kernel.
    lab.daemon.kill9();
    std::thread::sleep(Duration::from_millis(300));
    lab.daemon.spawn(&[]);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    sending.join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, Ordering::Relaxed);
    let got: BTreeMap<String, u64> = readers.into_iter().map(|(n, r)| (n, r.join().unwrap())).collect();
    let sent = sent.load(Ordering::Relaxed);
    // The configuration came back with the agent.
    let groups = lab.call("DescribeMulticastGroups", json!({"GroupId": group}));
    assert_eq!(groups["Groups"][0]["Members"], json!(["m1", "m3", "q1", "m2"]));
    // Statistics equal what the sockets saw; m2 missed what was sent while it was out.
    let stats = lab.call("DescribeMulticastGroupStatistics", json!({"GroupId": group}));
    let g = &stats["Groups"][0];
    assert_eq!(g["Packets"], sent, "{g}");
    for m in g["Members"].as_array().unwrap() {
        let name = m["Member"].as_str().unwrap();
        if let Some(n) = got.get(name) {
            assert_eq!(m["Packets"].as_u64().unwrap(), *n, "{name}: {g}");
        }
    }
    assert_eq!((got["m1"], got["m3"]), (sent, sent), "m1 and m3 got everything");
    assert!(got["m2"] < sent && got["m2"] > 0, "m2 missed its time out: {got:?} of {sent}");
}
