//! Route lookup: one LPM trie holds every route table, keyed by (table, destination).

use aya_ebpf::maps::lpm_trie::Key;
use vpc_common::{route_kind, AddrKey, DropReason, Port, Route, RouteKey, ROUTE_TABLE_BITS};

use crate::maps::{ENI_ADDRS, ROUTES};

/// What the route says to do with the frame.
pub enum Decision {
    /// Deliver to this port.
    Deliver(&'static Port),
    /// Hand to the host's network stack.
    ToHost,
}

/// The longest-prefix route for `daddr` in route table `table`.
#[inline(always)]
pub fn lookup(table: u32, daddr: u32) -> Result<&'static Route, DropReason> {
    let key = Key::new(ROUTE_TABLE_BITS + 32, RouteKey { table, addr: daddr });
    ROUTES.get(&key).ok_or(DropReason::NoRoute)
}

/// Where `route` sends `daddr`.
#[inline(always)]
pub fn decide(route: &'static Route, daddr: u32) -> Result<Decision, DropReason> {
    match route.kind {
        route_kind::LOCAL => {
            let key = AddrKey { vpc_id: route.arg, addr: daddr };
            // SAFETY: map values live as long as the map; the agent replaces entries whole.
            let port = unsafe { ENI_ADDRS.get(&key) }.ok_or(DropReason::UnknownDestination)?;
            Ok(Decision::Deliver(port))
        }
        route_kind::ENI => Ok(Decision::Deliver(&route.hop)),
        route_kind::HOST => Ok(Decision::ToHost),
        route_kind::BLACKHOLE => Err(DropReason::Blackhole),
        _ => Err(DropReason::NoRoute),
    }
}
