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
    model::spec::{NextHopSpec, RouteSpec, RouteTableSpec, SecurityGroupSpec, TopologySpec},
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
    /// Security-group rules beside the one authorized.
    #[serde(default)]
    pub rules: usize,
    /// AuthorizeSecurityGroup beside `rules` rules in groups of 100, call to effect, ms.
    #[serde(default)]
    pub sg_rule_ms: f64,
    /// RevokeSecurityGroup of that rule, ms.
    #[serde(default)]
    pub sg_revoke_ms: f64,
    /// AuthorizeSecurityGroup into one group, which then holds `rules` rules, ms.
    #[serde(default)]
    pub sg_rule_one_group_ms: f64,
}

/// Rules per group in the spread-out case.
const RULES_PER_GROUP: usize = 100;

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

/// `rules` security-group rules (see `per_packet::sg_rules`) in groups of `per_group`; the ENI
/// is in the first.
fn rules_document(rules: usize, per_group: usize) -> TopologySpec {
    let mut spec = document(0, false);
    let vpc = &mut spec.vpcs[0];
    for (g, chunk) in super::per_packet::sg_rules(rules).chunks(per_group.max(1)).enumerate() {
        vpc.security_groups.push(SecurityGroupSpec { name: format!("g{g}"), rules: chunk.to_vec(), ..Default::default() });
    }
    vpc.enis[0].security_groups = vec!["g0".into()];
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
    fn start(vpc_bin: &Path, routes: usize, rules: usize) -> anyhow::Result<BenchAgent> {
        let tag = std::process::id();
        // One group's classifier twice (the old copy stays until the switch), and the rest.
        let chunks = 2 * (3 * rules * (rules / 64 + 2) / 64) + 8192;
        let sizes = format!("sg-rules={},sg-chunks={chunks}", 2 * rules + 4096);
        let mut opts = HostOptions {
            bpffs: format!("/sys/fs/bpf/vpc-bench-{tag}").into(),
            state_dir: std::env::temp_dir().join(format!("vpc-bench-{tag}")),
            ..Default::default()
        };
        for size in sizes.split(',') {
            opts.limits.set(size).map_err(anyhow::Error::msg)?;
        }
        let _ = std::fs::remove_dir_all(&opts.state_dir);
        std::fs::create_dir_all(&opts.state_dir)?;
        let args = vec![
            "--bpffs".into(),
            opts.bpffs.display().to_string(),
            "--state-dir".into(),
            opts.state_dir.display().to_string(),
            "--quota".into(),
            format!("route-entries-per-table={},security-groups-per-vpc=128,rules-per-security-group={}", routes + 16, rules + 16),
            "--map-size".into(),
            sizes,
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

pub fn run(vpc_bin: &Path, routes: usize, rules: usize, rounds: usize) -> anyhow::Result<ControlResult> {
    let agent = BenchAgent::start(vpc_bin, routes, rules)?;
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
    let (mut spread, mut revoke, mut one) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        spread.push(rule_change(&agent, &apply, &rules_document(rules, RULES_PER_GROUP), Some(&mut revoke))?);
        // A group holds 10,000 rules at most: this one is full once the rule is in.
        one.push(rule_change(&agent, &apply, &rules_document(rules - 1, rules), None)?);
    }
    Ok(ControlResult {
        rules,
        sg_rule_ms: median(&mut spread),
        sg_revoke_ms: median(&mut revoke),
        sg_rule_one_group_ms: median(&mut one),
        routes,
        api_apply_s: median(&mut fresh),
        api_replace_s: median(&mut replace),
        cli_apply_s: median(&mut cli),
        route_entry_ms: median(&mut entry),
        yaml_bytes: yaml.len(),
    })
}

/// Apply `doc`, then authorize one rule in its first group: milliseconds to the answer, when
/// the rule is in the kernel's classifier; then revoke it (timed into `revoke`).
fn rule_change(
    agent: &BenchAgent,
    apply: &dyn Fn(&TopologySpec) -> anyhow::Result<()>,
    doc: &TopologySpec,
    revoke: Option<&mut Vec<f64>>,
) -> anyhow::Result<f64> {
    agent.call("Teardown", json!({}))?;
    apply(doc)?;
    let exported = agent.call("ExportTopology", json!({}))?;
    let groups = exported["Topology"]["vpcs"][0]["security_groups"].as_array().context("security groups")?;
    let group = groups.iter().find(|g| g["name"] == "g0").and_then(|g| g["id"].as_str()).context("group g0")?.to_string();
    let in_kernel = || -> anyhow::Result<usize> {
        let entries = crate::dataplane::Dataplane::new(&agent.opts.bpffs, agent.opts.limits).read_entries()?;
        Ok(entries.sg.sets.values().map(|set| set.rules.len()).sum())
    };
    let before = in_kernel()?;
    let mut id = String::new();
    let ms = agent.timed(|| {
        let rule = json!({"SecurityGroupId": group, "IpProtocol": "tcp", "PortRange": "9/9", "SourceCidrIp": "203.0.113.0/24"});
        id = agent.call("AuthorizeSecurityGroup", rule)?["SecurityGroupRuleId"].as_str().unwrap_or_default().to_string();
        Ok(())
    })? * 1000.0;
    anyhow::ensure!(in_kernel()? == before + 1, "AuthorizeSecurityGroup returned before its rule reached the kernel");
    let revoked =
        agent.timed(|| agent.call("RevokeSecurityGroup", json!({"SecurityGroupId": group, "SecurityGroupRuleId": id})).map(drop))?;
    anyhow::ensure!(in_kernel()? == before, "RevokeSecurityGroup returned before its rule left the kernel");
    if let Some(revoke) = revoke {
        revoke.push(revoked * 1000.0);
    }
    Ok(ms)
}
