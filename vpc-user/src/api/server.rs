//! `vpc daemon`: the agent serving its API on a Unix socket (mode 0600 by default) and its
//! metrics over TCP. It owns the state lock for its whole life, reconciles the pinned maps with
//! the store when it starts, and keeps ENI interfaces bound as they come and go. Stopping it --
//! even with `kill -9` -- does not stop forwarding: programs, links and maps stay pinned.

use std::{
    net::SocketAddr,
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use tokio::sync::Notify;

use super::{client, error::ApiError};
use crate::{agent::{Agent, HostOptions}, metrics};

pub struct DaemonOptions {
    pub host: HostOptions,
    pub metrics_addr: Option<SocketAddr>,
    /// Permission bits of the API socket.
    pub socket_mode: u32,
    /// How often ENI interfaces are re-resolved.
    pub rebind_interval: Duration,
    /// The largest request body taken (`--max-request-bytes`); a longer one is refused with
    /// 413 as soon as its length is known, before it is read.
    pub max_request_bytes: usize,
}

/// Room for ApplyTopology with a 100,000-route topology (about 9 MB as JSON), four times over.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 48 << 20;

#[derive(Clone)]
struct Shared {
    agent: Arc<Mutex<Agent>>,
    api: Arc<metrics::ApiCounters>,
    stop: Arc<Notify>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self)).into_response()
    }
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
    let shared = Shared { agent: Arc::new(Mutex::new(agent)), api: Arc::default(), stop: Arc::new(Notify::new()) };
    let agent = shared.agent.clone();
    let served = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()?
        .block_on(serve(shared, socket, opts.metrics_addr, opts.socket_mode, opts.rebind_interval, opts.max_request_bytes));
    if let Ok(agent) = agent.lock() {
        agent.unannounce();
    }
    served
}

async fn serve(shared: Shared, socket: PathBuf, metrics_addr: Option<SocketAddr>, mode: u32, rebind: Duration, limit: usize) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/api/{action}", post(api))
        .route("/openapi.json", get(|| async { Json(super::openapi::document()) }))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/shutdown", post(shutdown))
        // Whole topologies (ApplyTopology with 100,000 routes) are large requests, but bounded:
        // a declared length over the limit is refused before a byte is read, and an undeclared
        // one once the limit is passed.
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            let declared = req.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit as u64) {
                let message = format!("the request body is {} bytes; the agent takes at most {limit} (--max-request-bytes)", declared.unwrap_or(0));
                return ApiError::new(413, "InvalidParameter.TooLarge", message).into_response();
            }
            next.run(req).await
        }))
        .with_state(shared.clone());

    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode))?;
    log::info!("API on {}", socket.display());

    if let Some(addr) = metrics_addr {
        let tcp = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics on {addr}"))?;
        let metrics_app = Router::new().route("/metrics", get(metrics_text)).with_state(shared.clone());
        log::info!("metrics on http://{addr}/metrics");
        tokio::spawn(async move { axum::serve(tcp, metrics_app).await });
    }

    let rebinder = shared.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(rebind);
        loop {
            tick.tick().await;
            let agent = rebinder.agent.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(mut agent) = agent.lock()
                    && let Err(e) = agent.rebind()
                {
                    log::warn!("rebinding ENI interfaces: {e:#}");
                }
            })
            .await;
        }
    });

    // Health checks of active/standby hops, on their own thread (they block on sockets briefly).
    let checker_agent = shared.agent.clone();
    std::thread::spawn(move || {
        let mut checker = crate::agent::health::Checker::default();
        let mut seen = None;
        loop {
            // Rescan the routes for active/standby hops only when the topology changed.
            match checker_agent.lock() {
                Ok(agent) if seen != Some(agent.generation()) => {
                    seen = Some(agent.generation());
                    checker.update(crate::agent::health::probes(agent.topology(), &agent.opts.naming));
                }
                Ok(_) => {}
                Err(_) => return,
            }
            for ((route, hop), down) in checker.tick() {
                log::warn!("route {route}: hop {hop} is {}", if down { "down" } else { "up again" });
                if let Ok(mut agent) = checker_agent.lock()
                    && let Err(e) = agent.set_hop_down(&route, hop, down)
                {
                    log::error!("moving traffic off a failed hop: {e:#}");
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });

    // The connection table's sweeper: expired entries give their ports room back (nothing else
    // does). It works on the pinned maps alone, so it never holds the agent's lock.
    let sweep_pins = match shared.agent.lock() {
        Ok(agent) => agent.dataplane(),
        Err(_) => anyhow::bail!("the agent is poisoned"),
    };
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        if sweep_pins.is_up()
            && let Err(e) = crate::dataplane::conntrack::sweep(&sweep_pins.pins, &Default::default(), crate::dataplane::conntrack::now())
        {
            log::warn!("sweeping the connection table: {e:#}");
        }
    });

    // Flow logs: a tick every second, on a thread of its own (it writes files and sockets).
    let flow_agent = shared.agent.clone();
    std::thread::spawn(move || {
        let (pins, state_dir, flow_log_dir) = match flow_agent.lock() {
            Ok(agent) => (agent.dataplane().pins, agent.opts.state_dir.clone(), agent.opts.flow_log_dir()),
            Err(_) => return,
        };
        let account = std::env::var("VPC_ACCOUNT_ID").unwrap_or_else(|_| "local".into());
        let mut collector = crate::flowlog::Collector::open(pins.clone(), &state_dir, &flow_log_dir, &account);
        let mut seen = None;
        loop {
            // On the second, so ticks and windows line up with wall-clock seconds.
            let into = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_millis());
            std::thread::sleep(Duration::from_millis(u64::from(1000 - into)));
            // The tick never waits for the agent: a long change (a lab coming up) holding it
            // would look like an outage, and traffic counted before a first tick has no time.
            // Counts of ports the scope does not know yet wait in the table for the next scope
            // (`Collector::tick`).
            match flow_agent.try_lock() {
                Ok(agent) => {
                    let interfaces = agent.binding().ifindex.len();
                    if seen != Some((agent.generation(), interfaces)) {
                        seen = Some((agent.generation(), interfaces));
                        collector.set_scope(crate::flowlog::Scope::of(agent.topology(), &agent.stored().ids, &agent.binding().ifindex));
                    }
                }
                Err(std::sync::TryLockError::WouldBlock) => {}
                Err(std::sync::TryLockError::Poisoned(_)) => return,
            }
            if pins.is_up() && let Err(e) = collector.tick() {
                log::warn!("flow logs: {e:#}");
            }
        }
    });

    let stop = shared.stop.clone();
    let signals = async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = stop.notified() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(signals).await?;
    let _ = std::fs::remove_file(&socket);
    log::info!("agent stopped; forwarding continues through the pinned programs");
    Ok(())
}

async fn api(State(shared): State<Shared>, Path(action): Path<String>, body: axum::body::Bytes) -> Response {
    let (agent, counted) = (shared.agent.clone(), action.clone());
    let result = tokio::task::spawn_blocking(move || match agent.lock() {
        Ok(mut agent) => super::dispatch_text(&mut agent, &action, body),
        Err(_) => Err(ApiError::new(500, super::error::code::INTERNAL, "the agent is poisoned by an earlier panic")),
    })
    .await
    .unwrap_or_else(|e| Err(ApiError::new(500, super::error::code::INTERNAL, format!("request panicked: {e}"))));
    match result {
        Ok(value) => {
            shared.api.count(&counted, "OK");
            Json(value).into_response()
        }
        Err(err) => {
            shared.api.count(&counted, &err.code);
            err.into_response()
        }
    }
}

async fn metrics_text(State(shared): State<Shared>) -> Response {
    let (agent, api) = (shared.agent.clone(), shared.api.clone());
    let text = tokio::task::spawn_blocking(move || agent.lock().map(|a| metrics::render(&a, &api)).unwrap_or_default()).await.unwrap_or_default();
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

async fn shutdown(State(shared): State<Shared>) -> &'static str {
    shared.stop.notify_one();
    "stopping\n"
}
