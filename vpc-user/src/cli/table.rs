//! Aligned tables of API objects. A column shows a key as it is, or a reference by name and ID;
//! a cell with several values (a list, every hop of a route) takes one line per value.

use serde_json::Value;

use super::names::Names;

#[derive(Clone, Copy)]
pub enum Col<'a> {
    /// The value as the API gives it.
    Key(&'a str),
    /// An ID (or a list of them) as `name (id)`.
    Named(&'a str),
    /// The VPC of the resource whose ID is at the key, as `name (id)`.
    VpcOf(&'a str),
    /// ENI names (of the row's VpcId) as `name (id)`.
    EniNames(&'a str),
    /// A route entry's next hop: the one hop, or every hop of an ECMP or active/standby group
    /// with its weight, status (Active, Standby, Down) and share of flows, as the API gives them.
    NextHops,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The values at `key`: each item of a list, or the one value.
fn values(row: &Value, key: &str) -> Vec<Value> {
    match &row[key] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

fn cell(row: &Value, col: Col<'_>, names: &Names) -> Vec<String> {
    let each = |key: &str, show: &dyn Fn(&str) -> String| -> Vec<String> {
        values(row, key).iter().map(|v| v.as_str().map(show).unwrap_or_else(|| scalar(v))).collect()
    };
    let lines = match col {
        Col::Key(key) => match &row[key] {
            Value::Array(_) => each(key, &str::to_string),
            one => vec![scalar(one)],
        },
        Col::Named(key) => each(key, &|id| names.named(id)),
        Col::VpcOf(key) => row[key].as_str().and_then(|id| names.vpc_of(id)).into_iter().collect(),
        Col::EniNames(key) => each(key, &|name| names.eni(row["VpcId"].as_str().unwrap_or_default(), name)),
        Col::NextHops => match row["NextHops"].as_array() {
            Some(hops) => hops
                .iter()
                .map(|h| {
                    let who = match (h["Name"].as_str(), h["NextHopId"].as_str()) {
                        (Some(name), Some(id)) if name != id => format!("{name} ({id})"),
                        (name, id) => id.or(name).unwrap_or("-").to_string(),
                    };
                    format!("{who} weight {} {} {}", scalar(&h["Weight"]), scalar(&h["Status"]), scalar(&h["Share"]))
                })
                .collect(),
            None => row["NextHopId"].as_str().map(|id| names.named(id)).into_iter().collect(),
        },
    };
    if lines.is_empty() { vec!["-".into()] } else { lines }
}

/// Print `rows` under `columns` (header, what to show).
pub fn print(rows: &[Value], columns: &[(&str, Col<'_>)], names: &Names) {
    let cells: Vec<Vec<Vec<String>>> = rows.iter().map(|r| columns.iter().map(|(_, c)| cell(r, *c, names)).collect()).collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| cells.iter().flat_map(|r| r[i].iter().map(String::len)).chain([columns[i].0.len()]).max().unwrap_or(0))
        .collect();
    let line = |texts: Vec<&str>| {
        let padded: Vec<String> = texts.iter().zip(&widths).map(|(t, w)| format!("{t:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|(h, _)| *h).collect());
    for row in &cells {
        let height = row.iter().map(Vec::len).max().unwrap_or(1);
        for i in 0..height {
            line(row.iter().map(|c| c.get(i).map(String::as_str).unwrap_or("")).collect());
        }
    }
}

/// An object as `Key  value` lines, and each of its lists of objects as a table under its key
/// (values as the API gives them).
pub fn key_values(object: &Value) {
    let names = &Names::default();
    let Some(map) = object.as_object() else {
        println!("{}", scalar(object));
        return;
    };
    let is_table = |v: &Value| v.as_array().is_some_and(|items| !items.is_empty() && items.iter().all(Value::is_object));
    let width = map.iter().filter(|(_, v)| !is_table(v)).map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in map.iter().filter(|(_, v)| !is_table(v)) {
        let text = match value {
            Value::Object(_) => value.to_string(),
            _ => cell(object, Col::Key(key), names).join(", "),
        };
        println!("{key:<width$}  {text}");
    }
    for (key, value) in map.iter().filter(|(_, v)| is_table(v)) {
        let rows = value.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut keys: Vec<&str> = Vec::new();
        for k in rows.iter().filter_map(Value::as_object).flat_map(|o| o.keys()) {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
        let columns: Vec<(&str, Col)> = keys.iter().map(|k| (*k, Col::Key(k))).collect();
        println!("\n{key}:");
        print(rows, &columns, names);
    }
}
