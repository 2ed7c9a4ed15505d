//! CEN operations: groups of VPCs that learn each other's VSwitch CIDRs, and their members.

use serde_json::{Value, json};

use super::{DRY_RUN, Op, Param, R, S, lookup::find, ok, p, transact};
use crate::{
    agent::Agent,
    api::{
        Params,
        error::{ApiError, code},
    },
    model::{
        dependencies::{self, CenInUse},
        kinds::cen,
        normalize::new_id,
        spec::{CenSpec, VpcSpec},
    },
};

pub static OPS: &[Op] = &[
    Op {
        name: "CreateCen",
        summary: "Create a CEN: a group of VPCs that learn each other's VSwitch CIDRs.",
        params: &[
            p!("CenName", S, req, "2-128 characters, starts with a letter."),
            p!("Description", S, opt, "2-256 characters."),
            DRY_RUN,
        ],
        returns: &[("CenId", "The new CEN.")],
        mutates: true,
        run: create_cen,
    },
    Op {
        name: "DeleteCen",
        summary: "Delete a CEN that has no VPC attached.",
        params: &[p!("CenId", S, req, "The CEN."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: delete_cen,
    },
    Op {
        name: "AttachCenChildInstance",
        summary: "Attach a VPC to a CEN; refused when its VSwitch CIDRs overlap another member's.",
        params: &[p!("CenId", S, req, "The CEN."), p!("ChildInstanceId", S, req, "The VPC."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: attach_cen,
    },
    Op {
        name: "DetachCenChildInstance",
        summary: "Detach a VPC from a CEN; its learned routes go.",
        params: &[p!("CenId", S, req, "The CEN."), p!("ChildInstanceId", S, req, "The VPC."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: detach_cen,
    },
    Op {
        name: "DescribeCens",
        summary: "List CENs and their member VPCs.",
        params: &[p!("CenId", S, opt, "Only this CEN.")],
        returns: &[("Cens", "CenId, CenName, Description, ChildInstanceIds."), ("TotalCount", "Number listed.")],
        mutates: false,
        run: describe_cens,
    },
];

fn create_cen(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id(cen::ID_PREFIX);
    transact(agent, p, |doc, _| {
        doc.cens.push(CenSpec {
            id: Some(id.clone()),
            name: p.str("CenName").into(),
            description: p.opt_str("Description").map(Into::into),
            vpcs: Vec::new(),
        });
        Ok(())
    })?;
    Ok(json!({"CenId": id}))
}

fn delete_cen(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let i = find::<CenSpec>(doc, p.str("CenId"))?;
        if let Some(CenInUse { vpcs }) = dependencies::cen_in_use(&doc.cens[i]) {
            return Err(ApiError::conflict(
                code::CEN_HAS_VPCS,
                format!("CEN {} still has VPCs {}; detach them first", p.str("CenId"), vpcs.join(", ")),
            ));
        }
        doc.cens.remove(i);
        Ok(())
    })?;
    ok()
}

fn attach_cen(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let i = find::<CenSpec>(doc, p.str("CenId"))?;
        let vpc = doc.vpcs[find::<VpcSpec>(doc, p.str("ChildInstanceId")).map_err(|mut e| {
            e.field = Some("ChildInstanceId".into());
            e
        })?]
        .name
        .clone();
        doc.cens[i].vpcs.push(vpc);
        Ok(())
    })?;
    ok()
}

fn detach_cen(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let i = find::<CenSpec>(doc, p.str("CenId"))?;
        let vpc = doc.vpcs[find::<VpcSpec>(doc, p.str("ChildInstanceId"))?].name.clone();
        let before = doc.cens[i].vpcs.len();
        doc.cens[i].vpcs.retain(|v| *v != vpc);
        if doc.cens[i].vpcs.len() == before {
            return Err(ApiError::bad(
                code::NOT_ATTACHED,
                "ChildInstanceId",
                format!("VPC {} is not attached to CEN {}", p.str("ChildInstanceId"), p.str("CenId")),
            ));
        }
        Ok(())
    })?;
    ok()
}

fn describe_cens(agent: &mut Agent, p: &Params) -> R<Value> {
    let topology = agent.topology();
    let list: Vec<Value> = topology
        .cens
        .iter()
        .filter(|c| p.opt_str("CenId").is_none_or(|id| c.id == id))
        .map(|c| {
            let members: Vec<&str> = c.vpcs.iter().filter_map(|n| topology.vpc(n)).map(|v| v.id.as_str()).collect();
            json!({"CenId": c.id, "CenName": c.name, "Description": c.description, "ChildInstanceIds": members})
        })
        .collect();
    Ok(json!({"Cens": list, "TotalCount": list.len()}))
}
