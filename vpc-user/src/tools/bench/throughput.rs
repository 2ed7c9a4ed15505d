//! Forwarding throughput on veth: a generator namespace sends 64-byte UDP frames at the
//! highest rate it can (the kernel's XDP live-frames test run: the generator program rewrites
//! the whole frame and XDP_TXes it), a forwarder moves them, and an XDP program in the
//! receiver namespace counts what arrives. Variants, interleaved in every round:
//! - `vpc`: this data plane (an agent, two ENIs), one flow and `MANY_FLOWS` flows (the
//!   generator spreads its frames over source ports), and `vpc + flow log` (both ENIs captured);
//! - `linux`: kernel forwarding between two veths, no rules;
//! - `linux + nft linear`: the same with a 1,000-rule chain (999 non-matching, then accept);
//! - `linux + nft sets + conntrack`: a set of 1,000 blocked sources, `ct state established`
//!   accepted first (the flow is primed with a reply so conntrack sees it established);
//! - `ovs + conntrack`: Open vSwitch as users would deploy it here (the kernel datapath needs a
//!   module this kernel cannot load): the userspace `netdev` datapath with AF_XDP ports on the
//!   router's veths, one stateful `ct()` allow rule (new connections only from the generator's
//!   side, established ones both ways: one security group's worth), a PMD thread polling;
//! - `xdp redirect`: a bare XDP redirect between the two veths, the ceiling.

use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::Context as _;
use aya::{
    maps::{Array, DevMap, MapData, PerCpuArray},
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
};
use serde::Serialize;
use vpc_common::maps::Size;

use crate::{agent::HostOptions, api::Conn, dataplane::bpffs::PinDirs, netns, packet::Ipv4, tools::lab};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ThroughputResult {
    pub variant: String,
    /// Median over rounds, million packets per second received.
    pub mpps: f64,
    pub rounds: Vec<f64>,
}

const FRAMES: u32 = 2_000_000;
/// Flows of the many-flows variant: source ports from the template's up, established in the
/// warm-up.
const MANY_FLOWS: u32 = 10_000;
const GEN: &str = "vbt-gen";
const RTR: &str = "vbt-rtr";
const RCV: &str = "vbt-rcv";

fn sh(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output().with_context(|| format!("running {args:?}"))?;
    anyhow::ensure!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}

fn mac_of(ns: &str, dev: &str) -> anyhow::Result<[u8; 6]> {
    let out = Command::new("ip").args(["-n", ns, "-j", "link", "show", dev]).output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    crate::model::addr::parse_mac(v[0]["address"].as_str().context("no MAC")?).context("bad MAC")
}

/// The bench programs, loaded once over maps pinned in a directory of their own.
pub(super) struct Programs {
    pins: PathBuf,
    ebpf: aya::Ebpf,
}

impl Programs {
    pub(super) fn load() -> anyhow::Result<Programs> {
        let pins = PathBuf::from(format!("/sys/fs/bpf/vpc-bench-tp-{}", std::process::id()));
        let dirs = PinDirs::new(&pins);
        let limits = crate::tools::testrun::TEST_LIMITS.with(Size::Routes, 64).with(Size::Conntrack, 1024).with(Size::FlowLog, 1024);
        let mut ebpf = crate::dataplane::loader::load(&dirs, &limits)?;
        for name in ["vpc_bench_gen", "vpc_bench_count", "vpc_bench_redirect"] {
            crate::dataplane::loader::retrying(|| {
                let prog: &mut Xdp = ebpf.program_mut(name).with_context(|| format!("{name} missing"))?.try_into()?;
                Ok(prog.load()?)
            })?;
        }
        Ok(Programs { pins, ebpf })
    }

    pub(super) fn set_frame(&mut self, frame: &[u8]) -> anyhow::Result<()> {
        let mut map: Array<&mut MapData, [u8; 64]> = Array::try_from(self.ebpf.map_mut("BENCH_FRAME").context("BENCH_FRAME")?)?;
        let mut bytes = [0u8; 64];
        bytes[..frame.len().min(64)].copy_from_slice(&frame[..frame.len().min(64)]);
        map.set(0, bytes, 0)?;
        Ok(())
    }

    /// Spread the generator's frames over `flows` source ports from the template's up.
    fn set_flows(&mut self, flows: u32) -> anyhow::Result<()> {
        let mut map: Array<&mut MapData, u32> = Array::try_from(self.ebpf.map_mut("BENCH_FLOWS").context("BENCH_FLOWS")?)?;
        map.set(0, flows, 0)?;
        Ok(())
    }

    fn received(&self) -> anyhow::Result<u64> {
        let map: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(self.ebpf.map("BENCH_COUNT").context("BENCH_COUNT")?)?;
        Ok(map.get(&0, 0)?.iter().sum())
    }

    /// Point the bare redirect at `dev` in namespace `ns` (a DEVMAP entry resolves its ifindex
    /// in the namespace of the calling thread).
    pub(super) fn set_target(&mut self, ns: &str, dev: &str) -> anyhow::Result<()> {
        let mut map: DevMap<&mut MapData> = DevMap::try_from(self.ebpf.map_mut("BENCH_TARGET").context("BENCH_TARGET")?)?;
        in_ns(ns, || {
            let ifindex = crate::dataplane::ifindex(dev).with_context(|| format!("{dev} in {ns}"))?;
            map.set(0, ifindex, None, 0)?;
            Ok(())
        })
    }

    /// Attach program `name` to `dev` in namespace `ns` (driver mode).
    pub(super) fn attach(&mut self, name: &str, ns: &str, dev: &str) -> anyhow::Result<aya::programs::xdp::XdpLinkId> {
        let prog: &mut Xdp = self.ebpf.program_mut(name).with_context(|| format!("{name} missing"))?.try_into()?;
        in_ns(ns, || Ok(prog.attach(dev, aya::programs::XdpMode::Driver)?))
    }

    pub(super) fn detach(&mut self, name: &str, link: aya::programs::xdp::XdpLinkId) -> anyhow::Result<()> {
        let prog: &mut Xdp = self.ebpf.program_mut(name).with_context(|| format!("{name} missing"))?.try_into()?;
        Ok(prog.detach(link)?)
    }

    /// Send `FRAMES` frames out of `dev` in namespace `ns`; seconds it took (the test run
    /// resolves the ifindex in the namespace of the calling thread).
    pub(super) fn generate(&self, ns: &str, dev: &str) -> anyhow::Result<f64> {
        let prog: &Xdp = self.ebpf.program("vpc_bench_gen").context("generator")?.try_into()?;
        in_ns(ns, || {
            let ifindex = crate::dataplane::ifindex(dev).context("generator interface")?;
            let mut ctx = [0u8; 24];
            ctx[4..8].copy_from_slice(&64u32.to_ne_bytes());
            ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
            let frame = [0u8; 64];
            let start = Instant::now();
            prog.test_run(TestRunOptions {
                data_in: Some(&frame),
                ctx_in: Some(&ctx),
                repeat: FRAMES,
                attrs: TestRunAttrs::new().xdp_live_frames(64),
                ..Default::default()
            })?;
            Ok(start.elapsed().as_secs_f64())
        })
    }
}

impl Drop for Programs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.pins);
    }
}

/// Run `f` with this thread in network namespace `ns`, then come back. (`ip -n` cannot attach
/// pinned programs: it remounts /sys, and the BPF filesystem with it.)
fn in_ns<T>(ns: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    use std::os::fd::AsRawFd as _;
    let home = std::fs::File::open("/proc/thread-self/ns/net")?;
    let there = std::fs::File::open(netns::path(ns))?;
    // SAFETY: setns on this thread only, with namespace files we hold open.
    anyhow::ensure!(
        unsafe { libc::setns(there.as_raw_fd(), libc::CLONE_NEWNET) } == 0,
        "entering {ns}: {}",
        std::io::Error::last_os_error()
    );
    let result = f();
    // SAFETY: as above, back home.
    anyhow::ensure!(unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } == 0, "leaving {ns}: {}", std::io::Error::last_os_error());
    result
}

/// The three namespaces joined by veths, Linux forwarding in the middle.
struct Trio;

impl Trio {
    fn up() -> anyhow::Result<Trio> {
        Trio::down();
        for ns in [GEN, RTR, RCV] {
            sh(&["ip", "netns", "add", ns])?;
        }
        sh(&["ip", "-n", GEN, "link", "add", "gen0", "type", "veth", "peer", "name", "rtr0", "netns", RTR])?;
        sh(&["ip", "-n", RCV, "link", "add", "rcv0", "type", "veth", "peer", "name", "rtr1", "netns", RTR])?;
        let batch = |ns: &str, lines: &[&str]| lab::ip_batch(Some(ns), &lines.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        batch(GEN, &["addr add 10.10.1.2/24 dev gen0", "link set gen0 up", "link set lo up", "route add default via 10.10.1.1"])?;
        batch(
            RTR,
            &["addr add 10.10.1.1/24 dev rtr0", "addr add 10.10.2.1/24 dev rtr1", "link set rtr0 up", "link set rtr1 up", "link set lo up"],
        )?;
        batch(RCV, &["addr add 10.10.2.2/24 dev rcv0", "link set rcv0 up", "link set lo up", "route add default via 10.10.2.1"])?;
        sh(&["ip", "netns", "exec", RTR, "sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        // Frames XDP_TXed into a veth are dropped unless its peer runs NAPI (GRO or XDP).
        sh(&["ip", "netns", "exec", RTR, "ethtool", "-K", "rtr0", "gro", "on"])?;
        // Static neighbours: no ARP in the measurement.
        let rcv_mac = crate::model::addr::format_mac(&mac_of(RCV, "rcv0")?);
        sh(&["ip", "-n", RTR, "neigh", "replace", "10.10.2.2", "lladdr", &rcv_mac, "dev", "rtr1", "nud", "permanent"])?;
        Ok(Trio)
    }

    fn down() {
        for ns in [GEN, RTR, RCV] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Drop for Trio {
    fn drop(&mut self) {
        Trio::down();
    }
}

/// Open vSwitch's daemons in the router's namespace, with a database and sockets of their own;
/// the ports are added for its measurement and removed after it (their XDP programs would
/// take the veths from the other variants). `None` when Open vSwitch is not installed.
struct Ovs {
    dir: PathBuf,
}

impl Ovs {
    fn start() -> anyhow::Result<Option<Ovs>> {
        if Command::new("ovs-vswitchd").arg("--version").output().is_err() {
            eprintln!("bench: ovs-vswitchd is not installed (openvswitch-switch): no Open vSwitch variant");
            return Ok(None);
        }
        let dir = std::env::temp_dir().join(format!("vpc-bench-ovs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let ovs = Ovs { dir };
        let at = |file: &str| format!("{}/{file}", ovs.dir.display());
        ovs.run(&["ovsdb-tool", "create", &at("conf.db"), "/usr/share/openvswitch/vswitch.ovsschema"])?;
        // Both daemons in the router's namespace, where the veths are.
        let (db, remote) = (at("conf.db"), format!("--remote=punix:{}", at("db.sock")));
        let (pid, log) = (format!("--pidfile={}", at("ovsdb.pid")), format!("--log-file={}", at("ovsdb.log")));
        ovs.run(&["ip", "netns", "exec", RTR, "ovsdb-server", &db, &remote, &pid, "--detach", &log])?;
        ovs.vsctl(&["--no-wait", "init"])?;
        let (socket, pid, log) =
            (format!("unix:{}", at("db.sock")), format!("--pidfile={}", at("vswitchd.pid")), format!("--log-file={}", at("vswitchd.log")));
        ovs.run(&["ip", "netns", "exec", RTR, "ovs-vswitchd", &socket, &pid, "--detach", &log])?;
        ovs.vsctl(&["add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"])?;
        Ok(Some(ovs))
    }

    /// An Open vSwitch command with every file it makes (sockets, pid files, logs) in `dir`.
    fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut cmd = Command::new(args[0]);
        cmd.args(&args[1..]);
        for var in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            cmd.env(var, &self.dir);
        }
        let out = cmd.output().with_context(|| format!("running {args:?}"))?;
        anyhow::ensure!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
        Ok(())
    }

    fn vsctl(&self, args: &[&str]) -> anyhow::Result<()> {
        self.run(&[&["ovs-vsctl", &format!("--db=unix:{}/db.sock", self.dir.display())][..], args].concat())
    }

    /// Both veths as AF_XDP ports and the flows: the generator's side may open connections,
    /// established ones pass both ways (routed: MACs rewritten, TTL decremented).
    fn add_ports(&self) -> anyhow::Result<()> {
        for dev in ["rtr0", "rtr1"] {
            self.vsctl(&["add-port", "br0", dev, "--", "set", "interface", dev, "type=afxdp"])?;
        }
        let [r0, r1] = [mac_of(RTR, "rtr0")?, mac_of(RTR, "rtr1")?].map(|m| crate::model::addr::format_mac(&m));
        let [sender, rcv] = [mac_of(GEN, "gen0")?, mac_of(RCV, "rcv0")?].map(|m| crate::model::addr::format_mac(&m));
        let to_rcv = format!("mod_dl_src:{r1},mod_dl_dst:{rcv},dec_ttl,output:rtr1");
        let to_gen = format!("mod_dl_src:{r0},mod_dl_dst:{sender},dec_ttl,output:rtr0");
        let flows = [
            "table=0,priority=10,ip,ct_state=-trk,actions=ct(table=1)".to_string(),
            "table=0,priority=0,actions=drop".to_string(),
            format!("table=1,priority=10,in_port=rtr0,ip,ct_state=+trk+new,actions=ct(commit),{to_rcv}"),
            format!("table=1,priority=10,in_port=rtr0,ip,ct_state=+trk+est,actions={to_rcv}"),
            format!("table=1,priority=10,in_port=rtr1,ip,ct_state=+trk+est,actions={to_gen}"),
            "table=1,priority=0,actions=drop".to_string(),
        ];
        let bridge = format!("unix:{}/br0.mgmt", self.dir.display());
        self.run(&["ovs-ofctl", "del-flows", &bridge])?;
        for flow in &flows {
            self.run(&["ovs-ofctl", "add-flow", &bridge, flow])?;
        }
        Ok(())
    }

    fn del_ports(&self) -> anyhow::Result<()> {
        for dev in ["rtr0", "rtr1"] {
            self.vsctl(&["--if-exists", "del-port", "br0", dev])?;
        }
        Ok(())
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        let _ = self.del_ports();
        for pidfile in ["vswitchd.pid", "ovsdb.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join(pidfile))
                && let Ok(pid) = pid.trim().parse::<i32>()
            {
                // SAFETY: a signal to the daemon this bench started.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nft(ruleset: &str) -> anyhow::Result<()> {
    let _ = Command::new("ip").args(["netns", "exec", RTR, "nft", "flush", "ruleset"]).output();
    if ruleset.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("ip")
        .args(["netns", "exec", RTR, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    use std::io::Write as _;
    child.stdin.take().context("nft stdin")?.write_all(ruleset.as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "nft: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

fn linear_ruleset() -> String {
    let mut r = String::from("table ip bench {\n  chain forward {\n    type filter hook forward priority 0; policy drop;\n");
    for i in 0..999 {
        r += &format!("    ip saddr 192.0.{}.{} udp dport 9 drop\n", i / 250, i % 250 + 1);
    }
    r += "    ip saddr 10.10.1.0/24 accept\n    ip saddr 10.10.2.0/24 accept\n  }\n}\n";
    r
}

fn sets_ruleset() -> String {
    let blocked: Vec<String> = (0..1000).map(|i| format!("192.0.{}.{}", i / 250, i % 250 + 1)).collect();
    format!(
        "table ip bench {{\n  set blocked {{ type ipv4_addr; elements = {{ {} }} }}\n  chain forward {{\n    type filter hook forward priority 0; policy drop;\n    ct state established,related accept\n    ip saddr @blocked drop\n    ip saddr 10.10.0.0/16 accept\n  }}\n}}\n",
        blocked.join(", ")
    )
}

/// One measurement: frames received per second while the generator sent `FRAMES`.
pub(super) fn measure(p: &Programs, gen_ns: &str, gen_dev: &str) -> anyhow::Result<f64> {
    let before = p.received()?;
    let secs = p.generate(gen_ns, gen_dev)?;
    std::thread::sleep(std::time::Duration::from_millis(50));
    let got = p.received()? - before;
    Ok(got as f64 / secs / 1e6)
}

pub fn run(rounds: usize) -> anyhow::Result<Vec<ThroughputResult>> {
    let mut p = Programs::load()?;
    let mut samples: Vec<(String, Vec<f64>)> = Vec::new();
    let mut push = |name: &str, v: f64| match samples.iter_mut().find(|(n, _)| n == name) {
        Some((_, s)) => s.push(v),
        None => samples.push((name.to_string(), vec![v])),
    };

    // The Linux trio: forwarding, nftables, Open vSwitch, bare redirect.
    let trio = Trio::up()?;
    let ovs = Ovs::start()?;
    p.attach("vpc_bench_count", RCV, "rcv0")?;
    let linux_frame =
        Ipv4::udp("10.10.1.2".parse()?, "10.10.2.2".parse()?, 40000, 9, &[0x5a; 22]).frame(mac_of(RTR, "rtr0")?, mac_of(GEN, "gen0")?);

    // The vpc data plane: an agent in the host namespace, two ENIs in namespaces of their own.
    let opts = HostOptions {
        bpffs: PathBuf::from(format!("/sys/fs/bpf/vpc-bench-tpa-{}", std::process::id())),
        state_dir: std::env::temp_dir().join(format!("vpc-bench-tp-{}", std::process::id())),
        naming: crate::naming::Naming::new("vbt-"),
        ..Default::default()
    };
    let conn = Conn::Local(opts.clone());
    let yaml = |flow_log: bool| {
        let mut y = String::from(
            "vpcs:\n  - name: bench\n    cidr: 10.20.0.0/16\n    vswitches: [{name: sw, cidr: 10.20.1.0/24, zone: a}]\n    enis:\n      - {name: src, vswitch: sw, ip: 10.20.1.10}\n      - {name: dst, vswitch: sw, ip: 10.20.1.20}\n",
        );
        if flow_log {
            y += "flow_logs:\n  - {name: fl, resource: {vpc: bench}}\n";
        }
        crate::model::spec::TopologySpec::from_yaml(&y)
    };
    let plain = yaml(false)?;
    let logged = yaml(true)?;
    lab::down(&conn, &opts.naming, Some(&plain))?;
    lab::up(&conn, &opts.naming, &plain)?;
    let result = (|| -> anyhow::Result<()> {
        let topology = lab::configured(&conn)?;
        let (_, vsw, src) = topology.eni("src").context("src")?;
        let dst = topology.eni("dst").context("dst")?.2.ip;
        let vpc_frame = Ipv4::udp(src.ip, dst, 40000, 9, &[0x5a; 22]).frame(vsw.gateway_mac, src.mac);
        let (src_ns, dst_ns) = (opts.naming.netns("src"), opts.naming.netns("dst"));
        p.attach("vpc_bench_count", &dst_ns, "eth0")?;
        // Warm up both paths once (connections, caches, neighbours), unmeasured.
        p.set_frame(&vpc_frame)?;
        p.generate(&src_ns, "eth0")?;
        p.set_flows(MANY_FLOWS)?;
        p.generate(&src_ns, "eth0")?;
        p.set_flows(1)?;
        // Each flow is a connection at both ENIs: the variant measures what it says.
        let entries = crate::dataplane::conntrack::entries(&PinDirs::new(&opts.bpffs))?;
        anyhow::ensure!(entries >= 2 * u64::from(MANY_FLOWS), "{MANY_FLOWS} flows made {entries} connection-table entries");
        p.set_frame(&linux_frame)?;
        p.generate(GEN, "gen0")?;
        for round in 0..rounds {
            eprintln!("bench: throughput round {} of {rounds} ...", round + 1);
            // vpc, then vpc with a flow log.
            p.set_frame(&vpc_frame)?;
            push("vpc", measure(&p, &src_ns, "eth0")?);
            p.set_flows(MANY_FLOWS)?;
            push(&format!("vpc, {MANY_FLOWS} flows"), measure(&p, &src_ns, "eth0")?);
            p.set_flows(1)?;
            conn.call("ApplyTopology", serde_json::json!({"Topology": logged}))?;
            push("vpc + flow log", measure(&p, &src_ns, "eth0")?);
            conn.call("ApplyTopology", serde_json::json!({"Topology": plain}))?;
            // Linux forwarding, with and without nftables.
            p.set_frame(&linux_frame)?;
            nft("")?;
            push("linux", measure(&p, GEN, "gen0")?);
            nft(&linear_ruleset())?;
            push("linux + nft linear 1000", measure(&p, GEN, "gen0")?);
            nft(&sets_ruleset())?;
            prime()?;
            push("linux + nft sets + conntrack", measure(&p, GEN, "gen0")?);
            nft("")?;
            if let Some(ovs) = &ovs {
                ovs.add_ports()?;
                prime()?;
                let measured = measure(&p, GEN, "gen0");
                ovs.del_ports()?;
                push("ovs + conntrack", measured?);
            }
            // The ceiling: a bare XDP redirect rtr0 -> rtr1.
            set_target(&mut p)?;
            let link = p.attach("vpc_bench_redirect", RTR, "rtr0")?;
            push("xdp redirect", measure(&p, GEN, "gen0")?);
            p.detach("vpc_bench_redirect", link)?;
        }
        Ok(())
    })();
    let _ = lab::down(&conn, &opts.naming, Some(&plain));
    let _ = crate::dataplane::Dataplane::new(&opts.bpffs, Default::default()).down();
    let _ = std::fs::remove_dir_all(&opts.state_dir);
    drop(ovs);
    drop(trio);
    result?;
    Ok(samples
        .into_iter()
        .map(|(variant, mut rounds)| {
            let mpps = super::median(&mut rounds.clone());
            rounds.sort_by(f64::total_cmp);
            ThroughputResult { variant, mpps, rounds }
        })
        .collect())
}

/// A reply through the router so conntrack sees the generator's flow established.
fn prime() -> anyhow::Result<()> {
    let send = |ns: &str, from: &str, sport: u16, to: &str, dport: u16| -> anyhow::Result<()> {
        let (from, to): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (from.parse()?, to.parse()?);
        netns::in_netns(&netns::path(ns), move || {
            let s = std::net::UdpSocket::bind((from, sport))?;
            s.send_to(b"prime", (to, dport))?;
            Ok(())
        })
    };
    send(GEN, "10.10.1.2", 40000, "10.10.2.2", 9)?;
    std::thread::sleep(std::time::Duration::from_millis(20));
    send(RCV, "10.10.2.2", 9, "10.10.1.2", 40000)?;
    std::thread::sleep(std::time::Duration::from_millis(20));
    Ok(())
}

/// Point the bare redirect at rtr1.
fn set_target(p: &mut Programs) -> anyhow::Result<()> {
    p.set_target(RTR, "rtr1")
}
