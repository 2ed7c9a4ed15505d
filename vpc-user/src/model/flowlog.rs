//! Flow logs (the guide's chapter 4): what to capture -- one ENI, every ENI of a VSwitch or of a
//! VPC, including ENIs added later --, which traffic (all, what the security groups allowed, or
//! what they dropped), the capture window, and where records go.

use std::{net::SocketAddrV4, path::PathBuf};

use serde::Serialize;

use super::{
    error::{code, Problems},
    names,
    spec::{FlowLogSpec, TopologySpec},
    Vpc,
};

/// The guide's default capture window.
pub const DEFAULT_WINDOW_S: u32 = 600;
/// The shortest window (the data path's tick).
pub const MIN_WINDOW_S: u32 = 1;
/// The longest window: a day.
pub const MAX_WINDOW_S: u32 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Eni { eni: String },
    Vswitch { vpc: String, vswitch: String },
    Vpc { vpc: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Traffic {
    All,
    /// What the security groups accepted.
    Allow,
    /// What they dropped.
    Drop,
}

impl Traffic {
    pub fn keeps(self, accepted: bool) -> bool {
        match self {
            Traffic::All => true,
            Traffic::Allow => accepted,
            Traffic::Drop => !accepted,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Traffic::All => "all",
            Traffic::Allow => "allow",
            Traffic::Drop => "drop",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sink {
    /// JSON lines at this path; `None`: a file per flow log under the agent's state directory.
    File(Option<PathBuf>),
    /// IPFIX over UDP to a collector.
    Ipfix(SocketAddrV4),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowLog {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub resource: Resource,
    pub traffic: Traffic,
    /// Capture window, seconds.
    pub window_s: u32,
    pub sink: Sink,
    /// Deactivated flow logs keep their configuration and capture nothing.
    pub active: bool,
}

impl FlowLog {
    /// Whether ENI `eni` of VSwitch `vswitch` of VPC `vpc` is captured (when active).
    pub fn covers(&self, vpc: &str, vswitch: &str, eni: &str) -> bool {
        match &self.resource {
            Resource::Eni { eni: e } => e == eni,
            Resource::Vswitch { vpc: v, vswitch: s } => v == vpc && s == vswitch,
            Resource::Vpc { vpc: v } => v == vpc,
        }
    }

    pub fn resource_type(&self) -> &'static str {
        match self.resource {
            Resource::Eni { .. } => "NetworkInterface",
            Resource::Vswitch { .. } => "VSwitch",
            Resource::Vpc { .. } => "VPC",
        }
    }
}

/// Parse a duration: `600`, `600s`, `10m`, `1h`.
pub fn parse_window(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => t.split_at(at),
        None => (t, "s"),
    };
    let n: u32 = number.parse().map_err(|_| format!("'{text}' is not a duration like 30s, 10m or 1h"))?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
    .ok_or_else(|| format!("'{text}' is not a duration like 30s, 10m or 1h"))?;
    if !(MIN_WINDOW_S..=MAX_WINDOW_S).contains(&seconds) {
        return Err(format!("the capture window is {MIN_WINDOW_S} s to {MAX_WINDOW_S} s, not {seconds} s"));
    }
    Ok(seconds)
}

/// Validate the document's flow logs against its VPCs.
pub fn flow_logs(spec: &TopologySpec, vpcs: &[Vpc], quota: u32, problems: &mut Problems) -> Vec<FlowLog> {
    if spec.flow_logs.len() > quota as usize {
        problems.add(code::QUOTA_FLOW_LOG, "flow_logs", format!("{} flow logs exceed the quota of {quota}", spec.flow_logs.len()));
    }
    let mut seen = std::collections::BTreeSet::new();
    spec.flow_logs.iter().enumerate().filter_map(|(i, f)| flow_log(&format!("flow_logs[{i}]"), f, vpcs, &mut seen, problems)).collect()
}

fn flow_log(at: &str, f: &FlowLogSpec, vpcs: &[Vpc], seen: &mut std::collections::BTreeSet<String>, problems: &mut Problems) -> Option<FlowLog> {
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
                problems.add(code::FLOW_LOG_RESOURCE_NOT_FOUND, format!("{at}.resource.vswitch"), format!("VPC '{name}' has no VSwitch '{vswitch}'"));
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
                problems.add(code::FLOW_LOG_SINK, format!("{at}.sink.ipfix"), format!("'{addr}' is not a collector address like 127.0.0.1:4739"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_with_units_and_limits() {
        assert_eq!(parse_window("10m"), Ok(600));
        assert_eq!(parse_window("1s"), Ok(1));
        assert_eq!(parse_window("45"), Ok(45));
        assert_eq!(parse_window("2h"), Ok(7200));
        assert!(parse_window("0s").is_err());
        assert!(parse_window("2d").unwrap_err().contains("duration"));
        assert!(parse_window("25h").unwrap_err().contains("86400"));
    }
}
