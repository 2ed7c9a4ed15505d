//! Route-table operations: custom tables, their association with VSwitches, and the list.

use serde_json::{Value, json};

use super::{
    DRY_RUN, Op, Param, R, S,
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
        dependencies::{self, RouteTableInUse},
        ids::SYSTEM_TABLE,
        kinds::route_table,
        normalize::new_id,
        spec::{RouteTableSpec, VSwitchSpec, VpcSpec},
    },
};

pub static OPS: &[Op] = &[
    Op {
        name: "CreateRouteTable",
        summary: "Create a custom route table in a VPC (at most 10 tables per VPC, the system table included).",
        params: &[
            p!("VpcId", S, req, "The VPC."),
            p!("RouteTableName", S, opt, "2-128 characters, starts with a letter; the ID when omitted."),
            p!("Description", S, opt, "2-256 characters, not starting with http:// or https://."),
            DRY_RUN,
        ],
        returns: &[("RouteTableId", "The new route table.")],
        mutates: true,
        run: create_route_table,
    },
    Op {
        name: "DeleteRouteTable",
        summary: "Delete a custom route table that no VSwitch is associated with.",
        params: &[p!("RouteTableId", S, req, "The route table."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: delete_route_table,
    },
    Op {
        name: "ModifyRouteTableAttributes",
        summary: "Change a route table's name or description (the system table keeps its name).",
        params: &[
            p!("RouteTableId", S, req, "The route table."),
            p!("RouteTableName", S, opt, "New name."),
            p!("Description", S, opt, "New description."),
            DRY_RUN,
        ],
        returns: &[],
        mutates: true,
        run: modify_route_table,
    },
    Op {
        name: "AssociateRouteTable",
        summary: "Associate a custom route table with a VSwitch that uses the system table.",
        params: &[p!("RouteTableId", S, req, "The custom route table."), p!("VSwitchId", S, req, "The VSwitch."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: associate_route_table,
    },
    Op {
        name: "UnassociateRouteTable",
        summary: "Unbind a custom route table from a VSwitch; the VSwitch returns to the system table.",
        params: &[p!("RouteTableId", S, req, "The custom route table."), p!("VSwitchId", S, req, "The VSwitch."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: unassociate_route_table,
    },
    Op {
        name: "DescribeRouteTableList",
        summary: "List route tables.",
        params: &[
            p!("VpcId", S, opt, "Only tables of this VPC."),
            p!("RouteTableId", S, opt, "Only this table."),
            p!("RouteTableName", S, opt, "Only tables with this name."),
        ],
        returns: &[
            ("RouterTableList", "RouteTableId, RouteTableName, RouteTableType (System|Custom), VpcId, VRouterId, VSwitchIds, Description."),
            ("TotalCount", "Number of tables listed."),
        ],
        mutates: false,
        run: describe_route_tables,
    },
];

fn create_route_table(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id(route_table::ID_PREFIX);
    transact(agent, p, |doc, _| {
        let i = find::<VpcSpec>(doc, p.str("VpcId"))?;
        doc.vpcs[i].route_tables.push(RouteTableSpec {
            id: Some(id.clone()),
            name: name_or(p.opt_str("RouteTableName"), &id),
            description: p.opt_str("Description").map(Into::into),
            routes: Vec::new(),
        });
        Ok(())
    })?;
    Ok(json!({"RouteTableId": id}))
}

fn system_table_denied(what: &str) -> ApiError {
    ApiError::bad(code::SYSTEM_ROUTE_TABLE, "RouteTableId", format!("the system route table cannot be {what}"))
}

fn delete_route_table(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (i, j) = find::<RouteTableSpec>(doc, p.str("RouteTableId"))?;
        let vpc = &mut doc.vpcs[i];
        let name = vpc.route_tables[j].name.clone();
        if name == SYSTEM_TABLE {
            return Err(system_table_denied("deleted"));
        }
        if let Some(RouteTableInUse { vswitch_ids }) = dependencies::route_table_in_use(vpc, &name) {
            return Err(ApiError::conflict(
                code::ROUTE_TABLE_HAS_VSWITCHES,
                format!("route table {} is associated with {}; unbind them first", p.str("RouteTableId"), vswitch_ids.join(", ")),
            ));
        }
        vpc.route_tables.remove(j);
        Ok(())
    })?;
    ok()
}

fn modify_route_table(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (i, j) = find::<RouteTableSpec>(doc, p.str("RouteTableId"))?;
        let vpc = &mut doc.vpcs[i];
        if let Some(name) = p.opt_str("RouteTableName") {
            if vpc.route_tables[j].name == SYSTEM_TABLE && name != SYSTEM_TABLE {
                return Err(system_table_denied("renamed"));
            }
            let old = std::mem::replace(&mut vpc.route_tables[j].name, name.into());
            for s in vpc.vswitches.iter_mut().filter(|s| s.route_table.as_deref() == Some(old.as_str())) {
                s.route_table = Some(name.into());
            }
        }
        if let Some(d) = p.opt_str("Description") {
            vpc.route_tables[j].description = Some(d.into());
        }
        Ok(())
    })?;
    ok()
}

fn associate_route_table(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (ti, tj) = find::<RouteTableSpec>(doc, p.str("RouteTableId"))?;
        let (si, sj) = find::<VSwitchSpec>(doc, p.str("VSwitchId"))?;
        if ti != si {
            return Err(ApiError::bad(code::OTHER_VPC, "VSwitchId", "the VSwitch and the route table belong to different VPCs"));
        }
        let vpc = &mut doc.vpcs[ti];
        let table = vpc.route_tables[tj].name.clone();
        if table == SYSTEM_TABLE {
            return Err(system_table_denied("associated explicitly (unbind the custom table instead)"));
        }
        let vswitch = &mut vpc.vswitches[sj];
        if let Some(current) = vswitch.route_table.as_deref().filter(|t| *t != SYSTEM_TABLE) {
            return Err(ApiError::conflict(
                code::ALREADY_ASSOCIATED,
                format!("VSwitch {} is associated with custom route table '{current}'; unbind it first", p.str("VSwitchId")),
            ));
        }
        vswitch.route_table = Some(table);
        Ok(())
    })?;
    ok()
}

fn unassociate_route_table(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (ti, tj) = find::<RouteTableSpec>(doc, p.str("RouteTableId"))?;
        let (si, sj) = find::<VSwitchSpec>(doc, p.str("VSwitchId"))?;
        let table = doc.vpcs[ti].route_tables[tj].name.clone();
        if ti != si || doc.vpcs[si].vswitches[sj].route_table.as_deref() != Some(table.as_str()) || table == SYSTEM_TABLE {
            return Err(ApiError::bad(
                code::NOT_ASSOCIATED,
                "VSwitchId",
                format!("VSwitch {} is not associated with route table {}", p.str("VSwitchId"), p.str("RouteTableId")),
            ));
        }
        doc.vpcs[si].vswitches[sj].route_table = None;
        Ok(())
    })?;
    ok()
}

fn describe_route_tables(agent: &mut Agent, p: &Params) -> R<Value> {
    let mut list = Vec::new();
    for vpc in &agent.topology().vpcs {
        if p.opt_str("VpcId").is_some_and(|id| vpc.id != id) {
            continue;
        }
        for t in &vpc.route_tables {
            if p.opt_str("RouteTableId").is_some_and(|id| t.id != id) || p.opt_str("RouteTableName").is_some_and(|n| t.name != n) {
                continue;
            }
            let vswitches: Vec<&String> = vpc.vswitches.iter().filter(|s| s.route_table == t.name).map(|s| &s.id).collect();
            list.push(json!({
                "RouteTableId": t.id, "RouteTableName": t.name, "VpcId": vpc.id, "VRouterId": router_id(&vpc.id),
                "RouteTableType": if t.is_system { "System" } else { "Custom" }, "VSwitchIds": vswitches,
                "Description": t.description, "RouteEntryCount": t.routes.len() + vpc.system_routes().len(),
            }));
        }
    }
    Ok(json!({"RouterTableList": list, "TotalCount": list.len()}))
}
