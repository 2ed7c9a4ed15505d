//! Hitless restart: the agent is killed with -9 while a ping stream crosses the data path, then
//! started again. Not one packet may be lost; the state must be intact; the restarted agent
//! swaps in its own program instance under the pinned links and a change made afterwards works.

use std::process::Command;

use serde_json::json;
use vpc::{cli::parse_topology, tools::lab};
use vpc_tests::Daemon;

const TOPO: &str = "
vpcs:
  - name: prod
    cidr: 10.40.0.0/16
    vswitches:
      - {name: web, cidr: 10.40.1.0/24, zone: a}
      - {name: db, cidr: 10.40.2.0/24, zone: b}
    enis:
      - {name: web1, vswitch: web, ip: 10.40.1.10}
      - {name: db1, vswitch: db, ip: 10.40.2.10}
";

/// The program IDs behind the XDP links on our interfaces (from bpftool).
fn xdp_programs(prefix: &str) -> Vec<u64> {
    let out = Command::new("ip").args(["-j", "-d", "link", "show"]).output().unwrap();
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    links
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ifname"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .filter_map(|l| l["xdp"]["prog"]["id"].as_u64())
        .collect()
}

#[test]
fn kill_9_and_restart_lose_no_packets() {
    let mut d = Daemon::start("r1", &[]);
    let naming = d.opts.naming.clone();
    let spec = parse_topology("r1", TOPO).unwrap();
    lab::up(&d.conn(), &naming, &spec).unwrap();
    let teardown = scopeguard(|| {
        let opts = vpc_tests::options("r1");
        let _ = lab::down(&vpc::api::Conn::to(&opts), &opts.naming, Some(&parse_topology("r1", TOPO).unwrap()));
    });
    let before = d.call("ExportTopology", json!({}));
    let programs_before = xdp_programs(&naming.prefix);
    assert_eq!(programs_before.len(), 2, "both ENIs run XDP");

    // 1500 echo requests, one every 2 ms: the stream spans the kill and the restart.
    let ping = Command::new("ip")
        .args(["netns", "exec", &naming.netns("web1"), "ping", "-q", "-n", "-i", "0.002", "-c", "1500", "-W", "1", "10.40.2.10"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    d.kill9();
    std::thread::sleep(std::time::Duration::from_millis(700));
    d.spawn(&[]);
    let out = ping.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("1500 packets transmitted, 1500 received, 0% packet loss"), "{summary}\n{}", d.log());

    // State intact, the new agent's program swapped in under the same links.
    assert_eq!(d.call("ExportTopology", json!({})), before);
    let programs_after = xdp_programs(&naming.prefix);
    assert_eq!(programs_after.len(), 2);
    assert!(programs_after.iter().all(|p| !programs_before.contains(p)), "{programs_before:?} -> {programs_after:?}");
    assert!(d.log().contains("replaced in place") || d.log().contains("reconciled"), "{}", d.log());

    // A change after the restart takes effect.
    let grown = parse_topology("r1", &(TOPO.to_string() + "      - {name: web3, vswitch: web, ip: 10.40.1.30}\n")).unwrap();
    lab::up(&d.conn(), &naming, &grown).unwrap();
    assert!(vpc::tools::lab::probe::ping(&naming.netns("web1"), "10.40.1.30".parse().unwrap(), 2));
    lab::down(&d.conn(), &naming, Some(&grown)).unwrap();
    drop(teardown);
}

/// Run `f` on drop (clean up the lab even when an assertion fails).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
