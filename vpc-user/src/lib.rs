//! vpc: a VPC data path in XDP. YAML or API -> `model` -> `compile` -> `dataplane` -> XDP.

pub mod agent;
pub mod api;
pub mod cli;
pub mod compile;
pub mod daemon;
pub mod dataplane;
pub mod flowlog;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod naming;
pub mod netns;
pub mod packet;
pub mod store;
pub mod tools;
