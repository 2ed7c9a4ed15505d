//! Human and JSON renderings of command results.

use crate::agent::{Applied, Stats};

use super::Format;

pub fn applied(applied: &Applied, dry_run: bool, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(applied)?);
        return Ok(());
    }
    if applied.changes.is_empty() {
        println!("no resource changes");
    }
    for change in &applied.changes {
        println!("{change}");
    }
    if dry_run {
        println!("(dry run: nothing applied)");
        return Ok(());
    }
    let c = &applied.report.changes;
    let l = &applied.report.links;
    println!(
        "maps: enis +{}/~{}/-{}  addresses +{}/~{}/-{}  routes +{}/~{}/-{}  ports +{}/~{}/-{}",
        c.enis.added, c.enis.changed, c.enis.removed, c.addrs.added, c.addrs.changed, c.addrs.removed,
        c.routes.added, c.routes.changed, c.routes.removed, c.ports.added, c.ports.changed, c.ports.removed
    );
    println!("links: {} attached, {} replaced in place, {} detached", l.attached, l.replaced, l.detached);
    for map in &applied.report.retired_maps {
        println!("note: map {map} was recreated (its layout changed in this build)");
    }
    for warning in &applied.report.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

pub fn stats(stats: &Stats, format: Format, all: bool) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(stats)?);
        return Ok(());
    }
    println!("{:<12} {:<8} {:<8} {:<15} {:>10} {:>12} {:>10} {:>12}", "ENI", "VPC", "VSWITCH", "IP", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES");
    for e in &stats.enis {
        println!(
            "{:<12} {:<8} {:<8} {:<15} {:>10} {:>12} {:>10} {:>12}",
            e.eni, e.vpc, e.vswitch, e.ip, e.rx_packets, e.rx_bytes, e.tx_packets, e.tx_bytes
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
    Ok(())
}
