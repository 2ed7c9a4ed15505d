//! VSwitch operations: create (a zone's default VSwitch too), delete, describe and rename.

use serde_json::{Value, json};

use super::{DRY_RUN, Kind::Boolean, Op, Param, R, S, lookup::find, name_or, ok, p, transact};
use crate::{
    agent::Agent,
    api::{
        Params,
        error::{ApiError, code},
    },
    model::{
        addr,
        dependencies::{self, VSwitchInUse},
        kinds::vswitch,
        normalize::{ensure_default_vswitch, new_id},
        spec::{VSwitchSpec, VpcSpec},
    },
};

pub static OPS: &[Op] = &[
    Op {
        name: "CreateVSwitch",
        summary: "Create a VSwitch in a zone of a VPC.",
        params: &[
            p!("VpcId", S, req, "The VPC."),
            p!("CidrBlock", S, req, "Equal to or inside the VPC's CIDR, mask /16 to /29, overlapping no other VSwitch; immutable."),
            p!("ZoneId", S, req, "The zone."),
            p!("VSwitchName", S, opt, "2-128 characters, starts with a letter; the ID when omitted."),
            p!("Description", S, opt, "2-256 characters, not starting with http:// or https://."),
            DRY_RUN,
        ],
        returns: &[("VSwitchId", "The new VSwitch.")],
        mutates: true,
        run: create_vswitch,
    },
    Op {
        name: "CreateDefaultVSwitch",
        summary: "Create the default VSwitch of a zone (a free /20 of the default VPC, created too if missing).",
        params: &[p!("ZoneId", S, req, "The zone."), DRY_RUN],
        returns: &[("VSwitchId", "The default VSwitch of the zone.")],
        mutates: true,
        run: create_default_vswitch,
    },
    Op {
        name: "DeleteVSwitch",
        summary: "Delete a VSwitch that has no ENIs left.",
        params: &[p!("VSwitchId", S, req, "The VSwitch."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: delete_vswitch,
    },
    Op {
        name: "DescribeVSwitches",
        summary: "List VSwitches, with the number of addresses still available.",
        params: &[
            p!("VpcId", S, opt, "Only VSwitches of this VPC."),
            p!("VSwitchId", S, opt, "Only this VSwitch."),
            p!("ZoneId", S, opt, "Only VSwitches in this zone."),
            p!("IsDefault", Boolean, opt, "Only default VSwitches (true) or only the others (false)."),
        ],
        returns: &[
            (
                "VSwitches",
                "VSwitchId, VpcId, VSwitchName, CidrBlock, ZoneId, Description, IsDefault, RouteTableId, GatewayIp, AvailableIpAddressCount, Status.",
            ),
            ("TotalCount", "Number of VSwitches listed."),
        ],
        mutates: false,
        run: describe_vswitches,
    },
    Op {
        name: "ModifyVSwitchAttribute",
        summary: "Change a VSwitch's name or description (its CIDR block cannot change).",
        params: &[
            p!("VSwitchId", S, req, "The VSwitch."),
            p!("VSwitchName", S, opt, "New name."),
            p!("Description", S, opt, "New description."),
            p!("CidrBlock", S, opt, "Refused unless equal to the current one: a VSwitch's CIDR is immutable."),
            DRY_RUN,
        ],
        returns: &[],
        mutates: true,
        run: modify_vswitch,
    },
];

fn create_vswitch(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id(vswitch::ID_PREFIX);
    transact(agent, p, |doc, _| {
        let i = find::<VpcSpec>(doc, p.str("VpcId"))?;
        doc.vpcs[i].vswitches.push(VSwitchSpec {
            id: Some(id.clone()),
            name: name_or(p.opt_str("VSwitchName"), &id),
            cidr: p.str("CidrBlock").into(),
            zone: p.str("ZoneId").into(),
            description: p.opt_str("Description").map(Into::into),
            ..Default::default()
        });
        Ok(())
    })?;
    Ok(json!({"VSwitchId": id}))
}

fn create_default_vswitch(agent: &mut Agent, p: &Params) -> R<Value> {
    let zone = p.str("ZoneId").to_string();
    let existing =
        agent.topology().vpcs.iter().filter(|v| v.is_default).flat_map(|v| &v.vswitches).find(|s| s.is_default && s.zone == zone);
    if let Some(s) = existing {
        return Err(ApiError::bad(
            crate::model::error::code::DEFAULT_VSWITCH_EXISTS,
            "ZoneId",
            format!("zone '{zone}' already has default VSwitch {}", s.id),
        ));
    }
    transact(agent, p, |doc, _| {
        ensure_default_vswitch(doc, &zone);
        Ok(())
    })?;
    let id = agent
        .topology()
        .vpcs
        .iter()
        .filter(|v| v.is_default)
        .flat_map(|v| &v.vswitches)
        .find(|s| s.is_default && s.zone == zone)
        .map(|s| s.id.clone());
    Ok(json!({"VSwitchId": id}))
}

fn delete_vswitch(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (i, j) = find::<VSwitchSpec>(doc, p.str("VSwitchId"))?;
        if let Some(VSwitchInUse { enis }) = dependencies::vswitch_in_use(&doc.vpcs[i], &doc.vpcs[i].vswitches[j].name) {
            return Err(ApiError::conflict(
                code::VSWITCH_HAS_ENIS,
                format!("VSwitch {} still has {enis} ENI(s); delete them first", p.str("VSwitchId")),
            ));
        }
        doc.vpcs[i].vswitches.remove(j);
        Ok(())
    })?;
    ok()
}

fn describe_vswitches(agent: &mut Agent, p: &Params) -> R<Value> {
    let mut list = Vec::new();
    for vpc in &agent.topology().vpcs {
        if p.opt_str("VpcId").is_some_and(|id| vpc.id != id) {
            continue;
        }
        for s in &vpc.vswitches {
            if p.opt_str("VSwitchId").is_some_and(|id| s.id != id)
                || p.opt_str("ZoneId").is_some_and(|z| s.zone != z)
                || p.opt_bool("IsDefault").is_some_and(|d| s.is_default != d)
            {
                continue;
            }
            let used = vpc.enis.iter().filter(|e| e.vswitch == s.name).count() as u64;
            let table = vpc.route_table(&s.route_table).map(|t| t.id.clone());
            list.push(json!({
                "VSwitchId": s.id, "VpcId": vpc.id, "VSwitchName": s.name, "CidrBlock": s.cidr.to_string(),
                "ZoneId": s.zone, "Description": s.description, "IsDefault": s.is_default,
                "RouteTableId": table, "GatewayIp": s.gateway.to_string(),
                "AvailableIpAddressCount": addr::available(s.cidr) - used, "Status": "Available",
            }));
        }
    }
    Ok(json!({"VSwitches": list, "TotalCount": list.len()}))
}

fn modify_vswitch(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (i, j) = find::<VSwitchSpec>(doc, p.str("VSwitchId"))?;
        let vpc = &mut doc.vpcs[i];
        if let Some(cidr) = p.opt_str("CidrBlock")
            && cidr != vpc.vswitches[j].cidr
        {
            return Err(ApiError::bad(
                crate::model::error::code::CIDR_IMMUTABLE,
                "CidrBlock",
                format!("VSwitch {} has CIDR {}; a VSwitch's CIDR cannot change", p.str("VSwitchId"), vpc.vswitches[j].cidr),
            ));
        }
        if let Some(name) = p.opt_str("VSwitchName") {
            let old = std::mem::replace(&mut vpc.vswitches[j].name, name.into());
            for eni in vpc.enis.iter_mut().filter(|e| e.vswitch == old) {
                eni.vswitch = name.into();
            }
        }
        if let Some(d) = p.opt_str("Description") {
            vpc.vswitches[j].description = Some(d.into());
        }
        Ok(())
    })?;
    ok()
}
