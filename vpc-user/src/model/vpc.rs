//! A validated VPC and what it holds: VSwitches, ENIs and gateways (route tables are in `route`,
//! security groups in `security`, multicast groups in `multicast`), looked up by name.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use super::{
    constants::CLOUD_SERVICES,
    multicast::McastGroup,
    route::{NextHop, RouteTable},
    security::SecurityGroup,
};

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

/// A port to a network outside the VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gateway {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub networks: Vec<Ipv4Net>,
    /// The far-side router's address (ARP health checks).
    pub ip: Option<Ipv4Addr>,
    /// The far-side router's MAC: the only source MAC accepted from the gateway.
    pub mac: [u8; 6],
    /// The VPC side's MAC on the gateway link (answers ARP, sources delivered frames).
    pub local_mac: [u8; 6],
    pub interface: Option<String>,
    /// The largest IP packet the link takes.
    pub mtu: u16,
    /// Connection-table entries it may hold; 0: no limit of its own.
    pub conntrack_limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VSwitch {
    pub id: String,
    pub name: String,
    pub cidr: Ipv4Net,
    pub zone: String,
    pub description: Option<String>,
    pub is_default: bool,
    /// Name of the associated route table (`system` unless a custom one is bound).
    pub route_table: String,
    /// Third-from-last address of the CIDR.
    pub gateway: Ipv4Addr,
    /// Stable per VSwitch, derived from its ID.
    pub gateway_mac: [u8; 6],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eni {
    pub id: String,
    pub name: String,
    pub vswitch: String,
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// Host-side interface, when the file names one (otherwise the lab's naming applies).
    pub interface: Option<String>,
    /// Anti-spoof on (the default); off for NAT and firewall instances.
    pub source_dest_check: bool,
    /// Names of its security groups (1-5), in the order given.
    pub security_groups: Vec<String>,
    /// The largest IP packet delivered to it.
    pub mtu: u16,
    /// Connection-table entries it may hold (its own or its VPC's limit).
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
