//! The agent's API: the guide's operations by their names (CreateVpc, DescribeVSwitches, …),
//! JSON in and out. The tables (`ops::all()`) define every operation's parameters; the request
//! parser, the CLI subcommands and the OpenAPI document are all derived from it.
//!
//! Transport: HTTP `POST /api/<Action>` with a JSON object body on the agent's Unix socket
//! (`server`), or the same `dispatch` called in-process when no agent runs (the CLI's embedded
//! mode).

pub mod access_keys;
pub mod client;
pub mod error;
pub mod op;
pub mod openapi;
pub mod ops;
pub mod parameters;
pub mod rpc;
pub mod server;
pub mod signature;

use serde_json::Value;

pub use error::ApiError;
use error::code;
pub use op::{Kind, Op, Param, Params};

use crate::agent::Agent;

pub fn find(action: &str) -> Option<&'static Op> {
    ops::all().find(|op| op.name == action)
}

/// Run one API request (its JSON text, dropped once its parameters are read) against `agent`.
pub fn dispatch(agent: &mut Agent, action: &str, body: impl AsRef<[u8]>) -> Result<Value, ApiError> {
    let op = find(action).ok_or_else(|| ApiError::new(404, code::UNKNOWN_ACTION, format!("there is no action {action}")))?;
    let params = Params::parse_text(op, body.as_ref())?;
    drop(body);
    (op.run)(agent, &params).map_err(|e| parameters::name_parameters(e, |name| params.has(name)))
}

/// The body of ApplyTopology, for `Conn::call_with` (serialized without a JSON tree first).
#[derive(serde::Serialize)]
pub struct ApplyTopologyRequest<'a> {
    #[serde(rename = "Topology")]
    pub topology: &'a crate::model::spec::TopologySpec,
    #[serde(rename = "DryRun")]
    pub dry_run: bool,
}

/// Where API calls go: the running agent's socket, or an agent opened in this process for the
/// length of one call (no daemon running: the CLI's embedded mode).
#[derive(Debug, Clone)]
pub enum Conn {
    Remote(std::path::PathBuf),
    Local(crate::agent::HostOptions),
}

impl Conn {
    /// The agent on the options' socket if one answers, else embedded.
    pub fn to(opts: &crate::agent::HostOptions) -> Conn {
        let socket = opts.socket();
        if client::is_running(&socket) { Conn::Remote(socket) } else { Conn::Local(opts.clone()) }
    }

    pub fn call(&self, action: &str, body: Value) -> Result<Value, ApiError> {
        self.call_with(action, &body)
    }

    /// `call` with a typed body, written straight to JSON text for the agent, remote or in this
    /// process (a 100,000-route topology skips the intermediate `Value`).
    pub fn call_with(&self, action: &str, body: &impl serde::Serialize) -> Result<Value, ApiError> {
        let text = serde_json::to_string(body).map_err(|e| ApiError::internal(anyhow::anyhow!("encoding the request: {e}")))?;
        match self {
            Conn::Remote(socket) => client::call(socket, action, &text),
            Conn::Local(opts) => {
                let mut opts = opts.clone();
                if action == "Teardown" {
                    // Removing everything needs no claim on what is there.
                    opts.takeover = crate::agent::Takeover::Reset;
                }
                let mut agent = Agent::open(opts).map_err(ApiError::internal)?;
                dispatch(&mut agent, action, text)
            }
        }
    }
}
