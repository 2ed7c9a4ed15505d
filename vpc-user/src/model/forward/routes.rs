//! Route lookup as the model does it, and route entries in words.

use std::net::Ipv4Addr;

use crate::model::topology::{NextHop, RouteView};

/// The longest prefix among `routes` containing `dst`.
pub fn lpm(routes: &[RouteView], dst: Ipv4Addr) -> Option<RouteView> {
    routes.iter().filter(|r| r.dst.contains(&dst)).max_by_key(|r| r.dst.prefix_len()).cloned()
}

pub(super) fn hop_text(hop: &NextHop) -> String {
    match hop {
        NextHop::Local => "local (the ENI with that address)".into(),
        NextHop::Host => "host network stack".into(),
        NextHop::Eni { eni } => format!("ENI {eni}"),
        NextHop::Gateway { gateway } => format!("gateway {gateway}"),
        NextHop::Vpc { vpc } => format!("VPC {vpc}"),
        NextHop::Group(g) => {
            let hops: Vec<String> = g.hops.iter().map(|h| format!("{}({})", h.target.name(), h.weight)).collect();
            format!("{} {}", if g.active_standby { "active/standby" } else { "ECMP" }, hops.join(", "))
        }
        NextHop::Blackhole => "blackhole".into(),
    }
}
