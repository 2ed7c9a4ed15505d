//! The lab: every ENI becomes a network namespace (the guest) joined to the host by a veth
//! pair. Guest side `eth0` carries the ENI's MAC and address, prefix of its VSwitch and a
//! default route via the VSwitch gateway; the host side is where the XDP program runs.

use std::{
    fs,
    io::Write as _,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Command, Stdio},
};

pub mod probe;

use anyhow::{Context as _, bail};

use crate::{
    agent::{Agent, Applied},
    model::{addr::format_mac, spec::TopologySpec, Topology},
    netns,
};

/// Create what is missing of every ENI's namespace and veth, then apply the topology.
pub fn up(agent: &Agent, spec: &TopologySpec) -> anyhow::Result<Applied> {
    let topology = Topology::from_spec(spec)?;
    for (_, vswitch, eni) in topology.enis() {
        let ns = agent.opts.naming.netns(&eni.name);
        let host = agent.opts.naming.host_ifname(eni);
        if !netns::path(&ns).exists() {
            ip(&["netns", "add", &ns])?;
        }
        if crate::dataplane::ifindex(&host).is_none() {
            ip(&["link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
        }
        // No IPv6 chatter (router solicitations, DAD) on either side: the VPC is IPv4.
        let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{host}/disable_ipv6"), "1");
        netns::in_netns(&netns::path(&ns), || {
            for knob in ["all", "default", "lo"] {
                let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{knob}/disable_ipv6"), "1");
            }
            Ok(())
        })?;
        ip_batch(
            Some(&ns),
            &[
                format!("link set eth0 address {}", format_mac(&eni.mac)),
                format!("addr replace {}/{} dev eth0", eni.ip, vswitch.cidr.prefix_len()),
                "link set lo up".into(),
                "link set eth0 up".into(),
                format!("route replace default via {} dev eth0", vswitch.gateway),
            ],
        )?;
        ip(&["link", "set", &host, "up"])?;
    }
    agent.apply(spec, false)
}

/// Remove the data path, the state, every namespace and veth the lab made for `spec` and for the
/// topology last applied.
pub fn down(agent: &Agent, spec: Option<&TopologySpec>) -> anyhow::Result<()> {
    let mut enis = Vec::new();
    if let Some(spec) = spec {
        let topology = Topology::from_spec(spec)?;
        enis.extend(topology.enis().map(|(_, _, e)| e.clone()));
    }
    if let Ok((applied, _)) = agent.state() {
        enis.extend(applied.enis().map(|(_, _, e)| e.clone()));
    }
    agent.down()?;
    for eni in enis {
        let host = agent.opts.naming.host_ifname(&eni);
        if crate::dataplane::ifindex(&host).is_some() {
            ip(&["link", "del", &host])?;
        }
        let ns = agent.opts.naming.netns(&eni.name);
        if netns::path(&ns).exists() {
            ip(&["netns", "del", &ns])?;
        }
    }
    Ok(())
}

/// Replace this process with `cmd` running in the ENI's namespace.
pub fn exec(agent: &Agent, eni: &str, cmd: &[String]) -> anyhow::Result<()> {
    let ns = agent.opts.naming.netns(eni);
    if !netns::path(&ns).exists() {
        bail!("no lab namespace for ENI '{eni}' ({ns}); is the lab up with the same --prefix?");
    }
    let Some((program, args)) = cmd.split_first() else { bail!("nothing to run: vpc lab exec {eni} -- CMD...") };
    let err = Command::new("ip").args(["netns", "exec", &ns, program]).args(args).exec();
    Err(err).context("running ip netns exec")
}

/// Run `ip ARGS`, failing with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (install iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Run several `ip` commands in one process (`ip -batch`), optionally inside `netns`.
pub fn ip_batch(netns: Option<&str>, lines: &[String]) -> anyhow::Result<()> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd.args(["-batch", "-"]).stdin(Stdio::piped()).stderr(Stdio::piped()).stdout(Stdio::null()).spawn()?;
    child.stdin.take().context("ip stdin")?.write_all(lines.join("\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("ip -batch ({}): {}", lines.join("; "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Whether the lab namespace of `eni` exists.
pub fn has_guest(agent: &Agent, eni: &str) -> bool {
    Path::new(&netns::path(&agent.opts.naming.netns(eni))).exists()
}
