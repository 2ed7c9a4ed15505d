//! vpc: a VPC data path in XDP. YAML or API -> `model` -> `compile` -> `dataplane` -> XDP.

pub mod compile;
pub mod dataplane;
pub mod model;
pub mod netns;
pub mod packet;
pub mod testrun;
