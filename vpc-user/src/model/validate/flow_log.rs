//! Flow logs: names, a resource that exists (one ENI, a VSwitch of a VPC, or a VPC), the traffic,
//! the capture window and the sink; no more than the region's quota.

use std::{collections::BTreeSet, net::SocketAddrV4, path::PathBuf};

use crate::model::{
    error::{Problems, code},
    flowlog::{DEFAULT_WINDOW_S, FlowLog, Resource, Sink, Traffic, parse_window},
    names,
    spec::{FlowLogSpec, TopologySpec},
    topology::Vpc,
};

/// Validate the document's flow logs against its VPCs.
pub(super) fn validate_all(spec: &TopologySpec, vpcs: &[Vpc], quota: u32, problems: &mut Problems) -> Vec<FlowLog> {
    if spec.flow_logs.len() > quota as usize {
        problems.add(code::QUOTA_FLOW_LOG, "flow_logs", format!("{} flow logs exceed the quota of {quota}", spec.flow_logs.len()));
    }
    let mut seen = BTreeSet::new();
    spec.flow_logs.iter().enumerate().filter_map(|(i, f)| validate(&format!("flow_logs[{i}]"), f, vpcs, &mut seen, problems)).collect()
}

fn validate(at: &str, f: &FlowLogSpec, vpcs: &[Vpc], seen: &mut BTreeSet<String>, problems: &mut Problems) -> Option<FlowLog> {
    if let Err(message) = names::check_name(&f.name) {
        problems.add(code::NAME_MALFORMED, format!("{at}.name"), message);
    }
    if !seen.insert(f.name.clone()) {
        problems.add(code::NAME_DUPLICATE, format!("{at}.name"), format!("flow log name '{}' is used twice", f.name));
    }
    if let Some(text) = &f.description
        && let Err(message) = names::check_description(text)
    {
        problems.add(code::DESCRIPTION_MALFORMED, format!("{at}.description"), message);
    }
    let r = &f.resource;
    let vpc = r.vpc.as_deref().map(|name| (name, vpcs.iter().find(|v| v.name == name)));
    let resource = match (&r.eni, vpc, &r.vswitch) {
        (Some(eni), None, None) => {
            if vpcs.iter().any(|v| v.eni(eni).is_some()) {
                Some(Resource::Eni { eni: eni.clone() })
            } else {
                problems.add(code::FLOW_LOG_RESOURCE_NOT_FOUND, format!("{at}.resource.eni"), format!("no ENI '{eni}'"));
                None
            }
        }
        (None, Some((name, None)), _) => {
            problems.add(code::FLOW_LOG_RESOURCE_NOT_FOUND, format!("{at}.resource.vpc"), format!("no VPC '{name}'"));
            None
        }
        (None, Some((name, Some(v))), Some(vswitch)) => {
            if v.vswitch(vswitch).is_some() {
                Some(Resource::Vswitch { vpc: name.to_string(), vswitch: vswitch.clone() })
            } else {
                problems.add(
                    code::FLOW_LOG_RESOURCE_NOT_FOUND,
                    format!("{at}.resource.vswitch"),
                    format!("VPC '{name}' has no VSwitch '{vswitch}'"),
                );
                None
            }
        }
        (None, Some((name, Some(_))), None) => Some(Resource::Vpc { vpc: name.to_string() }),
        _ => {
            problems.add(
                code::FLOW_LOG_RESOURCE,
                format!("{at}.resource"),
                "the resource is one of {eni: NAME}, {vpc: NAME, vswitch: NAME} or {vpc: NAME}",
            );
            None
        }
    };
    let traffic = match f.traffic.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("all") => Some(Traffic::All),
        Some("allow") => Some(Traffic::Allow),
        Some("drop") => Some(Traffic::Drop),
        Some(other) => {
            problems.add(code::FLOW_LOG_TRAFFIC, format!("{at}.traffic"), format!("traffic is all, allow or drop, not '{other}'"));
            None
        }
    };
    let window_s = match f.window.as_deref().map(parse_window).unwrap_or(Ok(DEFAULT_WINDOW_S)) {
        Ok(s) => Some(s),
        Err(message) => {
            problems.add(code::FLOW_LOG_WINDOW, format!("{at}.window"), message);
            None
        }
    };
    let sink = match (&f.sink.file, &f.sink.ipfix) {
        (None, None) => Some(Sink::File(None)),
        (Some(path), None) if path.starts_with('/') => Some(Sink::File(Some(PathBuf::from(path)))),
        (Some(path), None) => {
            problems.add(code::FLOW_LOG_SINK, format!("{at}.sink.file"), format!("'{path}' is not an absolute path"));
            None
        }
        (None, Some(addr)) => match addr.parse::<SocketAddrV4>() {
            Ok(a) if a.port() != 0 => Some(Sink::Ipfix(a)),
            _ => {
                problems.add(
                    code::FLOW_LOG_SINK,
                    format!("{at}.sink.ipfix"),
                    format!("'{addr}' is not a collector address like 127.0.0.1:4739"),
                );
                None
            }
        },
        (Some(_), Some(_)) => {
            problems.add(code::FLOW_LOG_SINK, format!("{at}.sink"), "a sink is {file: PATH} or {ipfix: ADDRESS:PORT}, not both");
            None
        }
    };
    Some(FlowLog {
        id: f.id.clone().unwrap_or_default(),
        name: f.name.clone(),
        description: f.description.clone(),
        resource: resource?,
        traffic: traffic?,
        window_s: window_s?,
        sink: sink?,
        active: f.active.unwrap_or(true),
    })
}
