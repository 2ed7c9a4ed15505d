//! A lab across hosts: a topology that places ENIs on hosts (`host: h1`) becomes a fabric
//! namespace (`PREFIXfabric`, a bridge), one namespace per host (`PREFIXh1`, ...) with an underlay
//! veth `und0` on the bridge (10.255.0.N/24, hosts numbered in name order) and its own agent --
//! `vpc daemon --host --underlay und0 --peer ...`, pin root `BPFFS-h1`, state directory
//! `STATE_DIR/h1` -- and each host's guests. Reach a host's agent with
//! `vpc --bpffs BPFFS-h1 --state-dir STATE_DIR/h1 ...`; `vpc lab exec ENI` works for every guest.

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

/// The hosts `spec` places ENIs on, in name order (none: a single-host lab).
pub fn hosts_of(spec: &TopologySpec) -> Vec<String> {
    let mut hosts: Vec<String> = spec.vpcs.iter().flat_map(|v| &v.enis).filter_map(|e| e.host.clone()).collect();
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
                underlay_ip: Ipv4Addr::new(10, 255, 0, i as u8 + 1),
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
        ip_batch(Some(&fabric), &["link add br0 type bridge".into(), "link set br0 up".into(), "link set lo up".into()])?;
    }
    for (i, host) in hosts.iter().enumerate() {
        if netns::path(&host.netns).exists() {
            continue;
        }
        let fabric_side = format!("{}f{}", opts.naming.prefix, i + 1);
        ip(&["netns", "add", &host.netns])?;
        ip(&["link", "add", &fabric_side, "netns", &fabric, "type", "veth", "peer", "name", "und0", "netns", &host.netns])?;
        ip_batch(Some(&fabric), &[format!("link set {fabric_side} master br0"), format!("link set {fabric_side} up")])?;
        ip_batch(
            Some(&host.netns),
            &["link set lo up".into(), format!("addr add {}/24 dev und0", host.underlay_ip), "link set und0 up".into()],
        )?;
    }
    let mut results = serde_json::Map::new();
    for host in &hosts {
        let mut daemon = vec!["--host".to_string(), host.name.clone(), "--underlay".into(), "und0".into()];
        for other in hosts.iter().filter(|o| o.name != host.name) {
            daemon.extend(["--peer".into(), format!("{}={}", other.name, other.underlay_ip)]);
        }
        let args = with_paths(global_args, &host.opts);
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
    for host in lab_hosts(opts, spec) {
        if client::is_running(&host.opts.socket()) {
            let (conn, naming, spec) = (Conn::Remote(host.opts.socket()), host.opts.naming.clone(), spec.clone());
            netns::in_netns(&netns::path(&host.netns), move || super::down(&conn, &naming, Some(&spec)))
                .with_context(|| format!("host {}", host.name))?;
        }
        agent::stop(&host.opts)?;
        if netns::path(&host.netns).exists() {
            ip(&["netns", "del", &host.netns])?;
        }
    }
    let fabric = fabric(opts);
    if netns::path(&fabric).exists() {
        ip(&["netns", "del", &fabric])?;
    }
    Ok(())
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
                ("h2", "lab-h2", "/sys/fs/bpf/vpc-h2".into(), "/var/lib/vpc/h2".into(), Ipv4Addr::new(10, 255, 0, 2)),
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
