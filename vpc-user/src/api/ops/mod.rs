//! Every API operation, one file per resource kind: each kind's table of operations (name,
//! parameters, response fields) beside the handlers that run them, and `all()` strings the tables
//! together. Each mutating operation is one `Agent::transact`: the edit in its handler, then
//! normalization, every rule of the guide, the data path and the store, all or nothing.
//!
//! To add an operation, add its `Op` to its kind's `OPS` and its handler next to it.

mod access_key;
mod cen;
mod eni;
mod flow_log;
mod gateway;
mod host;
mod lookup;
mod multicast;
mod route_entry;
mod route_table;
mod security_group;
mod topology;
mod vpc;
mod vswitch;

use serde_json::{Value, json};

use super::{error::ApiError, op::Params};
use crate::{
    agent::Agent,
    model::{Topology, spec::TopologySpec},
};

pub use super::op::{Kind, Op, Param};

/// Every operation, kind by kind, in the order the OpenAPI document and the CLI list them.
pub fn all() -> impl Iterator<Item = &'static Op> {
    [
        vpc::OPS,
        vswitch::OPS,
        route_table::OPS,
        route_entry::OPS,
        eni::OPS,
        gateway::OPS,
        cen::OPS,
        topology::OPS,
        security_group::OPS,
        flow_log::OPS,
        multicast::OPS,
        host::OPS,
        access_key::OPS,
    ]
    .into_iter()
    .flatten()
}

// What every kind's table and handlers are written with.

/// `Kind::String`, the kind of most parameters, short for the tables.
const S: Kind = Kind::String;

/// One row of a parameter table: `p!("Name", Kind, req|opt, "What it means.")`.
macro_rules! p {
    ($name:literal, $kind:expr, req, $doc:literal) => {
        Param { name: $name, kind: $kind, required: true, doc: $doc }
    };
    ($name:literal, $kind:expr, opt, $doc:literal) => {
        Param { name: $name, kind: $kind, required: false, doc: $doc }
    };
}
use p;

const DRY_RUN: Param = p!("DryRun", Kind::Boolean, opt, "Check the request and report the changes without making them.");

type R<T> = Result<T, ApiError>;

/// Run a mutating edit; `DryRun` only reports.
fn transact<T>(agent: &mut Agent, p: &Params, edit: impl FnOnce(&mut TopologySpec, &Topology) -> R<T>) -> R<T> {
    agent.transact(p.opt_bool("DryRun").unwrap_or(false), edit).map(|(out, _)| out)
}

/// Make an edit that says what it touches (the agent's incremental path when it can).
fn change(agent: &mut Agent, p: &Params, edit: crate::agent::incremental::Edit) -> R<()> {
    agent.change(p.opt_bool("DryRun").unwrap_or(false), edit).map(drop).map_err(ApiError::from)
}

fn name_or(name: Option<&str>, id: &str) -> String {
    name.map(str::to_string).unwrap_or_else(|| id.to_string())
}

fn ok() -> R<Value> {
    Ok(json!({}))
}
