//! API errors: an HTTP status, a stable code, a message naming the field and the limit, and, for
//! validation failures, every problem found.

use serde::{Deserialize, Serialize};

use crate::model::{Invalid, Problem};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} [{code}]")]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    #[serde(rename = "Code")]
    pub code: String,
    #[serde(rename = "Message")]
    pub message: String,
    /// The offending parameter or document field.
    #[serde(rename = "Field", default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every validation problem, when there were several.
    #[serde(rename = "Problems", default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

pub mod code {
    pub const MISSING_PARAMETER: &str = "MissingParameter";
    pub const INVALID_PARAMETER: &str = "InvalidParameter";
    pub const UNKNOWN_PARAMETER: &str = "InvalidParameter.Unknown";
    pub const UNKNOWN_ACTION: &str = "InvalidAction.NotFound";
    pub const VPC_NOT_FOUND: &str = "InvalidVpcId.NotFound";
    pub const VSWITCH_NOT_FOUND: &str = "InvalidVSwitchId.NotFound";
    pub const ROUTE_TABLE_NOT_FOUND: &str = "InvalidRouteTableId.NotFound";
    pub const ROUTE_ENTRY_NOT_FOUND: &str = "InvalidRouteEntryId.NotFound";
    pub const ENI_NOT_FOUND: &str = "InvalidNetworkInterfaceId.NotFound";
    pub const GATEWAY_NOT_FOUND: &str = "InvalidGatewayId.NotFound";
    pub const CEN_NOT_FOUND: &str = "InvalidCenId.NotFound";
    pub const SG_NOT_FOUND: &str = "InvalidSecurityGroupId.NotFound";
    pub const SG_RULE_NOT_FOUND: &str = "InvalidPermission.NotFound";
    pub const SG_DEFAULT: &str = "OperationDenied.DefaultSecurityGroup";
    pub const SG_IN_USE: &str = "DependencyViolation.SecurityGroup";
    pub const SG_LAST: &str = "OperationDenied.LastSecurityGroup";
    pub const SG_ALREADY_MEMBER: &str = "InvalidNetworkInterfaceId.AlreadyInSecurityGroup";
    pub const FLOW_LOG_NOT_FOUND: &str = "InvalidFlowLogId.NotFound";
    pub const FLOW_LOG_RESOURCE_NOT_FOUND: &str = "InvalidResourceId.NotFound";
    pub const MCAST_GROUP_NOT_FOUND: &str = "InvalidMulticastGroupId.NotFound";
    pub const MCAST_ALREADY: &str = "InvalidMulticastMember.Already";
    pub const MCAST_NOT_IN: &str = "InvalidMulticastMember.NotInGroup";
    pub const SG_NOT_MEMBER: &str = "InvalidNetworkInterfaceId.NotInSecurityGroup";
    pub const CEN_HAS_VPCS: &str = "DependencyViolation.CenChildInstance";
    pub const NOT_ATTACHED: &str = "OperationDenied.NotAttached";
    pub const VPC_HAS_VSWITCHES: &str = "DependencyViolation.VSwitch";
    pub const VSWITCH_HAS_ENIS: &str = "DependencyViolation.NetworkInterface";
    pub const ROUTE_TABLE_HAS_VSWITCHES: &str = "DependencyViolation.RouteTableAssociated";
    pub const ENI_IS_NEXT_HOP: &str = "DependencyViolation.RouteEntryNextHop";
    pub const SYSTEM_ROUTE_TABLE: &str = "OperationDenied.SystemRouteTable";
    pub const SYSTEM_ROUTE_ENTRY: &str = "OperationDenied.SystemRouteEntry";
    pub const ALREADY_ASSOCIATED: &str = "OperationDenied.VSwitchHasCustomRouteTable";
    pub const NOT_ASSOCIATED: &str = "OperationDenied.RouteTableNotAssociated";
    pub const OTHER_VPC: &str = "OperationDenied.DifferentVpc";
    pub const INTERNAL: &str = "InternalError";
    pub const UNAVAILABLE: &str = "ServiceUnavailable";
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into(), field: None, problems: Vec::new() }
    }

    pub fn bad(code: &str, field: &str, message: impl Into<String>) -> Self {
        ApiError { field: Some(field.into()), ..ApiError::new(400, code, message) }
    }

    pub fn not_found(code: &str, field: &str, id: &str) -> Self {
        ApiError { field: Some(field.into()), ..ApiError::new(404, code, format!("{field} '{id}' does not exist")) }
    }

    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(409, code, message)
    }

    pub fn internal(err: anyhow::Error) -> Self {
        ApiError::new(500, code::INTERNAL, format!("{err:#}"))
    }
}

impl From<crate::agent::error::ChangeError> for ApiError {
    fn from(err: crate::agent::error::ChangeError) -> Self {
        match err {
            crate::agent::error::ChangeError::Invalid(invalid) => invalid.into(),
            crate::agent::error::ChangeError::Failed(e) => ApiError::internal(e),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        let first = invalid.0.first().cloned();
        let message = invalid.0.iter().map(|p| format!("{}: {}", p.location(), p.message)).collect::<Vec<_>>().join("; ");
        ApiError {
            status: 400,
            code: first.as_ref().map(|p| p.code.to_string()).unwrap_or_else(|| code::INVALID_PARAMETER.into()),
            message,
            field: first.map(|p| p.field),
            problems: invalid.0,
        }
    }
}
