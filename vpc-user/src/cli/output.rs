//! Human and JSON renderings of command results.

use serde_json::Value;

use super::Format;
use crate::agent::Stats;

/// Print an ApplyTopology result: the resource changes and what changed in the data path.
pub fn applied(result: &Value, dry_run: bool, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(result)?);
        return Ok(());
    }
    let changes = result["Changes"].as_array().cloned().unwrap_or_default();
    if changes.is_empty() {
        println!("no resource changes");
    }
    for change in &changes {
        println!("{}", change.as_str().unwrap_or_default());
    }
    if dry_run {
        println!("(dry run: nothing applied)");
        return Ok(());
    }
    let r = &result["Report"];
    let c = |map: &str, what: &str| r["changes"][map][what].as_u64().unwrap_or(0);
    println!(
        "maps: enis +{}/~{}/-{}  addresses +{}/~{}/-{}  routes +{}/~{}/-{}  ports +{}/~{}/-{}",
        c("enis", "added"),
        c("enis", "changed"),
        c("enis", "removed"),
        c("addrs", "added"),
        c("addrs", "changed"),
        c("addrs", "removed"),
        c("routes", "added"),
        c("routes", "changed"),
        c("routes", "removed"),
        c("ports", "added"),
        c("ports", "changed"),
        c("ports", "removed"),
    );
    println!(
        "security groups: rule sets +{}/~{}/-{}",
        c("security_groups", "added"),
        c("security_groups", "changed"),
        c("security_groups", "removed")
    );
    let l = |what: &str| r["links"][what].as_u64().unwrap_or(0);
    println!("links: {} attached, {} replaced in place, {} detached", l("attached"), l("replaced"), l("detached"));
    if let Some(n) = result["Attached"].as_u64() {
        println!("interfaces: {n} ENIs attached to their guests' veths");
    }
    for map in r["retired_maps"].as_array().into_iter().flatten() {
        println!("note: map {} was recreated (its layout changed in this build)", map.as_str().unwrap_or_default());
    }
    for warning in r["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", warning.as_str().unwrap_or_default());
    }
    Ok(())
}

pub fn stats(stats: &Stats, format: Format, all: bool) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(stats)?);
        return Ok(());
    }
    println!(
        "{:<12} {:<8} {:<8} {:<15} {:>10} {:>12} {:>10} {:>12} {:>15} {:>8}",
        "ENI", "VPC", "VSWITCH", "IP", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES", "CONNS/LIMIT", "REFUSED"
    );
    for e in &stats.enis {
        println!(
            "{:<12} {:<8} {:<8} {:<15} {:>10} {:>12} {:>10} {:>12} {:>15} {:>8}{}",
            e.eni,
            e.vpc,
            e.vswitch,
            e.ip,
            e.rx_packets,
            e.rx_bytes,
            e.tx_packets,
            e.tx_bytes,
            format!("{}/{}", e.connections, e.connection_limit),
            e.conntrack_refused,
            if e.attached { "" } else { "  (no interface)" }
        );
    }
    println!();
    println!("{:<20} {:>10}  MEANING", "DROP REASON", "PACKETS");
    let mut any = false;
    for d in stats.drops.iter().filter(|d| all || d.packets > 0) {
        any = true;
        println!("{:<20} {:>10}  {}", d.reason, d.packets, d.meaning);
    }
    if !any {
        println!("(no drops)");
    }
    println!();
    println!("{:<24} {:>10}", "EVENT", "COUNT");
    for e in stats.events.iter().filter(|e| all || e.count > 0) {
        println!("{:<24} {:>10}", e.event, e.count);
    }
    let ct = &stats.conntrack;
    println!();
    println!(
        "conntrack: {} of {} entries, {} opened, {} swept, {} refused at a connection limit, {} refused with the table full",
        ct.entries, ct.capacity, ct.created, ct.swept, ct.refused, ct.full
    );
    Ok(())
}

/// A simple aligned table of JSON objects: `columns` are (header, key).
pub fn table(rows: &[Value], columns: &[(&str, &str)]) {
    let cell = |row: &Value, key: &str| -> String {
        match &row[key] {
            Value::Null => "-".into(),
            Value::String(s) => s.clone(),
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect();
                if parts.is_empty() { "-".into() } else { parts.join(",") }
            }
            other => other.to_string(),
        }
    };
    let widths: Vec<usize> =
        columns.iter().map(|(h, k)| rows.iter().map(|r| cell(r, k).len()).chain([h.len()]).max().unwrap_or(0)).collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|(h, _)| h.to_string()).collect());
    for row in rows {
        line(columns.iter().map(|(_, k)| cell(row, k)).collect());
    }
}
