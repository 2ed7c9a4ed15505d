//! The markdown summary: tables of the results and each target stated against its number.

use std::fmt::Write as _;

use super::Results;

/// Established-flow cost may vary this much over route counts (fraction of the smallest count's).
const FLAT_WITHIN: f64 = 0.05;
/// Established-flow cost above the empty program, ns.
const ESTABLISHED_TARGET_NS: f64 = 60.0;
/// Applying 100,000 routes, seconds.
const APPLY_TARGET_S: f64 = 2.0;

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

pub fn summary(r: &Results) -> String {
    let mut out = String::new();
    let m = &r.machine;
    let _ = writeln!(out, "# vpc benchmark\n");
    let _ = writeln!(out, "{} · {} CPUs · kernel {} · {} · medians of {} rounds\n", m.cpu, m.cpus, m.kernel, m.date, r.rounds);
    let _ = writeln!(out, "## Per-packet cost (BPF_PROG_TEST_RUN, 64-byte UDP frames)\n");
    let _ = writeln!(out, "| routes | case | ns/packet | empty program ns | above empty ns | packets |");
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|");
    for p in &r.packet {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} |",
            p.routes, p.case, p.ns, p.baseline_ns, p.above_baseline_ns, p.packets
        );
    }
    let _ = writeln!(out, "\n## Targets\n");
    let _ = writeln!(out, "| target | measured | |");
    let _ = writeln!(out, "|---|---|---|");
    let mut cases: Vec<&str> = Vec::new();
    for p in &r.packet {
        if !cases.contains(&p.case.as_str()) {
            cases.push(&p.case);
        }
    }
    for case in cases.iter().filter(|c| c.starts_with("established")) {
        let series: Vec<_> = r.packet.iter().filter(|p| p.case == *case).collect();
        let (Some(first), Some(last)) = (series.first(), series.last()) else { continue };
        if series.len() > 1 {
            let base = first.ns;
            let worst = series.iter().map(|p| (p.ns - base) / base).fold(0.0f64, |a, d| if d.abs() > a.abs() { d } else { a });
            let _ = writeln!(
                out,
                "| {case}: cost flat (±{:.0} %) from {} to {} routes | worst {:+.1} % ({:.1} → {:.1} ns/packet) | {} |",
                FLAT_WITHIN * 100.0,
                first.routes,
                last.routes,
                worst * 100.0,
                base,
                last.ns,
                verdict(worst.abs() <= FLAT_WITHIN)
            );
        }
        let above = series.iter().map(|p| p.above_baseline_ns).fold(f64::MIN, f64::max);
        let _ = writeln!(
            out,
            "| {case}: ≤ {ESTABLISHED_TARGET_NS:.0} ns above the empty program | at most {above:.1} ns | {} |",
            verdict(above <= ESTABLISHED_TARGET_NS)
        );
    }
    for p in r.packet.iter().filter(|p| p.case == "first packet") {
        let est = r.packet.iter().find(|e| e.routes == p.routes && e.case.starts_with("established, ") && e.case.ends_with("flows"));
        if let Some(est) = est.filter(|e| e.above_baseline_ns > 0.0) {
            let ratio = p.above_baseline_ns / est.above_baseline_ns;
            let _ = writeln!(
                out,
                "| first packet ≤ 4× established ({} routes) | {:.1}× ({:.1} vs {:.1} ns above empty) | {} |",
                p.routes,
                ratio,
                p.above_baseline_ns,
                est.above_baseline_ns,
                verdict(ratio <= 4.0)
            );
        }
    }
    if let Some(c) = &r.control {
        let _ = writeln!(
            out,
            "| apply {} routes in < {APPLY_TARGET_S:.0} s (API) | {:.2} s fresh, {:.2} s replacing every next hop | {} |",
            c.routes,
            c.api_apply_s,
            c.api_replace_s,
            verdict(c.routes < 100_000 || c.api_apply_s.max(c.api_replace_s) < APPLY_TARGET_S)
        );
        let _ = writeln!(
            out,
            "| apply {} routes in < {APPLY_TARGET_S:.0} s (`vpc apply -f`, {:.1} MB of YAML) | {:.2} s | {} |",
            c.routes,
            c.yaml_bytes as f64 / 1e6,
            c.cli_apply_s,
            verdict(c.routes < 100_000 || c.cli_apply_s < APPLY_TARGET_S)
        );
        let _ = writeln!(out, "\n## Control plane\n");
        let _ = writeln!(out, "| {} routes | seconds |", c.routes);
        let _ = writeln!(out, "|---|---:|");
        let _ = writeln!(out, "| ApplyTopology, all new | {:.3} |", c.api_apply_s);
        let _ = writeln!(out, "| ApplyTopology, every next hop changed (new generation, atomic flip) | {:.3} |", c.api_replace_s);
        let _ = writeln!(out, "| `vpc apply -f` (YAML), all new | {:.3} |", c.cli_apply_s);
        let _ = writeln!(out, "| CreateRouteEntry into the full table, call to effect | {:.4} |", c.route_entry_ms / 1000.0);
    }
    let _ = writeln!(
        out,
        "\nThe empty program is run exactly as the data path (same frames, one run per call, timed by the \
         kernel), interleaved in every round; \"above empty\" is what the data path itself costs."
    );
    out
}
