//! VPCs: the network and what it holds -- VSwitches, route tables, ENIs, gateways, security
//! groups, multicast groups, each in its own file here -- looked up by name. Validated in
//! `validate::vpc`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{
    eni::{Eni, EniSpec},
    gateway::{Gateway, GatewaySpec},
    multicast::{McastGroup, McastGroupSpec},
    route_entry::NextHop,
    route_table::{RouteTable, RouteTableSpec},
    security_group::{SecurityGroup, SecurityGroupSpec},
    vswitch::{VSwitch, VSwitchSpec},
};
use crate::model::{
    change::{Change, changed_fields},
    constants::CLOUD_SERVICES,
};

/// What every VPC ID starts with.
pub const ID_PREFIX: &str = "vpc";

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
    #[serde(default, skip_serializing_if = "super::is_false")]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vpc {
    pub id: String,
    pub name: String,
    pub cidr: Ipv4Net,
    pub description: Option<String>,
    pub is_default: bool,
    pub vswitches: Vec<VSwitch>,
    /// The system table first, then custom tables.
    pub route_tables: Vec<RouteTable>,
    pub enis: Vec<Eni>,
    pub gateways: Vec<Gateway>,
    pub security_groups: Vec<SecurityGroup>,
    pub multicast_groups: Vec<McastGroup>,
    /// Connections each ENI may track unless it says otherwise.
    pub conntrack_limit: u32,
}

impl Vpc {
    pub fn vswitch(&self, name: &str) -> Option<&VSwitch> {
        self.vswitches.iter().find(|v| v.name == name)
    }

    pub fn route_table(&self, name: &str) -> Option<&RouteTable> {
        self.route_tables.iter().find(|t| t.name == name)
    }

    pub fn eni(&self, name: &str) -> Option<&Eni> {
        self.enis.iter().find(|e| e.name == name)
    }

    pub fn gateway(&self, name: &str) -> Option<&Gateway> {
        self.gateways.iter().find(|g| g.name == name)
    }

    pub fn security_group(&self, name: &str) -> Option<&SecurityGroup> {
        self.security_groups.iter().find(|g| g.name == name)
    }

    /// The addresses of the ENIs in group `name`.
    pub fn members(&self, name: &str) -> Vec<Ipv4Addr> {
        self.enis.iter().filter(|e| e.security_groups.iter().any(|g| g == name)).map(|e| e.ip).collect()
    }

    pub fn system_table(&self) -> &RouteTable {
        self.route_tables.first().expect("normalized: the system table comes first")
    }

    /// The entries every route table of the VPC has: the cloud-services range and each VSwitch.
    pub fn system_routes(&self) -> Vec<(Ipv4Net, NextHop)> {
        let mut out = vec![(CLOUD_SERVICES.parse().expect("constant CIDR"), NextHop::Host)];
        out.extend(self.vswitches.iter().map(|v| (v.cidr, NextHop::Local)));
        out
    }
}

/// A new VPC, or a kept one whose CIDR changed.
pub fn diff_added_or_resized(out: &mut Vec<Change>, old: Option<&Vpc>, vpc: &Vpc) {
    match old {
        None => out.push(Change::Add { kind: "vpc", name: vpc.name.clone() }),
        Some(o) if o.cidr != vpc.cidr => {
            out.push(Change::Modify { kind: "vpc", name: vpc.name.clone(), what: format!("cidr {} -> {}", o.cidr, vpc.cidr) })
        }
        Some(_) => {}
    }
}

/// A kept VPC's own fields that changed, but its CIDR and what it holds (reported on their own).
pub fn diff_fields(out: &mut Vec<Change>, old: Option<&Vpc>, vpc: &Vpc) {
    if let Some(before) = old {
        let what = changed_fields(
            before,
            vpc,
            &["id", "cidr", "vswitches", "gateways", "route_tables", "security_groups", "enis", "multicast_groups"],
        );
        if !what.is_empty() {
            out.push(Change::Modify { kind: "vpc", name: vpc.name.clone(), what: what.join(", ") });
        }
    }
}

/// A VPC that is gone (after what it held).
pub fn removed(out: &mut Vec<Change>, vpc: &Vpc) {
    out.push(Change::Remove { kind: "vpc", name: vpc.name.clone() });
}
