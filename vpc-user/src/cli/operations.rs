//! Every API operation as a subcommand: its parameters as flags, its answer as JSON or a table.

use anyhow::Context as _;
use clap::ArgMatches;
use serde_json::{Map, Value, json};

use super::{Format, HostArgs, api_error, get, output};
use crate::api::{self, Conn, Kind};

/// `CreateVpc` -> `create-vpc`.
pub(super) fn kebab(name: &str) -> String {
    // The guide writes these as one word: create-vswitch, not create-v-switch.
    let name = &name.replace("VSwitch", "Vswitch").replace("VRouter", "Vrouter");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_upper = name.chars().nth(i.wrapping_sub(1)).is_some_and(|p| p.is_ascii_uppercase());
            let next_lower = name.chars().nth(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if i > 0 && (!prev_upper || next_lower) {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn with_operations(mut cmd: clap::Command) -> clap::Command {
    for op in api::ops::all() {
        // The API's mirror: JSON unless told otherwise.
        let output = clap::Arg::new(OUTPUT)
            .short('o')
            .long(OUTPUT)
            .value_name("OUTPUT")
            .value_parser(clap::value_parser!(Format))
            .default_value("json")
            .help("json: the API's response; table: its keys and values, or `done: ACTION ID` when it returns nothing");
        let mut sub = clap::Command::new(kebab(op.name)).about(op.summary).arg(output).next_help_heading("Parameters");
        for param in op.params {
            let mut arg = clap::Arg::new(param.name).long(kebab(param.name)).help(param.doc).required(param.required);
            arg = match param.kind {
                Kind::Boolean => arg.num_args(0..=1).default_missing_value("true").value_parser(clap::value_parser!(bool)),
                Kind::Integer => arg.value_parser(clap::value_parser!(u64)),
                // `-1/-1` (all ports) starts with a hyphen: take it as the value, not as a flag.
                Kind::String if param.name.ends_with("PortRange") => arg.allow_hyphen_values(true),
                Kind::String => arg,
                Kind::Object => arg.value_name("JSON"),
            };
            sub = sub.arg(arg);
        }
        cmd = cmd.subcommand(sub);
    }
    cmd
}

/// Whether a request only checks (`DryRun`).
fn dry_run(body: &Map<String, Value>) -> bool {
    body.get("DryRun").and_then(Value::as_bool).unwrap_or(false)
}

/// The output option of the operation subcommands (no operation has a parameter of that name).
const OUTPUT: &str = "output";

pub(super) fn run_operation(host: &HostArgs, op: &api::Op, matches: &ArgMatches) -> anyhow::Result<()> {
    let mut body = Map::new();
    for param in op.params {
        let value = match param.kind {
            Kind::Boolean => matches.get_one::<bool>(param.name).map(|b| json!(b)),
            Kind::Integer => matches.get_one::<u64>(param.name).map(|n| json!(n)),
            Kind::String => matches.get_one::<String>(param.name).map(|s| json!(s)),
            Kind::Object => matches
                .get_one::<String>(param.name)
                .map(|s| serde_json::from_str(s).with_context(|| format!("--{} is not JSON", kebab(param.name))))
                .transpose()?,
        };
        if let Some(value) = value {
            body.insert(param.name.into(), value);
        }
    }
    // What the operation acted on, for `done: ACTION ID`: its required parameters and the IDs given.
    let subject: Vec<&str> = op
        .params
        .iter()
        .filter(|p| p.required || p.name.ends_with("Id"))
        .filter_map(|p| body.get(p.name).and_then(Value::as_str))
        .collect();
    let subject = subject.join(" ");
    let opts = host.options()?;
    let conn = if op.mutates && !dry_run(&body) { host.changing(&opts)? } else { Conn::to(&opts) };
    let result = conn.call(op.name, Value::Object(body)).map_err(|e| api_error(op.name, e))?;
    let format = matches.get_one::<Format>(OUTPUT).copied().unwrap_or(Format::Json);
    // A kind's Describe operation as a table is that kind's `vpc get` table.
    if format == Format::Table
        && let Some((kind, list)) = get::described_by(op.name)
    {
        return get::print(&conn, kind, result[list].as_array().map(Vec::as_slice).unwrap_or_default());
    }
    output::result(op.name, &subject, &result, format)
}
