//! The options every command shares: where the pins, the state and the socket are, names,
//! quotas and map sizes -- and where a change goes (the agent, or this process with --offline).

use std::{net::SocketAddr, path::PathBuf};

use clap::Args;

use crate::{
    agent::{HostOptions, state},
    api::{self, Conn},
    dataplane::Limits,
    naming::Naming,
};

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
    /// Size a data-path map, fixed when it is created: enis, eni-index, routes, addrs, groups,
    /// conntrack, sg-sets, sg-nodes, sg-chunks, sg-rules, flow-log, mcast-groups, mcast-members,
    /// event-ring, hosts (e.g. --map-size conntrack=1000000; fragment slots follow enis, 8
    /// each; event-ring is bytes, a power of two). Without it a map keeps the size it was pinned with.
    #[arg(long = "map-size", global = true, env = "VPC_MAP_SIZES", value_delimiter = ',')]
    pub map_sizes: Vec<String>,
    /// Make changes in this process when no agent runs (by default a change needs the agent).
    /// It uses the quotas recorded in the state directory, as the agent does.
    #[arg(long, global = true, env = "VPC_OFFLINE")]
    pub offline: bool,
    /// Keep the configuration in etcd (v3, e.g. http://10.0.0.9:2379; several comma-separated),
    /// shared by every host of a cluster, instead of this host's own database.
    #[arg(long, global = true, env = "VPC_ETCD", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// The cluster's name in etcd: its keys are under /vpc/NAME/v1/.
    #[arg(long, global = true, env = "VPC_CLUSTER", default_value = "default")]
    pub cluster: String,
    /// Operations one etcd transaction may hold (the server's --max-txn-ops).
    #[arg(long, global = true, env = "VPC_ETCD_MAX_OPS", default_value_t = crate::store::MAX_TXN_OPS)]
    pub etcd_max_ops: usize,
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
            cluster: None,
            etcd: (!self.etcd.is_empty()).then(|| crate::agent::EtcdOptions {
                endpoints: self.etcd.clone(),
                cluster: self.cluster.clone(),
                max_ops: self.etcd_max_ops,
            }),
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
        if !self.etcd.is_empty() {
            args.extend(["--etcd".into(), self.etcd.join(","), "--cluster".into(), self.cluster.clone()]);
            args.extend(["--etcd-max-ops".into(), self.etcd_max_ops.to_string()]);
        }
        args
    }
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
