//! The configuration as a document: what a topology file says, and what the agent stores.
//!
//! Field types are loose on purpose (CIDRs and addresses are strings): `Topology::from_spec`
//! checks every rule and reports every problem with its field path, instead of stopping at the
//! first serde error. Resource IDs (`vpc-…`, `vsw-…`, `vtb-…`, `rte-…`, `eni-…`) are optional in a
//! file; the agent fills them in (`normalize`) and keeps them stable across applies.
//!
//! Here: the document as a whole. Each kind's shapes are in its file of `kinds`.

use serde::{Deserialize, Serialize};

// Each kind's shapes are in its file of `kinds`; they stay at this path for callers.
pub use super::kinds::{
    cen::CenSpec,
    eni::{EniSpec, ZonalEniSpec},
    flow_log::{FlowLogResourceSpec, FlowLogSinkSpec, FlowLogSpec},
    gateway::GatewaySpec,
    multicast::McastGroupSpec,
    route_entry::{HealthCheckSpec, HopSpec, NextHopSpec, RouteSpec},
    route_table::RouteTableSpec,
    security_group::{PeerSpec, SecurityGroupSpec, SgRuleSpec},
    vpc::VpcSpec,
    vswitch::VSwitchSpec,
};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    #[serde(default)]
    pub vpcs: Vec<VpcSpec>,
    /// ENIs given only a zone: they land in that zone's default VSwitch of the default VPC,
    /// both created on demand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enis: Vec<ZonalEniSpec>,
    /// CEN-like groups of VPCs that learn each other's VSwitch CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cens: Vec<CenSpec>,
    /// Flow logs: they belong to the region, each capturing one ENI, VSwitch or VPC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flow_logs: Vec<FlowLogSpec>,
}

impl TopologySpec {
    /// Parse YAML; a syntax or shape error carries its line and column.
    pub fn from_yaml(text: &str) -> Result<TopologySpec, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }

    /// A parse error as one syntax problem: its location once, as the field (`line 3 column
    /// 11`), and the parser's message without the location it appends.
    pub fn syntax_problem(e: &serde_yaml::Error) -> super::error::Problem {
        let mut message = e.to_string();
        let mut field = String::new();
        if let Some(at) = e.location() {
            field = format!("line {} column {}", at.line(), at.column());
            if let Some(stripped) = message.strip_suffix(&format!(" at {field}")) {
                message = stripped.to_string();
            }
        }
        super::error::Problem { code: super::error::code::YAML_SYNTAX.into(), field, message, parameter: None }
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }
}
