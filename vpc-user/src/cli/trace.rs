//! `vpc trace --from ENI --to ADDR`: what happens to a packet, explained by the model and
//! checked against the real XDP program (loaded in a scratch namespace with the configuration
//! the agent holds, fed the same frame through BPF_PROG_TEST_RUN). Disagreement is printed
//! loudly. Also says whether the live kernel maps hold what the configuration compiles to.

use std::{collections::BTreeSet, net::Ipv4Addr};

use anyhow::Context as _;
use serde_json::json;

use crate::{
    agent::HostOptions,
    api::Conn,
    compile,
    dataplane::Dataplane,
    model::{Topology, binding::Binding, forward::Action, ids::Ids, spec::TopologySpec, topology::Quotas},
    packet::{self, Ipv4},
    tools::testrun,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    Icmp,
    Tcp,
    Udp,
}

pub struct Request {
    pub from: String,
    pub to: Ipv4Addr,
    pub proto: Proto,
    pub sport: u16,
    pub dport: u16,
    pub ttl: u8,
}

pub fn run(opts: &HostOptions, req: Request) -> anyhow::Result<()> {
    let conn = Conn::to(opts);
    let exported = conn.call("ExportTopology", json!({}))?;
    let spec: TopologySpec = serde_json::from_value(exported["Topology"].clone())?;
    let ids: Ids = serde_json::from_value(exported["Ids"].clone()).unwrap_or_default();
    let down: BTreeSet<(String, usize)> = serde_json::from_value(exported["Down"].clone()).unwrap_or_default();
    let topology = Topology::from_spec(&spec, &Quotas::unlimited()).map_err(|e| anyhow::anyhow!("{e}"))?;

    // The sender as the guest would send it: its own MAC and address, to its gateway.
    let (mac, gw_mac, src) = match topology.eni(&req.from) {
        Some((_, vsw, eni)) => (eni.mac, vsw.gateway_mac, eni.ip),
        None => {
            let gw = topology.vpcs.iter().flat_map(|v| &v.gateways).find(|g| g.name == req.from);
            let gw = gw.with_context(|| format!("no ENI or gateway '{}'", req.from))?;
            (
                gw.mac,
                gw.local_mac,
                gw.networks.first().map(|n| Ipv4Addr::from(u32::from(n.network()) + 1)).unwrap_or(Ipv4Addr::new(203, 0, 113, 1)),
            )
        }
    };
    let ip = match req.proto {
        Proto::Icmp => Ipv4::icmp_echo(src, req.to, req.sport, 1),
        Proto::Tcp => Ipv4::tcp(src, req.to, req.sport, req.dport, packet::TCP_SYN),
        Proto::Udp => Ipv4::udp(src, req.to, req.sport, req.dport, b"vpc trace"),
    }
    .ttl(req.ttl);
    let frame = ip.frame(gw_mac, mac);
    let what = match req.proto {
        Proto::Icmp => format!("ICMP echo id {}", req.sport),
        Proto::Tcp => format!("TCP {} -> {}", req.sport, req.dport),
        Proto::Udp => format!("UDP {} -> {}", req.sport, req.dport),
    };
    println!("trace {} ({src}) -> {} {what}, TTL {}", req.from, req.to, req.ttl);

    // ENIs and gateways without an interface here are left detached in the harness too.
    let here = crate::agent::interfaces_here(&opts.naming, &topology);
    let detached: Vec<String> =
        opts.naming.interfaces(&topology).filter(|(id, _, _)| !here.contains_key(*id)).map(|(_, name, _)| name.to_string()).collect();
    // In a cluster: the sender's host, then, if it crossed, the receiver's, each by the model
    // and its own program (every host runs the same program on the same configuration).
    let described = conn.call("DescribeHosts", json!({}))?;
    if let Some(me) = described["Host"].as_str() {
        let mut hosts: Vec<(String, bool)> = described["Hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| Some((h["HostName"].as_str()?.to_string(), h["Status"] != "Down")))
            .collect();
        if !hosts.iter().any(|(name, _)| name == me) {
            hosts.push((me.to_string(), true));
        }
        hosts.sort();
        let (from, down) = (req.from.clone(), down.clone());
        let names: Vec<String> = hosts.iter().map(|(n, _)| n.clone()).collect();
        let named: Vec<&str> = names.iter().map(String::as_str).collect();
        let steps = testrun::with_cluster(topology.clone(), &named, move |hs| {
            let names: Vec<String> = hosts.iter().map(|(n, _)| n.clone()).collect();
            let at = placed_on(&hs[0].topology, &from).and_then(|h| names.iter().position(|n| *n == h)).unwrap_or(0);
            // The hosts down as this agent sees them are down for the sender's host too.
            let mut cluster = hs[at].binding.cluster.clone();
            for (name, up) in &hosts {
                if let Some(info) = cluster.hosts.get_mut(name) {
                    info.up = *up;
                }
            }
            hs[at].set_cluster(cluster)?;
            hs[at].set_down(down)?;
            let ifindex = hs[at].ifindex(&from);
            let sent = decide(&mut hs[at], ifindex, &frame)?;
            let mut out = vec![(names[at].clone(), sent.clone())];
            // Encapsulated: the outer destination names the receiving host.
            if let Action::Redirect { .. } = sent.action
                && let Some(there) = receiving_host(hs, &sent.frame)
            {
                let underlay = hs[there].underlay();
                out.push((names[there].clone(), decide(&mut hs[there], underlay, &sent.frame)?));
            }
            Ok(out)
        })?;
        for (i, (host, step)) in steps.iter().enumerate() {
            println!("on {host} ({}):", if i == 0 { "the sender's host" } else { "the receiver's host, from the underlay" });
            step.print();
        }
        let agree = steps.iter().all(|(_, s)| s.agree);
        report_agreement(agree);
        println!("live kernel maps: not compared in a cluster (each host's agent holds its own view of the hosts)");
        anyhow::ensure!(agree, "model and program disagree");
        exit_if_dropped(steps.last().is_some_and(|(_, s)| s.dropped));
        return Ok(());
    }

    let from = req.from.clone();
    let step = {
        let down_ids = down.clone();
        let frame = frame.clone();
        testrun::with_harness_detached(topology.clone(), &detached, move |h| {
            h.set_down(down_ids)?;
            let ifindex = h.ifindex(&from);
            decide(h, ifindex, &frame)
        })?
    };
    step.print();
    let agree = step.agree;
    report_agreement(agree);

    // Does the live data path hold what this configuration compiles to?
    let dataplane = Dataplane::new(&opts.bpffs, opts.limits);
    if dataplane.is_up() && !ids.vpcs.is_empty() {
        let ifindex = crate::agent::interfaces_here(&opts.naming, &topology);
        let wanted = compile::compile(&topology, &Binding { ids, ifindex, down, ..Default::default() });
        match dataplane.read_entries() {
            Ok(live) if live == wanted => println!("live kernel maps: hold exactly this configuration"),
            Ok(_) => println!("live kernel maps: DIFFER from this configuration (the agent re-syncs on its next change or restart)"),
            Err(e) => println!("live kernel maps: unreadable ({e:#})"),
        }
    }
    anyhow::ensure!(agree, "model and program disagree");
    exit_if_dropped(step.dropped);
    Ok(())
}

/// One host's decision on a frame: the model's steps and verdict, and the program's.
#[derive(Clone)]
struct Step {
    steps: Vec<String>,
    model: String,
    program: String,
    agree: bool,
    dropped: bool,
    /// The model's action and output frame (what goes on to the next host).
    action: Action,
    frame: Vec<u8>,
}

impl Step {
    fn print(&self) {
        println!("model:");
        for step in &self.steps {
            println!("  {step}");
        }
        println!("  verdict: {}", self.model);
        println!("XDP program (TestRun): {}", self.program);
    }
}

/// `frame` on `ifindex` of `h`, by the model and by the program.
fn decide(h: &mut testrun::Harness, ifindex: u32, frame: &[u8]) -> anyhow::Result<Step> {
    let expected = h.expect(ifindex, frame);
    let observed = h.run(ifindex, frame)?;
    let name = |port: u32| h.port_name(port);
    let describe = |action: Action| match action {
        Action::Redirect { port } => format!("deliver to {} (port {port})", name(port)),
        Action::Pass => "hand to the host's network stack".to_string(),
        Action::Drop(reason) => format!("drop: {} ({})", reason.name(), reason.describe().trim()),
    };
    let agree = observed.action == expected.action && observed.frame == expected.frame;
    let program = format!("{}{}", describe(observed.action), if observed.frame == expected.frame { "" } else { "; OUTPUT FRAME DIFFERS" });
    Ok(Step {
        steps: expected.steps.clone(),
        model: describe(expected.action),
        program,
        agree,
        dropped: matches!(expected.action, Action::Drop(_)),
        action: expected.action,
        frame: expected.frame,
    })
}

/// The host an ENI or gateway is placed on.
fn placed_on(topology: &Topology, name: &str) -> Option<String> {
    match topology.eni(name) {
        Some((_, _, eni)) => eni.host.clone(),
        None => topology.vpcs.iter().flat_map(|v| &v.gateways).find(|g| g.name == name)?.host.clone(),
    }
}

/// The harness whose underlay address `frame`'s outer header is for (none: not encapsulated).
fn receiving_host(hs: &[testrun::Harness], frame: &[u8]) -> Option<usize> {
    let header: &[u8; vpc_common::tunnel::OUTER_LEN] = frame.get(..vpc_common::tunnel::OUTER_LEN)?.try_into().ok()?;
    hs.iter().position(|h| {
        let me = h.binding.cluster.my_ip().map(|ip| vpc_common::addr_raw(ip.octets()));
        me.is_some_and(|ip| matches!(vpc_common::tunnel::outer(header, frame.len(), ip), vpc_common::tunnel::Outer::Geneve { .. }))
    })
}

fn report_agreement(agree: bool) {
    if agree {
        println!("model and program AGREE");
    } else {
        println!("!!!!!!!! model and program DISAGREE: this is a bug; please report it with this trace !!!!!!!!");
    }
}

/// Scripts tell a dropped packet from a delivered one by the exit status.
fn exit_if_dropped(dropped: bool) {
    if dropped {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        std::process::exit(TRACE_DROPPED);
    }
}

/// `vpc trace`'s exit status for a dropped packet.
pub const TRACE_DROPPED: i32 = 3;
