//! Multicast operations (the guide's `multis_admin` / `multic_admin`): groups per VPC, their
//! senders and members, and packet statistics per group and per member.

use serde_json::{Value, json};

use super::{DRY_RUN, Op, Param, R, S, lookup::find, ok, p, transact};
use crate::{
    agent::Agent,
    api::{
        Params,
        error::{ApiError, code},
    },
    model::{
        ids::mcast_member,
        kinds::multicast,
        locate,
        normalize::new_id,
        spec::{EniSpec, McastGroupSpec, TopologySpec, VpcSpec},
    },
};

pub static OPS: &[Op] = &[
    Op {
        name: "CreateMulticastGroup",
        summary: "Create a multicast group in a VPC: a group address, its senders and members (ENIs of the VPC).",
        params: &[
            p!("VpcId", S, req, "The VPC."),
            p!("GroupAddress", S, req, "In 224.0.0.0/4, outside 224.0.0.0/24."),
            p!("SenderIds", S, opt, "ENIs that may send to the group (IDs or names, comma separated); at most 10 groups per sender."),
            p!("MemberIds", S, opt, "ENIs that receive (IDs or names, comma separated); at most 128 per group, 10 groups per member."),
            DRY_RUN,
        ],
        returns: &[("GroupId", "The new group.")],
        mutates: true,
        run: create,
    },
    Op {
        name: "DeleteMulticastGroup",
        summary: "Delete a multicast group.",
        params: &[p!("GroupId", S, req, "The group."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: delete,
    },
    Op {
        name: "JoinMulticastGroup",
        summary: "Add an ENI to a group as a member (it receives) or a sender; applies at once.",
        params: &[
            p!("GroupId", S, req, "The group."),
            p!("NetworkInterfaceId", S, req, "The ENI (ID or name)."),
            p!("Role", S, opt, "Member (the default) or Sender."),
            DRY_RUN,
        ],
        returns: &[],
        mutates: true,
        run: join,
    },
    Op {
        name: "LeaveMulticastGroup",
        summary: "Take an ENI out of a group's members (or senders).",
        params: &[
            p!("GroupId", S, req, "The group."),
            p!("NetworkInterfaceId", S, req, "The ENI (ID or name)."),
            p!("Role", S, opt, "Member (the default) or Sender."),
            DRY_RUN,
        ],
        returns: &[],
        mutates: true,
        run: leave,
    },
    Op {
        name: "DescribeMulticastGroups",
        summary: "List multicast groups with their senders and members.",
        params: &[p!("VpcId", S, opt, "Only groups of this VPC."), p!("GroupId", S, opt, "Only this group.")],
        returns: &[("Groups", "GroupId, GroupAddress, VpcId, Senders, Members (ENI names)."), ("TotalCount", "Number listed.")],
        mutates: false,
        run: describe,
    },
    Op {
        name: "DescribeMulticastGroupStatistics",
        summary: "Packets per group (sent by its senders and replicated; Refused: from non-senders) and per member (copies delivered; Refused: by its security groups).",
        params: &[p!("GroupId", S, opt, "Only this group.")],
        returns: &[(
            "Groups",
            "GroupId, GroupAddress, VpcName, Packets, Bytes, Refused, Members: [{Member, NetworkInterfaceId, Packets, Bytes, Refused}].",
        )],
        mutates: false,
        run: statistics,
    },
];

/// The name of ENI `id` (ID or name) of VPC `i`.
fn eni_name(doc: &TopologySpec, i: usize, id: &str, field: &str) -> R<String> {
    doc.vpcs[i]
        .enis
        .iter()
        .find(|e| e.id.as_deref() == Some(id) || e.name == id || e.ip.as_deref() == Some(id))
        .map(|e| e.name.clone())
        .ok_or_else(|| ApiError::not_found(code::ENI_NOT_FOUND, field, id))
}

fn names(doc: &TopologySpec, i: usize, list: Option<&str>, field: &str) -> R<Vec<String>> {
    list.into_iter().flat_map(|l| l.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(|id| eni_name(doc, i, id, field)).collect()
}

fn create(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id(multicast::ID_PREFIX);
    transact(agent, p, |doc, _| {
        let i = find::<VpcSpec>(doc, p.str("VpcId"))?;
        let senders = names(doc, i, p.opt_str("SenderIds"), "SenderIds")?;
        let members = names(doc, i, p.opt_str("MemberIds"), "MemberIds")?;
        doc.vpcs[i].multicast_groups.push(McastGroupSpec {
            id: Some(id.clone()),
            group: p.str("GroupAddress").trim().to_string(),
            senders,
            members,
        });
        Ok(())
    })?;
    Ok(json!({"GroupId": id}))
}

fn delete(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (i, j) = find::<McastGroupSpec>(doc, p.str("GroupId"))?;
        doc.vpcs[i].multicast_groups.remove(j);
        Ok(())
    })?;
    ok()
}

fn role_sender(p: &Params) -> R<bool> {
    match p.opt_str("Role").map(str::to_ascii_lowercase).as_deref() {
        None | Some("member") => Ok(false),
        Some("sender") => Ok(true),
        Some(other) => Err(ApiError::bad(code::INVALID_PARAMETER, "Role", format!("Role is Member or Sender, not '{other}'"))),
    }
}

fn join(agent: &mut Agent, p: &Params) -> R<Value> {
    let sender = role_sender(p)?;
    transact(agent, p, |doc, _| {
        let (i, j) = find::<McastGroupSpec>(doc, p.str("GroupId"))?;
        let id = p.str("NetworkInterfaceId");
        let name = match eni_name(doc, i, id, "NetworkInterfaceId") {
            Ok(name) => name,
            Err(e) if locate::find::<EniSpec>(doc, id).is_some() => {
                return Err(ApiError::conflict(
                    code::OTHER_VPC,
                    format!("ENI {id} is in another VPC: a group never reaches beyond its VPC ({e})"),
                ));
            }
            Err(e) => return Err(e),
        };
        let group = &mut doc.vpcs[i].multicast_groups[j];
        let list = if sender { &mut group.senders } else { &mut group.members };
        if list.contains(&name) {
            return Err(ApiError::conflict(
                code::MCAST_ALREADY,
                format!("ENI {name} is already a {} of the group", if sender { "sender" } else { "member" }),
            ));
        }
        list.push(name);
        Ok(())
    })?;
    ok()
}

fn leave(agent: &mut Agent, p: &Params) -> R<Value> {
    let sender = role_sender(p)?;
    transact(agent, p, |doc, _| {
        let (i, j) = find::<McastGroupSpec>(doc, p.str("GroupId"))?;
        let name = eni_name(doc, i, p.str("NetworkInterfaceId"), "NetworkInterfaceId")?;
        let group = &mut doc.vpcs[i].multicast_groups[j];
        let list = if sender { &mut group.senders } else { &mut group.members };
        let before = list.len();
        list.retain(|n| *n != name);
        if list.len() == before {
            return Err(ApiError::conflict(
                code::MCAST_NOT_IN,
                format!("ENI {name} is not a {} of the group", if sender { "sender" } else { "member" }),
            ));
        }
        Ok(())
    })?;
    ok()
}

fn describe(agent: &mut Agent, p: &Params) -> R<Value> {
    let list: Vec<Value> = agent
        .topology()
        .vpcs
        .iter()
        .filter(|v| p.opt_str("VpcId").is_none_or(|id| v.id == id))
        .flat_map(|v| v.multicast_groups.iter().map(move |g| (v, g)))
        .filter(|(_, g)| p.opt_str("GroupId").is_none_or(|id| g.id == id))
        .map(|(v, g)| json!({"GroupId": g.id, "GroupAddress": g.group.to_string(), "VpcId": v.id, "Senders": g.senders, "Members": g.members}))
        .collect();
    Ok(json!({"Groups": list, "TotalCount": list.len()}))
}

fn statistics(agent: &mut Agent, p: &Params) -> R<Value> {
    let dataplane = agent.dataplane();
    if !dataplane.is_up() {
        return Err(ApiError::new(503, code::UNAVAILABLE, "nothing is applied: no statistics"));
    }
    let ids = &agent.stored().ids;
    let unavailable = |e: anyhow::Error| ApiError::new(503, code::UNAVAILABLE, format!("{e:#}"));
    let groups = crate::dataplane::stats::sums::<vpc_common::mcast::McastCounters>(
        &dataplane.pins,
        vpc_common::maps::MCAST_STATS,
        ids.mcast_groups.values().copied(),
    )
    .map_err(unavailable)?;
    let members = crate::dataplane::stats::sums::<vpc_common::mcast::McastCounters>(
        &dataplane.pins,
        vpc_common::maps::MCAST_MEMBER_STATS,
        ids.mcast_members.values().copied(),
    )
    .map_err(unavailable)?;
    let mut out = Vec::new();
    for vpc in &agent.topology().vpcs {
        for g in vpc.multicast_groups.iter().filter(|g| p.opt_str("GroupId").is_none_or(|id| g.id == id)) {
            let c = ids.mcast_groups.get(&g.id).and_then(|n| groups.get(n)).copied().unwrap_or_default();
            let list: Vec<Value> = g
                .members
                .iter()
                .filter_map(|name| vpc.eni(name))
                .map(|e| {
                    let m = ids.mcast_members.get(&mcast_member(&g.id, &e.id)).and_then(|n| members.get(n)).copied().unwrap_or_default();
                    json!({"Member": e.name, "NetworkInterfaceId": e.id, "Packets": m.packets, "Bytes": m.bytes, "Refused": m.refused})
                })
                .collect();
            out.push(json!({
                "GroupId": g.id, "GroupAddress": g.group.to_string(), "VpcId": vpc.id, "VpcName": vpc.name,
                "Packets": c.packets, "Bytes": c.bytes, "Refused": c.refused, "Members": list,
            }));
        }
    }
    Ok(json!({"Groups": out}))
}
