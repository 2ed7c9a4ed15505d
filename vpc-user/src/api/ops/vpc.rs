//! VPC operations: create (the default VPC too), delete, describe and rename.

use serde_json::{Value, json};

use super::{
    DRY_RUN,
    Kind::{Boolean, Integer},
    Op, Param, R, S,
    lookup::{find, router_id},
    name_or, ok, p, transact,
};
use crate::{
    agent::Agent,
    api::{
        Params,
        error::{ApiError, code},
    },
    model::{
        dependencies::{self, VpcInUse},
        kinds::vpc,
        locate,
        normalize::{DEFAULT_VPC_CIDR, DEFAULT_VPC_NAME, new_id},
        spec::{TopologySpec, VpcSpec},
    },
};

pub static OPS: &[Op] = &[
    Op {
        name: "CreateVpc",
        summary: "Create a VPC with its router and system route table.",
        params: &[
            p!("CidrBlock", S, req, "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or a subset of one; immutable."),
            p!("VpcName", S, opt, "2-128 characters, starts with a letter; the ID when omitted."),
            p!("Description", S, opt, "2-256 characters, not starting with http:// or https://."),
            p!("ConntrackLimit", Integer, opt, "Connections each ENI may track unless it says otherwise, 1-16777216 (default 32768)."),
            DRY_RUN,
        ],
        returns: &[("VpcId", "The new VPC."), ("VRouterId", "Its router."), ("RouteTableId", "Its system route table.")],
        mutates: true,
        run: create_vpc,
    },
    Op {
        name: "CreateDefaultVpc",
        summary: "Create the region's default VPC (172.31.0.0/16; at most one; outside the VPC quota).",
        params: &[DRY_RUN],
        returns: &[("VpcId", "The default VPC."), ("VRouterId", "Its router."), ("RouteTableId", "Its system route table.")],
        mutates: true,
        run: create_default_vpc,
    },
    Op {
        name: "DeleteVpc",
        summary: "Delete a VPC that has no VSwitches left; its router and route tables go with it.",
        params: &[p!("VpcId", S, req, "The VPC."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: delete_vpc,
    },
    Op {
        name: "DescribeVpcs",
        summary: "List VPCs.",
        params: &[
            p!("VpcId", S, opt, "Only this VPC."),
            p!("VpcName", S, opt, "Only VPCs with this name."),
            p!("IsDefault", Boolean, opt, "Only the default VPC (true) or only the others (false)."),
        ],
        returns: &[
            ("Vpcs", "VpcId, VpcName, CidrBlock, Description, IsDefault, VRouterId, VSwitchIds, RouteTableIds, Status."),
            ("TotalCount", "Number of VPCs listed."),
        ],
        mutates: false,
        run: describe_vpcs,
    },
    Op {
        name: "ModifyVpcAttribute",
        summary: "Change a VPC's name or description (its CIDR block cannot change).",
        params: &[
            p!("VpcId", S, req, "The VPC."),
            p!("VpcName", S, opt, "New name."),
            p!("Description", S, opt, "New description."),
            p!("CidrBlock", S, opt, "Refused unless equal to the current one: a VPC's CIDR is immutable."),
            DRY_RUN,
        ],
        returns: &[],
        mutates: true,
        run: modify_vpc,
    },
];

/// The document after an edit, for returning IDs normalization assigned.
fn stored(agent: &Agent) -> &TopologySpec {
    &agent.stored().doc
}

fn vpc_created(agent: &Agent, id: &str) -> R<Value> {
    let doc = stored(agent);
    let table = locate::find::<VpcSpec>(doc, id).and_then(|i| doc.vpcs[i].route_tables.first()).and_then(|t| t.id.clone());
    Ok(json!({"VpcId": id, "VRouterId": router_id(id), "RouteTableId": table}))
}

fn create_vpc(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id(vpc::ID_PREFIX);
    transact(agent, p, |doc, _| {
        doc.vpcs.push(VpcSpec {
            id: Some(id.clone()),
            name: name_or(p.opt_str("VpcName"), &id),
            cidr: p.str("CidrBlock").to_string(),
            description: p.opt_str("Description").map(Into::into),
            conntrack_limit: p.opt_u32("ConntrackLimit"),
            ..Default::default()
        });
        Ok(())
    })?;
    vpc_created(agent, &id)
}

fn create_default_vpc(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id(vpc::ID_PREFIX);
    transact(agent, p, |doc, _| {
        let name = if doc.vpcs.iter().any(|v| v.name == DEFAULT_VPC_NAME) { id.clone() } else { DEFAULT_VPC_NAME.into() };
        doc.vpcs.push(VpcSpec { id: Some(id.clone()), name, cidr: DEFAULT_VPC_CIDR.into(), default: true, ..Default::default() });
        Ok(())
    })?;
    vpc_created(agent, &id)
}

fn delete_vpc(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let i = find::<VpcSpec>(doc, p.str("VpcId"))?;
        if let Some(reason) = dependencies::vpc_in_use(doc, &doc.vpcs[i]) {
            return Err(vpc_in_use_error(p.str("VpcId"), reason));
        }
        doc.vpcs.remove(i);
        Ok(())
    })?;
    ok()
}

fn vpc_in_use_error(id: &str, reason: VpcInUse) -> ApiError {
    match reason {
        VpcInUse::VSwitches(count) => {
            ApiError::conflict(code::VPC_HAS_VSWITCHES, format!("VPC {id} still has {count} VSwitch(es); delete them first"))
        }
        VpcInUse::CenMember(cen) => ApiError::conflict(code::CEN_HAS_VPCS, format!("VPC {id} is attached to CEN {cen}; detach it first")),
        VpcInUse::SecurityGroups(groups) => {
            ApiError::conflict(code::SG_IN_USE, format!("VPC {id} still has security group(s) {}; delete them first", groups.join(", ")))
        }
        VpcInUse::RoutesToIt(routes) => {
            let routes: Vec<String> = routes.iter().map(|r| format!("{} in VPC {}", r.destination, r.vpc)).collect();
            ApiError::conflict(code::ENI_IS_NEXT_HOP, format!("route entries lead to VPC {id}: {}; delete them first", routes.join(", ")))
        }
    }
}

fn describe_vpcs(agent: &mut Agent, p: &Params) -> R<Value> {
    let list: Vec<Value> = agent
        .topology()
        .vpcs
        .iter()
        .filter(|v| p.opt_str("VpcId").is_none_or(|id| v.id == id))
        .filter(|v| p.opt_str("VpcName").is_none_or(|n| v.name == n))
        .filter(|v| p.opt_bool("IsDefault").is_none_or(|d| v.is_default == d))
        .map(|v| {
            json!({
                "VpcId": v.id, "VpcName": v.name, "CidrBlock": v.cidr.to_string(), "Description": v.description,
                "IsDefault": v.is_default, "VRouterId": router_id(&v.id), "Status": "Available",
                "VSwitchIds": v.vswitches.iter().map(|s| &s.id).collect::<Vec<_>>(),
                "RouteTableIds": v.route_tables.iter().map(|t| &t.id).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({"Vpcs": list, "TotalCount": list.len()}))
}

fn modify_vpc(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let i = find::<VpcSpec>(doc, p.str("VpcId"))?;
        let vpc = &mut doc.vpcs[i];
        if let Some(cidr) = p.opt_str("CidrBlock")
            && cidr != vpc.cidr
        {
            return Err(ApiError::bad(
                crate::model::error::code::CIDR_IMMUTABLE,
                "CidrBlock",
                format!("VPC {} has CIDR {}; a VPC's CIDR cannot change", p.str("VpcId"), vpc.cidr),
            ));
        }
        if let Some(name) = p.opt_str("VpcName") {
            vpc.name = name.into();
        }
        if let Some(d) = p.opt_str("Description") {
            vpc.description = Some(d.into());
        }
        Ok(())
    })?;
    ok()
}
