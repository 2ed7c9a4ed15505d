//! Finding what a request names in the document: the indices of the resource with an ID (or a
//! name), or the API's not-found error naming the parameter.

use super::R;
use crate::{
    api::error::{ApiError, code},
    model::spec::{TopologySpec, VpcSpec},
};

pub(super) fn vpc_index(doc: &TopologySpec, id: &str) -> R<usize> {
    doc.vpcs.iter().position(|v| v.id.as_deref() == Some(id)).ok_or_else(|| ApiError::not_found(code::VPC_NOT_FOUND, "VpcId", id))
}

pub(super) fn vswitch_index(doc: &TopologySpec, id: &str) -> R<(usize, usize)> {
    for (i, vpc) in doc.vpcs.iter().enumerate() {
        if let Some(j) = vpc.vswitches.iter().position(|s| s.id.as_deref() == Some(id)) {
            return Ok((i, j));
        }
    }
    Err(ApiError::not_found(code::VSWITCH_NOT_FOUND, "VSwitchId", id))
}

pub(super) fn table_index(doc: &TopologySpec, id: &str) -> R<(usize, usize)> {
    for (i, vpc) in doc.vpcs.iter().enumerate() {
        if let Some(j) = vpc.route_tables.iter().position(|t| t.id.as_deref() == Some(id)) {
            return Ok((i, j));
        }
    }
    Err(ApiError::not_found(code::ROUTE_TABLE_NOT_FOUND, "RouteTableId", id))
}

/// The name of the security group of `vpc` with ID or name `id`.
pub(super) fn group_name(vpc: &VpcSpec, id: &str, field: &str) -> R<String> {
    vpc.security_groups
        .iter()
        .find(|g| g.id.as_deref() == Some(id) || g.name == id)
        .map(|g| g.name.clone())
        .ok_or_else(|| ApiError::not_found(code::SG_NOT_FOUND, field, id))
}

pub(super) fn eni_index(doc: &TopologySpec, id: &str) -> R<(usize, usize)> {
    for (i, vpc) in doc.vpcs.iter().enumerate() {
        if let Some(j) = vpc.enis.iter().position(|e| e.id.as_deref() == Some(id)) {
            return Ok((i, j));
        }
    }
    Err(ApiError::not_found(code::ENI_NOT_FOUND, "NetworkInterfaceId", id))
}

/// The ID of a VPC's router: the VPC's own, with the router's prefix.
pub(super) fn router_id(vpc_id: &str) -> String {
    vpc_id.replacen("vpc-", "vrt-", 1)
}
