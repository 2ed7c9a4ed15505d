//! Route tables of the validated topology: custom entries, what their next hops lead to and every
//! entry of a table as the data path sees it. The types are in `kinds::route_table` and
//! `kinds::route_entry`; they stay at this path for callers.

pub use super::kinds::{
    route_entry::{HealthCheck, HealthMethod, Hop, HopGroup, HopTarget, NextHop, Origin, Route, RouteView},
    route_table::RouteTable,
};
