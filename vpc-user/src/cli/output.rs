//! Human and JSON renderings of command results.

use serde_json::Value;

use super::Format;
use crate::agent::Stats;

/// Print an ApplyTopology result: the resource changes and what changed in the data path.
pub fn applied(result: &Value, dry_run: bool, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        return json(result);
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
    let c = |map: &str, what: &str| r["Changes"][map][what].as_u64().unwrap_or(0);
    println!(
        "maps: enis +{}/~{}/-{}  addresses +{}/~{}/-{}  routes +{}/~{}/-{}  ports +{}/~{}/-{}",
        c("Enis", "Added"),
        c("Enis", "Changed"),
        c("Enis", "Removed"),
        c("Addrs", "Added"),
        c("Addrs", "Changed"),
        c("Addrs", "Removed"),
        c("Routes", "Added"),
        c("Routes", "Changed"),
        c("Routes", "Removed"),
        c("Ports", "Added"),
        c("Ports", "Changed"),
        c("Ports", "Removed"),
    );
    println!(
        "security groups: rule sets +{}/~{}/-{}",
        c("SecurityGroups", "Added"),
        c("SecurityGroups", "Changed"),
        c("SecurityGroups", "Removed")
    );
    let l = |what: &str| r["Links"][what].as_u64().unwrap_or(0);
    println!("links: {} attached, {} replaced in place, {} detached", l("Attached"), l("Replaced"), l("Detached"));
    if let Some(n) = result["Attached"].as_u64() {
        println!("interfaces: {n} ENIs attached to their guests' veths");
    }
    for map in r["RetiredMaps"].as_array().into_iter().flatten() {
        println!("note: map {} was recreated (its layout changed in this build)", map.as_str().unwrap_or_default());
    }
    for warning in r["Warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", warning.as_str().unwrap_or_default());
    }
    Ok(())
}

pub fn stats(stats: &Stats, format: Format, all: bool) -> anyhow::Result<()> {
    if format == Format::Json {
        return json(stats);
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

/// Pretty JSON.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// What an operation returned: the API's object as JSON, or as `Key  value` lines; an operation
/// that returns nothing says `done: ACTION SUBJECT` (or `{}` as JSON).
pub fn result(action: &str, subject: &str, response: &Value, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => json(response)?,
        Format::Table if response.as_object().is_some_and(|m| m.is_empty()) => {
            println!("{}", format!("done: {action} {subject}").trim_end())
        }
        Format::Table => super::table::key_values(response),
    }
    Ok(())
}
