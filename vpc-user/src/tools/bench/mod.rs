//! `vpc bench`: what the data path costs per packet and how fast the control plane applies,
//! written to `results.json` and a markdown summary. Every cost is a median over rounds, and
//! every per-packet cost is stated against the empty XDP program measured the same way in the
//! same round: this machine is noisy, only interleaved comparisons mean anything.

mod across_hosts;
mod control;
mod per_packet;
mod plot;
mod report;
mod throughput;

use std::path::PathBuf;

use serde::Serialize;

pub use control::ControlResult;
pub use per_packet::PacketResult;
pub use throughput::ThroughputResult;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub out: PathBuf,
    /// Route counts for the per-packet cost.
    pub route_counts: Vec<usize>,
    /// Security-group rule counts for the per-packet cost (one route).
    pub rule_counts: Vec<usize>,
    /// Also measure one route with a flow log capturing both ENIs.
    pub flow_log: bool,
    /// Rounds of the forwarding-throughput comparison on veth, and across hosts (0 skips both).
    pub throughput_rounds: usize,
    /// Rounds per measurement (the median is reported).
    pub rounds: usize,
    /// Distinct flows for the many-flows and first-packet cases.
    pub flows: usize,
    /// Idle connection-table entries of one more series (one route): the many-flows case at a
    /// busy table's occupancy (0 skips it).
    pub idle_entries: usize,
    /// Routes in the control-plane apply (0 skips it).
    pub apply_routes: usize,
    /// Security-group rules a rule is authorized beside in the control-plane bench.
    pub apply_rules: usize,
    /// The `vpc` binary the control-plane bench runs as an agent.
    pub vpc_bin: PathBuf,
}

impl BenchOptions {
    pub fn full(out: PathBuf, vpc_bin: PathBuf) -> BenchOptions {
        BenchOptions {
            out,
            route_counts: vec![1, 1_000, 100_000, 1_000_000],
            rule_counts: vec![1, 10, 100, 1_000, 4_000, 10_000],
            flow_log: true,
            throughput_rounds: 5,
            rounds: 9,
            flows: 10_000,
            idle_entries: 180_000,
            apply_routes: 100_000,
            apply_rules: 10_000,
            vpc_bin,
        }
    }

    /// A smoke run: small counts, one round (shows the pipeline works, proves no number).
    pub fn quick(out: PathBuf, vpc_bin: PathBuf) -> BenchOptions {
        BenchOptions {
            out,
            route_counts: vec![1, 1_000],
            rule_counts: vec![10, 1_000],
            flow_log: true,
            throughput_rounds: 0,
            rounds: 1,
            flows: 500,
            idle_entries: 2_000,
            apply_routes: 2_000,
            apply_rules: 200,
            vpc_bin,
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Results {
    pub machine: Machine,
    pub rounds: usize,
    pub packet: Vec<PacketResult>,
    pub control: Option<ControlResult>,
    /// Instructions the verifier processed per program.
    #[serde(default)]
    pub verifier: Vec<(String, u32)>,
    /// Forwarding throughput on veth per variant.
    #[serde(default)]
    pub throughput: Vec<ThroughputResult>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Machine {
    pub kernel: String,
    pub cpu: String,
    pub cpus: usize,
    pub date: String,
}

impl Machine {
    fn probe() -> Machine {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
            .unwrap_or_default();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let date = std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%dT%H:%M:%SZ")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Machine { kernel, cpu, cpus, date }
    }
}

/// Run every benchmark, write the report, return the results.
pub fn run(opts: &BenchOptions) -> anyhow::Result<Results> {
    std::fs::create_dir_all(&opts.out)?;
    let machine = Machine::probe();
    let packet = per_packet::run(&opts.route_counts, &opts.rule_counts, opts.flow_log, opts.flows, opts.idle_entries, opts.rounds)?;
    let control = if opts.apply_routes > 0 {
        eprintln!("bench: applying {} routes through the agent ...", opts.apply_routes);
        Some(control::run(&opts.vpc_bin, opts.apply_routes, opts.apply_rules, opts.rounds.clamp(1, 3))?)
    } else {
        None
    };
    let verifier = verifier_counts()?;
    let mut throughput = if opts.throughput_rounds > 0 { throughput::run(opts.throughput_rounds)? } else { Vec::new() };
    if opts.throughput_rounds > 0 {
        throughput.extend(across_hosts::run(opts.throughput_rounds)?.unwrap_or_default());
    }
    let results = Results { machine, rounds: opts.rounds, packet, control, verifier, throughput };
    std::fs::write(opts.out.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    std::fs::write(opts.out.join("summary.md"), report::summary(&results))?;
    for (name, svg) in plot::all(&results) {
        std::fs::write(opts.out.join(name), svg)?;
    }
    Ok(results)
}

/// The verifier's instruction counts of the programs, loaded over a small topology.
fn verifier_counts() -> anyhow::Result<Vec<(String, u32)>> {
    let spec = crate::model::spec::TopologySpec::from_yaml(
        "vpcs: [{name: vv, cidr: 10.0.0.0/16, vswitches: [{name: sw, cidr: 10.0.1.0/24, zone: a}], enis: [{name: e1, vswitch: sw}]}]",
    )?;
    let spec = crate::model::normalize::normalize(&Default::default(), spec);
    let topology = crate::model::Topology::from_spec(&spec, &Default::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::tools::testrun::with_harness(topology, |h| h.verified_instructions())
}

/// Write the summary and the plots again from `dir/results.json` (after a report change).
pub fn report_again(dir: &std::path::Path) -> anyhow::Result<()> {
    let results: Results = serde_json::from_slice(&std::fs::read(dir.join("results.json"))?)?;
    std::fs::write(dir.join("summary.md"), report::summary(&results))?;
    for (name, svg) in plot::all(&results) {
        std::fs::write(dir.join(name), svg)?;
    }
    Ok(())
}

/// The median of `values` (sorted in place); 0 when empty.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

/// Pin the calling thread to the last CPU, so rounds are not spread over cores unevenly (and
/// per-CPU state, such as the monitor's token buckets, is one CPU's).
pub fn pin_to_last_cpu() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: a zeroed cpu_set_t is valid; sched_setaffinity(0) affects the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus - 1, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(super::median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(super::median(&mut []), 0.0);
    }
}
