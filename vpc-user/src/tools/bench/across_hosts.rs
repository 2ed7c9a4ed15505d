//! Forwarding throughput across hosts on the veth underlay, beside one host's in the same run:
//! a three-host lab as `vpc lab up -f` makes it (agents in host namespaces, the fabric's two
//! bridges routed by it, the lab's etcd), the live-frames generator in a guest on h1 sending
//! 64-byte UDP to a guest on h1 itself, on h3 (the same fabric link) and on h2 (through the
//! fabric's router), and to h3 once more with the fabric a wire (h1's fabric side redirected
//! by XDP straight into h3's: what the data path's encapsulation and decapsulation cost, without
//! the kernel's bridge in between), and what h1 alone sends (counted at its fabric side: two
//! real hosts run their halves on CPUs of their own, here one CPU runs both in a row),
//! alternated in every round. Only the shares mean anything: the fabric runs on the same two
//! CPUs.

use anyhow::Context as _;
use serde_json::json;

use super::throughput::{Programs, ThroughputResult, measure};
use crate::{
    agent::HostOptions,
    api::Conn,
    model::spec::TopologySpec,
    packet::Ipv4,
    tools::lab::{self, hosts},
};

const TOPOLOGY: &str = "
vpcs:
  - name: bench
    cidr: 10.30.0.0/16
    vswitches: [{name: sw, cidr: 10.30.1.0/24, zone: a}]
    enis:
      - {name: src, vswitch: sw, ip: 10.30.1.10, host: h1}
      - {name: near, vswitch: sw, ip: 10.30.1.20, host: h1}
      - {name: routed, vswitch: sw, ip: 10.30.1.30, host: h2}
      - {name: linked, vswitch: sw, ip: 10.30.1.40, host: h3}
";

/// What stands between h1 and h3 for a variant.
#[derive(Clone, Copy, PartialEq)]
enum Fabric {
    /// The lab's bridges (and router).
    Kernel,
    /// An XDP redirect from h1's fabric side into h3's.
    Wire,
    /// Nothing: what h1 sends is counted at its fabric side (the sending host's half alone).
    Counted,
}

/// The variants: receiver ENI, name, fabric.
const TO: [(&str, &str, Fabric); 5] = [
    ("near", "lab: one host", Fabric::Kernel),
    ("linked", "lab: across hosts, one link", Fabric::Kernel),
    ("routed", "lab: across hosts, through the fabric's router", Fabric::Kernel),
    ("linked", "lab: across hosts, the fabric a wire", Fabric::Wire),
    ("linked", "lab: the sending host alone (counted leaving h1)", Fabric::Counted),
];

/// `None` without etcd (the lab's store): nothing to measure.
pub fn run(rounds: usize) -> anyhow::Result<Option<Vec<ThroughputResult>>> {
    if !hosts::etcd_installed() {
        eprintln!("bench: no etcd here: the throughput across hosts is not measured");
        return Ok(None);
    }
    let opts = HostOptions {
        bpffs: format!("/sys/fs/bpf/vpc-bench-xh-{}", std::process::id()).into(),
        state_dir: std::env::temp_dir().join(format!("vpc-bench-xh-{}", std::process::id())),
        naming: crate::naming::Naming::new("vbx-"),
        ..Default::default()
    };
    let spec = TopologySpec::from_yaml(TOPOLOGY)?;
    let global = opts.paths_args();
    let _ = hosts::down(&opts, &spec);
    let measured = (|| {
        hosts::up(&opts, &std::env::current_exe()?, &global, &spec).context("the lab across hosts")?;
        measure_all(&opts, &spec, rounds)
    })();
    let _ = hosts::down(&opts, &spec);
    let _ = std::fs::remove_dir_all(&opts.state_dir);
    measured.map(Some)
}

fn measure_all(opts: &HostOptions, spec: &TopologySpec, rounds: usize) -> anyhow::Result<Vec<ThroughputResult>> {
    let lab_hosts = hosts::lab_hosts(opts, spec);
    // Every agent sees the others up (their underlay neighbours resolved).
    let start = std::time::Instant::now();
    for host in &lab_hosts {
        let conn = Conn::Remote(host.opts.socket());
        while conn.call("DescribeHosts", json!({}))?["Hosts"].as_array().is_none_or(|h| h.iter().any(|h| h["Status"] == "Down")) {
            anyhow::ensure!(start.elapsed() < std::time::Duration::from_secs(20), "host {} never saw the others up", host.name);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let topology = lab::configured(&Conn::Remote(lab_hosts[0].opts.socket()))?;
    let (_, vsw, src) = topology.eni("src").context("src")?;
    let mut p = Programs::load()?;
    let guest = |eni: &str| opts.naming.netns(eni);
    let mut frames = Vec::new();
    for (i, (eni, _, fabric)) in TO.iter().enumerate() {
        if *fabric == Fabric::Kernel && !TO[..i].iter().any(|t| t.0 == *eni) {
            p.attach("vpc_bench_count", &guest(eni), "eth0")?;
        }
        let dst = topology.eni(eni).context("receiver")?.2.ip;
        frames.push(Ipv4::udp(src.ip, dst, 40000, 9, &[0x5a; 22]).frame(vsw.gateway_mac, src.mac));
    }
    // The wire: what h1 sends into the fabric goes out of h3's fabric side as it came.
    let (fabric, h1_side, h3_side) = (hosts::fabric(opts), format!("{}f1", opts.naming.prefix), format!("{}f3", opts.naming.prefix));
    p.set_target(&fabric, &h3_side)?;
    // Warm up each path once (connections, neighbours), unmeasured.
    for frame in &frames {
        p.set_frame(frame)?;
        p.generate(&guest("src"), "eth0")?;
    }
    let mut samples = vec![Vec::new(); TO.len()];
    for round in 0..rounds {
        eprintln!("bench: throughput across hosts, round {} of {rounds} ...", round + 1);
        for (i, frame) in frames.iter().enumerate() {
            p.set_frame(frame)?;
            // (While the wire is in, h1 reaches nothing else through the fabric, its etcd
            // included: for the second a measurement takes.)
            let program = match TO[i].2 {
                Fabric::Kernel => None,
                Fabric::Wire => Some("vpc_bench_redirect"),
                Fabric::Counted => Some("vpc_bench_count"),
            };
            let link = program.map(|name| p.attach(name, &fabric, &h1_side).map(|link| (name, link))).transpose()?;
            let measured = measure(&p, &guest("src"), "eth0");
            if let Some((name, link)) = link {
                p.detach(name, link)?;
            }
            samples[i].push(measured?);
        }
    }
    Ok(TO
        .iter()
        .zip(samples)
        .map(|((_, variant, _), mut rounds)| {
            let mpps = super::median(&mut rounds.clone());
            rounds.sort_by(f64::total_cmp);
            ThroughputResult { variant: variant.to_string(), mpps, rounds }
        })
        .collect())
}
