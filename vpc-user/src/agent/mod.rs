//! The agent: the one writer of the kernel maps. It turns a validated topology into numbers
//! (persisted), binds it to this host's interfaces, compiles it and makes the data path match.

pub mod state;

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::{
    compile,
    dataplane::{self, ApplyReport, Dataplane, Limits},
    model::{binding::Binding, diff::{diff, Change}, ids::Ids, spec::TopologySpec, Topology},
    naming::Naming,
};

/// Everything host-wide the agent touches, settable so several instances can run side by side.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Pin root on a BPF filesystem.
    pub bpffs: PathBuf,
    pub state_dir: PathBuf,
    pub naming: Naming,
    pub limits: Limits,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            bpffs: PathBuf::from("/sys/fs/bpf/vpc"),
            state_dir: PathBuf::from("/var/lib/vpc"),
            naming: Naming::default(),
            limits: Limits::default(),
        }
    }
}

pub struct Agent {
    pub opts: HostOptions,
}

#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub changes: Vec<Change>,
    pub report: ApplyReport,
}

impl Agent {
    pub fn new(opts: HostOptions) -> Self {
        Agent { opts }
    }

    pub fn dataplane(&self) -> Dataplane {
        Dataplane::new(&self.opts.bpffs, self.opts.limits)
    }

    /// The host interface of every ENI, resolved to an ifindex. Fails naming every missing one
    /// before anything is changed.
    pub fn bind(&self, topology: &Topology, ids: Ids) -> anyhow::Result<Binding> {
        let mut ifindex = BTreeMap::new();
        let mut missing = Vec::new();
        for (_, _, eni) in topology.enis() {
            let name = self.opts.naming.host_ifname(eni);
            match dataplane::ifindex(&name) {
                Some(i) => {
                    ifindex.insert(eni.name.clone(), i);
                }
                None => missing.push(format!("ENI {}: interface '{name}' does not exist", eni.name)),
            }
        }
        if !missing.is_empty() {
            bail!("{}\n(create the interfaces, set `interface:` on the ENIs, or use `vpc lab up`)", missing.join("\n"));
        }
        Ok(Binding { ids, ifindex })
    }

    /// Make the data path forward as `spec` says. With `dry_run`, only report the changes.
    pub fn apply(&self, spec: &TopologySpec, dry_run: bool) -> anyhow::Result<Applied> {
        let topology = Topology::from_spec(spec)?;
        let dir = state::StateDir::lock(&self.opts.state_dir)?;
        let previous = dir.load()?;
        let old_topology = Topology::from_spec(&previous.topology).unwrap_or(Topology { vpcs: Vec::new() });
        let changes = diff(&old_topology, &topology);
        let mut ids = previous.ids.clone();
        ids.assign(&topology, self.opts.limits.max_enis).map_err(anyhow::Error::msg)?;
        let binding = self.bind(&topology, ids)?;
        if dry_run {
            return Ok(Applied { changes, report: ApplyReport::default() });
        }
        let entries = compile::compile(&topology, &binding);
        let report = match self.dataplane().apply(&entries) {
            Ok(report) => report,
            Err(err) => {
                // Put back what was there, so nothing stays half-applied.
                let restore = self
                    .bind(&old_topology, previous.ids.clone())
                    .and_then(|b| self.dataplane().apply(&compile::compile(&old_topology, &b)));
                return Err(match restore {
                    Ok(_) => err.context("apply failed; the previous configuration was restored"),
                    Err(e) => err.context(format!("apply failed, and restoring the previous configuration failed too: {e:#}")),
                });
            }
        };
        dir.save(&state::State { topology: spec.clone(), ids: binding.ids })?;
        Ok(Applied { changes, report })
    }

    /// Detach everything, remove every pin, forget the state.
    pub fn down(&self) -> anyhow::Result<()> {
        let dir = state::StateDir::lock(&self.opts.state_dir)?;
        self.dataplane().down()?;
        dir.clear()
    }

    /// The applied topology and its numbers.
    pub fn state(&self) -> anyhow::Result<(Topology, Ids)> {
        let state = state::read(&self.opts.state_dir)?;
        let topology = Topology::from_spec(&state.topology).context("the stored topology no longer validates")?;
        Ok((topology, state.ids))
    }

    /// Counters per ENI and drops by reason.
    pub fn stats(&self) -> anyhow::Result<Stats> {
        let (topology, ids) = self.state()?;
        let dataplane = self.dataplane();
        if !dataplane.is_up() {
            bail!("nothing is applied under {} (run `vpc apply` first)", self.opts.bpffs.display());
        }
        let counters = dataplane.counters(ids.ports.values().copied())?;
        let enis = topology
            .enis()
            .map(|(vpc, vsw, eni)| {
                let c = counters.port(ids.port(&eni.name));
                EniStats {
                    eni: eni.name.clone(),
                    vpc: vpc.name.clone(),
                    vswitch: vsw.name.clone(),
                    ip: eni.ip.to_string(),
                    rx_packets: c.rx_packets,
                    rx_bytes: c.rx_bytes,
                    tx_packets: c.tx_packets,
                    tx_bytes: c.tx_bytes,
                }
            })
            .collect();
        let drops = counters.drops.iter().map(|(r, n)| DropStats { reason: r.name(), packets: *n, meaning: r.describe().trim() }).collect();
        Ok(Stats { enis, drops })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub enis: Vec<EniStats>,
    pub drops: Vec<DropStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EniStats {
    pub eni: String,
    pub vpc: String,
    pub vswitch: String,
    pub ip: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DropStats {
    pub reason: &'static str,
    pub packets: u64,
    pub meaning: &'static str,
}
