//! Route tables of the validated topology: custom entries, what their next hops lead to (an ENI,
//! a gateway, a peer VPC, an ECMP or active/standby group, a blackhole) and every entry of a
//! table as the data path sees it.

use ipnet::Ipv4Net;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteTable {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_system: bool,
    /// Custom entries; system entries are `Vpc::system_routes`.
    pub routes: Vec<Route>,
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
