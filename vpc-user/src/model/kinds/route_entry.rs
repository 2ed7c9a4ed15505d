//! Route entries: a destination and where a custom entry sends its traffic (an ENI, a gateway, a
//! peer VPC, an ECMP or active/standby group, a blackhole), and every entry of a table as the data
//! path sees it. Validated in `validate::route_table` and `validate::next_hop`.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// What every route entry ID starts with.
pub const ID_PREFIX: &str = "rte";

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub id: String,
    pub dst: Ipv4Net,
    pub next_hop: NextHop,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// What a route entry does with matching traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NextHop {
    /// System entry for a VSwitch CIDR: deliver to the ENI owning the destination address.
    Local,
    /// System entry for 100.64.0.0/10: hand to the host's own network stack.
    Host,
    /// Deliver to this ENI (by name) whatever the destination.
    Eni { eni: String },
    /// Deliver to this gateway (by name).
    Gateway { gateway: String },
    /// Continue in this VPC's (by name) system table.
    Vpc { vpc: String },
    /// ECMP or active/standby over hops of the VPC.
    Group(HopGroup),
    /// Drop and count.
    Blackhole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopGroup {
    /// Two hops with weights 100 and 0, health-checked; otherwise ECMP.
    pub active_standby: bool,
    pub hops: Vec<Hop>,
    pub health_check: HealthCheck,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    pub target: HopTarget,
    pub weight: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HopTarget {
    Eni(String),
    Gateway(String),
}

impl HopTarget {
    pub fn name(&self) -> &str {
        match self {
            HopTarget::Eni(n) | HopTarget::Gateway(n) => n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthMethod {
    /// Ask the hop for its address (ARP) and expect an answer.
    Arp,
    /// The carrier of the hop's interface.
    Link,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub method: HealthMethod,
    pub interval_ms: u32,
    /// Consecutive failures that make the hop down, and successes that bring it back.
    pub threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck { method: HealthMethod::Arp, interval_ms: 200, threshold: 3 }
    }
}

/// Where an entry of a route table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Origin {
    /// Maintained automatically: 100.64.0.0/10 and the VSwitch CIDRs.
    System,
    /// Learned from a CEN: another member's VSwitch CIDR.
    Cen,
    /// Added by the user.
    Custom,
}

/// One entry of a route table as the data path sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteView {
    /// The entry's number in its table (1, 2, ...), shared by compile and the model.
    pub number: u32,
    pub dst: Ipv4Net,
    pub next_hop: NextHop,
    pub origin: Origin,
    /// The custom entry's ID.
    pub id: Option<String>,
}
