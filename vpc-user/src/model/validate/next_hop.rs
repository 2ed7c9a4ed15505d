//! Next hops of route entries: what they name exists in the VPC (or is another VPC), groups
//! have the right number of hops and weights, health checks are well-formed.

use std::collections::HashSet;

use crate::model::{
    error::{Problems, code},
    spec::{HealthCheckSpec, HopSpec, NextHopSpec},
    topology::{Eni, Gateway, HealthCheck, HealthMethod, Hop, HopGroup, HopTarget, NextHop},
};

/// What next hops of a VPC's routes may refer to. The ENI and gateway names are a set, built
/// once per VPC: every entry of a table (up to 100,000) looks its next hop up.
pub(super) struct HopScope<'a> {
    vpc: &'a str,
    all_vpcs: &'a [&'a str],
    eni_names: HashSet<&'a str>,
    gateway_names: HashSet<&'a str>,
}

impl<'a> HopScope<'a> {
    pub(super) fn new(vpc: &'a str, all_vpcs: &'a [&'a str], enis: &'a [Eni], gateways: &'a [Gateway]) -> HopScope<'a> {
        HopScope {
            vpc,
            all_vpcs,
            eni_names: enis.iter().map(|e| e.name.as_str()).collect(),
            gateway_names: gateways.iter().map(|g| g.name.as_str()).collect(),
        }
    }
}

/// Validate next hop `spec` at field path `at`.
pub(super) fn validate(at: &str, spec: &NextHopSpec, scope: &HopScope<'_>, problems: &mut Problems) -> Option<NextHop> {
    let eni = |name: &str, field: String, problems: &mut Problems| {
        let found = scope.eni_names.contains(name);
        if !found {
            problems.add(code::NEXT_HOP_NOT_FOUND, field, format!("no ENI '{name}' in VPC '{}'", scope.vpc));
        }
        found
    };
    let gateway = |name: &str, field: String, problems: &mut Problems| {
        let found = scope.gateway_names.contains(name);
        if !found {
            problems.add(code::NEXT_HOP_NOT_FOUND, field, format!("no gateway '{name}' in VPC '{}'", scope.vpc));
        }
        found
    };
    match spec {
        NextHopSpec::Eni { eni: name } => eni(name, format!("{at}.eni"), problems).then(|| NextHop::Eni { eni: name.clone() }),
        NextHopSpec::Gateway { gateway: name } => {
            gateway(name, format!("{at}.gateway"), problems).then(|| NextHop::Gateway { gateway: name.clone() })
        }
        NextHopSpec::Vpc { vpc } => {
            if vpc == scope.vpc {
                problems.add(code::NEXT_HOP_SELF, format!("{at}.vpc"), format!("a route of VPC '{vpc}' cannot lead to '{vpc}' itself"));
                None
            } else if !scope.all_vpcs.contains(&vpc.as_str()) {
                problems.add(code::NEXT_HOP_NOT_FOUND, format!("{at}.vpc"), format!("no VPC '{vpc}'"));
                None
            } else {
                Some(NextHop::Vpc { vpc: vpc.clone() })
            }
        }
        NextHopSpec::Blackhole => Some(NextHop::Blackhole),
        NextHopSpec::Ecmp { hops } => {
            if !(2..=4).contains(&hops.len()) {
                problems.add(code::NEXT_HOP_COUNT, format!("{at}.hops"), format!("ECMP takes 2 to 4 hops, not {}", hops.len()));
                return None;
            }
            let hops = group_hops(at, hops, &eni, &gateway, 100, problems)?;
            if let Some(h) = hops.iter().find(|h| h.weight == 0) {
                problems.add(
                    code::NEXT_HOP_WEIGHT,
                    format!("{at}.hops"),
                    format!("hop '{}' has weight 0; ECMP weights are 1 to 255", h.target.name()),
                );
                return None;
            }
            Some(NextHop::Group(HopGroup { active_standby: false, hops, health_check: HealthCheck::default() }))
        }
        NextHopSpec::ActiveStandby { hops, health_check } => {
            if hops.len() != 2 {
                problems.add(
                    code::NEXT_HOP_COUNT,
                    format!("{at}.hops"),
                    format!("active/standby takes exactly 2 hops, not {}", hops.len()),
                );
                return None;
            }
            let mut resolved = group_hops(at, hops, &eni, &gateway, 100, problems)?;
            if hops[1].weight.is_none() {
                resolved[1].weight = 0;
            }
            if (resolved[0].weight, resolved[1].weight) != (100, 0) {
                problems.add(
                    code::NEXT_HOP_WEIGHT,
                    format!("{at}.hops"),
                    format!(
                        "active/standby weights are 100 (active) and 0 (standby), not {} and {}",
                        resolved[0].weight, resolved[1].weight
                    ),
                );
                return None;
            }
            let health_check = validate_health_check(&format!("{at}.health_check"), health_check.as_ref(), problems)?;
            Some(NextHop::Group(HopGroup { active_standby: true, hops: resolved, health_check }))
        }
    }
}

fn group_hops(
    at: &str,
    hops: &[HopSpec],
    eni: &dyn Fn(&str, String, &mut Problems) -> bool,
    gateway: &dyn Fn(&str, String, &mut Problems) -> bool,
    default_weight: u32,
    problems: &mut Problems,
) -> Option<Vec<Hop>> {
    let mut out = Vec::new();
    for (i, hop) in hops.iter().enumerate() {
        let field = format!("{at}.hops[{i}]");
        let target = match (&hop.eni, &hop.gateway) {
            (Some(name), None) => eni(name, format!("{field}.eni"), problems).then(|| HopTarget::Eni(name.clone()))?,
            (None, Some(name)) => gateway(name, format!("{field}.gateway"), problems).then(|| HopTarget::Gateway(name.clone()))?,
            _ => {
                problems.add(code::NEXT_HOP_MALFORMED, field, "a hop names exactly one of `eni` or `gateway`");
                return None;
            }
        };
        let weight = hop.weight.unwrap_or(default_weight);
        if weight > 255 {
            problems.add(code::NEXT_HOP_WEIGHT, format!("{field}.weight"), format!("weight {weight} is above 255"));
            return None;
        }
        if out.iter().any(|h: &Hop| h.target == target) {
            problems.add(code::NEXT_HOP_MALFORMED, field, format!("'{}' is listed twice", target.name()));
            return None;
        }
        out.push(Hop { target, weight: weight as u8 });
    }
    Some(out)
}

/// `200ms`, `1s`, `1.5s` -> milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<u32> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.trim().parse().ok();
    }
    if let Some(m) = text.strip_suffix('m') {
        return m.trim().parse::<u32>().ok()?.checked_mul(60_000);
    }
    let secs: f64 = text.strip_suffix('s')?.trim().parse().ok()?;
    (secs >= 0.0 && secs < 4_000_000.0).then(|| (secs * 1000.0).round() as u32)
}

fn validate_health_check(at: &str, spec: Option<&HealthCheckSpec>, problems: &mut Problems) -> Option<HealthCheck> {
    let mut check = HealthCheck::default();
    let Some(spec) = spec else { return Some(check) };
    match spec.method.as_deref() {
        None | Some("arp") => {}
        Some("link") => check.method = HealthMethod::Link,
        Some(other) => {
            problems.add(code::HEALTH_CHECK_MALFORMED, format!("{at}.method"), format!("method '{other}' is not arp or link"));
            return None;
        }
    }
    if let Some(text) = &spec.interval {
        match parse_duration_ms(text) {
            Some(ms) if (50..=60_000).contains(&ms) => check.interval_ms = ms,
            _ => {
                problems.add(
                    code::HEALTH_CHECK_MALFORMED,
                    format!("{at}.interval"),
                    format!("interval '{text}' is not a duration from 50ms to 60s"),
                );
                return None;
            }
        }
    }
    if let Some(n) = spec.threshold {
        if !(1..=10).contains(&n) {
            problems.add(code::HEALTH_CHECK_MALFORMED, format!("{at}.threshold"), format!("threshold {n} is outside 1 to 10"));
            return None;
        }
        check.threshold = n;
    }
    Some(check)
}
