//! The validated topology: typed resources, every reference resolved, every rule of the guide
//! checked. `Topology::from_spec` (in `validate`) takes a normalized document (IDs filled in);
//! `from_yaml` normalizes a file on its own, for tools and tests that have no stored state.
//! Here: the topology and the queries across VPCs; each kind's type is in its file of `kinds`.

use std::collections::{BTreeSet, HashMap};

use ipnet::Ipv4Net;
use serde::Serialize;

// The types a topology is made of, and its limits, at the paths callers know them by.
use super::flowlog::FlowLog;
pub use super::{
    constants::{CLOUD_SERVICES, MAX_CONNTRACK_LIMIT, MAX_MTU, MIN_MTU, PRIVATE_RANGES},
    kinds::cen::Cen,
    quotas::Quotas,
    route::{HealthCheck, HealthMethod, Hop, HopGroup, HopTarget, NextHop, Origin, Route, RouteTable, RouteView},
    vpc::{Eni, Gateway, VSwitch, Vpc},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub vpcs: Vec<Vpc>,
    pub cens: Vec<Cen>,
    pub flow_logs: Vec<FlowLog>,
}

impl Topology {
    /// The entries of `table` of `vpc`: system, learned from CENs, custom (a custom entry with a
    /// learned entry's destination overrides it), numbered in that order.
    pub fn routes(&self, vpc: &Vpc, table: &RouteTable) -> Vec<RouteView> {
        let mut out: Vec<RouteView> = Vec::new();
        let mut push = |dst: Ipv4Net, next_hop: NextHop, origin: Origin, id: Option<String>| {
            out.push(RouteView { number: 0, dst, next_hop, origin, id });
        };
        for (dst, hop) in vpc.system_routes() {
            push(dst, hop, Origin::System, None);
        }
        let custom: BTreeSet<Ipv4Net> = table.routes.iter().map(|r| r.dst).collect();
        for (dst, peer) in self.learned_routes(vpc) {
            if !custom.contains(&dst) {
                push(dst, NextHop::Vpc { vpc: peer }, Origin::Cen, None);
            }
        }
        for r in &table.routes {
            push(r.dst, r.next_hop.clone(), Origin::Custom, Some(r.id.clone()));
        }
        for (i, r) in out.iter_mut().enumerate() {
            r.number = i as u32 + 1;
        }
        out
    }

    /// The VSwitch CIDRs `vpc` learns from the other members of its CEN, with their VPC.
    pub fn learned_routes(&self, vpc: &Vpc) -> Vec<(Ipv4Net, String)> {
        let Some(cen) = self.cens.iter().find(|c| c.vpcs.contains(&vpc.name)) else { return Vec::new() };
        cen.vpcs
            .iter()
            .filter(|m| **m != vpc.name)
            .filter_map(|m| self.vpc(m))
            .flat_map(|peer| peer.vswitches.iter().map(|s| (s.cidr, peer.name.clone())))
            .collect()
    }

    pub fn vpc(&self, name: &str) -> Option<&Vpc> {
        self.vpcs.iter().find(|v| v.name == name)
    }

    /// Every ENI with its VPC and VSwitch.
    pub fn enis(&self) -> impl Iterator<Item = (&Vpc, &VSwitch, &Eni)> {
        self.vpcs.iter().flat_map(|vpc| vpc.enis.iter().filter_map(move |eni| vpc.vswitch(&eni.vswitch).map(|vsw| (vpc, vsw, eni))))
    }

    pub fn eni(&self, name: &str) -> Option<(&Vpc, &VSwitch, &Eni)> {
        self.enis().find(|(_, _, e)| e.name == name)
    }

    /// Every ENI by name, for a caller that looks up many: `eni` scans every ENI each time.
    pub fn enis_by_name(&self) -> EnisByName<'_> {
        let mut by_name = HashMap::new();
        // The first ENI of a name wins, as `eni` finds it.
        for (vpc, vswitch, eni) in self.enis() {
            by_name.entry(eni.name.as_str()).or_insert((vpc, vswitch, eni));
        }
        EnisByName(by_name)
    }
}

/// A topology's ENIs by name, with their VPC and VSwitch (`Topology::enis_by_name`).
pub struct EnisByName<'a>(HashMap<&'a str, (&'a Vpc, &'a VSwitch, &'a Eni)>);

impl<'a> EnisByName<'a> {
    /// The same answer as `Topology::eni`.
    pub fn get(&self, name: &str) -> Option<(&'a Vpc, &'a VSwitch, &'a Eni)> {
        self.0.get(name).copied()
    }
}
