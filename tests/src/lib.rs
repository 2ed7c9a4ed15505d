//! Fixtures for the integration tests: a lab per test with its own names, pin root and state
//! directory (tests run in parallel), torn down even when the test fails.

pub mod rng;

use std::{net::Ipv4Addr, path::PathBuf, process::Command};

use serde_json::{Value, json};
use vpc::{
    agent::{HostOptions, Stats},
    api::Conn,
    cli::parse_topology,
    model::{Topology, spec::TopologySpec},
    naming::Naming,
    tools::lab,
};

/// `response`, once it is seen to be what the OpenAPI document declares for `action` (every
/// response a test gets through `call` is checked: the document cannot drift from the API).
pub fn checked(action: &str, response: Value) -> Value {
    if let Err(e) = vpc::api::openapi::check_response(action, &response) {
        panic!("the response breaks the OpenAPI document: {e}");
    }
    response
}

/// Host options private to one test: names start with `vt<tag>-`.
pub fn options(tag: &str) -> HostOptions {
    HostOptions {
        bpffs: PathBuf::from(format!("/sys/fs/bpf/vpc-t-{tag}")),
        state_dir: std::env::temp_dir().join(format!("vpc-t-{tag}")),
        naming: Naming::new(format!("vt{tag}-")),
        // Room for the route-churn tests' tables.
        quotas: vpc::model::topology::Quotas { route_entries_per_table: 50_000, ..Default::default() },
        ..Default::default()
    }
}

pub struct TestLab {
    pub opts: HostOptions,
    /// The agent, opened in this process for each call (no daemon).
    pub conn: Conn,
    /// Every topology brought up, newest last: all are torn down on drop.
    pub specs: Vec<TopologySpec>,
    pub tag: String,
}

impl TestLab {
    /// Bring up `yaml` as a lab, after clearing anything an earlier aborted run left.
    pub fn up(tag: &str, yaml: &str) -> TestLab {
        TestLab::up_with(options(tag), yaml)
    }

    /// `up` with options of the test's own (made by `options(tag)`, then changed).
    pub fn up_with(opts: HostOptions, yaml: &str) -> TestLab {
        let tag = opts.naming.prefix.trim_start_matches("vt").trim_end_matches('-').to_string();
        let tag = tag.as_str();
        let conn = Conn::Local(opts.clone());
        let spec = parse_topology(tag, yaml).expect("test topology is valid");
        lab::down(&conn, &opts.naming, Some(&spec)).expect("clearing leftovers");
        let lab = TestLab { opts, conn, specs: vec![spec], tag: tag.to_string() };
        lab::up(&lab.conn, &lab.opts.naming, &lab.specs[0]).expect("lab up");
        lab
    }

    /// Apply a new topology to the running lab (creating namespaces for new ENIs).
    /// The ApplyTopology result: {"Changes": [...], "Report": {...}}.
    pub fn reapply(&mut self, yaml: &str) -> Value {
        let spec = parse_topology(&self.tag, yaml).expect("test topology is valid");
        self.specs.push(spec.clone());
        lab::up(&self.conn, &self.opts.naming, &spec).expect("re-apply")
    }

    pub fn topology(&self) -> Topology {
        lab::configured(&self.conn).expect("configuration")
    }

    pub fn ns(&self, eni: &str) -> String {
        self.opts.naming.netns(eni)
    }

    /// Call an API operation; panics on error.
    pub fn call(&self, action: &str, body: Value) -> Value {
        checked(action, self.conn.call(action, body).unwrap_or_else(|e| panic!("{action}: {e}")))
    }

    pub fn ip(&self, eni: &str) -> Ipv4Addr {
        self.topology().eni(eni).expect("ENI in topology").2.ip
    }

    /// The configuration's binding to this host as the agent sees it: numbers, interfaces, hops
    /// down (for computing what the model says live traffic must do).
    pub fn binding(&self) -> vpc::model::binding::Binding {
        let exported = self.call("ExportTopology", json!({}));
        let topology = self.topology();
        let naming = &self.opts.naming;
        let ifindex = topology
            .enis()
            .map(|(_, _, e)| (e.id.clone(), naming.host_ifname(e)))
            .chain(
                topology
                    .vpcs
                    .iter()
                    .flat_map(|v| &v.gateways)
                    .map(|g| (g.id.clone(), naming.host_ifname_of(&g.name, g.interface.as_deref()))),
            )
            .filter_map(|(id, name)| Some((id, vpc::dataplane::ifindex(&name)?)))
            .collect();
        vpc::model::binding::Binding {
            ids: serde_json::from_value(exported["Ids"].clone()).unwrap(),
            ifindex,
            down: serde_json::from_value(exported["Down"].clone()).unwrap(),
            ..Default::default()
        }
    }

    /// Run a command in an ENI's (or gateway's) namespace; its output if it succeeds.
    pub fn exec(&self, who: &str, cmd: &[&str]) -> Result<String, String> {
        let out = Command::new("ip").args(["netns", "exec", &self.ns(who)]).args(cmd).output().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() { Ok(text) } else { Err(text) }
    }

    pub fn stats(&self) -> Stats {
        serde_json::from_value(self.call("DescribeStatistics", json!({}))).expect("stats")
    }

    /// (rx packets, rx bytes, tx packets, tx bytes) of an ENI.
    pub fn counters(&self, eni: &str) -> (u64, u64, u64, u64) {
        let s = self.stats();
        let e = s.enis.iter().find(|e| e.eni == eni).expect("ENI in stats");
        (e.rx_packets, e.rx_bytes, e.tx_packets, e.tx_bytes)
    }

    pub fn drops(&self, reason: &str) -> u64 {
        self.stats().drops.iter().find(|d| d.reason == reason).map(|d| d.packets).unwrap_or(0)
    }

    /// The `vpc` binary pointed at this lab.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(vpc_bin());
        cmd.arg("--bpffs").arg(&self.opts.bpffs);
        cmd.arg("--state-dir").arg(&self.opts.state_dir);
        cmd.arg("--prefix").arg(&self.opts.naming.prefix);
        cmd.arg("--offline"); // the lab runs no agent: its changes are made in process
        cmd
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        for spec in &self.specs {
            let _ = lab::down(&self.conn, &self.opts.naming, Some(spec));
        }
        let _ = std::fs::remove_dir_all(&self.opts.state_dir);
    }
}

/// The CLI binary: `VPC_BIN` (set by `cargo xtask test`) or target/debug/vpc.
pub fn vpc_bin() -> PathBuf {
    std::env::var_os("VPC_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/vpc"))
}

/// A `vpc daemon` process with the options of `tag`, for API, restart and concurrency tests.
pub struct Daemon {
    pub opts: HostOptions,
    args: Vec<String>,
    child: Option<std::process::Child>,
}

impl Daemon {
    /// Start the agent with `extra` global arguments (e.g. quotas) and wait for its socket.
    pub fn start(tag: &str, extra: &[&str]) -> Daemon {
        Daemon::start_with(options(tag), extra)
    }

    /// `start` with options of the test's own (made by `options(tag)`, then changed).
    pub fn start_with(opts: HostOptions, extra: &[&str]) -> Daemon {
        let _ = std::fs::remove_dir_all(&opts.state_dir);
        // What an aborted earlier run left under the pin root is no one's now.
        let _ = vpc::dataplane::Dataplane::new(&opts.bpffs, Default::default()).down();
        let mut args = opts.paths_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut daemon = Daemon { opts, args, child: None };
        daemon.spawn(&[]);
        daemon
    }

    /// Start (again) the agent process, with `daemon_args` after `daemon`.
    pub fn spawn(&mut self, daemon_args: &[&str]) {
        std::fs::create_dir_all(&self.opts.state_dir).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.opts.state_dir.join("daemon.log")).unwrap();
        let child = Command::new(vpc_bin())
            .args(&self.args)
            .arg("daemon")
            .args(daemon_args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("vpc binary (cargo build --bin vpc)");
        self.child = Some(child);
        let socket = self.opts.socket();
        let start = std::time::Instant::now();
        while !vpc::api::client::is_running(&socket) {
            assert!(start.elapsed().as_secs() < 20, "agent did not start: {}", self.log());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.opts.state_dir.join("daemon.log")).unwrap_or_default()
    }

    /// `kill -9` the agent: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn conn(&self) -> Conn {
        Conn::Remote(self.opts.socket())
    }

    pub fn call(&self, action: &str, body: Value) -> Value {
        checked(action, self.conn().call(action, body).unwrap_or_else(|e| panic!("{action}: {e}")))
    }

    /// The `vpc` CLI pointed at this agent.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_command(args).output().expect("vpc binary")
    }

    /// `cli`'s command, to start and watch (`vpc monitor` following the stream).
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(vpc_bin());
        command.args(&self.args).args(args);
        command
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.conn().call("Teardown", json!({}));
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.opts.state_dir);
        let _ = vpc::dataplane::Dataplane::new(&self.opts.bpffs, Default::default()).down();
    }
}

/// A veth pair in the host namespace (both ends here), removed on drop: an interface for an ENI
/// without a lab guest behind it.
pub struct HostVeth(pub String);

impl HostVeth {
    pub fn new(name: &str) -> HostVeth {
        let _ = lab::ip(&["link", "del", name]);
        lab::ip(&["link", "add", name, "type", "veth", "peer", "name", &format!("{name}p")]).unwrap();
        lab::ip(&["link", "set", name, "up"]).unwrap();
        lab::ip(&["link", "set", &format!("{name}p"), "up"]).unwrap();
        HostVeth(name.to_string())
    }
}

impl Drop for HostVeth {
    fn drop(&mut self) {
        let _ = lab::ip(&["link", "del", &self.0]);
    }
}

/// A lab served by a real agent daemon (flow logs need the daemon's collector): namespaces
/// and veths per ENI, torn down before the daemon.
pub struct DaemonLab {
    pub spec: TopologySpec,
    pub daemon: Daemon,
}

impl DaemonLab {
    pub fn up(tag: &str, yaml: &str, extra: &[&str]) -> DaemonLab {
        DaemonLab::up_with_opts(options(tag), yaml, extra)
    }

    /// `up` with options of the test's own; `extra` global arguments must say the same.
    pub fn up_with_opts(opts: HostOptions, yaml: &str, extra: &[&str]) -> DaemonLab {
        let tag = opts.naming.prefix.trim_start_matches("vt").trim_end_matches('-').to_string();
        let spec = parse_topology(&tag, yaml).expect("test topology is valid");
        let daemon = Daemon::start_with(opts, extra);
        lab::down(&daemon.conn(), &daemon.opts.naming, Some(&spec)).expect("clearing leftovers");
        lab::up(&daemon.conn(), &daemon.opts.naming, &spec).expect("lab up");
        DaemonLab { spec, daemon }
    }

    pub fn ns(&self, eni: &str) -> String {
        self.daemon.opts.naming.netns(eni)
    }

    pub fn topology(&self) -> Topology {
        lab::configured(&self.daemon.conn()).expect("configuration")
    }

    pub fn ip(&self, eni: &str) -> Ipv4Addr {
        self.topology().eni(eni).expect("ENI in topology").2.ip
    }

    pub fn call(&self, action: &str, body: Value) -> Value {
        self.daemon.call(action, body)
    }

    /// Apply a new topology (a superset of the first: namespaces for new ENIs are made, and
    /// removed at the end with the rest).
    pub fn reapply(&mut self, yaml: &str) -> Value {
        let tag = self.daemon.opts.naming.prefix.trim_start_matches("vt").trim_end_matches('-').to_string();
        self.spec = parse_topology(&tag, yaml).expect("test topology is valid");
        lab::up(&self.daemon.conn(), &self.daemon.opts.naming, &self.spec).expect("re-apply")
    }
}

impl Drop for DaemonLab {
    fn drop(&mut self) {
        let _ = lab::down(&self.daemon.conn(), &self.daemon.opts.naming, Some(&self.spec));
    }
}

/// The VPC a hostile guest attacks (`lab_hostile`, `testrun_hostile`): a client group, a server
/// group letting clients in by group rules, a guest with a small MTU and a relay without
/// source/destination check; `extra` goes after it (more of the VPC, more VPCs).
pub fn hostile(extra: &str) -> String {
    format!("vpcs:\n{HOSTILE_PROD}{extra}")
}

const HOSTILE_PROD: &str = "  - name: prod
    cidr: 10.60.0.0/16
    vswitches: [{name: sw, cidr: 10.60.1.0/24, zone: a}]
    security_groups:
      - name: client
        intra_group: drop
        rules:
          - {direction: egress, policy: drop, protocol: tcp, ports: 2222/2222, peer: 0.0.0.0/0}
      - name: relay
      - name: server
        rules:
          - {direction: ingress, policy: drop, protocol: tcp, ports: 22/22, peer: 0.0.0.0/0, priority: 1}
          - {direction: ingress, protocol: tcp, ports: -1/-1, peer: {group: client}, priority: 50}
          - {direction: ingress, protocol: udp, ports: 5201/5201, peer: {group: client}}
          - {direction: ingress, protocol: icmp, peer: {group: client}}
    enis:
      - {name: cl, vswitch: sw, ip: 10.60.1.10, security_groups: [client]}
      - {name: sv, vswitch: sw, ip: 10.60.1.20, security_groups: [server]}
      - {name: ev, vswitch: sw, ip: 10.60.1.30, security_groups: [client]}
      - {name: small, vswitch: sw, ip: 10.60.1.40, security_groups: [server], mtu: 1400}
      - {name: relay, vswitch: sw, ip: 10.60.1.50, security_groups: [relay], source_dest_check: false}
";
