//! Control-plane speed: a `vpc daemon` of its own (separate pin root and state directory), timed
//! from the client's side of the socket, as a user sees it.
//!
//! Per round: a fresh apply of `routes` routes through the API (ApplyTopology); a replace that
//! changes every route's next hop (a new table generation, flipped atomically); a fresh apply
//! with `vpc apply -f` of the same document as YAML (adds reading and parsing the file); and
//! one CreateRouteEntry into the full table -- when the call returns, the entry is in the kernel
//! (the transaction writes the maps before it answers), so this is the call-to-effect latency.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::{Value, json};

use super::median;
use crate::{
    agent::HostOptions,
    api::{ApiError, ApplyTopologyRequest, Conn, client},
    model::spec::{NextHopSpec, RouteSpec, RouteTableSpec, TopologySpec},
};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ControlResult {
    pub routes: usize,
    /// ApplyTopology with every route new, seconds (median).
    pub api_apply_s: f64,
    /// ApplyTopology changing every route's next hop, seconds.
    pub api_replace_s: f64,
    /// `vpc apply -f` of the YAML file with every route new, seconds.
    pub cli_apply_s: f64,
    /// CreateRouteEntry into the full table, call to effect, milliseconds.
    pub route_entry_ms: f64,
    /// Size of the YAML file, bytes.
    pub yaml_bytes: usize,
}

fn document(routes: usize, blackhole: bool) -> TopologySpec {
    let mut spec = TopologySpec::from_yaml(
        "vpcs:
  - name: bench
    cidr: 192.168.0.0/16
    vswitches: [{name: bench, cidr: 192.168.1.0/24, zone: zone-a}]
    enis: [{name: n1, vswitch: bench, ip: 192.168.1.5, source_dest_check: false}]",
    )
    .expect("fixed document");
    let next_hop = if blackhole { NextHopSpec::Blackhole } else { NextHopSpec::Eni { eni: "n1".into() } };
    let routes = (0..routes)
        .map(|i| RouteSpec {
            id: None,
            dst: format!("{}/28", std::net::Ipv4Addr::from(0x0a00_0000u32 + ((i as u32) << 4))),
            next_hop: next_hop.clone(),
            name: None,
            description: None,
        })
        .collect();
    spec.vpcs[0].route_tables.push(RouteTableSpec { name: crate::model::constants::SYSTEM_TABLE.into(), routes, ..Default::default() });
    spec
}

/// A daemon for the length of the bench; torn down (pins, state, process) on drop.
struct BenchAgent {
    opts: HostOptions,
    args: Vec<String>,
    child: std::process::Child,
    vpc_bin: std::path::PathBuf,
}

impl BenchAgent {
    fn start(vpc_bin: &Path, routes: usize) -> anyhow::Result<BenchAgent> {
        let tag = std::process::id();
        let opts = HostOptions {
            bpffs: format!("/sys/fs/bpf/vpc-bench-{tag}").into(),
            state_dir: std::env::temp_dir().join(format!("vpc-bench-{tag}")),
            ..Default::default()
        };
        let _ = std::fs::remove_dir_all(&opts.state_dir);
        std::fs::create_dir_all(&opts.state_dir)?;
        let args = vec![
            "--bpffs".into(),
            opts.bpffs.display().to_string(),
            "--state-dir".into(),
            opts.state_dir.display().to_string(),
            "--quota".into(),
            format!("route-entries-per-table={}", routes + 16),
        ];
        let log = std::fs::File::create(opts.state_dir.join("daemon.log"))?;
        let child = Command::new(vpc_bin)
            .args(&args)
            .arg("daemon")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} daemon", vpc_bin.display()))?;
        let agent = BenchAgent { opts, args, child, vpc_bin: vpc_bin.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !client::is_running(&agent.opts.socket()) {
            anyhow::ensure!(Instant::now() < deadline, "the bench agent did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(agent)
    }

    fn conn(&self) -> Conn {
        Conn::Remote(self.opts.socket())
    }

    fn call(&self, action: &str, body: Value) -> anyhow::Result<Value> {
        self.conn().call(action, body).map_err(|e: ApiError| anyhow::anyhow!("{action}: {e}"))
    }

    fn timed(&self, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
        let start = Instant::now();
        f()?;
        Ok(start.elapsed().as_secs_f64())
    }
}

impl Drop for BenchAgent {
    fn drop(&mut self) {
        let _ = self.call("Teardown", json!({}));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.opts.state_dir);
        let _ = std::fs::remove_dir_all(&self.opts.bpffs);
    }
}

pub fn run(vpc_bin: &Path, routes: usize, rounds: usize) -> anyhow::Result<ControlResult> {
    let agent = BenchAgent::start(vpc_bin, routes)?;
    let (first, second) = (document(routes, false), document(routes, true));
    let yaml_path = agent.opts.state_dir.join("routes.yaml");
    let yaml = serde_yaml::to_string(&first)?;
    std::fs::write(&yaml_path, &yaml)?;
    let apply = |doc: &TopologySpec| -> anyhow::Result<()> {
        agent
            .conn()
            .call_with("ApplyTopology", &ApplyTopologyRequest { topology: doc, dry_run: false })
            .map(drop)
            .map_err(|e| anyhow::anyhow!("ApplyTopology: {e}"))
    };
    let (mut fresh, mut replace, mut cli, mut entry) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        agent.call("Teardown", json!({}))?;
        fresh.push(agent.timed(|| apply(&first))?);
        replace.push(agent.timed(|| apply(&second))?);
        agent.call("Teardown", json!({}))?;
        cli.push(agent.timed(|| {
            let out = Command::new(&agent.vpc_bin).args(&agent.args).arg("apply").arg("-f").arg(&yaml_path).output()?;
            anyhow::ensure!(out.status.success(), "vpc apply: {}", String::from_utf8_lossy(&out.stderr));
            Ok(())
        })?);
        let exported = agent.call("ExportTopology", json!({}))?;
        let table = exported["Topology"]["vpcs"][0]["route_tables"][0]["id"].as_str().context("system table id")?.to_string();
        let mut id = String::new();
        entry.push(
            agent.timed(|| {
                let created = agent.call(
                    "CreateRouteEntry",
                    json!({"RouteTableId": table, "DestinationCidrBlock": "11.0.0.0/24", "NextHopType": "Blackhole"}),
                )?;
                id = created["RouteEntryId"].as_str().unwrap_or_default().to_string();
                Ok(())
            })? * 1000.0,
        );
        // The entry is in the kernel's table when the call has returned.
        let dst = crate::compile::lpm_key(0, [11, 0, 0, 0], 24);
        let entries = crate::dataplane::Dataplane::new(&agent.opts.bpffs, agent.opts.limits).read_entries()?;
        anyhow::ensure!(
            entries.routes.keys().any(|k| k.prefix_len == dst.prefix_len && k.key.addr == dst.key.addr),
            "CreateRouteEntry returned before its entry reached the kernel"
        );
        agent.call("DeleteRouteEntry", json!({"RouteEntryId": id}))?;
    }
    Ok(ControlResult {
        routes,
        api_apply_s: median(&mut fresh),
        api_replace_s: median(&mut replace),
        cli_apply_s: median(&mut cli),
        route_entry_ms: median(&mut entry),
        yaml_bytes: yaml.len(),
    })
}
