//! Gateways: ports from a VPC to networks outside it (VPN gateway, router interface to a VBR or a
//! local data centre). Validated in `validate::gateway`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::change::{Change, changed_fields};

/// What every gateway ID starts with.
pub const ID_PREFIX: &str = "gw";

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
    /// The host its interface is on, in a cluster (every agent's own when omitted: each host
    /// its own link); other hosts reach it through the overlay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
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
    /// The host it is on (none: every agent's own, each host its own link).
    pub host: Option<String>,
}

/// New gateways of VPC `vpc`, and kept ones with any field changed (`old`: the VPC's gateways
/// before, when it was there).
pub fn diff_added_or_changed(out: &mut Vec<Change>, vpc: &str, old: Option<&[Gateway]>, new: &[Gateway]) {
    for gw in new {
        match old.and_then(|o| o.iter().find(|g| g.name == gw.name)) {
            None => out.push(Change::Add { kind: "gateway", name: format!("{}/{}", vpc, gw.name) }),
            Some(before) => {
                let what = changed_fields(before, gw, &["id"]);
                if !what.is_empty() {
                    out.push(Change::Modify { kind: "gateway", name: format!("{}/{}", vpc, gw.name), what: what.join(", ") });
                }
            }
        }
    }
}

/// Gateways of VPC `vpc` that are gone (`new`: the VPC's gateways now, when it is still there).
pub fn diff_removed(out: &mut Vec<Change>, vpc: &str, old: &[Gateway], new: Option<&[Gateway]>) {
    for gw in old {
        if new.and_then(|n| n.iter().find(|g| g.name == gw.name)).is_none() {
            out.push(Change::Remove { kind: "gateway", name: format!("{}/{}", vpc, gw.name) });
        }
    }
}
