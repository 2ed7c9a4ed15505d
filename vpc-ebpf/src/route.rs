//! Route lookup: one LPM trie holds every route table, keyed by (table, destination). A `vpc`
//! route continues in the peer VPC's system table, once; a group route picks a hop by the
//! flow's hash.

use aya_ebpf::maps::lpm_trie::Key;
use vpc_common::{AddrKey, DropReason, NO_HOP, Port, ROUTE_TABLE_BITS, Route, RouteKey, flow::slot_of, route_kind};

use crate::maps::{ENI_ADDRS, GROUPS, ROUTES};

/// What the route says to do with the frame.
#[derive(Clone, Copy)]
pub enum Decision {
    /// Deliver to this port.
    Deliver(Port),
    /// Hand to the host's network stack.
    ToHost,
    /// The datagram's TTL runs out here: the gateway answers it, whatever the route would
    /// have done with it next (whether its destination exists, what its groups say).
    Expired,
}

/// The longest-prefix route for `daddr` in route table `table`.
#[inline(always)]
fn lookup(table: u32, daddr: u32) -> Result<&'static Route, DropReason> {
    let key = Key::new(ROUTE_TABLE_BITS + 32, RouteKey { table, addr: daddr });
    ROUTES.get(&key).ok_or(DropReason::NoRoute)
}

/// Where `daddr` goes from route table `table` for a datagram with `ttl`; `in_vpc`: its source
/// is inside the sender's VPC, the only datagrams that cross to a peer VPC (no transit: a peer
/// is not a way to the networks behind the sender). `hash` is computed only for group routes.
#[inline(always)]
pub fn resolve(table: u32, daddr: u32, ttl: u8, in_vpc: bool, hash: impl FnOnce() -> u32) -> Result<Decision, DropReason> {
    let mut route = lookup(table, daddr)?;
    if route.kind == route_kind::VPC {
        if !in_vpc {
            return Err(DropReason::VpcForeignSource);
        }
        route = lookup(route.arg, daddr)?;
        if route.kind == route_kind::VPC {
            return Err(DropReason::VpcHopLimit);
        }
    }
    if route.kind == route_kind::HOST {
        return Ok(Decision::ToHost);
    }
    if ttl <= 1 {
        return Ok(Decision::Expired);
    }
    match route.kind {
        route_kind::LOCAL => {
            let key = AddrKey { vpc_id: route.arg, addr: daddr };
            // SAFETY: map values live as long as the map; the agent replaces entries whole.
            let port = unsafe { ENI_ADDRS.get(&key) }.ok_or(DropReason::UnknownDestination)?;
            Ok(Decision::Deliver(*port))
        }
        route_kind::PORT => Ok(Decision::Deliver(route.hop)),
        route_kind::HOST => Ok(Decision::ToHost),
        route_kind::BLACKHOLE => Err(DropReason::Blackhole),
        route_kind::GROUP => {
            let group = GROUPS.get(route.arg).ok_or(DropReason::NoLiveHop)?;
            let hop = group.slots[slot_of(hash())];
            if hop == NO_HOP {
                return Err(DropReason::NoLiveHop);
            }
            Ok(Decision::Deliver(group.hops[usize::from(hop & 3)]))
        }
        _ => Err(DropReason::NoRoute),
    }
}
