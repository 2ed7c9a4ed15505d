//! The topology file as written (YAML). Field types are loose on purpose (CIDRs and addresses
//! are strings): `validate` turns this into a typed `Topology` and reports every problem with
//! its field path, instead of stopping at the first serde error.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    #[serde(default)]
    pub vpcs: Vec<VpcSpec>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VpcSpec {
    pub name: String,
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub vswitches: Vec<VSwitchSpec>,
    #[serde(default)]
    pub enis: Vec<EniSpec>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VSwitchSpec {
    pub name: String,
    pub cidr: String,
    pub zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EniSpec {
    /// Unique across the file; also names the ENI's lab namespace.
    pub name: String,
    pub vswitch: String,
    pub ip: String,
    /// Guest MAC; generated from the name when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Host-side interface (veth or tap) the guest is plugged into; the lab's name when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

impl TopologySpec {
    /// Parse YAML; a syntax or shape error carries its line and column.
    pub fn from_yaml(text: &str) -> Result<TopologySpec, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }
}
