//! The agent's API: the guide's operations by their names (CreateVpc, DescribeVSwitches, …),
//! JSON in and out. The tables (`ops::all()`) define every operation's parameters; the request
//! parser, the CLI subcommands and the OpenAPI document are all derived from it.
//!
//! Transport: HTTP `POST /api/<Action>` with a JSON object body on the agent's Unix socket
//! (`server`), or the same `dispatch` called in-process when no agent runs (the CLI's embedded
//! mode).

pub mod client;
pub mod error;
pub mod openapi;
pub mod ops;
pub mod parameters;
pub mod server;

use std::collections::BTreeMap;

use serde_json::{value::RawValue, Map, Value};

pub use error::ApiError;
use error::code;
pub use ops::{Kind, Op, Param};

use crate::agent::Agent;

/// The checked parameters of one request.
pub struct Params {
    values: Map<String, Value>,
    /// Object and list parameters as their JSON text, read into their type only when used: a
    /// 100,000-route Topology is never a JSON tree beside its typed document.
    objects: BTreeMap<String, Box<RawValue>>,
}

impl Params {
    /// Check `body` against `op`'s parameter table: an object, no unknown names, every required
    /// one present, every type right.
    pub fn parse(op: &Op, body: Value) -> Result<Params, ApiError> {
        let text = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.into()))?;
        Params::parse_text(op, &text)
    }

    /// `parse` from the request's JSON text, without building a tree of the large parameters.
    pub fn parse_text(op: &Op, body: &[u8]) -> Result<Params, ApiError> {
        let bad = |message: String| ApiError::bad(code::INVALID_PARAMETER, "", message);
        let fields: BTreeMap<String, Box<RawValue>> = match body.iter().find(|b| !b.is_ascii_whitespace()) {
            None => BTreeMap::new(),
            Some(b'{') => serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?,
            Some(_) => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Null) => BTreeMap::new(),
                Ok(other) => return Err(bad(format!("the request body must be a JSON object, not {other}"))),
                Err(e) => return Err(bad(format!("the body is not JSON: {e}"))),
            },
        };
        for name in fields.keys() {
            if !op.params.iter().any(|p| p.name == name) {
                let known: Vec<&str> = op.params.iter().map(|p| p.name).collect();
                return Err(ApiError::bad(
                    code::UNKNOWN_PARAMETER,
                    name,
                    format!("{} has no parameter {name} (it takes: {})", op.name, known.join(", ")),
                ));
            }
        }
        let (mut values, mut objects) = (Map::new(), BTreeMap::new());
        for param in op.params {
            let raw = fields.get(param.name).filter(|raw| raw.get().trim() != "null");
            let Some(raw) = raw else {
                if param.required {
                    return Err(ApiError::bad(code::MISSING_PARAMETER, param.name, format!("{} requires {}", op.name, param.name)));
                }
                continue;
            };
            let wrong = |shown: &str| ApiError::bad(code::INVALID_PARAMETER, param.name, format!("{} must be a {:?}, not {shown}", param.name, param.kind));
            if param.kind == Kind::Object {
                if !raw.get().trim_start().starts_with(['{', '[']) {
                    return Err(wrong(raw.get()));
                }
                objects.insert(param.name.to_string(), raw.clone());
                continue;
            }
            let value: Value = serde_json::from_str(raw.get()).map_err(|e| wrong(&e.to_string()))?;
            let ok = match param.kind {
                Kind::String => value.is_string(),
                Kind::Integer => value.is_u64(),
                Kind::Boolean => value.is_boolean(),
                Kind::Object => unreachable!("kept as text above"),
            };
            if !ok {
                return Err(wrong(&value.to_string()));
            }
            values.insert(param.name.to_string(), value);
        }
        Ok(Params { values, objects })
    }

    /// An object or list parameter read into `T`; None when not given.
    pub fn object<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<serde_json::Result<T>> {
        self.objects.get(name).map(|raw| serde_json::from_str(raw.get()))
    }

    /// Whether the request gave `name`.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.objects.contains_key(name)
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

    /// A string, integer or boolean parameter as JSON.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }
}

pub fn find(action: &str) -> Option<&'static Op> {
    ops::all().find(|op| op.name == action)
}

/// Run one API request against `agent`.
pub fn dispatch(agent: &mut Agent, action: &str, body: Value) -> Result<Value, ApiError> {
    let text = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.into()))?;
    dispatch_text(agent, action, text)
}

/// `dispatch` of a request's JSON text, which is dropped once its parameters are read.
pub fn dispatch_text(agent: &mut Agent, action: &str, body: impl AsRef<[u8]>) -> Result<Value, ApiError> {
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
