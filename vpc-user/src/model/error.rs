//! Validation problems: a stable code (as in the cloud API's error codes), the field path and a
//! message that names the rule. Validation reports every problem, not just the first.

use std::fmt;

use serde::Serialize;

/// Stable error codes. Tests and API clients match on these strings; never rename one.
pub mod code {
    pub const NAME_MALFORMED: &str = "InvalidName.Malformed";
    pub const NAME_DUPLICATE: &str = "InvalidName.Duplicate";
    pub const DESCRIPTION_MALFORMED: &str = "InvalidDescription.Malformed";
    pub const CIDR_MALFORMED: &str = "InvalidCidrBlock.Malformed";
    pub const VPC_CIDR_NOT_PRIVATE: &str = "InvalidVpcCidr.NotPrivate";
    pub const VSWITCH_CIDR_NOT_IN_VPC: &str = "InvalidVSwitchCidr.NotInVpc";
    pub const VSWITCH_CIDR_MASK: &str = "InvalidVSwitchCidr.Mask";
    pub const VSWITCH_CIDR_OVERLAP: &str = "InvalidVSwitchCidr.Overlapped";
    pub const ZONE_MISSING: &str = "InvalidZone.Missing";
    pub const VSWITCH_NOT_FOUND: &str = "InvalidVSwitch.NotFound";
    pub const IP_MALFORMED: &str = "InvalidIpAddress.Malformed";
    pub const IP_NOT_IN_VSWITCH: &str = "InvalidIpAddress.NotInVSwitch";
    pub const IP_RESERVED: &str = "InvalidIpAddress.Reserved";
    pub const IP_IN_USE: &str = "InvalidIpAddress.InUse";
    pub const MAC_MALFORMED: &str = "InvalidMacAddress.Malformed";
    pub const MAC_DUPLICATE: &str = "InvalidMacAddress.Duplicate";
    pub const INTERFACE_MALFORMED: &str = "InvalidInterface.Malformed";
    pub const HOST_MALFORMED: &str = "InvalidHost.Malformed";
    pub const INTERFACE_DUPLICATE: &str = "InvalidInterface.Duplicate";
    pub const YAML_SYNTAX: &str = "InvalidTopology.Syntax";
    pub const IP_NO_FREE: &str = "InvalidIpAddress.NoFreeAddress";
    pub const ID_MALFORMED: &str = "InvalidId.Malformed";
    pub const ID_DUPLICATE: &str = "InvalidId.Duplicate";
    pub const CIDR_IMMUTABLE: &str = "OperationDenied.CidrImmutable";
    pub const DEFAULT_VPC_EXISTS: &str = "InvalidDefaultVpc.Exists";
    pub const DEFAULT_VPC_CIDR: &str = "InvalidDefaultVpc.Cidr";
    pub const DEFAULT_VSWITCH_EXISTS: &str = "InvalidDefaultVSwitch.Exists";
    pub const DEFAULT_VSWITCH_CIDR: &str = "InvalidDefaultVSwitch.Cidr";
    pub const DEFAULT_VSWITCH_NOT_IN_DEFAULT_VPC: &str = "InvalidDefaultVSwitch.NotInDefaultVpc";
    pub const QUOTA_VPC: &str = "QuotaExceeded.Vpc";
    pub const QUOTA_VSWITCH: &str = "QuotaExceeded.VSwitch";
    pub const QUOTA_ROUTE_TABLE: &str = "QuotaExceeded.RouteTable";
    pub const QUOTA_ROUTE_ENTRY: &str = "QuotaExceeded.RouteEntry";
    pub const QUOTA_ENI: &str = "QuotaExceeded.NetworkInterface";
    pub const ROUTE_TABLE_NOT_FOUND: &str = "InvalidRouteTable.NotFound";
    pub const ROUTE_TABLE_RESERVED_NAME: &str = "InvalidRouteTableName.Reserved";
    pub const ROUTE_DUPLICATE: &str = "InvalidRouteEntry.Duplicate";
    pub const ROUTE_CONFLICTS_WITH_SYSTEM: &str = "InvalidRouteEntry.ConflictWithSystemEntry";
    pub const NEXT_HOP_NOT_FOUND: &str = "InvalidNextHop.NotFound";
    pub const NEXT_HOP_SELF: &str = "InvalidNextHop.SameVpc";
    pub const NEXT_HOP_COUNT: &str = "InvalidNextHop.HopCount";
    pub const NEXT_HOP_WEIGHT: &str = "InvalidNextHop.Weight";
    pub const NEXT_HOP_MALFORMED: &str = "InvalidNextHop.Malformed";
    pub const HEALTH_CHECK_MALFORMED: &str = "InvalidHealthCheck.Malformed";
    pub const CEN_CIDR_OVERLAP: &str = "InvalidCen.CidrOverlapped";
    pub const CEN_VPC_NOT_FOUND: &str = "InvalidCen.VpcNotFound";
    pub const CEN_VPC_ATTACHED: &str = "InvalidCen.VpcAlreadyAttached";
    pub const SG_NOT_FOUND: &str = "InvalidSecurityGroupId.NotFound";
    pub const SG_COUNT: &str = "InvalidSecurityGroup.Count";
    pub const SG_DEFAULT: &str = "OperationDenied.DefaultSecurityGroup";
    pub const SG_IN_USE: &str = "DependencyViolation.SecurityGroup";
    pub const SG_DIRECTION: &str = "InvalidDirection.Malformed";
    pub const SG_POLICY: &str = "InvalidPolicy.Malformed";
    pub const SG_PROTOCOL: &str = "InvalidIpProtocol.Malformed";
    pub const SG_PORT_RANGE: &str = "InvalidPortRange.Malformed";
    pub const SG_PEER: &str = "InvalidPeer.Malformed";
    pub const SG_PRIORITY: &str = "InvalidPriority.ValueNotSupported";
    pub const SG_RULE_DUPLICATE: &str = "InvalidPermission.Duplicate";
    pub const SG_RULE_NOT_FOUND: &str = "InvalidPermission.NotFound";
    pub const SG_INTRA_POLICY: &str = "InvalidInnerAccessPolicy.Malformed";
    pub const QUOTA_SG: &str = "QuotaExceeded.SecurityGroup";
    pub const QUOTA_FLOW_LOG: &str = "QuotaExceeded.FlowLog";
    pub const MCAST_GROUP_ADDRESS: &str = "InvalidGroupAddress.Malformed";
    pub const MCAST_GROUP_DUPLICATE: &str = "InvalidMulticastGroup.Duplicate";
    pub const MCAST_ENI_NOT_FOUND: &str = "InvalidMulticastMember.NotFound";
    pub const MCAST_LIMIT: &str = "QuotaExceeded.Multicast";
    pub const FLOW_LOG_RESOURCE: &str = "InvalidFlowLog.Resource";
    pub const FLOW_LOG_RESOURCE_NOT_FOUND: &str = "InvalidResourceId.NotFound";
    pub const FLOW_LOG_TRAFFIC: &str = "InvalidTrafficType.Malformed";
    pub const FLOW_LOG_WINDOW: &str = "InvalidAggregationInterval.Malformed";
    pub const FLOW_LOG_SINK: &str = "InvalidFlowLog.Sink";
    pub const QUOTA_SG_RULE: &str = "QuotaExceeded.SecurityGroupRule";
    pub const MTU_MALFORMED: &str = "InvalidMtu.ValueNotSupported";
    pub const CONNTRACK_LIMIT_MALFORMED: &str = "InvalidConntrackLimit.ValueNotSupported";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Problem {
    pub code: String,
    /// Path of the offending field, e.g. `vpcs[0].vswitches[1].cidr`.
    pub field: String,
    pub message: String,
    /// The API request parameter the field came from (`CidrBlock`), when an API call made it.
    #[serde(rename = "Parameter", default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

impl Problem {
    /// Where the problem is: the parameter and the document field when both are known.
    pub fn location(&self) -> String {
        match &self.parameter {
            Some(param) => format!("{param} ({})", self.field),
            None => self.field.clone(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} [{}]", self.location(), self.message, self.code)
    }
}

/// One or more validation problems; nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid(pub Vec<Problem>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl Invalid {
    pub fn codes(&self) -> Vec<&str> {
        self.0.iter().map(|p| p.code.as_str()).collect()
    }
}

/// Collects problems while walking a document.
#[derive(Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn add(&mut self, code: &'static str, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem { code: code.to_string(), field: field.into(), message: message.into(), parameter: None });
    }

    pub fn finish<T>(self, value: T) -> Result<T, Invalid> {
        if self.0.is_empty() { Ok(value) } else { Err(Invalid(self.0)) }
    }
}
