//! Route lookup: one LPM trie holds every route table, keyed by (table, destination).

use aya_ebpf::maps::lpm_trie::Key;
use vpc_common::{route_kind, AddrKey, DropReason, Port, Route, RouteKey, ROUTE_TABLE_BITS};

use crate::maps::{ENI_ADDRS, ROUTES};

/// The longest-prefix route for `daddr` in route table `table`.
#[inline(always)]
pub fn lookup(table: u32, daddr: u32) -> Result<&'static Route, DropReason> {
    let key = Key::new(ROUTE_TABLE_BITS + 32, RouteKey { table, addr: daddr });
    ROUTES.get(&key).ok_or(DropReason::NoRoute)
}

/// The port to deliver `daddr` to, as `route` decides.
#[inline(always)]
pub fn next_hop(route: &Route, daddr: u32) -> Result<&'static Port, DropReason> {
    match route.kind {
        route_kind::LOCAL => {
            let key = AddrKey { vpc_id: route.arg, addr: daddr };
            // SAFETY: map values live as long as the map; the agent replaces entries whole.
            unsafe { ENI_ADDRS.get(&key) }.ok_or(DropReason::UnknownDestination)
        }
        _ => Err(DropReason::NoRoute),
    }
}
