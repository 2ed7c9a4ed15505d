//! A validated VPC and what it holds: VSwitches, ENIs and gateways, looked up by name. Each is in
//! its kind's file of `kinds`; they stay at this path for callers.

pub use super::kinds::{eni::Eni, gateway::Gateway, vpc::Vpc, vswitch::VSwitch};
