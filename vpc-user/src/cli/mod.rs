//! The `vpc` command line. Commands talk to the agent on its socket. Without one, reads open the
//! state themselves for the length of the command (the same code path, in process); changes do
//! so only when told (`--offline`), with the quotas recorded in the state directory.
//! Besides the commands below, every API operation is a subcommand in kebab case with its
//! parameters as flags: `vpc create-vpc --cidr-block 10.0.0.0/8 --vpc-name prod`.

mod demo;
mod get;
pub mod multicast;
mod names;
mod output;
mod table;
mod trace;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use clap::{ArgMatches, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use crate::{
    agent::{state, HostOptions},
    api::{self, server, Conn, Kind},
    dataplane::Limits,
    tools::lab,
    model::{normalize::normalize, spec::TopologySpec, topology::Quotas, Invalid, Topology},
    naming::Naming,
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

/// Host-wide paths and names, settable so several agents, labs or tests run side by side.
#[derive(Args, Debug, Clone)]
pub struct HostArgs {
    /// Pin root on a BPF filesystem (mounted if needed).
    #[arg(long, global = true, env = "VPC_BPFFS", default_value = "/sys/fs/bpf/vpc")]
    pub bpffs: PathBuf,
    /// Where the agent keeps its state database.
    #[arg(long, global = true, env = "VPC_STATE_DIR", default_value = "/var/lib/vpc")]
    pub state_dir: PathBuf,
    /// The agent's API socket, a path [default: STATE_DIR/vpc.sock].
    #[arg(long, global = true, env = "VPC_SOCKET", value_parser = parse_socket)]
    pub socket: Option<PathBuf>,
    /// The only directory flow logs may write files in [default: STATE_DIR/flowlogs].
    #[arg(long, global = true, env = "VPC_FLOW_LOG_DIR")]
    pub flow_log_dir: Option<PathBuf>,
    /// Prefix of lab namespace and host interface names.
    #[arg(long, global = true, env = "VPC_PREFIX", default_value = "")]
    pub prefix: String,
    /// Raise or lower a quota: vpcs, vswitches-per-vpc, route-tables-per-vpc,
    /// route-entries-per-table, enis (e.g. --quota route-entries-per-table=200000).
    #[arg(long = "quota", global = true, env = "VPC_QUOTAS", value_delimiter = ',')]
    pub quotas: Vec<String>,
    /// Size a data-path map, fixed when it is created: enis, routes, addrs, groups, conntrack,
    /// sg-sets, sg-nodes, sg-chunks, sg-rules, flow-log, mcast-groups, mcast-members (e.g.
    /// --map-size conntrack=1000000; fragment slots follow enis, 8 each). Without it a map
    /// keeps the size it was pinned with.
    #[arg(long = "map-size", global = true, env = "VPC_MAP_SIZES", value_delimiter = ',')]
    pub map_sizes: Vec<String>,
    /// Make changes in this process when no agent runs (by default a change needs the agent).
    /// It uses the quotas recorded in the state directory, as the agent does.
    #[arg(long, global = true, env = "VPC_OFFLINE")]
    pub offline: bool,
}

impl HostArgs {
    pub fn options(&self) -> anyhow::Result<HostOptions> {
        // The state directory's recorded quotas, changed by --quota.
        let mut quotas = state::recorded_quotas(&self.state_dir)?.unwrap_or_default();
        for q in &self.quotas {
            quotas.set(q).map_err(anyhow::Error::msg)?;
        }
        let mut limits = Limits::default();
        limits.adopt_pinned(&crate::dataplane::bpffs::PinDirs::new(&self.bpffs));
        for size in &self.map_sizes {
            limits.set(size).map_err(anyhow::Error::msg)?;
        }
        Ok(HostOptions {
            bpffs: self.bpffs.clone(),
            state_dir: self.state_dir.clone(),
            socket: self.socket.clone(),
            flow_log_dir: self.flow_log_dir.clone(),
            naming: Naming::new(&self.prefix),
            limits,
            quotas,
            takeover: Default::default(),
            restore: false,
            record_quotas: false,
        })
    }

    /// Where a change goes: the agent if one answers; this process with --offline; else a clear
    /// error at once, naming the socket this state directory's agent answers on if one runs.
    pub fn changing(&self, opts: &HostOptions) -> anyhow::Result<Conn> {
        let socket = opts.socket();
        if api::client::is_running(&socket) {
            return Ok(Conn::Remote(socket));
        }
        if let Some(other) = state::agent_socket(&opts.state_dir) {
            anyhow::bail!(
                "no agent answers on {}; the agent of state directory {} answers on {}: pass --socket {} (or VPC_SOCKET)",
                socket.display(),
                opts.state_dir.display(),
                other.display(),
                other.display()
            );
        }
        if !self.offline {
            anyhow::bail!(
                "no agent answers on {}: start one (`vpc daemon`, or `vpc lab up`), or pass --offline to change {} in this process",
                socket.display(),
                opts.state_dir.display()
            );
        }
        Ok(Conn::Local(HostOptions { record_quotas: !self.quotas.is_empty(), ..opts.clone() }))
    }

    /// The same options as command-line arguments (for the agent the lab starts).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--bpffs".into(), self.bpffs.display().to_string(), "--state-dir".into(), self.state_dir.display().to_string()];
        if let Some(socket) = &self.socket {
            args.extend(["--socket".into(), socket.display().to_string()]);
        }
        if let Some(dir) = &self.flow_log_dir {
            args.extend(["--flow-log-dir".into(), dir.display().to_string()]);
        }
        args.extend(["--prefix".into(), self.prefix.clone()]);
        for q in &self.quotas {
            args.extend(["--quota".into(), q.clone()]);
        }
        for size in &self.map_sizes {
            args.extend(["--map-size".into(), size.clone()]);
        }
        args
    }
}

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
        /// Rounds of the forwarding-throughput comparison on veth (default 5; 0 skips it).
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

/// `CreateVpc` -> `create-vpc`.
fn kebab(name: &str) -> String {
    // The guide writes these as one word: create-vswitch, not create-v-switch.
    let name = &name.replace("VSwitch", "Vswitch").replace("VRouter", "Vrouter");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_upper = name.chars().nth(i.wrapping_sub(1)).is_some_and(|p| p.is_ascii_uppercase());
            let next_lower = name.chars().nth(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if i > 0 && (!prev_upper || next_lower) {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `--socket`: the path of a unix socket. `HOST:PORT` is refused (the API is a local socket
/// only), rather than becoming a file of that name.
fn parse_socket(text: &str) -> Result<PathBuf, String> {
    if text.parse::<SocketAddr>().is_ok() || (!text.contains('/') && text.contains(':')) {
        return Err(format!("{text:?} is not a path: the agent's API is a unix socket (e.g. /var/lib/vpc/vpc.sock)"));
    }
    if text.is_empty() {
        return Err("an empty path".into());
    }
    Ok(PathBuf::from(text))
}

fn with_operations(mut cmd: clap::Command) -> clap::Command {
    for op in api::ops::all() {
        // The API's mirror: JSON unless told otherwise.
        let output = clap::Arg::new(OUTPUT)
            .short('o')
            .long(OUTPUT)
            .value_name("OUTPUT")
            .value_parser(clap::value_parser!(Format))
            .default_value("json")
            .help("json: the API's response; table: its keys and values, or `done: ACTION ID` when it returns nothing");
        let mut sub = clap::Command::new(kebab(op.name)).about(op.summary).arg(output).next_help_heading("Parameters");
        for param in op.params {
            let mut arg = clap::Arg::new(param.name).long(kebab(param.name)).help(param.doc).required(param.required);
            arg = match param.kind {
                Kind::Boolean => arg.num_args(0..=1).default_missing_value("true").value_parser(clap::value_parser!(bool)),
                Kind::Integer => arg.value_parser(clap::value_parser!(u64)),
                // `-1/-1` (all ports) starts with a hyphen: take it as the value, not as a flag.
                Kind::String if param.name.ends_with("PortRange") => arg.allow_hyphen_values(true),
                Kind::String => arg,
                Kind::Object => arg.value_name("JSON"),
            };
            sub = sub.arg(arg);
        }
        cmd = cmd.subcommand(sub);
    }
    cmd
}

/// Whether a request only checks (`DryRun`).
fn dry_run(body: &Map<String, Value>) -> bool {
    body.get("DryRun").and_then(Value::as_bool).unwrap_or(false)
}

/// The output option of the operation subcommands (no operation has a parameter of that name).
const OUTPUT: &str = "output";

fn run_operation(host: &HostArgs, op: &api::Op, matches: &ArgMatches) -> anyhow::Result<()> {
    let mut body = Map::new();
    for param in op.params {
        let value = match param.kind {
            Kind::Boolean => matches.get_one::<bool>(param.name).map(|b| json!(b)),
            Kind::Integer => matches.get_one::<u64>(param.name).map(|n| json!(n)),
            Kind::String => matches.get_one::<String>(param.name).map(|s| json!(s)),
            Kind::Object => matches
                .get_one::<String>(param.name)
                .map(|s| serde_json::from_str(s).with_context(|| format!("--{} is not JSON", kebab(param.name))))
                .transpose()?,
        };
        if let Some(value) = value {
            body.insert(param.name.into(), value);
        }
    }
    // What the operation acted on, for `done: ACTION ID`: its required parameters and the IDs given.
    let subject: Vec<&str> =
        op.params.iter().filter(|p| p.required || p.name.ends_with("Id")).filter_map(|p| body.get(p.name).and_then(Value::as_str)).collect();
    let subject = subject.join(" ");
    let opts = host.options()?;
    let conn = if op.mutates && !dry_run(&body) { host.changing(&opts)? } else { Conn::to(&opts) };
    let result = conn.call(op.name, Value::Object(body)).map_err(|e| api_error(op.name, e))?;
    let format = matches.get_one::<Format>(OUTPUT).copied().unwrap_or(Format::Json);
    // A kind's Describe operation as a table is that kind's `vpc get` table.
    if format == Format::Table
        && let Some((kind, list)) = get::described_by(op.name)
    {
        return get::print(&conn, kind, result[list].as_array().map(Vec::as_slice).unwrap_or_default());
    }
    output::result(op.name, &subject, &result, format)
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
        Command::Stats { output, all } => {
            let stats = Conn::to(&opts).call("DescribeStatistics", json!({})).map_err(|e| api_error("stats", e))?;
            output::stats(&serde_json::from_value(stats)?, output, all)
        }
        Command::Daemon { metrics_addr, socket_mode, max_request_bytes, adopt, reset, restore } => {
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
            // The daemon's --quota become the state directory's (recorded once it holds the lock).
            opts.record_quotas = !cli.host.quotas.is_empty();
            crate::daemon::run(crate::daemon::DaemonOptions { host: opts, metrics_addr, socket_mode, rebind_interval: Duration::from_secs(1), max_request_bytes })
        }
        Command::Trace { from, to, proto, sport, dport, ttl } => trace::run(&opts, trace::Request { from, to, proto, sport, dport, ttl }),
        Command::Bench { out, report_only: true, .. } => {
            crate::tools::bench::report_again(&out)?;
            print!("{}", std::fs::read_to_string(out.join("summary.md"))?);
            Ok(())
        }
        Command::Bench { out, quick, routes, sg_rules, rounds, apply_routes, throughput_rounds, .. } => {
            let exe = std::env::current_exe()?;
            let mut opts = if quick { crate::tools::bench::BenchOptions::quick(out, exe) } else { crate::tools::bench::BenchOptions::full(out, exe) };
            opts.route_counts = routes.unwrap_or(opts.route_counts);
            opts.rule_counts = sg_rules.unwrap_or(opts.rule_counts);
            opts.throughput_rounds = throughput_rounds.unwrap_or(opts.throughput_rounds);
            opts.rounds = rounds.unwrap_or(opts.rounds);
            opts.apply_routes = apply_routes.unwrap_or(opts.apply_routes);
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
        Command::Fuzz { frames, per_topology, seed } => {
            let started = std::time::Instant::now();
            let report = crate::tools::fuzz::run(frames, per_topology, seed)?;
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
            let conn = lab::agent::ensure(&opts, &std::env::current_exe()?, &cli.host.to_args())?;
            let result = lab::up(&conn, &opts.naming, &spec).map_err(|e| match e.downcast::<api::ApiError>() {
                Ok(api) => api_error(&file.display().to_string(), api),
                Err(e) => e,
            })?;
            output::applied(&result, false, output)
        }
        Command::Lab(LabCommand::Down { file, output }) => {
            let spec = file.as_deref().map(read_topology).transpose()?;
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
