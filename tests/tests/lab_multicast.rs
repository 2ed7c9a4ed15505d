//! Multicast on real traffic: ordinary UDP sockets joined to a group; exactly the members get
//! every datagram, a non-member and another VPC's ENIs get nothing, a non-sender is refused,
//! members' security groups are applied per copy, and statistics count exactly.

use std::{
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
    assert_eq!(got, vec![N, N, N, 0, 0, 0], "m1 m2 m3 get all; the non-member, the member whose rules refuse port 5000, and another VPC's member none");
    // A non-sender's datagram is refused and counted.
    let rogue = sender(&lab, "m1");
    rogue.send_to(b"not a sender", (GROUP, PORT)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(socks.iter().all(|s| drain(s).is_empty()));
    assert!(lab.drops("mcast_not_sender") >= 1);
    // Statistics: the group sent N, each member got N, q1's rules refused N copies.
    let stats = lab.call("DescribeMulticastGroupStatistics", json!({}));
    let group = stats["Groups"].as_array().unwrap().iter().find(|g| g["VpcName"] == "prod").unwrap().clone();
    assert_eq!(group["Packets"], N as u64, "{group}");
    assert!(group["Refused"].as_u64().unwrap() >= 1, "the non-sender's datagram");
    for m in group["Members"].as_array().unwrap() {
        let (name, packets, refused) = (m["Member"].as_str().unwrap(), m["Packets"].as_u64().unwrap(), m["Refused"].as_u64().unwrap());
        match name {
            "q1" => assert_eq!((packets, refused), (0, N as u64)),
            _ => assert_eq!((packets, refused), (N as u64, 0), "{name}"),
        }
    }
}
