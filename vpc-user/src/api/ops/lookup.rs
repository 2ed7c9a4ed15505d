//! Finding what a request names in the document: the indices of the resource with an ID (or a
//! name), or the API's not-found error naming the parameter.

use super::R;
use crate::{
    api::error::{ApiError, code},
    model::{
        locate::{self, Located, ResourceKind},
        spec::{TopologySpec, VpcSpec},
    },
};

/// The indices of the `T` with ID `id` in `doc` (`(vpc, vswitch)` for a `VSwitchSpec`), or the
/// API's not-found error for its kind.
pub(super) fn find<T: Located>(doc: &TopologySpec, id: &str) -> R<T::At> {
    locate::find::<T>(doc, id).ok_or_else(|| not_found(T::KIND, id))
}

/// The not-found error of each kind: its code, and the parameter that names the ID.
pub(super) fn not_found(kind: ResourceKind, id: &str) -> ApiError {
    let (code, parameter) = match kind {
        ResourceKind::Vpc => (code::VPC_NOT_FOUND, "VpcId"),
        ResourceKind::VSwitch => (code::VSWITCH_NOT_FOUND, "VSwitchId"),
        ResourceKind::RouteTable => (code::ROUTE_TABLE_NOT_FOUND, "RouteTableId"),
        ResourceKind::Route => (code::ROUTE_ENTRY_NOT_FOUND, "RouteEntryId"),
        ResourceKind::Eni => (code::ENI_NOT_FOUND, "NetworkInterfaceId"),
        ResourceKind::Gateway => (code::GATEWAY_NOT_FOUND, "GatewayId"),
        ResourceKind::SecurityGroup => (code::SG_NOT_FOUND, "SecurityGroupId"),
        ResourceKind::SgRule => (code::SG_RULE_NOT_FOUND, "SecurityGroupRuleId"),
        ResourceKind::Cen => (code::CEN_NOT_FOUND, "CenId"),
        ResourceKind::FlowLog => (code::FLOW_LOG_NOT_FOUND, "FlowLogId"),
        ResourceKind::McastGroup => (code::MCAST_GROUP_NOT_FOUND, "GroupId"),
    };
    ApiError::not_found(code, parameter, id)
}

/// The name of the security group of `vpc` with ID or name `id`.
pub(super) fn group_name(vpc: &VpcSpec, id: &str, field: &str) -> R<String> {
    vpc.security_groups
        .iter()
        .find(|g| g.id.as_deref() == Some(id) || g.name == id)
        .map(|g| g.name.clone())
        .ok_or_else(|| ApiError::not_found(code::SG_NOT_FOUND, field, id))
}

/// The ID of a VPC's router: the VPC's own, with the router's prefix.
pub(super) fn router_id(vpc_id: &str) -> String {
    vpc_id.replacen("vpc-", "vrt-", 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::{
        CenSpec, EniSpec, FlowLogSpec, GatewaySpec, McastGroupSpec, RouteSpec, RouteTableSpec, SecurityGroupSpec, SgRuleSpec, VSwitchSpec,
    };

    /// Each kind's not-found error is the one its own look-up returned before there was one.
    #[test]
    fn each_kind_is_not_found_with_its_code_and_parameter() {
        let doc = TopologySpec::default();
        let got = |e: ApiError| (e.status, e.code, e.field.unwrap_or_default(), e.message);
        let want = |code: &str, field: &str| (404, code.to_string(), field.to_string(), format!("{field} 'x-1' does not exist"));
        assert_eq!(got(find::<VpcSpec>(&doc, "x-1").unwrap_err()), want(code::VPC_NOT_FOUND, "VpcId"));
        assert_eq!(got(find::<VSwitchSpec>(&doc, "x-1").unwrap_err()), want(code::VSWITCH_NOT_FOUND, "VSwitchId"));
        assert_eq!(got(find::<RouteTableSpec>(&doc, "x-1").unwrap_err()), want(code::ROUTE_TABLE_NOT_FOUND, "RouteTableId"));
        assert_eq!(got(find::<RouteSpec>(&doc, "x-1").unwrap_err()), want(code::ROUTE_ENTRY_NOT_FOUND, "RouteEntryId"));
        assert_eq!(got(find::<EniSpec>(&doc, "x-1").unwrap_err()), want(code::ENI_NOT_FOUND, "NetworkInterfaceId"));
        assert_eq!(got(find::<GatewaySpec>(&doc, "x-1").unwrap_err()), want(code::GATEWAY_NOT_FOUND, "GatewayId"));
        assert_eq!(got(find::<SecurityGroupSpec>(&doc, "x-1").unwrap_err()), want(code::SG_NOT_FOUND, "SecurityGroupId"));
        assert_eq!(got(find::<SgRuleSpec>(&doc, "x-1").unwrap_err()), want(code::SG_RULE_NOT_FOUND, "SecurityGroupRuleId"));
        assert_eq!(got(find::<CenSpec>(&doc, "x-1").unwrap_err()), want(code::CEN_NOT_FOUND, "CenId"));
        assert_eq!(got(find::<FlowLogSpec>(&doc, "x-1").unwrap_err()), want(code::FLOW_LOG_NOT_FOUND, "FlowLogId"));
        assert_eq!(got(find::<McastGroupSpec>(&doc, "x-1").unwrap_err()), want(code::MCAST_GROUP_NOT_FOUND, "GroupId"));
    }
}
