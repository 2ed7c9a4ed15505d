//! A lab across hosts: a topology that places ENIs on hosts (`host: h1`) becomes a fabric
//! namespace (`PREFIXfabric`: two bridges, 10.255.0.254/24 and 10.255.1.254/24, that it routes
//! between -- a routed underlay -- with an etcd at 10.255.0.254, when etcd is installed and no
//! `--etcd` was given), one namespace per host (`PREFIXh1`, ...) with an underlay veth `und0`
//! on a bridge (the Nth host in name order at 10.255.(N+1 % 2).N: h1 and h3 on one link, h2 on
//! the other, so some pairs of hosts talk through the fabric's router) and its own
//! agent -- `vpc daemon --host --underlay und0 --peer ...`, pin root `BPFFS-h1`, state directory
//! `STATE_DIR/h1`, the cluster's configuration in the etcd -- and each host's guests. Reach a
//! host's agent with `vpc --bpffs BPFFS-h1 --state-dir STATE_DIR/h1 ...`; `vpc lab exec ENI`
//! works for every guest.

use std::{net::Ipv4Addr, path::PathBuf};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::{agent, ip, ip_batch};
use crate::{
    agent::HostOptions,
    api::{Conn, client},
    model::spec::TopologySpec,
    netns,
};

/// The hosts `spec` places ENIs and gateways on, in name order (none: a single-host lab).
pub fn hosts_of(spec: &TopologySpec) -> Vec<String> {
    let enis = spec.vpcs.iter().flat_map(|v| &v.enis).filter_map(|e| e.host.clone());
    let mut hosts: Vec<String> = enis.chain(spec.vpcs.iter().flat_map(|v| &v.gateways).filter_map(|g| g.host.clone())).collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// One host of the lab: its namespace and its agent's options.
pub struct LabHost {
    pub name: String,
    pub netns: String,
    pub opts: HostOptions,
    pub underlay_ip: Ipv4Addr,
}

/// The fabric link (bridge `br0` or `br1`, subnet 10.255.L.0/24) of the `i`th host.
fn link(i: usize) -> u8 {
    (i % 2) as u8
}

/// The lab's fabric namespace.
pub fn fabric(opts: &HostOptions) -> String {
    format!("{}fabric", opts.naming.prefix)
}

/// The hosts of a lab made with `opts` for `spec`.
pub fn lab_hosts(opts: &HostOptions, spec: &TopologySpec) -> Vec<LabHost> {
    hosts_of(spec)
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let mut host = opts.clone();
            host.bpffs = PathBuf::from(format!("{}-{name}", opts.bpffs.display()));
            host.state_dir = opts.state_dir.join(&name);
            host.socket = None;
            host.flow_log_dir = None;
            LabHost {
                netns: format!("{}{name}", opts.naming.prefix),
                name,
                opts: host,
                underlay_ip: Ipv4Addr::new(10, 255, link(i), i as u8 + 1),
            }
        })
        .collect()
}

/// Build the fabric and the hosts, start each host's agent (`exe daemon`, with `global_args`
/// and the host's own pin root and state directory) and bring up each host's part of `spec`;
/// the hosts' apply results by name.
pub fn up(opts: &HostOptions, exe: &std::path::Path, global_args: &[String], spec: &TopologySpec) -> anyhow::Result<Value> {
    let hosts = lab_hosts(opts, spec);
    anyhow::ensure!(hosts.len() <= 250, "a lab has at most 250 hosts");
    let fabric = fabric(opts);
    if !netns::path(&fabric).exists() {
        ip(&["netns", "add", &fabric])?;
        ip_batch(
            Some(&fabric),
            &[
                "link add br0 type bridge".into(),
                format!("addr add {ETCD_IP}/24 dev br0"),
                "link set br0 up".into(),
                "link add br1 type bridge".into(),
                "addr add 10.255.1.254/24 dev br1".into(),
                "link set br1 up".into(),
                "link set lo up".into(),
            ],
        )?;
        netns::in_netns(&netns::path(&fabric), || Ok(std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?))
            .context("routing between the fabric's links")?;
    }
    // The cluster's store: the caller's etcd, else one of the lab's own on the fabric.
    let mut global_args = global_args.to_vec();
    if !global_args.iter().any(|a| a == "--etcd") && etcd_installed() {
        start_etcd(opts, &fabric)?;
        let url = format!("http://{ETCD_IP}:{ETCD_PORT}");
        global_args.extend(["--etcd".into(), url, "--cluster".into(), "lab".into()]);
    }
    for (i, host) in hosts.iter().enumerate() {
        if netns::path(&host.netns).exists() {
            continue;
        }
        let fabric_side = format!("{}f{}", opts.naming.prefix, i + 1);
        ip(&["netns", "add", &host.netns])?;
        ip(&["link", "add", &fabric_side, "netns", &fabric, "type", "veth", "peer", "name", "und0", "netns", &host.netns])?;
        let link = link(i);
        ip_batch(Some(&fabric), &[format!("link set {fabric_side} master br{link}"), format!("link set {fabric_side} up")])?;
        ip_batch(
            Some(&host.netns),
            &[
                "link set lo up".into(),
                format!("addr add {}/24 dev und0", host.underlay_ip),
                "link set und0 up".into(),
                // The other link (and the etcd) through the fabric's router.
                format!("route add 10.255.0.0/16 via 10.255.{link}.254 dev und0"),
            ],
        )?;
    }
    let mut results = serde_json::Map::new();
    for host in &hosts {
        let mut daemon = vec!["--host".to_string(), host.name.clone(), "--underlay".into(), "und0".into()];
        for other in hosts.iter().filter(|o| o.name != host.name) {
            daemon.extend(["--peer".into(), format!("{}={}", other.name, other.underlay_ip)]);
        }
        let args = with_paths(&global_args, &host.opts);
        let conn = agent::ensure_in(&host.opts, Some(&host.netns), exe, &args, &daemon)?;
        let (naming, spec) = (host.opts.naming.clone(), spec.clone());
        let result = netns::in_netns(&netns::path(&host.netns), move || super::up(&conn, &naming, &spec))
            .with_context(|| format!("host {}", host.name))?;
        results.insert(host.name.clone(), result);
    }
    Ok(Value::Object(results))
}

/// Remove each host's guests, configuration and agent, then the hosts and the fabric.
pub fn down(opts: &HostOptions, spec: &TopologySpec) -> anyhow::Result<()> {
    // Guests of ENIs made through an API rather than the file go too. Read first: the first
    // host's down takes the cluster's configuration away.
    let made: Vec<String> = lab_hosts(opts, spec)
        .iter()
        .filter(|h| client::is_running(&h.opts.socket()))
        .find_map(|h| super::configured(&Conn::Remote(h.opts.socket())).ok())
        .map(|t| t.enis().map(|(_, _, e)| e.name.clone()).chain(t.vpcs.iter().flat_map(|v| &v.gateways).map(|g| g.name.clone())).collect())
        .unwrap_or_default();
    for host in lab_hosts(opts, spec) {
        let through_agent = client::is_running(&host.opts.socket()) && {
            let (conn, naming, spec) = (Conn::Remote(host.opts.socket()), host.opts.naming.clone(), spec.clone());
            let done = netns::in_netns(&netns::path(&host.netns), move || super::down(&conn, &naming, Some(&spec)));
            // (Its store unreachable, the agent cannot delete the configuration: the lab goes anyway.)
            done.inspect_err(|e| log::warn!("host {}: {e:#}", host.name)).is_ok()
        };
        if !through_agent {
            // Its agent is gone: its guests and pins go without it.
            let placed = |h: &Option<String>| h.as_deref() == Some(host.name.as_str());
            let enis = spec.vpcs.iter().flat_map(|v| &v.enis).filter(|e| placed(&e.host)).map(|e| &e.name);
            let gateways = spec.vpcs.iter().flat_map(|v| &v.gateways).filter(|g| placed(&g.host)).map(|g| &g.name);
            for name in enis.chain(gateways) {
                let ns = host.opts.naming.netns(name);
                if netns::path(&ns).exists() {
                    ip(&["netns", "del", &ns])?;
                }
            }
            crate::dataplane::Dataplane::new(&host.opts.bpffs, Default::default()).down()?;
        }
        agent::stop(&host.opts)?;
        if netns::path(&host.netns).exists() {
            ip(&["netns", "del", &host.netns])?;
        }
    }
    for name in made {
        let ns = opts.naming.netns(&name);
        if netns::path(&ns).exists() {
            ip(&["netns", "del", &ns])?;
        }
    }
    stop_etcd(opts);
    let fabric = fabric(opts);
    if netns::path(&fabric).exists() {
        ip(&["netns", "del", &fabric])?;
    }
    Ok(())
}

/// Where the lab's etcd listens (on the fabric's bridge: every host reaches it on its underlay).
const ETCD_IP: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 254);
const ETCD_PORT: u16 = 2379;

pub fn etcd_installed() -> bool {
    std::process::Command::new("etcd").arg("--version").output().is_ok_and(|o| o.status.success())
}

fn etcd_pid_file(opts: &HostOptions) -> PathBuf {
    opts.state_dir.join("etcd.pid")
}

/// Start the lab's etcd in the fabric namespace (its data in `STATE_DIR/etcd`) and wait until it
/// answers.
fn start_etcd(opts: &HostOptions, fabric: &str) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let answers = |fabric: &str| {
        netns::in_netns(&netns::path(fabric), || {
            Ok(std::net::TcpStream::connect_timeout(&(ETCD_IP, ETCD_PORT).into(), std::time::Duration::from_millis(200)).is_ok())
        })
        .unwrap_or(false)
    };
    if answers(fabric) {
        return Ok(());
    }
    std::fs::create_dir_all(&opts.state_dir)?;
    let data = opts.state_dir.join("etcd");
    let log = std::fs::File::create(opts.state_dir.join("etcd.log"))?;
    let url = format!("http://{ETCD_IP}:{ETCD_PORT}");
    let mut cmd = std::process::Command::new("nsenter");
    cmd.arg(format!("--net={}", netns::path(fabric).display()))
        .args(["etcd", "--name", "lab", "--data-dir", &data.display().to_string()])
        .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
        .args(["--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380"])
        .args(["--initial-cluster", "lab=http://127.0.0.1:2380"])
        // etcd's own limits (128 operations a transaction): what a user's etcd has; a larger
        // change is written in stages.
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid in the child before exec: it outlives this command.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn().context("starting etcd")?;
    std::fs::write(etcd_pid_file(opts), child.id().to_string())?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !answers(fabric) {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the lab's etcd did not come up: {}",
            std::fs::read_to_string(opts.state_dir.join("etcd.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

/// Stop the lab's etcd and remove its data.
fn stop_etcd(opts: &HostOptions) {
    let file = etcd_pid_file(opts);
    if let Some(pid) = std::fs::read_to_string(&file).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
        // SAFETY: signalling the process this lab started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..100 {
            // SAFETY: signal 0 only asks whether it still exists.
            if unsafe { libc::kill(pid, 0) } != 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_dir_all(opts.state_dir.join("etcd"));
}

/// `global_args` with the pin root, state directory and socket of `host` instead of theirs.
fn with_paths(global_args: &[String], host: &HostOptions) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = global_args.iter();
    while let Some(arg) = args.next() {
        if matches!(arg.as_str(), "--bpffs" | "--state-dir" | "--socket" | "--flow-log-dir") {
            args.next();
            continue;
        }
        out.push(arg.clone());
    }
    out.extend(["--bpffs".into(), host.bpffs.display().to_string(), "--state-dir".into(), host.state_dir.display().to_string()]);
    out
}

/// What `vpc lab up` prints for a lab across hosts: each host's result under its name.
pub fn summary(results: &Value) -> Value {
    json!({"Hosts": results})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_named_numbered_and_kept_apart() {
        let spec = TopologySpec::from_yaml(
            "vpcs: [{name: v, cidr: 10.0.0.0/16, vswitches: [{name: s, cidr: 10.0.1.0/24, zone: a}], \
             enis: [{name: a, vswitch: s, host: h2}, {name: b, vswitch: s, host: h1}, {name: c, vswitch: s}, {name: d, vswitch: s, host: h2}]}]",
        )
        .unwrap();
        assert_eq!(hosts_of(&spec), vec!["h1", "h2"]);
        let opts = HostOptions {
            bpffs: "/sys/fs/bpf/vpc".into(),
            state_dir: "/var/lib/vpc".into(),
            naming: crate::naming::Naming::new("lab-"),
            ..Default::default()
        };
        let hosts = lab_hosts(&opts, &spec);
        let seen: Vec<(&str, &str, String, String, Ipv4Addr)> = hosts
            .iter()
            .map(|h| {
                (
                    h.name.as_str(),
                    h.netns.as_str(),
                    h.opts.bpffs.display().to_string(),
                    h.opts.state_dir.display().to_string(),
                    h.underlay_ip,
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("h1", "lab-h1", "/sys/fs/bpf/vpc-h1".into(), "/var/lib/vpc/h1".into(), Ipv4Addr::new(10, 255, 0, 1)),
                ("h2", "lab-h2", "/sys/fs/bpf/vpc-h2".into(), "/var/lib/vpc/h2".into(), Ipv4Addr::new(10, 255, 1, 2)),
            ]
        );
        let args: Vec<String> = ["--bpffs", "/x", "--prefix", "lab-", "--state-dir", "/y", "--quota", "vpcs=3"].map(String::from).to_vec();
        assert_eq!(
            with_paths(&args, &hosts[0].opts),
            ["--prefix", "lab-", "--quota", "vpcs=3", "--bpffs", "/sys/fs/bpf/vpc-h1", "--state-dir", "/var/lib/vpc/h1"]
                .map(String::from)
                .to_vec()
        );
    }
}
