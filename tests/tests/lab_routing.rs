//! The guide's chapter 2 on real traffic: longest prefix between custom entries, a NAT instance
//! as the default route (with traceroute through it), gateways to outside networks, ECMP spread
//! and stickiness, active/standby failover, VPC peering both ways, a CEN of three VPCs, and route
//! churn under traffic.

use std::time::Duration;

use serde_json::json;
use vpc::{
    packet::Ipv4,
    tools::lab::probe::{self, Whoami},
};
use vpc_tests::TestLab;

const PORT: u16 = 7100;
const T: Duration = Duration::from_secs(2);

/// A router instance: forwards, and (for NAT) masquerades out of eth0.
fn make_router(lab: &TestLab, eni: &str, masquerade: bool) {
    lab.exec(eni, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]).unwrap();
    lab.exec(eni, &["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"]).unwrap();
    if masquerade {
        let rules = "table ip nat { chain post { type nat hook postrouting priority 100; oifname \"eth0\" masquerade; }; }";
        lab.exec(eni, &["nft", rules]).unwrap();
    }
}

#[test]
fn the_guides_longest_prefix_example() {
    // 0.0.0.0/0 -> instance A, 10.0.0.0/24 -> instance B: 10.0.0.1 goes to B, 10.0.1.1 to A.
    let lab = TestLab::up(
        "b1",
        "
vpcs:
  - name: prod
    cidr: 192.168.0.0/16
    vswitches:
      - {name: web, cidr: 192.168.0.0/24, zone: a, route_table: custom}
      - {name: inst, cidr: 192.168.1.0/24, zone: a}
    route_tables:
      - name: custom
        routes:
          - {dst: 0.0.0.0/0, next_hop: {type: eni, eni: insta}}
          - {dst: 10.0.0.0/24, next_hop: {type: eni, eni: instb}}
    enis:
      - {name: client, vswitch: web, ip: 192.168.0.10}
      - {name: insta, vswitch: inst, ip: 192.168.1.10, source_dest_check: false}
      - {name: instb, vswitch: inst, ip: 192.168.1.11, source_dest_check: false}
",
    );
    // Each instance owns one of the two addresses; an answer proves where the packet went.
    lab.exec("insta", &["ip", "addr", "add", "10.0.1.1/32", "dev", "lo"]).unwrap();
    lab.exec("instb", &["ip", "addr", "add", "10.0.0.1/32", "dev", "lo"]).unwrap();
    let _a = Whoami::start(&lab.ns("insta"), "insta", PORT).unwrap();
    let _b = Whoami::start(&lab.ns("instb"), "instb", PORT).unwrap();
    assert_eq!(probe::whoami(&lab.ns("client"), "10.0.0.1".parse().unwrap(), PORT, T).unwrap(), "instb");
    assert_eq!(probe::whoami(&lab.ns("client"), "10.0.1.1".parse().unwrap(), PORT, T).unwrap(), "insta");
    assert!(probe::ping(&lab.ns("client"), "10.0.0.1".parse().unwrap(), 2));
    // vpc trace explains the same decision and the XDP program agrees.
    let out = lab.cli().args(["trace", "--from", "client", "--to", "10.0.0.1"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("10.0.0.0/24 -> ENI instb") && text.contains("AGREE"), "{text}");
    assert!(text.contains("live kernel maps: hold exactly this configuration"), "{text}");
    // A dropped packet is exit status 3 (documented in `vpc trace --help`).
    let out = lab.cli().args(["trace", "--from", "client", "--to", "224.0.0.5"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("drop: mcast_unknown_group") && text.contains("AGREE"), "{text}");
}

const NAT: &str = "
vpcs:
  - name: prod
    cidr: 10.60.0.0/16
    vswitches:
      - {name: web, cidr: 10.60.1.0/24, zone: a}
      - {name: app, cidr: 10.60.2.0/24, zone: a, route_table: private}
    gateways: [{name: internet, networks: [203.0.113.0/24]}]
    route_tables:
      - name: system
        routes: [{dst: 0.0.0.0/0, next_hop: {type: gateway, gateway: internet}}]
      - name: private
        routes: [{dst: 0.0.0.0/0, next_hop: {type: eni, eni: nat1}}]
    enis:
      - {name: nat1, vswitch: web, ip: 10.60.1.5, source_dest_check: false}
      - {name: app1, vswitch: app, ip: 10.60.2.10}
";

#[test]
fn nat_instance_default_route_and_traceroute_through_it() {
    let lab = TestLab::up("b2", NAT);
    make_router(&lab, "nat1", true);
    let _web = Whoami::start(&lab.ns("internet"), "internet", PORT).unwrap();
    // The private VSwitch reaches the outside network only through the NAT instance.
    assert!(probe::ping(&lab.ns("app1"), "203.0.113.1".parse().unwrap(), 3));
    assert_eq!(probe::whoami(&lab.ns("app1"), "203.0.113.1".parse().unwrap(), PORT, T).unwrap(), "internet");
    // traceroute shows the path: app's gateway, the NAT instance, web's gateway, the destination.
    let out = lab.exec("app1", &["traceroute", "-n", "-q", "1", "-w", "1", "-m", "6", "203.0.113.1"]).unwrap();
    let hops: Vec<&str> = out.lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(hops, vec!["10.60.2.253", "10.60.1.5", "10.60.1.253", "203.0.113.1"], "{out}");
    let stats = lab.stats();
    let drops = stats.drops.iter().find(|d| d.reason == "ttl_exceeded").unwrap();
    assert_eq!(drops.packets, 0, "every expiring probe was answered");
}

const ECMP: &str = "
vpcs:
  - name: prod
    cidr: 10.70.0.0/16
    vswitches:
      - {name: hops, cidr: 10.70.1.0/24, zone: a}
      - {name: app, cidr: 10.70.2.0/24, zone: a, route_table: spread}
    route_tables:
      - name: spread
        routes:
          - dst: 198.51.100.0/24
            next_hop: {type: ecmp, hops: [{eni: h1}, {eni: h2}, {eni: h3}, {eni: h4}]}
    enis:
      - {name: h1, vswitch: hops, ip: 10.70.1.11, source_dest_check: false}
      - {name: h2, vswitch: hops, ip: 10.70.1.12, source_dest_check: false}
      - {name: h3, vswitch: hops, ip: 10.70.1.13, source_dest_check: false}
      - {name: h4, vswitch: hops, ip: 10.70.1.14, source_dest_check: false}
      - {name: app1, vswitch: app, ip: 10.70.2.10}
";

/// 10,000 UDP flows from app1 (distinct ports) towards 198.51.100.0/24.
fn flows(lab: &TestLab) -> Vec<Vec<u8>> {
    let t = lab.topology();
    let (_, vsw, app1) = t.eni("app1").unwrap();
    (0..10_000u32)
        .map(|i| {
            Ipv4::udp(app1.ip, "198.51.100.7".parse().unwrap(), 10_000 + (i % 50_000) as u16, 5000 + (i / 5000) as u16, b"e")
                .frame(vsw.gateway_mac, app1.mac)
        })
        .collect()
}

/// Frames each hop received while `send` ran (tx counters of their ports).
fn received(lab: &TestLab, send: impl FnOnce()) -> [u64; 4] {
    let before: Vec<u64> = ["h1", "h2", "h3", "h4"].iter().map(|h| lab.counters(h).2).collect();
    send();
    std::thread::sleep(Duration::from_millis(300));
    let after: Vec<u64> = ["h1", "h2", "h3", "h4"].iter().map(|h| lab.counters(h).2).collect();
    std::array::from_fn(|i| after[i] - before[i])
}

/// Where the model says each frame goes, counted per hop.
fn expected(lab: &TestLab, frames: &[Vec<u8>]) -> [u64; 4] {
    let t = lab.topology();
    let binding = lab.binding();
    let mut model = vpc::model::forward::Model::new(&t, &binding);
    let app1 = binding.ifindex[&t.eni("app1").unwrap().2.id];
    let ports: Vec<u32> = ["h1", "h2", "h3", "h4"].iter().map(|h| binding.ids.port(&t.eni(h).unwrap().2.id)).collect();
    let mut out = [0u64; 4];
    for frame in frames {
        if let vpc::model::forward::Action::Redirect { port } = model.process(app1, frame).action {
            out[ports.iter().position(|p| *p == port).unwrap()] += 1;
        }
    }
    out
}

#[test]
fn ecmp_spreads_flows_and_keeps_them_unless_their_hop_goes() {
    let lab = TestLab::up("b3", ECMP);
    let frames = flows(&lab);
    let first = received(&lab, || probe::send_frames(&lab.ns("app1"), "eth0", frames.clone()).unwrap());
    for (i, n) in first.iter().enumerate() {
        assert!((2200..=2800).contains(n), "hop h{} got {n} of 10,000 flows: {first:?}", i + 1);
    }
    assert_eq!(first, expected(&lab, &frames), "live traffic went exactly where the model says");
    // Sticky: the same flows again land on the same hops.
    let again = received(&lab, || probe::send_frames(&lab.ns("app1"), "eth0", frames.clone()).unwrap());
    assert_eq!(again, first);
    // h2's interface goes away: only h2's flows move, spread over the others.
    let host = lab.opts.naming.host_ifname(lab.topology().eni("h2").unwrap().2);
    vpc::tools::lab::ip(&["link", "del", &host]).unwrap();
    lab.call("SyncInterfaces", json!({}));
    let after = received(&lab, || probe::send_frames(&lab.ns("app1"), "eth0", frames.clone()).unwrap());
    assert_eq!(after[1], 0);
    for i in [0, 2, 3] {
        assert!(after[i] >= first[i], "a flow left surviving hop h{}: {first:?} -> {after:?}", i + 1);
    }
    assert_eq!(after.iter().sum::<u64>(), 10_000);
    assert_eq!(after, expected(&lab, &frames));
    let entries =
        lab.call("DescribeRouteEntryList", json!({"RouteTableId": lab.topology().vpc("prod").unwrap().route_table("spread").unwrap().id}));
    let hops = &entries["RouteEntrys"].as_array().unwrap().iter().find(|e| e["Type"] == "Custom").unwrap()["NextHops"];
    assert_eq!(hops[1]["Status"], "Down", "{hops}");
}

const HA: &str = "
vpcs:
  - name: prod
    cidr: 10.80.0.0/16
    vswitches:
      - {name: transit, cidr: 10.80.1.0/24, zone: a, route_table: out}
      - {name: app, cidr: 10.80.2.0/24, zone: a, route_table: ha}
    gateways: [{name: remote, networks: [10.99.0.0/16]}]
    route_tables:
      - name: out
        routes: [{dst: 10.99.0.0/16, next_hop: {type: gateway, gateway: remote}}]
      - name: ha
        routes:
          - dst: 10.99.0.0/16
            next_hop:
              type: active_standby
              hops: [{eni: r1}, {eni: r2}]
              health_check: {method: arp, interval: 100ms, threshold: 3}
    enis:
      - {name: r1, vswitch: transit, ip: 10.80.1.11, source_dest_check: false}
      - {name: r2, vswitch: transit, ip: 10.80.1.12, source_dest_check: false}
      - {name: app1, vswitch: app, ip: 10.80.2.10}
";

/// Timestamps (seconds) of the answered pings in `ping -D` output.
fn reply_times(output: &str) -> Vec<f64> {
    output.lines().filter(|l| l.contains("bytes from")).filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok()).collect()
}

fn hop_statuses(d: &vpc_tests::Daemon, table: &str) -> Vec<String> {
    let entries = d.call("DescribeRouteEntryList", json!({"RouteTableId": table}));
    let custom = entries["RouteEntrys"].as_array().unwrap().iter().find(|e| e["Type"] == "Custom").unwrap().clone();
    custom["NextHops"].as_array().unwrap().iter().map(|h| h["Status"].as_str().unwrap().to_string()).collect()
}

#[test]
fn active_standby_fails_over_within_a_second_and_back() {
    let d = vpc_tests::Daemon::start("b4", &[]);
    let naming = d.opts.naming.clone();
    let spec = vpc::cli::parse_topology("b4", HA).unwrap();
    let lab = TestLab { opts: d.opts.clone(), conn: d.conn(), specs: vec![spec.clone()], tag: "b4".into() };
    vpc::tools::lab::up(&d.conn(), &naming, &spec).unwrap();
    make_router(&lab, "r1", false);
    make_router(&lab, "r2", false);
    let table = lab.topology().vpc("prod").unwrap().route_table("ha").unwrap().id.clone();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(hop_statuses(&d, &table), vec!["Active", "Standby"]);
    assert!(probe::ping(&lab.ns("app1"), "10.99.0.1".parse().unwrap(), 2));

    // A 4 s ping stream at 100 pps; the active router's link fails after 1 s.
    let ping = std::process::Command::new("ip")
        .args(["netns", "exec", &naming.netns("app1"), "ping", "-D", "-n", "-i", "0.01", "-c", "400", "-W", "1", "10.99.0.1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    lab.exec("r1", &["ip", "link", "set", "eth0", "down"]).unwrap();
    let out = ping.wait_with_output().unwrap();
    let times = reply_times(&String::from_utf8_lossy(&out.stdout));
    let longest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    eprintln!("active/standby failover: longest gap between answered pings {:.0} ms ({} of 400 answered)", longest * 1000.0, times.len());
    assert!(longest < 1.0, "traffic moved to the standby after {longest:.3} s");
    assert!(times.len() >= 300, "{} answered", times.len());
    assert_eq!(hop_statuses(&d, &table), vec!["Down", "Active"]);

    // Recovery: the active router comes back and takes the traffic again.
    lab.exec("r1", &["ip", "link", "set", "eth0", "up"]).unwrap();
    lab.exec("r1", &["ip", "route", "replace", "default", "via", "10.80.1.253", "dev", "eth0"]).unwrap();
    let start = std::time::Instant::now();
    while hop_statuses(&d, &table) != ["Active", "Standby"] {
        assert!(start.elapsed() < Duration::from_secs(5), "r1 never came back: {:?}", hop_statuses(&d, &table));
        std::thread::sleep(Duration::from_millis(50));
    }
    let r1_before = lab.counters("r1").2;
    assert!(probe::ping(&lab.ns("app1"), "10.99.0.1".parse().unwrap(), 3));
    assert!(lab.counters("r1").2 >= r1_before + 3, "the pings went through r1 again");
    drop(lab);
}

#[test]
fn vpc_peering_both_ways_as_in_the_guide() {
    // Express Connect between VPC 1 (172.16.0.0/12) and VPC 2 (192.168.0.0/16): a route in each.
    let lab = TestLab::up(
        "b5",
        "
vpcs:
  - name: vpc1
    cidr: 172.16.0.0/12
    vswitches: [{name: s1, cidr: 172.16.1.0/24, zone: a}]
    route_tables: [{name: system, routes: [{dst: 192.168.0.0/16, next_hop: {type: vpc, vpc: vpc2}}]}]
    security_groups: [{name: from-vpc2, rules: [{direction: ingress, protocol: tcp, ports: 7100/7100, peer: 192.168.0.0/16}]}]
    enis: [{name: one, vswitch: s1, ip: 172.16.1.10, security_groups: [default, from-vpc2]}]
  - name: vpc2
    cidr: 192.168.0.0/16
    vswitches: [{name: s2, cidr: 192.168.1.0/24, zone: a}]
    route_tables: [{name: system, routes: [{dst: 172.16.0.0/12, next_hop: {type: vpc, vpc: vpc1}}]}]
    security_groups: [{name: from-vpc1, rules: [{direction: ingress, protocol: tcp, ports: 7100/7100, peer: 172.16.0.0/12}]}]
    enis: [{name: two, vswitch: s2, ip: 192.168.1.10, security_groups: [default, from-vpc1]}]
  - name: vpc3
    cidr: 10.0.0.0/8
    vswitches: [{name: s3, cidr: 10.0.1.0/24, zone: a}]
    # Open to everyone: what keeps vpc3 apart is routing alone.
    security_groups: [{name: open, rules: [{direction: ingress, protocol: all, peer: 0.0.0.0/0}]}]
    enis: [{name: three, vswitch: s3, ip: 10.0.1.10, security_groups: [open]}]
",
    );
    let _servers: Vec<Whoami> = ["one", "two", "three"].iter().map(|e| Whoami::start(&lab.ns(e), e, PORT).unwrap()).collect();
    assert_eq!(probe::whoami(&lab.ns("one"), "192.168.1.10".parse().unwrap(), PORT, T).unwrap(), "two");
    assert_eq!(probe::whoami(&lab.ns("two"), "172.16.1.10".parse().unwrap(), PORT, T).unwrap(), "one");
    assert!(probe::ping(&lab.ns("one"), "192.168.1.10".parse().unwrap(), 2));
    // vpc3 is not peered with anyone.
    assert!(probe::whoami(&lab.ns("one"), "10.0.1.10".parse().unwrap(), PORT, Duration::from_millis(400)).is_err());
    assert!(probe::whoami(&lab.ns("three"), "172.16.1.10".parse().unwrap(), PORT, Duration::from_millis(400)).is_err());
}

#[test]
fn a_cen_of_three_vpcs_connects_every_pair() {
    let three = "
vpcs:
  - {name: va, cidr: 10.1.0.0/16, vswitches: [{name: sa, cidr: 10.1.1.0/24, zone: a}], security_groups: [{name: corp, rules: [{direction: ingress, protocol: tcp, ports: 7100/7100, peer: 10.0.0.0/8}]}], enis: [{name: ea, vswitch: sa, ip: 10.1.1.10, security_groups: [corp]}]}
  - {name: vb, cidr: 10.2.0.0/16, vswitches: [{name: sb, cidr: 10.2.1.0/24, zone: a}], security_groups: [{name: corp, rules: [{direction: ingress, protocol: tcp, ports: 7100/7100, peer: 10.0.0.0/8}]}], enis: [{name: eb, vswitch: sb, ip: 10.2.1.10, security_groups: [corp]}]}
  - {name: vc, cidr: 10.3.0.0/16, vswitches: [{name: sc, cidr: 10.3.1.0/24, zone: a}], security_groups: [{name: corp, rules: [{direction: ingress, protocol: tcp, ports: 7100/7100, peer: 10.0.0.0/8}]}], enis: [{name: ec, vswitch: sc, ip: 10.3.1.10, security_groups: [corp]}]}
  - {name: vd, cidr: 10.1.0.0/16, vswitches: [{name: sd, cidr: 10.1.1.0/24, zone: a}]}
";
    let lab = TestLab::up("b6", &format!("{three}cens: [{{name: corp, vpcs: [va, vb, vc]}}]\n"));
    let _servers: Vec<Whoami> = ["ea", "eb", "ec"].iter().map(|e| Whoami::start(&lab.ns(e), e, PORT).unwrap()).collect();
    let addr = |e: &str| lab.ip(e);
    for from in ["ea", "eb", "ec"] {
        for to in ["ea", "eb", "ec"].iter().filter(|t| **t != from) {
            assert_eq!(probe::whoami(&lab.ns(from), addr(to), PORT, T).unwrap(), *to, "{from} -> {to}");
        }
    }
    // The routes were learned: shown as CEN entries.
    let va = lab.topology().vpc("va").unwrap().system_table().id.clone();
    let entries = lab.call("DescribeRouteEntryList", json!({"RouteTableId": va, "RouteEntryType": "CEN"}));
    assert_eq!(entries["TotalCount"], 2, "{entries}");
    // A VPC overlapping a member cannot join.
    let cen = lab.call("DescribeCens", json!({}))["Cens"][0]["CenId"].as_str().unwrap().to_string();
    let vd = lab.topology().vpc("vd").unwrap().id.clone();
    let err = lab.conn.call("AttachCenChildInstance", json!({"CenId": cen, "ChildInstanceId": vd})).unwrap_err();
    assert_eq!(err.code, "InvalidCen.CidrOverlapped", "{}", err.message);
    // Detaching vc removes its routes both ways.
    let vc = lab.topology().vpc("vc").unwrap().id.clone();
    lab.call("DetachCenChildInstance", json!({"CenId": cen, "ChildInstanceId": vc}));
    assert!(probe::whoami(&lab.ns("ea"), addr("ec"), PORT, Duration::from_millis(400)).is_err());
    assert_eq!(probe::whoami(&lab.ns("ea"), addr("eb"), PORT, T).unwrap(), "eb");
}

#[test]
fn route_churn_never_delivers_to_a_wrong_hop() {
    let base = "
vpcs:
  - name: prod
    cidr: 10.90.0.0/16
    vswitches:
      - {name: hops, cidr: 10.90.1.0/24, zone: a}
      - {name: app, cidr: 10.90.2.0/24, zone: a, route_table: churn}
    enis:
      - {name: right, vswitch: hops, ip: 10.90.1.11, source_dest_check: false}
      - {name: wrong, vswitch: hops, ip: 10.90.1.12, source_dest_check: false}
      - {name: app1, vswitch: app, ip: 10.90.2.10}
    route_tables:
      - name: churn
        routes:
          - {dst: 203.0.113.0/24, next_hop: {type: eni, eni: right}}
";
    // 10,000 entries that never cover 203.0.113.0/24, all to the wrong hop; each round another set.
    let table = |round: u32| {
        let mut yaml = base.to_string();
        for i in 0..10_000u32 {
            let n = i + round * 10_000;
            let (a, b) = (20 + (n / 65_536) % 150, n % 65_536);
            yaml += &format!("          - {{dst: {a}.{}.{}.0/24, next_hop: {{type: eni, eni: wrong}}}}\n", b / 256, b % 256);
        }
        yaml
    };
    let mut lab = TestLab::up("b7", &table(0));
    let t = lab.topology();
    let (_, vsw, app1) = t.eni("app1").unwrap();
    let frames: Vec<Vec<u8>> = (0..200u16)
        .map(|i| Ipv4::udp(app1.ip, "203.0.113.9".parse().unwrap(), 20_000 + i, 53, b"churn").frame(vsw.gateway_mac, app1.mac))
        .collect();
    let (right_before, wrong_before) = (lab.counters("right").2, lab.counters("wrong").2);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ns, flag, sent_frames) = (lab.ns("app1"), stop.clone(), frames.clone());
    let sender = std::thread::spawn(move || {
        let mut sent = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            probe::send_frames(&ns, "eth0", sent_frames.clone()).unwrap();
            sent += sent_frames.len() as u64;
        }
        sent
    });
    for round in 1..=3 {
        let started = std::time::Instant::now();
        let applied = lab.reapply(&table(round));
        eprintln!("churn round {round}: 10,000 entries replaced in {:?}: {}", started.elapsed(), applied["Report"]["Changes"]["Routes"]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = sender.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (right, wrong) = (lab.counters("right").2 - right_before, lab.counters("wrong").2 - wrong_before);
    assert_eq!(wrong, 0, "{wrong} frames went to the wrong hop");
    assert_eq!(right, sent, "every frame reached the right hop");
    assert!(sent >= 1000, "traffic ran throughout ({sent} frames)");
}

#[test]
fn a_route_change_applies_to_established_flows_at_once() {
    // The flow cache keeps each flow's decision until the configuration epoch changes: the first
    // frame of an established flow after a change is routed by the new table.
    let lab = TestLab::up(
        "b8",
        "
vpcs:
  - name: prod
    cidr: 10.91.0.0/16
    vswitches: [{name: hops, cidr: 10.91.1.0/24, zone: a}]
    enis:
      - {name: app1, vswitch: hops, ip: 10.91.1.10}
      - {name: hop1, vswitch: hops, ip: 10.91.1.11, source_dest_check: false}
      - {name: hop2, vswitch: hops, ip: 10.91.1.12, source_dest_check: false}
    route_tables: [{name: system, routes: [{dst: 198.51.100.0/24, next_hop: {type: eni, eni: hop1}}]}]
",
    );
    let t = lab.topology();
    let (vpc, vsw, app1) = t.eni("app1").unwrap();
    let table = vpc.system_table().id.clone();
    // One established flow: the same 5-tuple in every burst.
    let burst = || vec![Ipv4::udp(app1.ip, "198.51.100.9".parse().unwrap(), 4000, 53, b"flow").frame(vsw.gateway_mac, app1.mac); 50];
    let hops = || (lab.counters("hop1").2, lab.counters("hop2").2);
    let send = || {
        let before = hops();
        probe::send_frames(&lab.ns("app1"), "eth0", burst()).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let after = hops();
        (after.0 - before.0, after.1 - before.1)
    };
    assert_eq!(send(), (50, 0));
    let created = lab.call(
        "CreateRouteEntry",
        json!({"RouteTableId": table, "DestinationCidrBlock": "198.51.100.9/32", "NextHopType": "Instance", "NextHopId": "hop2"}),
    );
    assert_eq!(send(), (0, 50), "the flow follows the more specific entry from the next frame on");
    lab.call("DeleteRouteEntry", json!({"RouteEntryId": created["RouteEntryId"]}));
    assert_eq!(send(), (50, 0), "and goes back when it is deleted");
    let cache = |name: &str| lab.stats().events.iter().find(|e| e.event == name).map(|e| e.count).unwrap_or(0);
    assert!(cache("flow_cache_hit") > 0 && cache("flow_cache_miss") > 0, "the flow cache was in the path");
}
