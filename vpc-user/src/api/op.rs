//! What an operation is (its table row: name, parameters, response fields, handler) and a
//! request's parameters checked against it. The operations themselves are in `ops/`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, value::RawValue};

use super::error::{ApiError, code};
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

/// One parameter of an operation: the request parser, the CLI flags and the OpenAPI schema are
/// all read from it.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub doc: &'static str,
}

/// One API operation: its name, parameters and response fields, and the handler that runs it.
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
            let wrong = |shown: &str| {
                ApiError::bad(code::INVALID_PARAMETER, param.name, format!("{} must be a {:?}, not {shown}", param.name, param.kind))
            };
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
