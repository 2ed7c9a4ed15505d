//! SVG plots of the results: per-packet cost against route and rule counts (log scale), and
//! forwarding throughput per variant. Plain SVG text, no plotting dependency.

use std::fmt::Write as _;

use super::{PacketResult, Results, ThroughputResult};

const W: f64 = 640.0;
const H: f64 = 360.0;
const M: f64 = 60.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

fn frame(title: &str, x_label: &str, y_label: &str) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{title}</text>\n\
         <line x1=\"{M}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{M}\" y1=\"{M}\" x2=\"{M}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text>\n\
         <text x=\"15\" y=\"{}\" transform=\"rotate(-90 15 {})\" text-anchor=\"middle\">{y_label}</text>\n",
        W / 2.0,
        H - M,
        W - 20.0,
        H - M,
        H - M,
        W / 2.0,
        H - 15.0,
        H / 2.0,
        H / 2.0
    );
    s.push('\n');
    s
}

/// Cost per case against a count (log10 x axis).
pub fn cost_curve(title: &str, count_label: &str, series: &[&PacketResult], count: impl Fn(&PacketResult) -> usize) -> String {
    let mut cases: Vec<&str> = Vec::new();
    for p in series {
        if !cases.contains(&p.case.as_str()) {
            cases.push(&p.case);
        }
    }
    let xs: Vec<f64> = series.iter().map(|p| (count(p).max(1) as f64).log10()).collect();
    let (x0, x1) = (xs.iter().copied().fold(f64::MAX, f64::min), xs.iter().copied().fold(f64::MIN, f64::max).max(0.1));
    let y1 = series.iter().map(|p| p.ns).fold(0.0, f64::max) * 1.1;
    let px = |x: f64| M + (x - x0) / (x1 - x0).max(1e-9) * (W - M - 20.0);
    let py = |y: f64| H - M - y / y1.max(1e-9) * (H - 2.0 * M);
    let mut s = frame(title, &format!("{count_label} (log scale)"), "ns per packet");
    for i in 0..=4 {
        let y = y1 * f64::from(i) / 4.0;
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{y:.0}</text>", M - 5.0, py(y) + 4.0);
    }
    let mut ticks: Vec<usize> = series.iter().map(|p| count(p)).collect();
    ticks.dedup();
    for t in ticks {
        let x = px((t.max(1) as f64).log10());
        let _ = writeln!(s, "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{t}</text>", H - M + 15.0);
    }
    for (k, case) in cases.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let points: Vec<String> = series
            .iter()
            .filter(|p| p.case == *case)
            .map(|p| format!("{:.1},{:.1}", px((count(p).max(1) as f64).log10()), py(p.ns)))
            .collect();
        let _ = writeln!(s, "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>", points.join(" "));
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" fill=\"{color}\">{case}</text>", M + 10.0, M - 20.0 + 14.0 * k as f64);
    }
    let base = series.iter().map(|p| p.baseline_ns).sum::<f64>() / series.len().max(1) as f64;
    let _ = writeln!(s, "<line x1=\"{M}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"gray\" stroke-dasharray=\"4\"/>", py(base), W - 20.0);
    let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" fill=\"gray\" text-anchor=\"end\">empty program</text>", W - 20.0, py(base) - 4.0);
    s + "</svg>\n"
}

/// Throughput per variant, as bars.
pub fn throughput_bars(results: &[ThroughputResult]) -> String {
    let mut s = frame("Forwarding throughput on veth, 64-byte UDP", "", "million packets per second");
    let y1 = results.iter().map(|t| t.mpps).fold(0.0, f64::max) * 1.15;
    let slot = (W - M - 20.0) / results.len().max(1) as f64;
    for (i, t) in results.iter().enumerate() {
        let h = t.mpps / y1.max(1e-9) * (H - 2.0 * M);
        let x = M + slot * i as f64 + slot * 0.15;
        let color = if t.variant.starts_with("vpc") { COLORS[0] } else { "#999999" };
        let _ = writeln!(s, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{color}\"/>", H - M - h, slot * 0.7);
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.2}</text>", x + slot * 0.35, H - M - h - 4.0, t.mpps);
        let _ = writeln!(
            s,
            "<text x=\"{0:.1}\" y=\"{1:.1}\" font-size=\"10\" text-anchor=\"end\" transform=\"rotate(-30 {0:.1} {1:.1})\">{2}</text>",
            x + slot * 0.5,
            H - M + 12.0,
            t.variant
        );
    }
    s + "</svg>\n"
}

/// Every plot of `r`: (file name, SVG).
pub fn all(r: &Results) -> Vec<(&'static str, String)> {
    let routes: Vec<&PacketResult> = r.packet.iter().filter(|p| p.sg_rules == 0 && !p.flow_log && p.idle_entries == 0).collect();
    let rules: Vec<&PacketResult> = r.packet.iter().filter(|p| p.sg_rules > 0).collect();
    let mut out = Vec::new();
    if !routes.is_empty() {
        out.push(("cost-over-routes.svg", cost_curve("Per-packet cost over route count", "routes", &routes, |p| p.routes)));
    }
    if !rules.is_empty() {
        out.push(("cost-over-rules.svg", cost_curve("Per-packet cost over security-group rules", "rules", &rules, |p| p.sg_rules)));
    }
    if !r.throughput.is_empty() {
        out.push(("throughput.svg", throughput_bars(&r.throughput)));
    }
    out
}
