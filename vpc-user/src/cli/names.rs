//! Names of resources by ID, read from the Describe operations, so that a table can show a
//! reference as `name (id)` and the VPC a child resource belongs to.

use std::collections::HashMap;

use serde_json::json;

use super::api_error;
use crate::api::Conn;

/// Each kind that others refer to: (operation, its list, ID key, name key).
const KINDS: &[(&str, &str, &str, &str)] = &[
    ("DescribeVpcs", "Vpcs", "VpcId", "VpcName"),
    ("DescribeVSwitches", "VSwitches", "VSwitchId", "VSwitchName"),
    ("DescribeRouteTableList", "RouterTableList", "RouteTableId", "RouteTableName"),
    ("DescribeNetworkInterfaces", "NetworkInterfaceSets", "NetworkInterfaceId", "NetworkInterfaceName"),
    ("DescribeGateways", "Gateways", "GatewayId", "GatewayName"),
    ("DescribeSecurityGroups", "SecurityGroups", "SecurityGroupId", "SecurityGroupName"),
];

#[derive(Default)]
pub struct Names {
    name: HashMap<String, String>,
    /// The VPC of each resource (a VPC is its own).
    vpc: HashMap<String, String>,
    /// ENIs by (VPC ID, name): multicast groups list their ENIs by name.
    eni: HashMap<(String, String), String>,
}

impl Names {
    pub fn of(conn: &Conn) -> anyhow::Result<Names> {
        let mut names = Names::default();
        for (action, list, id_key, name_key) in KINDS {
            let response = conn.call(action, json!({})).map_err(|e| api_error(action, e))?;
            for item in response[*list].as_array().into_iter().flatten() {
                let (Some(id), Some(name), Some(vpc)) = (item[*id_key].as_str(), item[*name_key].as_str(), item["VpcId"].as_str()) else {
                    continue;
                };
                names.name.insert(id.into(), name.into());
                names.vpc.insert(id.into(), vpc.into());
                if *id_key == "NetworkInterfaceId" {
                    names.eni.insert((vpc.into(), name.into()), id.into());
                }
            }
        }
        Ok(names)
    }

    /// `name (id)`; the ID alone when it has no other name, and any other text as it is.
    pub fn named(&self, id: &str) -> String {
        match self.name.get(id) {
            Some(name) if name != id => format!("{name} ({id})"),
            _ => id.to_string(),
        }
    }

    /// The VPC that resource `id` belongs to, as `name (id)`.
    pub fn vpc_of(&self, id: &str) -> Option<String> {
        self.vpc.get(id).map(|vpc| self.named(vpc))
    }

    /// ENI `name` of VPC `vpc_id` as `name (id)`.
    pub fn eni(&self, vpc_id: &str, name: &str) -> String {
        match self.eni.get(&(vpc_id.to_string(), name.to_string())) {
            Some(id) => self.named(id),
            None => name.to_string(),
        }
    }
}
