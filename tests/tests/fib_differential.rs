//! Our longest-prefix match against the Linux kernel's own FIB: each random route table is also
//! loaded into a kernel routing table (each entry via its own next-hop address, so the answer
//! names the entry), and for 10,000 random destinations per table the entry `ip route get`
//! picks must be the one the model picks and the one our LPM trie holds.

use std::{collections::BTreeMap, io::Write as _, net::Ipv4Addr, process::Command};

use vpc::{
    model::{Topology, forward::lpm},
    tools::testrun::with_harness,
};
use vpc_tests::rng::Rng;

fn topology(rng: &mut Rng) -> String {
    let mut yaml = String::from(
        "vpcs:
  - name: prod
    cidr: 10.0.0.0/8
    vswitches:
      - {name: web, cidr: 10.1.0.0/24, zone: a}
      - {name: app, cidr: 10.1.8.0/21, zone: a, route_table: second}
      - {name: tiny, cidr: 10.200.3.0/29, zone: a}
    enis: [{name: w1, vswitch: web, ip: 10.1.0.10}]
    route_tables:
",
    );
    for table in ["system", "second"] {
        yaml += &format!("      - name: {table}\n        routes:\n");
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..300 {
            let len = rng.below(33) as u8;
            let base = *rng.pick(&[0x0a00_0000u32, 0x0a01_0000, 0x0ac8_0300, 0xc0a8_0000, 0xac10_0000, 0x0800_0000, 0]);
            let addr = base ^ (rng.next() as u32 & *rng.pick(&[0xffu32, 0xffff, 0xff_ffff, 0xffff_ffff]));
            let net = ipnet::Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc();
            let next_hops: ipnet::Ipv4Net = "198.18.0.0/15".parse().unwrap();
            if ["100.64.0.0/10", "10.1.0.0/24", "10.1.8.0/21", "10.200.3.0/29"].contains(&net.to_string().as_str())
                || net == next_hops
                || !seen.insert(net)
            {
                continue;
            }
            yaml += &format!("          - {{dst: {net}, next_hop: {{type: blackhole}}}}\n");
        }
    }
    yaml
}

/// (destination -> entry number) that the Linux FIB picks, for `routes` loaded into a table.
fn linux_answers(ns: &str, routes: &[(ipnet::Ipv4Net, u32)], destinations: &[Ipv4Addr]) -> BTreeMap<Ipv4Addr, Option<u32>> {
    let via = |n: u32| Ipv4Addr::new(198, 18, (n >> 8) as u8, n as u8);
    // The scratch namespace's main table: the entries, and a route to their next-hop addresses.
    let mut batch = String::from(
        "link del fib0\nlink add fib0 type veth peer name fib1\nlink set fib0 up\nlink set fib1 up\nroute add 198.18.0.0/15 dev fib0\n",
    );
    for (dst, number) in routes {
        batch += &format!("route add {dst} via {} dev fib0\n", via(*number));
    }
    run_batch(ns, &batch);
    let queries: String = destinations.iter().map(|d| format!("route get {d}\n")).collect();
    let output = run_batch(ns, &queries);
    let by_via: BTreeMap<Ipv4Addr, u32> = routes.iter().map(|(_, n)| (via(*n), *n)).collect();
    let mut answers = BTreeMap::new();
    for line in output.lines().filter(|l| !l.trim().is_empty() && !l.starts_with(' ')) {
        let mut words = line.split_whitespace();
        let Some(dst) = words.next().and_then(|w| w.parse::<Ipv4Addr>().ok()) else { continue };
        let hop = line.split_whitespace().skip_while(|w| *w != "via").nth(1).and_then(|w| w.parse::<Ipv4Addr>().ok());
        answers.insert(dst, hop.and_then(|h| by_via.get(&h).copied()));
    }
    for d in destinations {
        answers.entry(*d).or_insert(None); // "Network is unreachable": no entry
    }
    answers
}

fn run_batch(ns: &str, commands: &str) -> String {
    let mut child = Command::new("ip")
        .args(["-n", ns, "-force", "-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Write from another thread: the answers fill the output pipe while the questions go in.
    let mut stdin = child.stdin.take().unwrap();
    let commands = commands.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(commands.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn our_lpm_chooses_what_the_linux_fib_chooses() {
    let ns = format!("vtfib{}", std::process::id());
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    assert!(Command::new("ip").args(["netns", "add", &ns]).status().unwrap().success());
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _gone = Gone(ns.clone());

    let mut rng = Rng::new(42);
    let topology = Topology::from_yaml(&topology(&mut rng)).unwrap();
    let mut destinations = Vec::new();
    while destinations.len() < 10_000 {
        let base = *rng.pick(&[0x0a00_0000u32, 0x0a01_0000, 0x0ac8_0300, 0xc0a8_0000, 0xac10_0000, 0x0800_0000, 0x6440_0000]);
        let dst = Ipv4Addr::from(base ^ (rng.next() as u32 & *rng.pick(&[0xffu32, 0xffff, 0xff_ffff, 0xffff_ffff])));
        // 198.18.0.0/15 holds the Linux side's next hops; Linux routes loopback, "this network",
        // multicast and class E addresses by other rules than the longest prefix.
        let special = ["198.18.0.0/15", "0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3"];
        if !special.iter().any(|s| s.parse::<ipnet::Ipv4Net>().unwrap().contains(&dst)) {
            destinations.push(dst);
        }
    }
    with_harness(topology, move |h| {
        let vpc = h.topology.vpc("prod").unwrap().clone();
        for table in &vpc.route_tables {
            let routes = h.topology.routes(&vpc, table);
            let linux = linux_answers(&ns, &routes.iter().map(|r| (r.dst, r.number)).collect::<Vec<_>>(), &destinations);
            let number = h.binding.ids.route_table(&table.id);
            let mut differences = 0;
            for dst in &destinations {
                let model = lpm(&routes, *dst).map(|r| r.number);
                let ours = h.lookup_route(number, *dst)?.map(|r| r.id);
                if model != linux[dst] || ours != linux[dst] {
                    differences += 1;
                    eprintln!("{dst} in table {}: linux {:?}, model {model:?}, LPM trie {ours:?}", table.name, linux[dst]);
                }
            }
            eprintln!("table {}: {} entries, {} destinations, {differences} differences", table.name, routes.len(), destinations.len());
            anyhow::ensure!(differences == 0, "{differences} differences in table {}", table.name);
            anyhow::ensure!(linux.values().filter(|v| v.is_some()).count() > 1000, "the destinations hit the entries");
        }
        Ok(())
    })
    .unwrap();
}
