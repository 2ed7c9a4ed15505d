//! The lab: every ENI becomes a network namespace (the guest) joined to the host by a veth
//! pair. Guest side `eth0` carries the ENI's MAC and address, prefix of its VSwitch and a
//! default route via the VSwitch gateway; the host side is where the XDP program runs.
//!
//! The lab talks to the agent like any client: it applies the topology, reads back the
//! resulting configuration (addresses and MACs the agent allocated), creates the guests, and
//! asks the agent to bind the new interfaces.

pub mod agent;
pub mod hosts;
pub mod probe;

use std::{
    fs,
    io::Write as _,
    os::unix::process::CommandExt as _,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::{
    api::Conn,
    model::{Topology, addr::format_mac, spec::TopologySpec, topology::Quotas},
    naming::Naming,
    netns,
};

/// Apply `spec`, then create what is missing of every ENI's namespace and veth, then bind them.
/// Returns the apply result (changes and data-path report) with `Attached`: ENIs now in the
/// data path.
pub fn up(conn: &Conn, naming: &Naming, spec: &TopologySpec) -> anyhow::Result<Value> {
    let applied = conn.call("ApplyTopology", json!({"Topology": spec}))?;
    let topology = configured(conn)?;
    let me = this_host(conn)?;
    for (_, vswitch, eni) in topology.enis().filter(|(_, _, e)| is_here(e.host.as_deref(), me.as_deref())) {
        let ns = naming.netns(&eni.name);
        let host = naming.host_ifname(eni);
        guest(&ns, &host)?;
        ip_batch(
            Some(&ns),
            &[
                format!("link set eth0 address {}", format_mac(&eni.mac)),
                "addr flush dev eth0".into(),
                format!("link set eth0 mtu {}", eni.mtu),
                format!("addr add {}/{} dev eth0", eni.ip, vswitch.cidr.prefix_len()),
                "link set lo up".into(),
                "link set eth0 up".into(),
                format!("route replace default via {} dev eth0", vswitch.gateway),
            ],
        )?;
        // The host side takes what the guest may send (the data path checks the receiver's).
        ip(&["link", "set", &host, "mtu", &crate::model::topology::MAX_MTU.to_string(), "up"])?;
    }
    // A gateway's namespace stands for the network behind it: an address in each of its
    // networks, and everything else sent to the VPC. (With hosts, on the gateway's host.)
    for vpc in &topology.vpcs {
        for gw in vpc.gateways.iter().filter(|g| is_here(g.host.as_deref(), me.as_deref())) {
            let ns = naming.netns(&gw.name);
            let host = naming.host_ifname_of(&gw.name, gw.interface.as_deref());
            guest(&ns, &host)?;
            let mut lines = vec![
                format!("link set eth0 address {}", format_mac(&gw.mac)),
                "addr flush dev eth0".into(),
                format!("link set eth0 mtu {}", gw.mtu),
            ];
            if let Some(ip) = gw.ip {
                lines.push(format!("addr add {ip}/32 dev eth0"));
            }
            for net in gw.networks.iter().filter(|n| n.prefix_len() > 0) {
                let first = std::net::Ipv4Addr::from(u32::from(net.network()) + u32::from(net.prefix_len() < 32));
                lines.push(format!("addr replace {first}/32 dev lo"));
            }
            let via = std::net::Ipv4Addr::from(u32::from(vpc.cidr.network()) + 1);
            lines.extend(["link set lo up".into(), "link set eth0 up".into(), format!("route replace default via {via} dev eth0 onlink")]);
            ip_batch(Some(&ns), &lines)?;
            ip(&["link", "set", &host, "mtu", &crate::model::topology::MAX_MTU.to_string(), "up"])?;
        }
    }
    let synced = conn.call("SyncInterfaces", json!({}))?;
    let mut applied = applied;
    applied["Attached"] = synced["Attached"].clone();
    Ok(applied)
}

/// This agent's host name in a cluster (none: a single host).
fn this_host(conn: &Conn) -> anyhow::Result<Option<String>> {
    Ok(conn.call("DescribeHosts", json!({}))?["Host"].as_str().map(str::to_string))
}

/// Whether an ENI placed on `host` has its guest on this agent's host `me`: placed on no host,
/// it is every host's own (so a single host holds them all).
fn is_here(host: Option<&str>, me: Option<&str>) -> bool {
    host.is_none() || me.is_none() || host == me
}

/// A namespace `ns` joined to the host by veth `host` (guest side `eth0`), without IPv6 chatter
/// (router solicitations, DAD) on either side: the VPC is IPv4.
fn guest(ns: &str, host: &str) -> anyhow::Result<()> {
    if !netns::path(ns).exists() {
        ip(&["netns", "add", ns])?;
    }
    if crate::dataplane::ifindex(host).is_none() {
        ip(&["link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns])?;
    }
    let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{host}/disable_ipv6"), "1");
    netns::in_netns(&netns::path(ns), || {
        for knob in ["all", "default", "lo"] {
            let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{knob}/disable_ipv6"), "1");
        }
        Ok(())
    })
}

/// The configuration the agent holds now.
pub fn configured(conn: &Conn) -> anyhow::Result<Topology> {
    let exported = conn.call("ExportTopology", json!({}))?;
    let spec: TopologySpec = serde_json::from_value(exported["Topology"].clone()).context("decoding the exported topology")?;
    Topology::from_spec(&spec, &Quotas::unlimited()).map_err(|e| anyhow::anyhow!("exported topology: {e}"))
}

/// Remove the data path and the configuration, then every namespace and veth the lab made for
/// `spec` and for the configuration the agent held.
pub fn down(conn: &Conn, naming: &Naming, spec: Option<&TopologySpec>) -> anyhow::Result<()> {
    let mut enis: Vec<(String, Option<String>)> = Vec::new();
    // Another host's guests are its lab's to remove.
    let me = this_host(conn).ok().flatten();
    let here = |host: &Option<String>| is_here(host.as_deref(), me.as_deref());
    if let Some(spec) = spec {
        enis.extend(spec.vpcs.iter().flat_map(|v| &v.enis).filter(|e| here(&e.host)).map(|e| (e.name.clone(), e.interface.clone())));
        enis.extend(spec.enis.iter().map(|e| (e.name.clone(), e.interface.clone())));
        enis.extend(spec.vpcs.iter().flat_map(|v| &v.gateways).filter(|g| here(&g.host)).map(|g| (g.name.clone(), g.interface.clone())));
    }
    if let Ok(topology) = configured(conn) {
        enis.extend(topology.enis().filter(|(_, _, e)| here(&e.host)).map(|(_, _, e)| (e.name.clone(), e.interface.clone())));
        enis.extend(
            topology.vpcs.iter().flat_map(|v| &v.gateways).filter(|g| here(&g.host)).map(|g| (g.name.clone(), g.interface.clone())),
        );
    }
    conn.call("Teardown", json!({}))?;
    for (eni, interface) in enis {
        let host = naming.host_ifname_of(&eni, interface.as_deref());
        if interface.is_none() && crate::dataplane::ifindex(&host).is_some() {
            ip(&["link", "del", &host])?;
        }
        let ns = naming.netns(&eni);
        if netns::path(&ns).exists() {
            ip(&["netns", "del", &ns])?;
        }
    }
    Ok(())
}

/// Replace this process with `cmd` running in the ENI's namespace.
pub fn exec(naming: &Naming, eni: &str, cmd: &[String]) -> anyhow::Result<()> {
    let ns = naming.netns(eni);
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
