//! The agent's listeners: the API on a Unix socket (mode 0600 by default), its OpenAPI document,
//! health and metrics, and metrics over TCP. The daemon module owns the agent and its
//! background work; this module only routes requests to it.

use std::{
    net::SocketAddr,
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use anyhow::Context as _;
use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tokio::sync::Notify;

use super::error::ApiError;
use crate::{agent::Agent, metrics};

/// Room for ApplyTopology with a 100,000-route topology (about 9 MB as JSON), four times over.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 48 << 20;

#[derive(Clone)]
struct Shared {
    agent: Arc<Mutex<Agent>>,
    /// The monitoring stream the daemon's reader feeds.
    monitor: Arc<crate::monitor::Hub>,
    api: Arc<metrics::ApiCounters>,
    stop: Arc<Notify>,
    /// `--max-request-bytes`.
    limit: usize,
}

/// A body over `limit`: refused before it is read when its length is declared, once the limit
/// is passed when it is not (chunked), with the same answer.
fn too_large(limit: usize, declared: Option<u64>) -> Response {
    let size = declared.map_or_else(|| "over the limit".to_string(), |n| format!("{n} bytes"));
    let message = format!("the request body is {size}; the agent takes at most {limit} (--max-request-bytes)");
    ApiError::new(413, "InvalidParameter.TooLarge", message).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self)).into_response()
    }
}

/// Where and how the API listens.
pub struct Listen {
    pub socket: PathBuf,
    pub metrics_addr: Option<SocketAddr>,
    /// The guide's signed API (`api::rpc`), off when none.
    pub rpc_addr: Option<SocketAddr>,
    /// Permission bits of the API socket.
    pub socket_mode: u32,
    pub max_request_bytes: usize,
}

/// Serve `agent`'s API and `monitor`'s stream until SIGTERM, Ctrl-C or POST /shutdown.
pub async fn serve(agent: Arc<Mutex<Agent>>, monitor: Arc<crate::monitor::Hub>, listen: Listen) -> anyhow::Result<()> {
    let Listen { socket, metrics_addr, rpc_addr, socket_mode: mode, max_request_bytes: limit } = listen;
    let shared = Shared { agent, monitor, api: Arc::default(), stop: Arc::new(Notify::new()), limit };
    let app = Router::new()
        .route("/api/{action}", post(api))
        .route("/monitor", post(monitor_events))
        .route("/monitor/stats", post(monitor_stats))
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
                return too_large(limit, declared);
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

    if let Some(addr) = rpc_addr {
        let tcp = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the API on {addr}"))?;
        let app = super::rpc::router(shared.agent.clone(), shared.api.clone())?.layer(axum::extract::DefaultBodyLimit::max(1 << 20));
        log::info!("the signed API on http://{addr}/");
        tokio::spawn(async move { axum::serve(tcp, app).await });
    }

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

async fn api(
    State(shared): State<Shared>,
    Path(action): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            shared.api.count(&action, "InvalidParameter.TooLarge");
            return too_large(shared.limit, None);
        }
        Err(rejection) => {
            return ApiError::bad(super::error::code::INVALID_PARAMETER, "", format!("reading the request: {rejection}")).into_response();
        }
    };
    let (agent, counted) = (shared.agent.clone(), action.clone());
    let result = tokio::task::spawn_blocking(move || match agent.lock() {
        Ok(mut agent) => super::dispatch(&mut agent, &action, body),
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
    let text =
        tokio::task::spawn_blocking(move || agent.lock().map(|a| metrics::render(&a, &api)).unwrap_or_default()).await.unwrap_or_default();
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

/// A page of the monitoring stream: what follows `since` (waiting up to `wait_ms` for it), or
/// the `last` N events.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MonitorRequest {
    pub since: u64,
    pub last: Option<usize>,
    pub wait_ms: u64,
    pub max: Option<usize>,
    /// The stream `since` counts in (`Page::stream` of the last answer).
    pub stream: Option<u64>,
    pub filter: crate::monitor::Filter,
}

/// The longest a client waits for an event in one request.
const MONITOR_WAIT_MAX_MS: u64 = 30_000;

async fn monitor_events(State(shared): State<Shared>, Json(request): Json<MonitorRequest>) -> Response {
    let hub = shared.monitor.clone();
    let page = tokio::task::spawn_blocking(move || match request.last {
        Some(n) => hub.last(n, &request.filter),
        None => {
            let wait = std::time::Duration::from_millis(request.wait_ms.min(MONITOR_WAIT_MAX_MS));
            hub.since(request.since, request.stream, &request.filter, request.max.unwrap_or(1000), wait)
        }
    })
    .await
    .unwrap_or_default();
    Json(page).into_response()
}

async fn monitor_stats(State(shared): State<Shared>) -> Response {
    Json(shared.monitor.stats()).into_response()
}

async fn shutdown(State(shared): State<Shared>) -> &'static str {
    shared.stop.notify_one();
    "stopping\n"
}
