//! The configuration as a document: what a topology file says, and what the agent stores.
//!
//! Field types are loose on purpose (CIDRs and addresses are strings): `Topology::from_spec`
//! checks every rule and reports every problem with its field path, instead of stopping at the
//! first serde error. Resource IDs (`vpc-…`, `vsw-…`, `vtb-…`, `rte-…`, `eni-…`) are optional in a
//! file; the agent fills them in (`normalize`) and keeps them stable across applies.

use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}

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

/// A named group of VPCs: each member learns every other member's VSwitch CIDRs as `vpc` routes.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CenSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Member VPCs, by name.
    #[serde(default)]
    pub vpcs: Vec<String>,
}

/// A port to a network outside the VPC (the guide's VPN gateway, or a router interface to a
/// VBR / local data centre): a host interface whose far side is that network's router.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Unique among ENIs and gateways; names the lab namespace standing for the remote network.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The networks behind it (the lab gives its namespace an address in each).
    #[serde(default)]
    pub networks: Vec<String>,
    /// The far-side router's address, for ARP health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The far-side router's MAC; generated when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The host interface; the lab's name when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The largest IP packet the link takes (576-3500; 1500 when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Connection-table entries the gateway may hold (none when omitted: its entries are the
    /// other sides of connections the ENIs' limits already bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack_limit: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VpcSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The region's default VPC (172.31.0.0/16, at most one, outside the VPC quota).
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
    #[serde(default)]
    pub vswitches: Vec<VSwitchSpec>,
    /// Route tables; `system` is the VPC's system table (always present, custom entries allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_tables: Vec<RouteTableSpec>,
    /// Ports to networks outside the VPC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewaySpec>,
    /// Stateful firewalls for the VPC's ENIs; `default` is the VPC's default group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<SecurityGroupSpec>,
    #[serde(default)]
    pub enis: Vec<EniSpec>,
    /// Multicast groups: a group address, the ENIs that send to it, the ENIs that receive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multicast_groups: Vec<McastGroupSpec>,
    /// Connections each ENI of the VPC may track unless it says otherwise (32,768 when
    /// omitted): a new connection beyond it is refused (`conntrack_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack_limit: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct McastGroupSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The group address, in 224.0.0.0/4.
    pub group: String,
    /// ENIs (names) that may send to the group.
    #[serde(default)]
    pub senders: Vec<String>,
    /// ENIs (names) that receive what is sent to it (at most 128).
    #[serde(default)]
    pub members: Vec<String>,
}

/// A security group: rules deciding what may enter and leave its member ENIs.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What members may send each other when no rule says otherwise: `accept` (default) or `drop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intra_group: Option<String>,
    #[serde(default)]
    pub rules: Vec<SgRuleSpec>,
}

/// One rule of a security group.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SgRuleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `accept` (default) or `drop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// `tcp`, `udp`, `icmp`, `gre` or `all`.
    pub protocol: String,
    /// Destination port range `start/end` for tcp and udp; `-1/-1` (the default) for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<String>,
    /// The other end: a CIDR block, or `{group: NAME}` for the members of a group of the VPC.
    pub peer: PeerSpec,
    /// 1 (first, the default) to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The other end of a rule.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(untagged)]
pub enum PeerSpec {
    Cidr(String),
    Group { group: String },
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VSwitchSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub cidr: String,
    pub zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The zone's default VSwitch (a /20 of the default VPC, at most one per zone).
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
    /// The associated route table; the system table when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_table: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteTableSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Custom route entries (system entries are maintained automatically).
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub dst: String,
    pub next_hop: NextHopSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Where a custom route sends traffic.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NextHopSpec {
    /// An ENI of the VPC (the guide's ECS instance or secondary ENI), whatever the destination.
    Eni { eni: String },
    /// A gateway of the VPC (VPN gateway, router interface to a VBR).
    Gateway { gateway: String },
    /// Another VPC (router interface to a VPC): routing continues in its system table.
    Vpc { vpc: String },
    /// Load balancing over 2-4 hops by flow, weights 1-255 (default 100).
    Ecmp { hops: Vec<HopSpec> },
    /// Two hops, weights 100 and 0: the standby takes over while the active one fails its checks.
    ActiveStandby {
        hops: Vec<HopSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        health_check: Option<HealthCheckSpec>,
    },
    /// Drop and count.
    Blackhole,
}

/// One hop of an ECMP or active/standby route: an ENI or a gateway of the VPC.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HopSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

/// How the agent checks the active hop.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    /// `arp` (default: ask the hop for its address and expect an answer) or `link` (the
    /// interface's carrier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Time between probes, e.g. `200ms` (default), `1s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Consecutive failures that make a hop down, and successes that bring it back (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EniSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Unique across the file; also names the ENI's lab namespace.
    pub name: String,
    pub vswitch: String,
    /// The next free address of the VSwitch when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Guest MAC; generated when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Host-side interface (veth or tap) the guest is plugged into; the lab's name when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// `false` lets the ENI send and receive addresses that are not its own (NAT, firewall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_dest_check: Option<bool>,
    /// Names of 1-5 security groups of the VPC; the VPC's default group when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// The largest IP packet delivered to the ENI (576-3500; 1500 when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Connection-table entries the ENI may hold (its VPC's `conntrack_limit` when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack_limit: Option<u32>,
}

/// An ENI placed by zone (top-level `enis:`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ZonalEniSpec {
    pub name: String,
    pub zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
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
