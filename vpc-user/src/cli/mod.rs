//! The `vpc` command line: thin wrappers over the agent, the lab and the demo.

mod demo;
mod output;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    agent::{Agent, HostOptions},
    dataplane::Limits,
    lab,
    model::{spec::TopologySpec, Invalid, Topology},
    naming::Naming,
};

#[derive(Parser, Debug)]
#[command(name = "vpc", version, about = "A VPC data plane in XDP: VPCs, VSwitches, routes and ENIs on Linux")]
pub struct Cli {
    #[command(flatten)]
    pub host: HostArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Host-wide paths and names, settable so several labs or tests can run side by side.
#[derive(Args, Debug, Clone)]
pub struct HostArgs {
    /// Pin root on a BPF filesystem (mounted if needed).
    #[arg(long, global = true, env = "VPC_BPFFS", default_value = "/sys/fs/bpf/vpc")]
    pub bpffs: PathBuf,
    /// Where the agent keeps its state.
    #[arg(long, global = true, env = "VPC_STATE_DIR", default_value = "/var/lib/vpc")]
    pub state_dir: PathBuf,
    /// Prefix of lab namespace and host interface names.
    #[arg(long, global = true, env = "VPC_PREFIX", default_value = "")]
    pub prefix: String,
}

impl HostArgs {
    pub fn options(&self) -> HostOptions {
        HostOptions {
            bpffs: self.bpffs.clone(),
            state_dir: self.state_dir.clone(),
            naming: Naming::new(&self.prefix),
            limits: Limits::default(),
        }
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
    /// Make the data path forward as the topology file says (idempotent; only differences change).
    Apply {
        #[arg(short, long)]
        file: PathBuf,
        /// Show what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Detach from every interface and remove every pin: forwarding stops.
    Down,
    /// Per-ENI packet and byte counters, and drops by reason.
    Stats {
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
        /// Also list drop reasons that never happened.
        #[arg(short, long)]
        all: bool,
    },
    /// Network namespaces standing in for guests, one per ENI.
    #[command(subcommand)]
    Lab(LabCommand),
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
pub enum LabCommand {
    /// Create a namespace and veth per ENI, then apply the topology.
    Up {
        #[arg(short, long)]
        file: PathBuf,
    },
    /// Remove the data path and every namespace and veth of the lab.
    Down {
        #[arg(short, long)]
        file: Option<PathBuf>,
    },
    /// Run a command inside an ENI's namespace: `vpc lab exec web1 -- ping 192.168.2.10`.
    Exec {
        eni: String,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
}

/// Read and validate a topology file; every problem is reported with the file name.
pub fn read_topology(path: &Path) -> anyhow::Result<TopologySpec> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_topology(&path.display().to_string(), &text)
}

pub fn parse_topology(origin: &str, text: &str) -> anyhow::Result<TopologySpec> {
    let with_origin = |invalid: Invalid| {
        let lines: Vec<String> = invalid.0.iter().map(|p| format!("{origin}: {p}")).collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    };
    let spec = TopologySpec::from_yaml(text).map_err(|e| {
        let at = e.location().map(|l| format!(" (line {}, column {})", l.line(), l.column())).unwrap_or_default();
        anyhow::anyhow!("{origin}{at}: {e} [{}]", crate::model::error::code::YAML_SYNTAX)
    })?;
    Topology::from_spec(&spec).map_err(with_origin)?;
    Ok(spec)
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let agent = Agent::new(cli.host.options());
    match cli.command {
        Command::Apply { file, dry_run, output } => {
            let spec = read_topology(&file)?;
            let applied = agent.apply(&spec, dry_run)?;
            output::applied(&applied, dry_run, output)
        }
        Command::Down => agent.down(),
        Command::Stats { output, all } => output::stats(&agent.stats()?, output, all),
        Command::Lab(LabCommand::Up { file }) => {
            let spec = read_topology(&file)?;
            let applied = lab::up(&agent, &spec)?;
            output::applied(&applied, false, Format::Table)
        }
        Command::Lab(LabCommand::Down { file }) => {
            let spec = file.as_deref().map(read_topology).transpose()?;
            lab::down(&agent, spec.as_ref())
        }
        Command::Lab(LabCommand::Exec { eni, cmd }) => lab::exec(&agent, &eni, &cmd),
        Command::Demo { file, keep } => demo::run(&Agent::new(demo::options(&cli.host)), file.as_deref(), keep),
    }
}
