//! Route-entry operations: custom entries by the cloud API's next-hop names or as a document
//! object, and the list of a table's entries (system, CEN and custom) with each hop's state.

use ipnet::Ipv4Net;
use serde_json::{Value, json};

use super::{DRY_RUN, Kind::Object, Op, Param, R, S, change, lookup::find, ok, p};
use crate::{
    agent::{Agent, incremental::Edit},
    api::{
        Params,
        error::{ApiError, code},
    },
    model::{
        Topology,
        kinds::route_entry,
        normalize::new_id,
        spec::{NextHopSpec, RouteSpec, RouteTableSpec, TopologySpec},
        topology::{HopTarget, NextHop, Origin},
    },
};

pub static OPS: &[Op] = &[
    Op {
        name: "CreateRouteEntry",
        summary: "Add a custom route entry. Its destination may not equal a system entry's; a more specific one overrides it.",
        params: &[
            p!("RouteTableId", S, req, "The route table."),
            p!("DestinationCidrBlock", S, req, "The destination, e.g. 0.0.0.0/0."),
            p!(
                "NextHopType",
                S,
                opt,
                "Instance or NetworkInterface (an ENI), Gateway (VpnGateway, RouterInterface to a VBR), Vpc (RouterInterface to a VPC), or Blackhole."
            ),
            p!("NextHopId", S, opt, "The ENI, gateway or VPC (ID or name)."),
            p!(
                "NextHop",
                Object,
                opt,
                "The next hop as in a topology file, e.g. {\"type\": \"ecmp\", \"hops\": [{\"eni\": \"n1\"}, {\"eni\": \"n2\"}]}."
            ),
            p!("RouteEntryName", S, opt, "2-128 characters, starts with a letter."),
            p!("Description", S, opt, "2-256 characters, not starting with http:// or https://."),
            DRY_RUN,
        ],
        returns: &[("RouteEntryId", "The new entry.")],
        mutates: true,
        run: create_route_entry,
    },
    Op {
        name: "DeleteRouteEntry",
        summary: "Delete a custom route entry (system entries cannot be deleted).",
        params: &[
            p!("RouteEntryId", S, opt, "The entry; or give RouteTableId and DestinationCidrBlock."),
            p!("RouteTableId", S, opt, "The route table."),
            p!("DestinationCidrBlock", S, opt, "The entry's destination."),
            DRY_RUN,
        ],
        returns: &[],
        mutates: true,
        run: delete_route_entry,
    },
    Op {
        name: "DescribeRouteEntryList",
        summary: "List the entries of a route table, system and custom.",
        params: &[
            p!("RouteTableId", S, req, "The route table."),
            p!("RouteEntryType", S, opt, "System or Custom."),
            p!("DestinationCidrBlock", S, opt, "Only the entry for this destination."),
        ],
        returns: &[
            (
                "RouteEntrys",
                "RouteEntryId, RouteTableId, DestinationCidrBlock, Type (System|Custom), NextHopType, NextHopId, Status; an ECMP or active/standby entry also NextHops: NextHopType, NextHopId, Name, Weight, Status (Active|Standby|Down), Share.",
            ),
            ("TotalCount", "Number of entries listed."),
        ],
        mutates: false,
        run: describe_route_entries,
    },
];

/// The next hop of a CreateRouteEntry request, by the cloud API's names or as a document object.
fn next_hop(doc: &TopologySpec, vpc: usize, p: &Params) -> R<NextHopSpec> {
    if let Some(hop) = p.object("NextHop") {
        let mut hop: NextHopSpec = hop.map_err(|e| ApiError::bad(code::INVALID_PARAMETER, "NextHop", format!("not a next hop: {e}")))?;
        // Hops by ID, as the API's NextHopList names them, or by name.
        let v = &doc.vpcs[vpc];
        if let NextHopSpec::Ecmp { hops } | NextHopSpec::ActiveStandby { hops, .. } = &mut hop {
            for h in hops {
                if let Some(eni) = h.eni.as_mut().and_then(|id| v.enis.iter().find(|e| e.id.as_deref() == Some(id.as_str()))) {
                    h.eni = Some(eni.name.clone());
                }
                if let Some(gw) = h.gateway.as_mut().and_then(|id| v.gateways.iter().find(|g| g.id.as_deref() == Some(id.as_str()))) {
                    h.gateway = Some(gw.name.clone());
                }
            }
        }
        return Ok(hop);
    }
    let target =
        || p.opt_str("NextHopId").ok_or_else(|| ApiError::bad(code::MISSING_PARAMETER, "NextHopId", "this NextHopType needs NextHopId"));
    let missing = |what: &str, id: &str| {
        ApiError::bad(crate::model::error::code::NEXT_HOP_NOT_FOUND, "NextHopId", format!("no {what} {id} in the route table's VPC"))
    };
    match p.opt_str("NextHopType") {
        Some("Instance" | "NetworkInterface") => {
            let id = target()?;
            let eni = doc.vpcs[vpc].enis.iter().find(|e| e.id.as_deref() == Some(id) || e.name == id).ok_or_else(|| missing("ENI", id))?;
            Ok(NextHopSpec::Eni { eni: eni.name.clone() })
        }
        Some("Gateway" | "VpnGateway" | "RouterInterface") if !target()?.starts_with("vpc-") => {
            let id = target()?;
            let gw = doc.vpcs[vpc]
                .gateways
                .iter()
                .find(|g| g.id.as_deref() == Some(id) || g.name == id)
                .ok_or_else(|| missing("gateway", id))?;
            Ok(NextHopSpec::Gateway { gateway: gw.name.clone() })
        }
        Some("Vpc" | "RouterInterface") => {
            let id = target()?;
            let peer = doc.vpcs.iter().find(|v| v.id.as_deref() == Some(id) || v.name == id);
            let peer =
                peer.ok_or_else(|| ApiError::bad(crate::model::error::code::NEXT_HOP_NOT_FOUND, "NextHopId", format!("no VPC {id}")))?;
            Ok(NextHopSpec::Vpc { vpc: peer.name.clone() })
        }
        Some("Blackhole") => Ok(NextHopSpec::Blackhole),
        Some(other) => Err(ApiError::bad(
            code::INVALID_PARAMETER,
            "NextHopType",
            format!("unknown NextHopType '{other}' (Instance, NetworkInterface, Gateway, Vpc, Blackhole; or give NextHop)"),
        )),
        None => Err(ApiError::bad(code::MISSING_PARAMETER, "NextHopType", "give NextHopType (and NextHopId) or NextHop")),
    }
}

fn create_route_entry(agent: &mut Agent, p: &Params) -> R<Value> {
    let doc = &agent.stored().doc;
    let (i, j) = find::<RouteTableSpec>(doc, p.str("RouteTableId"))?;
    let route = RouteSpec {
        id: Some(new_id(route_entry::ID_PREFIX)),
        dst: p.str("DestinationCidrBlock").into(),
        next_hop: next_hop(doc, i, p)?,
        name: p.opt_str("RouteEntryName").map(Into::into),
        description: p.opt_str("Description").map(Into::into),
    };
    let id = route.id.clone();
    change(agent, p, Edit::AddRoute { vpc: i, table: j, route })?;
    Ok(json!({"RouteEntryId": id}))
}

fn delete_route_entry(agent: &mut Agent, p: &Params) -> R<Value> {
    let (vpc, table, route) = find_entry(&agent.stored().doc, agent.topology(), p)?;
    change(agent, p, Edit::RemoveRoute { vpc, table, route })?;
    ok()
}

/// The custom entry a DeleteRouteEntry names: (VPC, table, entry) positions in `doc`.
fn find_entry(doc: &TopologySpec, topology: &Topology, p: &Params) -> R<(usize, usize, usize)> {
    if let Some(id) = p.opt_str("RouteEntryId") {
        return find::<RouteSpec>(doc, id);
    }
    let (Some(table_id), Some(dst)) = (p.opt_str("RouteTableId"), p.opt_str("DestinationCidrBlock")) else {
        return Err(ApiError::bad(code::MISSING_PARAMETER, "RouteEntryId", "give RouteEntryId, or RouteTableId and DestinationCidrBlock"));
    };
    let (i, j) = find::<RouteTableSpec>(doc, table_id)?;
    let parsed: Option<Ipv4Net> = dst.parse().ok();
    let vpc = topology.vpcs.iter().find(|v| Some(&v.id) == doc.vpcs[i].id.as_ref());
    if let (Some(vpc), Some(net)) = (vpc, parsed)
        && vpc.system_routes().iter().any(|(d, _)| *d == net)
    {
        return Err(ApiError::bad(
            code::SYSTEM_ROUTE_ENTRY,
            "DestinationCidrBlock",
            format!("{net} is a system route entry; it cannot be deleted"),
        ));
    }
    let k = doc.vpcs[i].route_tables[j]
        .routes
        .iter()
        .position(|r| r.dst == dst || r.dst.parse::<Ipv4Net>().ok() == parsed && parsed.is_some())
        .ok_or_else(|| ApiError::not_found(code::ROUTE_ENTRY_NOT_FOUND, "DestinationCidrBlock", dst))?;
    Ok((i, j, k))
}

fn describe_route_entries(agent: &mut Agent, p: &Params) -> R<Value> {
    let table_id = p.str("RouteTableId");
    let topology = agent.topology();
    let (vpc, table) = topology
        .vpcs
        .iter()
        .find_map(|v| v.route_tables.iter().find(|t| t.id == table_id).map(|t| (v, t)))
        .ok_or_else(|| ApiError::not_found(code::ROUTE_TABLE_NOT_FOUND, "RouteTableId", table_id))?;
    let binding = agent.binding();
    let mut list = Vec::new();
    for view in topology.routes(vpc, table) {
        let kind = match view.origin {
            Origin::System => "System",
            Origin::Cen => "CEN",
            Origin::Custom => "Custom",
        };
        let custom = view.id.as_ref().and_then(|id| table.routes.iter().find(|r| &r.id == id));
        let mut entry = json!({
            "RouteEntryId": view.id, "RouteTableId": table.id, "DestinationCidrBlock": view.dst.to_string(), "Type": kind,
            "NextHopType": hop_type(&view.next_hop), "NextHopId": hop_id(topology, vpc, &view.next_hop),
            "RouteEntryName": custom.and_then(|r| r.name.clone()), "Description": custom.and_then(|r| r.description.clone()),
            "Status": "Available",
        });
        if let (NextHop::Group(group), Some(id)) = (&view.next_hop, &view.id) {
            let weights: Vec<u8> = group.hops.iter().map(|h| h.weight).collect();
            let live: Vec<bool> = group
                .hops
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    hop_target_id(vpc, &h.target).is_some_and(|t| binding.ifindex.contains_key(&t))
                        && !binding.down.contains(&(id.clone(), i))
                })
                .collect();
            let slots = crate::model::ecmp::slots(&weights, &live);
            let hops: Vec<Value> = group
                .hops
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let share = slots.iter().filter(|s| usize::from(**s) == i).count();
                    let status = if !live[i] {
                        "Down"
                    } else if share > 0 {
                        "Active"
                    } else {
                        "Standby"
                    };
                    let kind = match h.target {
                        HopTarget::Eni(_) => "NetworkInterface",
                        HopTarget::Gateway(_) => "Gateway",
                    };
                    json!({"NextHopType": kind, "NextHopId": hop_target_id(vpc, &h.target), "Name": h.target.name(), "Weight": h.weight,
                           "Status": status, "Share": format!("{:.1}%", share as f64 * 100.0 / slots.len() as f64)})
                })
                .collect();
            entry["NextHops"] = json!(hops);
        }
        list.push(entry);
    }
    list.retain(|e| p.opt_str("RouteEntryType").is_none_or(|t| e["Type"] == t));
    list.retain(|e| p.opt_str("DestinationCidrBlock").is_none_or(|d| e["DestinationCidrBlock"] == d));
    Ok(json!({"RouteEntrys": list, "TotalCount": list.len()}))
}

fn hop_target_id(vpc: &crate::model::Vpc, target: &HopTarget) -> Option<String> {
    match target {
        HopTarget::Eni(n) => vpc.eni(n).map(|e| e.id.clone()),
        HopTarget::Gateway(n) => vpc.gateway(n).map(|g| g.id.clone()),
    }
}

fn hop_type(hop: &NextHop) -> &'static str {
    match hop {
        NextHop::Local => "Local",
        NextHop::Host => "Service",
        NextHop::Eni { .. } => "NetworkInterface",
        NextHop::Gateway { .. } => "Gateway",
        NextHop::Vpc { .. } => "RouterInterface",
        NextHop::Group(g) if g.active_standby => "ActiveStandby",
        NextHop::Group(_) => "Ecmp",
        NextHop::Blackhole => "Blackhole",
    }
}

fn hop_id(topology: &Topology, vpc: &crate::model::Vpc, hop: &NextHop) -> Option<String> {
    match hop {
        NextHop::Eni { eni } => vpc.eni(eni).map(|e| e.id.clone()),
        NextHop::Gateway { gateway } => vpc.gateway(gateway).map(|g| g.id.clone()),
        NextHop::Vpc { vpc } => topology.vpc(vpc).map(|v| v.id.clone()),
        _ => None,
    }
}
