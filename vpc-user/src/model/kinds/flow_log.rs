//! Flow logs (the guide's chapter 4): what to capture -- one ENI, every ENI of a VSwitch or of a
//! VPC, including ENIs added later --, which traffic (all, what the security groups allowed, or
//! what they dropped), the capture window, and where records go. Validated in
//! `validate::flow_log`.

use std::{net::SocketAddrV4, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::change::{Change, by_name};

/// What every flow log ID starts with.
pub const ID_PREFIX: &str = "fl";

/// A flow log (the guide's chapter 4).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FlowLogSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `{eni: NAME}`, `{vpc: NAME, vswitch: NAME}` or `{vpc: NAME}`.
    pub resource: FlowLogResourceSpec,
    /// `all` (default), `allow` or `drop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<String>,
    /// Capture window: `10m` (the default), down to `1s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// `{file: PATH}` (JSON lines; a file under the state directory when omitted) or
    /// `{ipfix: ADDRESS:PORT}`.
    #[serde(default)]
    pub sink: FlowLogSinkSpec,
    /// `false`: configured but capturing nothing (DeactiveFlowLog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FlowLogResourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vswitch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eni: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FlowLogSinkSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipfix: Option<String>,
}

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

/// Added, changed and removed flow logs, by name.
pub fn diff(out: &mut Vec<Change>, old: &[FlowLog], new: &[FlowLog]) {
    fn named(logs: &[FlowLog]) -> Vec<(String, &FlowLog)> {
        logs.iter().map(|f| (f.name.clone(), f)).collect()
    }
    by_name(out, "flow log", &named(old), &named(new));
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
