//! Resource quotas: the limits a topology is validated against, their defaults and how
//! `--quota NAME=VALUE` raises one.

use serde::{Deserialize, Serialize};

/// Resource quotas. The guide gives the route-table limit (10 per VPC); the others follow the
/// cloud's published defaults and are meant to be raised with `--quota`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// VPCs in the region, not counting the default VPC.
    pub vpcs: u32,
    /// VSwitches per VPC, not counting default VSwitches.
    pub vswitches_per_vpc: u32,
    /// Route tables per VPC, the system table included.
    pub route_tables_per_vpc: u32,
    /// Custom route entries per route table.
    pub route_entries_per_table: u32,
    /// ENIs in the region.
    pub enis: u32,
    /// Security groups per VPC.
    #[serde(default = "default_sg_quota")]
    pub security_groups_per_vpc: u32,
    /// Rules per security group (never more than 10,000: the data path's limit).
    #[serde(default = "default_sg_rule_quota")]
    pub rules_per_security_group: u32,
    /// Flow logs in the region (the guide: 10).
    #[serde(default = "default_flow_log_quota")]
    pub flow_logs: u32,
}

fn default_flow_log_quota() -> u32 {
    10
}

fn default_sg_quota() -> u32 {
    100
}

fn default_sg_rule_quota() -> u32 {
    10_000
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            vpcs: 10,
            vswitches_per_vpc: 150,
            route_tables_per_vpc: 10,
            route_entries_per_table: 10_000,
            enis: 4096,
            security_groups_per_vpc: default_sg_quota(),
            rules_per_security_group: default_sg_rule_quota(),
            flow_logs: default_flow_log_quota(),
        }
    }
}

impl Quotas {
    /// No limits (reading back a state committed under larger quotas).
    pub fn unlimited() -> Quotas {
        Quotas {
            vpcs: u32::MAX,
            vswitches_per_vpc: u32::MAX,
            route_tables_per_vpc: u32::MAX,
            route_entries_per_table: u32::MAX,
            enis: u32::MAX,
            security_groups_per_vpc: u32::MAX,
            rules_per_security_group: u32::MAX,
            flow_logs: u32::MAX,
        }
    }

    /// Set one quota from `name=value` (as given to `--quota`).
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (name, value) = assignment.split_once('=').ok_or_else(|| format!("'{assignment}' is not NAME=VALUE"))?;
        let value: u32 = value.trim().parse().map_err(|_| format!("quota value '{value}' is not a number"))?;
        let slot = match name.trim().replace('_', "-").as_str() {
            "vpcs" => &mut self.vpcs,
            "vswitches-per-vpc" => &mut self.vswitches_per_vpc,
            "route-tables-per-vpc" => &mut self.route_tables_per_vpc,
            "route-entries-per-table" => &mut self.route_entries_per_table,
            "enis" => &mut self.enis,
            "security-groups-per-vpc" => &mut self.security_groups_per_vpc,
            "rules-per-security-group" => &mut self.rules_per_security_group,
            "flow-logs" => &mut self.flow_logs,
            other => {
                return Err(format!(
                    "unknown quota '{other}' (vpcs, vswitches-per-vpc, route-tables-per-vpc, route-entries-per-table, enis, \
                     security-groups-per-vpc, rules-per-security-group, flow-logs)"
                ));
            }
        };
        *slot = value;
        Ok(())
    }
}
