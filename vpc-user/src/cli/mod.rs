//! The `vpc` command line. Commands talk to the agent on its socket. Without one, reads open the
//! state themselves for the length of the command (the same code path, in process); changes do
//! so only when told (`--offline`), with the quotas recorded in the state directory.
//! Besides the commands below, every API operation is a subcommand in kebab case with its
//! parameters as flags: `vpc create-vpc --cidr-block 10.0.0.0/8 --vpc-name prod`.

mod demo;
mod get;
mod host;
mod monitor;
pub mod multicast;
mod names;
mod operations;
mod output;
mod table;
mod trace;

pub use host::HostArgs;
use operations::{kebab, run_operation, with_operations};

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::{
    api::{self, Conn, server},
    model::{Invalid, Topology, normalize::normalize, spec::TopologySpec, topology::Quotas},
    tools::lab,
};

#[derive(Parser, Debug)]
#[command(
    name = "vpc",
    version,
    about = "A VPC data plane in XDP: VPCs, VSwitches, route tables and ENIs on Linux",
    after_help = EXIT_STATUS
)]
pub struct Cli {
    #[command(flatten)]
    pub host: HostArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// What `vpc --help` says of exit statuses.
pub const EXIT_STATUS: &str = "Exit status: 0 done; 1 refused or failed (the message says why; API errors carry their code, \
e.g. InvalidVpcId.NotFound); 2 a usage error; 3 `vpc trace`: the packet is dropped; 141 the output pipe was closed.";

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make the stored configuration equal to the topology file and print the differences.
    Apply {
        #[arg(short, long)]
        file: PathBuf,
        /// Show what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// List resources of a kind: as a table (references by name and ID), or as JSON, the
    /// objects of the kind's Describe operation.
    Get {
        #[arg(value_enum)]
        kind: get::Kind,
        /// For route-entries: only this route table.
        #[arg(long)]
        route_table_id: Option<String>,
        /// For security-groups: every rule with its hit counters (packets and bytes it decided).
        #[arg(long)]
        stats: bool,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Detach from every interface, remove every pin and delete the configuration.
    Down {
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// The data path's decisions as they happen: drops (with the reason and the rule), connections
    /// opening and closing, verdicts re-judged, ICMP errors sent; and what was held back.
    Monitor(monitor::MonitorArgs),
    /// Per-ENI packet and byte counters, and drops by reason.
    Stats {
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
        /// Also list drop reasons that never happened.
        #[arg(short, long)]
        all: bool,
    },
    /// Run the agent: the API on the socket, metrics over HTTP, ENI interfaces kept bound.
    Daemon {
        /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9464.
        #[arg(long, env = "VPC_METRICS_ADDR")]
        metrics_addr: Option<SocketAddr>,
        /// Serve the guide's API, as the official SDKs speak it, on this TCP address (requests
        /// signed with an AccessKey from `vpc create-access-key`), e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Permission bits of the API socket.
        #[arg(long, default_value = "0600", value_parser = parse_mode)]
        socket_mode: u32,
        /// The largest API request body taken, in bytes (the default takes ApplyTopology with a
        /// 100,000-route topology several times over); a longer one is refused with 413.
        #[arg(long, default_value_t = server::DEFAULT_MAX_REQUEST_BYTES)]
        max_request_bytes: usize,
        /// The pin root holds a live data path this state directory did not write: keep
        /// forwarding on it as it is, and write over it with the next change (without this the
        /// agent refuses to start).
        #[arg(long, conflicts_with = "reset")]
        adopt: bool,
        /// The pin root holds a live data path this state directory did not write: remove it
        /// first (forwarding stops until a configuration is applied).
        #[arg(long)]
        reset: bool,
        /// Rebuild the state database from its last good backup (STATE_DIR/vpc.backup.json,
        /// written after every whole-document change and within a second of a single route
        /// entry's); the current file is kept as vpc.redb.damaged-TIME.
        #[arg(long)]
        restore: bool,
        /// This host's name in a cluster: ENIs placed on other hosts (`host:`) are reached
        /// through the Geneve overlay on --underlay. Without it the agent is a single host.
        #[arg(long = "host", requires = "underlay", value_name = "NAME")]
        cluster_host: Option<String>,
        /// The interface to the other hosts (it needs an IPv4 address; a veth's peer needs GRO
        /// on, or frames redirected into it are dropped).
        #[arg(long, requires = "cluster_host", value_name = "IFACE")]
        underlay: Option<String>,
        /// Another host of the cluster and its underlay address, NAME=ADDRESS (repeat it).
        #[arg(long = "peer", requires = "cluster_host", value_name = "NAME=ADDRESS")]
        peers: Vec<String>,
    },
    /// Print the API's OpenAPI document.
    Openapi,
    /// Measure per-packet cost (against an empty XDP program) and control-plane speed; writes
    /// results.json and summary.md (what `cargo xtask bench` runs).
    Bench {
        #[arg(long, default_value = "bench")]
        out: PathBuf,
        /// Small counts and one round: checks the pipeline, proves no number.
        #[arg(long)]
        quick: bool,
        /// Route counts for the per-packet cost (default 1,1000,100000,1000000).
        #[arg(long, value_delimiter = ',')]
        routes: Option<Vec<usize>>,
        /// Only write summary.md and the plots again from OUT/results.json.
        #[arg(long)]
        report_only: bool,
        /// Rounds of the forwarding-throughput comparison on veth, and across hosts in a lab when etcd
        /// is installed (default 5; 0 skips both).
        #[arg(long)]
        throughput_rounds: Option<usize>,
        /// Security-group rule counts for the per-packet cost (default 1,10,100,1000,4000,10000).
        #[arg(long, value_delimiter = ',')]
        sg_rules: Option<Vec<usize>>,
        /// Rounds (default 9).
        #[arg(long)]
        rounds: Option<usize>,
        /// Routes for the control-plane apply (default 100000; 0 skips it).
        #[arg(long)]
        apply_routes: Option<usize>,
        /// Security-group rules for the control-plane rule change (default 10000).
        #[arg(long)]
        apply_rules: Option<usize>,
        /// Idle connection-table entries of the busy-table series (default 180000 beside the
        /// 20000 of 10000 flows; 0 skips it).
        #[arg(long)]
        idle_entries: Option<usize>,
        /// The `vpc` binary the control-plane bench runs as its agent [default: this one]: an
        /// older build, to compare two in one run.
        #[arg(long)]
        agent_bin: Option<std::path::PathBuf>,
    },
    /// Explain what happens to a packet: route table, entry, next hop, verdict -- by the model
    /// and by the XDP program (TestRun), which must agree. Exit status: 0 delivered or passed to
    /// the host stack, 3 dropped, 1 an error or a disagreement.
    Trace {
        /// The sending ENI or gateway.
        #[arg(long)]
        from: String,
        /// The destination address.
        #[arg(long)]
        to: std::net::Ipv4Addr,
        #[arg(long, value_enum, default_value = "icmp")]
        proto: trace::Proto,
        #[arg(long, default_value_t = 40000)]
        sport: u16,
        #[arg(long, default_value_t = 80)]
        dport: u16,
        #[arg(long, default_value_t = 64)]
        ttl: u8,
    },
    /// Network namespaces standing in for guests, one per ENI.
    #[command(subcommand)]
    Lab(LabCommand),
    /// Flow-log records (written by the agent daemon).
    #[command(subcommand)]
    FlowLogs(FlowLogsCommand),
    /// Random topologies and random or malformed frames through the model and the loaded XDP
    /// program; stops at the first disagreement with a shrunk reproducer.
    Fuzz {
        /// Frames in all.
        #[arg(long, default_value_t = 1_000_000)]
        frames: u64,
        /// Frames per random topology.
        #[arg(long, default_value_t = 10_000)]
        per_topology: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Across three hosts: each ENI on a random one, what leaves encapsulated checked on the
        /// receiving host's underlay too, now and then with corrupted outer headers.
        #[arg(long)]
        hosts: bool,
    },
    /// Multicast groups, as `multis_admin` / `multic_admin` users know them.
    #[command(subcommand)]
    Multicast(multicast::Command),
    /// Build the demo topology, send real traffic through it, show what happened, tear it down.
    Demo {
        /// Topology to use instead of the built-in one.
        #[arg(short, long)]
        file: Option<PathBuf>,
        /// Leave the lab up afterwards.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum FlowLogsCommand {
    /// Show a flow log's records as they are written (JSON lines).
    Tail {
        /// The flow log's name or ID.
        name: String,
        /// Records already written to show first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        /// Print what is there and stop instead of following.
        #[arg(long)]
        no_follow: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Start an agent if none runs, apply the topology, create a namespace and veth per ENI.
    Up {
        #[arg(short, long)]
        file: PathBuf,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Remove the configuration, the data path, every namespace and veth of the lab, and the
    /// agent `lab up` started.
    Down {
        #[arg(short, long)]
        file: Option<PathBuf>,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Run a command inside an ENI's namespace: `vpc lab exec web1 -- ping 192.168.2.10`.
    Exec {
        eni: String,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
}

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8).map_err(|_| format!("'{text}' is not an octal mode like 0600"))
}

/// Read a topology file (the agent checks every rule; its problems come back with the file
/// name).
pub fn read_topology(path: &Path) -> anyhow::Result<TopologySpec> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_yaml(&path.display().to_string(), &text)
}

/// Parse a topology document, reporting syntax errors with their origin, line and column.
pub fn parse_yaml(origin: &str, text: &str) -> anyhow::Result<TopologySpec> {
    TopologySpec::from_yaml(text).map_err(|e| anyhow::anyhow!("{origin}: {}", TopologySpec::syntax_problem(&e)))
}

/// Parse and check a topology document on its own (for tools without an agent).
pub fn parse_topology(origin: &str, text: &str) -> anyhow::Result<TopologySpec> {
    let spec = parse_yaml(origin, text)?;
    Topology::from_spec(&normalize(&TopologySpec::default(), spec.clone()), &Quotas::unlimited())
        .map_err(|invalid: Invalid| anyhow::anyhow!("{}", prefixed(origin, &invalid.0)))?;
    Ok(spec)
}

fn prefixed(origin: &str, problems: &[crate::model::Problem]) -> String {
    problems.iter().map(|p| format!("{origin}: {p}")).collect::<Vec<_>>().join("\n")
}

/// An API error as the CLI prints it (every problem on its own line, with the origin).
fn api_error(origin: &str, err: api::ApiError) -> anyhow::Error {
    if err.problems.is_empty() {
        anyhow::anyhow!("{origin}: {} [{}]", err.message, err.code)
    } else {
        anyhow::anyhow!("{}", prefixed(origin, &err.problems))
    }
}

/// Parse the process arguments (with the API operations as extra subcommands) and run.
pub fn main() -> anyhow::Result<()> {
    let matches = with_operations(Cli::command()).get_matches();
    if let Some((name, sub)) = matches.subcommand()
        && let Some(op) = api::ops::all().find(|op| kebab(op.name) == name)
    {
        let host = HostArgs::from_arg_matches(&matches)?;
        return run_operation(&host, op, sub);
    }
    run(Cli::from_arg_matches(&matches)?)
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let opts = cli.host.options()?;
    match cli.command {
        Command::Apply { file, dry_run, output } => {
            let spec = read_topology(&file)?;
            let origin = file.display().to_string();
            let conn = if dry_run { Conn::to(&opts) } else { cli.host.changing(&opts)? };
            let result = conn
                .call_with("ApplyTopology", &api::ApplyTopologyRequest { topology: &spec, dry_run })
                .map_err(|e| api_error(&origin, e))?;
            output::applied(&result, dry_run, output)
        }
        Command::Get { kind, route_table_id, stats, output } => get::run(&Conn::to(&opts), kind, route_table_id.as_deref(), stats, output),
        Command::Down { output } => {
            let response = Conn::to(&opts).call("Teardown", json!({})).map_err(|e| api_error("down", e))?;
            output::result("Teardown", "", &response, output)
        }
        Command::Monitor(args) => monitor::run(&opts, args),
        Command::Stats { output, all } => {
            let stats = Conn::to(&opts).call("DescribeStatistics", json!({})).map_err(|e| api_error("stats", e))?;
            output::stats(&serde_json::from_value(stats)?, output, all)
        }
        Command::Daemon { metrics_addr, listen, socket_mode, max_request_bytes, adopt, reset, restore, cluster_host, underlay, peers } => {
            // main restored SIGPIPE's default for the one-shot commands; a server must instead
            // see EPIPE when a client hangs up mid-reply, not die.
            // SAFETY: before the daemon starts any thread; SIG_IGN is a valid action.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
            let mut opts = opts;
            opts.takeover = match (adopt, reset) {
                (true, _) => crate::agent::Takeover::Adopt,
                (_, true) => crate::agent::Takeover::Reset,
                _ => crate::agent::Takeover::Refuse,
            };
            opts.restore = restore;
            if let (Some(me), Some(underlay)) = (cluster_host, underlay) {
                opts.cluster = Some(crate::agent::cluster::ClusterOptions::new(me, underlay, &peers)?);
            }
            // The daemon's --quota become the state directory's (recorded once it holds the lock).
            opts.record_quotas = !cli.host.quotas.is_empty();
            crate::daemon::run(crate::daemon::DaemonOptions {
                host: opts,
                metrics_addr,
                listen,
                socket_mode,
                rebind_interval: Duration::from_secs(1),
                max_request_bytes,
            })
        }
        Command::Trace { from, to, proto, sport, dport, ttl } => trace::run(&opts, trace::Request { from, to, proto, sport, dport, ttl }),
        Command::Bench { out, report_only: true, .. } => {
            crate::tools::bench::report_again(&out)?;
            print!("{}", std::fs::read_to_string(out.join("summary.md"))?);
            Ok(())
        }
        Command::Bench {
            out,
            quick,
            routes,
            sg_rules,
            rounds,
            apply_routes,
            apply_rules,
            idle_entries,
            agent_bin,
            throughput_rounds,
            ..
        } => {
            let exe = match agent_bin {
                Some(bin) => bin,
                None => std::env::current_exe()?,
            };
            let mut opts =
                if quick { crate::tools::bench::BenchOptions::quick(out, exe) } else { crate::tools::bench::BenchOptions::full(out, exe) };
            opts.route_counts = routes.unwrap_or(opts.route_counts);
            opts.rule_counts = sg_rules.unwrap_or(opts.rule_counts);
            opts.throughput_rounds = throughput_rounds.unwrap_or(opts.throughput_rounds);
            opts.rounds = rounds.unwrap_or(opts.rounds);
            opts.apply_routes = apply_routes.unwrap_or(opts.apply_routes);
            opts.apply_rules = apply_rules.unwrap_or(opts.apply_rules);
            opts.idle_entries = idle_entries.unwrap_or(opts.idle_entries);
            crate::tools::bench::run(&opts)?;
            print!("{}", std::fs::read_to_string(opts.out.join("summary.md"))?);
            Ok(())
        }
        Command::Openapi => {
            print!("{}", api::openapi::pretty());
            Ok(())
        }
        Command::Multicast(command) => {
            let conn = if command.changes() { cli.host.changing(&opts)? } else { Conn::to(&opts) };
            multicast::run(&conn, command)
        }
        Command::Fuzz { frames, per_topology, seed, hosts } => {
            let started = std::time::Instant::now();
            let report = if hosts {
                crate::tools::fuzz::run_hosts(frames, per_topology, seed)?
            } else {
                crate::tools::fuzz::run(frames, per_topology, seed)?
            };
            println!(
                "{} frames over {} topologies in {:.0} s: model and program agree on every one",
                report.frames,
                report.topologies,
                started.elapsed().as_secs_f64()
            );
            for (outcome, n) in &report.outcomes {
                println!("  {outcome:<22} {n}");
            }
            Ok(())
        }
        Command::FlowLogs(FlowLogsCommand::Tail { name, lines, no_follow }) => tail_flow_log(&Conn::to(&opts), &name, lines, !no_follow),
        Command::Lab(LabCommand::Up { file, output }) => {
            let spec = read_topology(&file)?;
            if !lab::hosts::hosts_of(&spec).is_empty() {
                let results = lab::hosts::up(&opts, &std::env::current_exe()?, &cli.host.to_args(), &spec).map_err(|e| match e
                    .downcast::<api::ApiError>()
                {
                    Ok(api) => api_error(&file.display().to_string(), api),
                    Err(e) => e,
                })?;
                let summary = lab::hosts::summary(&results);
                if output == Format::Json {
                    return output::json(&summary);
                }
                for (host, result) in summary["Hosts"].as_object().into_iter().flatten() {
                    println!("host {host}:");
                    output::applied(result, false, Format::Table)?;
                }
                return Ok(());
            }
            let conn = lab::agent::ensure(&opts, &std::env::current_exe()?, &cli.host.to_args())?;
            let result = lab::up(&conn, &opts.naming, &spec).map_err(|e| match e.downcast::<api::ApiError>() {
                Ok(api) => api_error(&file.display().to_string(), api),
                Err(e) => e,
            })?;
            output::applied(&result, false, output)
        }
        Command::Lab(LabCommand::Down { file, output }) => {
            let spec = file.as_deref().map(read_topology).transpose()?;
            if let Some(spec) = spec.as_ref().filter(|s| !lab::hosts::hosts_of(s).is_empty()) {
                lab::hosts::down(&opts, spec)?;
                return output::result("lab down", "", &json!({}), output);
            }
            anyhow::ensure!(
                !crate::netns::path(&lab::hosts::fabric(&opts)).exists(),
                "a lab across hosts is up: give its file (vpc lab down -f FILE) to take down its hosts and fabric"
            );
            lab::down(&Conn::to(&opts), &opts.naming, spec.as_ref())?;
            lab::agent::stop(&opts)?;
            output::result("lab down", "", &json!({}), output)
        }
        Command::Lab(LabCommand::Exec { eni, cmd }) => lab::exec(&opts.naming, &eni, &cmd),
        Command::Demo { file, keep } => {
            let host = demo::host_args(&cli.host);
            demo::run(&host, file.as_deref(), keep)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_become_kebab_case() {
        assert_eq!(kebab("CreateVpc"), "create-vpc");
        assert_eq!(kebab("DescribeVSwitches"), "describe-vswitches");
        assert_eq!(kebab("CreateVSwitch"), "create-vswitch");
        assert_eq!(kebab("VSwitchId"), "vswitch-id");
        assert_eq!(kebab("DescribeRouteTableList"), "describe-route-table-list");
        assert_eq!(kebab("NextHopId"), "next-hop-id");
        assert_eq!(kebab("DryRun"), "dry-run");
        // The generated CLI is well-formed (clap checks it).
        with_operations(Cli::command()).debug_assert();
    }

    #[test]
    fn help_documents_exit_statuses() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit status: 0 done") && help.contains("3 `vpc trace`"), "{help}");
        assert_eq!(super::trace::TRACE_DROPPED, 3, "the help's number for a dropped trace");
    }

    /// The help is written out; the options are `vpc_common::maps::Size`.
    #[test]
    fn map_size_help_names_every_size() {
        let command = Cli::command();
        let arg = command.get_arguments().find(|a| a.get_long() == Some("map-size")).expect("--map-size");
        let help = arg.get_help().expect("help").to_string().replace('\n', " ");
        let sizes: Vec<&str> = vpc_common::maps::Size::ALL.iter().map(|s| s.option()).collect();
        assert!(help.contains(&format!("created: {} (e.g.", sizes.join(", "))), "{help}");
    }

    #[test]
    fn port_range_takes_all_ports_without_equals() {
        for op in ["authorize-security-group", "authorize-security-group-egress", "revoke-security-group", "revoke-security-group-egress"] {
            let m = with_operations(Cli::command())
                .try_get_matches_from(["vpc", op, "--security-group-id", "sg-1", "--ip-protocol", "icmp", "--port-range", "-1/-1"])
                .unwrap_or_else(|e| panic!("{op}: {e}"));
            let (_, sub) = m.subcommand().unwrap();
            assert_eq!(sub.get_one::<String>("PortRange").map(String::as_str), Some("-1/-1"), "{op}");
        }
    }
}

/// `vpc flow-logs tail`: the last `lines` records of a flow log's file, then new ones as the
/// agent writes them (across rotations).
fn tail_flow_log(conn: &Conn, name: &str, lines: usize, follow: bool) -> anyhow::Result<()> {
    use std::io::{BufRead as _, Seek as _};
    let logs = conn.call("DescribeFlowLogs", json!({})).map_err(|e| api_error("flow-logs tail", e))?;
    let log = logs["FlowLogs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["FlowLogName"] == name || l["FlowLogId"] == name)
        .ok_or_else(|| anyhow::anyhow!("no flow log '{name}'"))?;
    let path = match log["LogFile"].as_str() {
        Some(path) => PathBuf::from(path),
        None => anyhow::bail!("flow log '{name}' exports IPFIX to {}: point a collector there", log["IpfixCollector"]),
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    for line in &all[all.len().saturating_sub(lines)..] {
        println!("{line}");
    }
    if !follow {
        return Ok(());
    }
    let mut offset = text.len() as u64;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let Ok(mut file) = std::fs::File::open(&path) else { continue };
        let len = file.metadata()?.len();
        if len < offset {
            offset = 0; // rotated: the new file starts over
        }
        file.seek(std::io::SeekFrom::Start(offset))?;
        let mut reader = std::io::BufReader::new(file);
        let mut line = String::new();
        while reader.read_line(&mut line)? > 0 {
            if !line.ends_with('\n') {
                break; // half written: read it whole next time
            }
            print!("{line}");
            offset += line.len() as u64;
            line.clear();
        }
    }
}
