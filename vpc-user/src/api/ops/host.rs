//! The hosts of a cluster as this agent sees them (a single host lists only itself).

use serde_json::{Value, json};

use super::{Op, R};
use crate::{agent::Agent, api::Params, model::addr::format_mac};

pub static OPS: &[Op] = &[Op {
    name: "DescribeHosts",
    summary: "The hosts of the cluster as this agent sees them: this one and the others, their underlay addresses, whether they are reachable, and the ENIs placed on each.",
    params: &[],
    returns: &[
        ("Host", "This host's name (null: a single host)."),
        (
            "Hosts",
            "Per host: HostName, HostNumber, UnderlayAddress, NextHopMac, Status (Self, Up, Down), NetworkInterfaceNames (the ENIs placed on it).",
        ),
        (
            "Underlay",
            "This host's underlay: Interface index, Mac, Mtu, the MTU left for guests across it (TunnelMtu), and how frames to other hosts leave (Transmit: xdp, or tc when XDP cannot transmit on the device); null without one.",
        ),
        (
            "Revision",
            "The configuration's revision this host's data path holds (the store's commits; the same on every host once each has followed).",
        ),
    ],
    mutates: false,
    run: describe_hosts,
}];

fn describe_hosts(agent: &mut Agent, _: &Params) -> R<Value> {
    let cluster = &agent.binding().cluster;
    let topology = agent.topology();
    let me = cluster.me.as_deref();
    // ENIs placed on no host are every host's own (a single host's: all of them).
    let enis_on = |host: Option<&str>| -> Vec<String> {
        topology
            .enis()
            .filter(|(_, _, e)| e.host.as_deref() == host || (e.host.is_none() && host == me))
            .map(|(_, _, e)| e.name.clone())
            .collect()
    };
    let mut hosts: Vec<Value> = cluster
        .hosts
        .iter()
        .map(|(name, h)| {
            let status = if Some(name.as_str()) == me {
                "Self"
            } else if h.up {
                "Up"
            } else {
                "Down"
            };
            json!({
                "HostName": name,
                "HostNumber": h.number,
                "UnderlayAddress": h.ip.to_string(),
                "NextHopMac": if h.up { Value::from(format_mac(&h.mac)) } else { Value::Null },
                "Status": status,
                "NetworkInterfaceNames": enis_on(Some(name)),
            })
        })
        .collect();
    if me.is_none() {
        hosts.push(json!({"HostName": Value::Null, "Status": "Self", "NetworkInterfaceNames": enis_on(None)}));
    }
    let underlay = cluster.underlay.map(|u| {
        let transmit = if u.tc_xmit { "tc" } else { "xdp" };
        json!({"Interface": u.ifindex, "Mac": format_mac(&u.mac), "Mtu": u.mtu, "TunnelMtu": cluster.tunnel_mtu(), "Transmit": transmit})
    });
    Ok(json!({"Host": me, "Hosts": hosts, "Underlay": underlay, "Revision": agent.revision()}))
}
