//! The agent's API: the guide's operations by their names (CreateVpc, DescribeVSwitches, …),
//! JSON in and out. The tables (`ops::all()`) define every operation's parameters; the request
//! parser, the CLI subcommands and the OpenAPI document are all derived from it.
//!
//! Transport: HTTP `POST /api/<Action>` with a JSON object body on the agent's Unix socket
//! (`server`), or the same `dispatch` called in-process when no agent runs (the CLI's embedded
//! mode).

pub mod client;
pub mod error;
pub mod flowlog_ops;
pub mod mcast_ops;
pub mod openapi;
pub mod ops;
pub mod parameters;
pub mod server;
pub mod sg_ops;

use serde_json::{Map, Value};

pub use error::ApiError;
use error::code;

use crate::agent::Agent;

/// The JSON type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Boolean,
    /// Any JSON object or array (a next hop, a whole topology).
    Object,
}

#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub doc: &'static str,
}

pub struct Op {
    pub name: &'static str,
    pub summary: &'static str,
    pub params: &'static [Param],
    /// Fields of the response object, with their meaning.
    pub returns: &'static [(&'static str, &'static str)],
    /// Whether the operation changes the configuration.
    pub mutates: bool,
    pub run: fn(&mut Agent, &Params) -> Result<Value, ApiError>,
}

/// The checked parameters of one request.
pub struct Params {
    values: Map<String, Value>,
}

impl Params {
    /// Check `body` against `op`'s parameter table: an object, no unknown names, every required
    /// one present, every type right.
    pub fn parse(op: &Op, body: Value) -> Result<Params, ApiError> {
        let values = match body {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => return Err(ApiError::bad(code::INVALID_PARAMETER, "", format!("the request body must be a JSON object, not {other}"))),
        };
        for name in values.keys() {
            if !op.params.iter().any(|p| p.name == name) {
                let known: Vec<&str> = op.params.iter().map(|p| p.name).collect();
                return Err(ApiError::bad(
                    code::UNKNOWN_PARAMETER,
                    name,
                    format!("{} has no parameter {name} (it takes: {})", op.name, known.join(", ")),
                ));
            }
        }
        for param in op.params {
            match values.get(param.name) {
                None | Some(Value::Null) if param.required => {
                    return Err(ApiError::bad(code::MISSING_PARAMETER, param.name, format!("{} requires {}", op.name, param.name)));
                }
                None | Some(Value::Null) => {}
                Some(value) => {
                    let ok = match param.kind {
                        Kind::String => value.is_string(),
                        Kind::Integer => value.is_u64(),
                        Kind::Boolean => value.is_boolean(),
                        Kind::Object => value.is_object() || value.is_array(),
                    };
                    if !ok {
                        return Err(ApiError::bad(
                            code::INVALID_PARAMETER,
                            param.name,
                            format!("{} must be a {:?}, not {value}", param.name, param.kind),
                        ));
                    }
                }
            }
        }
        Ok(Params { values })
    }

    pub fn opt_str(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(Value::as_str)
    }

    /// A required string parameter (presence was checked by `parse`).
    pub fn str(&self, name: &str) -> &str {
        self.opt_str(name).unwrap_or_default()
    }

    /// An optional integer parameter (`parse` checked it is one); beyond u32 it saturates, so
    /// range checks still refuse it.
    pub fn opt_u32(&self, name: &str) -> Option<u32> {
        self.values.get(name).and_then(Value::as_u64).map(|v| u32::try_from(v).unwrap_or(u32::MAX))
    }

    pub fn opt_bool(&self, name: &str) -> Option<bool> {
        self.values.get(name).and_then(Value::as_bool)
    }

    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values.get(name).filter(|v| !v.is_null())
    }
}

pub fn find(action: &str) -> Option<&'static Op> {
    ops::all().find(|op| op.name == action)
}

/// Run one API request against `agent`.
pub fn dispatch(agent: &mut Agent, action: &str, body: Value) -> Result<Value, ApiError> {
    let op = find(action).ok_or_else(|| ApiError::new(404, code::UNKNOWN_ACTION, format!("there is no action {action}")))?;
    let params = Params::parse(op, body)?;
    (op.run)(agent, &params).map_err(|e| parameters::name_parameters(e, |name| params.value(name).is_some()))
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
        match self {
            Conn::Remote(socket) => client::call(socket, action, &body.to_string()),
            Conn::Local(opts) => {
                let mut opts = opts.clone();
                if action == "Teardown" {
                    // Removing everything needs no claim on what is there.
                    opts.takeover = crate::agent::Takeover::Reset;
                }
                let mut agent = Agent::open(opts).map_err(ApiError::internal)?;
                dispatch(&mut agent, action, body)
            }
        }
    }

    /// `call` with a typed body, written straight to JSON text for a remote agent (a 100,000-route
    /// topology skips the intermediate `Value`).
    pub fn call_with(&self, action: &str, body: &impl serde::Serialize) -> Result<Value, ApiError> {
        let invalid = |e: serde_json::Error| ApiError::internal(anyhow::anyhow!("encoding the request: {e}"));
        match self {
            Conn::Remote(socket) => client::call(socket, action, &serde_json::to_string(body).map_err(invalid)?),
            Conn::Local(_) => self.call(action, serde_json::to_value(body).map_err(invalid)?),
        }
    }
}
