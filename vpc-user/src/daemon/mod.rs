//! `vpc daemon`: the agent, its API and its background work. It owns the state lock for its
//! whole life, reconciles the pinned maps with the store when it starts, and runs the loops that
//! keep the data path current (`loops`) beside the API's listeners (`api::server`). Stopping it
//! -- even with `kill -9` -- does not stop forwarding: programs, links and maps stay pinned.

mod loops;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;

use crate::{
    agent::{Agent, HostOptions},
    api::{client, server},
};

pub struct DaemonOptions {
    pub host: HostOptions,
    pub metrics_addr: Option<SocketAddr>,
    /// The guide's signed API on TCP (`api::rpc`).
    pub listen: Option<SocketAddr>,
    /// Permission bits of the API socket.
    pub socket_mode: u32,
    /// How often ENI interfaces are re-resolved.
    pub rebind_interval: Duration,
    /// The largest request body taken (`--max-request-bytes`); a longer one is refused with
    /// 413 as soon as its length is known, before it is read.
    pub max_request_bytes: usize,
}

pub fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    let socket = opts.host.socket();
    if client::is_running(&socket) {
        anyhow::bail!("an agent already answers on {}", socket.display());
    }
    let mut agent = Agent::open(opts.host)?;
    if agent.adopted() {
        log::warn!("adopted the data path under {} as it is: the next change is written over it", agent.opts.bpffs.display());
    } else {
        let report = agent.reconcile().context("reconciling the data path with the stored state")?;
        log::info!(
            "reconciled: {} links attached, {} replaced in place; maps +{} routes, +{} ENIs",
            report.links.attached,
            report.links.replaced,
            report.changes.routes.added,
            report.changes.enis.added
        );
        for w in &report.warnings {
            log::warn!("{w}");
        }
    }
    agent.announce(&socket)?;
    let agent = Arc::new(Mutex::new(agent));
    let monitor = Arc::new(crate::monitor::Hub::default());
    loops::start(&agent, &monitor, opts.rebind_interval)?;
    let listen = server::Listen {
        socket,
        metrics_addr: opts.metrics_addr,
        rpc_addr: opts.listen,
        socket_mode: opts.socket_mode,
        max_request_bytes: opts.max_request_bytes,
    };
    let served = tokio::runtime::Builder::new_multi_thread().enable_all().worker_threads(2).build()?.block_on(server::serve(
        agent.clone(),
        monitor,
        listen,
    ));
    if let Ok(agent) = agent.lock() {
        agent.unannounce();
    }
    served
}
