//! Security-group operations: groups, their rules, ENI membership, and rule hit counters.
//! Every edit is a document transaction like the other operations (see `super::transact`);
//! authorizing and revoking rules say what they touch (`super::change`).

use serde_json::{Value, json};

use super::{
    DRY_RUN,
    Kind::Integer,
    Op, Param, R, S, change,
    lookup::{find, group_name},
    name_or, ok, p, transact,
};
use crate::{
    agent::{Agent, incremental::Edit},
    api::{
        Params,
        error::{ApiError, code},
    },
    model::{
        dependencies::{self, SecurityGroupInUse},
        ids::intra_rule,
        kinds::security_group,
        normalize::new_id,
        security::{DEFAULT_GROUP, Peer, SecurityGroup, SgRule, rule_key},
        spec::{EniSpec, PeerSpec, SecurityGroupSpec, SgRuleSpec, TopologySpec, VpcSpec},
    },
};

// What authorizing and revoking rules in either direction share.
const GROUP: Param = p!("SecurityGroupId", S, req, "The group.");
const PROTOCOL: Param = p!("IpProtocol", S, req, "tcp, udp, icmp, gre or all.");
const POLICY: Param = p!("Policy", S, opt, "accept (the default) or drop.");
const PRIORITY: Param = p!("Priority", Integer, opt, "1 (the default, first) to 100; at the same priority drop beats accept.");
const DESCRIPTION: Param = p!("Description", S, opt, "2-256 characters.");
const RULE_IDS: Param = p!("SecurityGroupRuleId", S, opt, "Rule IDs, comma separated; or give the rule's parameters.");
const RULE_ID: &[(&str, &str)] = &[("SecurityGroupRuleId", "The rule (the existing one when the group already has it).")];

pub static OPS: &[Op] = &[
    Op {
        name: "CreateSecurityGroup",
        summary: "Create a security group in a VPC (at most 100 per VPC). Members reach each other unless InnerAccessPolicy is Drop.",
        params: &[
            p!("VpcId", S, req, "The VPC."),
            p!("SecurityGroupName", S, opt, "2-128 characters, starts with a letter, unique in the VPC; the ID when omitted."),
            p!("Description", S, opt, "2-256 characters, not starting with http:// or https://."),
            p!("InnerAccessPolicy", S, opt, "Accept (default) or Drop: whether members reach each other when no rule says otherwise."),
            DRY_RUN,
        ],
        returns: &[("SecurityGroupId", "The new group.")],
        mutates: true,
        run: create_group,
    },
    Op {
        name: "DeleteSecurityGroup",
        summary: "Delete a security group no ENI is in and no other group's rule names (the default group stays).",
        params: &[p!("SecurityGroupId", S, req, "The group."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: delete_group,
    },
    Op {
        name: "ModifySecurityGroupAttribute",
        summary: "Change a security group's name or description.",
        params: &[
            p!("SecurityGroupId", S, req, "The group."),
            p!("SecurityGroupName", S, opt, "New name (the default group keeps its name)."),
            p!("Description", S, opt, "New description."),
            DRY_RUN,
        ],
        returns: &[],
        mutates: true,
        run: modify_group,
    },
    Op {
        name: "ModifySecurityGroupPolicy",
        summary: "Set whether the group's members reach each other (the intra-group policy); applies to established connections within 1 s.",
        params: &[p!("SecurityGroupId", S, req, "The group."), p!("InnerAccessPolicy", S, req, "Accept or Drop."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: modify_policy,
    },
    Op {
        name: "AuthorizeSecurityGroup",
        summary: "Add an ingress rule: what may enter the group's ENIs. Applies to established connections within 1 s.",
        params: &[
            GROUP,
            PROTOCOL,
            p!("PortRange", S, opt, "Destination ports start/end, e.g. 22/22; -1/-1 (the default) for all; a range only for tcp and udp."),
            p!("SourceCidrIp", S, opt, "Where the packets come from, a CIDR block or an address; or give SourceGroupId."),
            p!("SourceGroupId", S, opt, "Packets from the members of this group of the same VPC (ID or name)."),
            POLICY,
            PRIORITY,
            DESCRIPTION,
            DRY_RUN,
        ],
        returns: RULE_ID,
        mutates: true,
        run: authorize_ingress,
    },
    Op {
        name: "AuthorizeSecurityGroupEgress",
        summary: "Add an egress rule: what the group's ENIs may send. Applies to established connections within 1 s.",
        params: &[
            GROUP,
            PROTOCOL,
            p!(
                "PortRange",
                S,
                opt,
                "Destination ports start/end, e.g. 443/443; -1/-1 (the default) for all; a range only for tcp and udp."
            ),
            p!("DestCidrIp", S, opt, "Where the packets go, a CIDR block or an address; or give DestGroupId."),
            p!("DestGroupId", S, opt, "Packets to the members of this group of the same VPC (ID or name)."),
            POLICY,
            PRIORITY,
            DESCRIPTION,
            DRY_RUN,
        ],
        returns: RULE_ID,
        mutates: true,
        run: authorize_egress,
    },
    Op {
        name: "RevokeSecurityGroup",
        summary: "Remove ingress rules, by ID or by their parameters. Established connections they allowed are cut within 1 s.",
        params: &[
            GROUP,
            RULE_IDS,
            p!("IpProtocol", S, opt, "As authorized."),
            p!("PortRange", S, opt, "As authorized."),
            p!("SourceCidrIp", S, opt, "As authorized."),
            p!("SourceGroupId", S, opt, "As authorized."),
            p!("Policy", S, opt, "As authorized."),
            p!("Priority", Integer, opt, "As authorized."),
            DRY_RUN,
        ],
        returns: &[],
        mutates: true,
        run: revoke_ingress,
    },
    Op {
        name: "RevokeSecurityGroupEgress",
        summary: "Remove egress rules, by ID or by their parameters. Established connections they allowed are cut within 1 s.",
        params: &[
            GROUP,
            RULE_IDS,
            p!("IpProtocol", S, opt, "As authorized."),
            p!("PortRange", S, opt, "As authorized."),
            p!("DestCidrIp", S, opt, "As authorized."),
            p!("DestGroupId", S, opt, "As authorized."),
            p!("Policy", S, opt, "As authorized."),
            p!("Priority", Integer, opt, "As authorized."),
            DRY_RUN,
        ],
        returns: &[],
        mutates: true,
        run: revoke_egress,
    },
    Op {
        name: "DescribeSecurityGroups",
        summary: "List security groups.",
        params: &[
            p!("VpcId", S, opt, "Only groups of this VPC."),
            p!("SecurityGroupId", S, opt, "Only this group."),
            p!("SecurityGroupName", S, opt, "Only groups with this name."),
            p!("NetworkInterfaceId", S, opt, "Only the groups this ENI is in."),
        ],
        returns: &[
            (
                "SecurityGroups",
                "SecurityGroupId, SecurityGroupName, VpcId, Description, InnerAccessPolicy, IsDefault, RuleCount, NetworkInterfaceIds.",
            ),
            ("TotalCount", "Number listed."),
        ],
        mutates: false,
        run: describe_groups,
    },
    Op {
        name: "DescribeSecurityGroupAttribute",
        summary: "A security group's rules in the order they are tried, with each rule's hit counters from the data path.",
        params: &[p!("SecurityGroupId", S, req, "The group."), p!("Direction", S, opt, "ingress, egress or all (the default).")],
        returns: &[
            ("SecurityGroupId", "The group."),
            ("SecurityGroupName", "Its name."),
            ("VpcId", "Its VPC."),
            ("Description", "Its description."),
            ("InnerAccessPolicy", "Accept or Drop."),
            (
                "Permissions",
                "SecurityGroupRuleId, Direction, Policy, IpProtocol, PortRange, SourceCidrIp|SourceGroupId (ingress), DestCidrIp|DestGroupId (egress), Priority, Description, Packets, Bytes.",
            ),
            ("InnerAccess", "Packets and Bytes of the connections the intra-group policy decided (every packet of either direction)."),
            ("StatisticsAvailable", "false when nothing is applied (the counters are then absent)."),
        ],
        mutates: false,
        run: describe_attribute,
    },
    Op {
        name: "JoinSecurityGroup",
        summary: "Put an ENI in one more security group of its VPC (at most 5); applies within 1 s.",
        params: &[p!("SecurityGroupId", S, req, "The group."), p!("NetworkInterfaceId", S, req, "The ENI."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: join,
    },
    Op {
        name: "LeaveSecurityGroup",
        summary: "Take an ENI out of a security group (an ENI stays in at least one).",
        params: &[p!("SecurityGroupId", S, req, "The group."), p!("NetworkInterfaceId", S, req, "The ENI."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: leave,
    },
];

/// `Accept`/`Drop` (any case) as the document's `accept`/`drop`.
fn inner_policy(p: &Params) -> R<Option<String>> {
    match p.opt_str("InnerAccessPolicy").map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some(policy @ ("accept" | "drop")) => Ok(Some(policy.to_string())),
        Some(other) => {
            Err(ApiError::bad(code::INVALID_PARAMETER, "InnerAccessPolicy", format!("InnerAccessPolicy is Accept or Drop, not '{other}'")))
        }
    }
}

fn create_group(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id(security_group::ID_PREFIX);
    let intra_group = inner_policy(p)?;
    transact(agent, p, |doc, _| {
        let i = find::<VpcSpec>(doc, p.str("VpcId"))?;
        doc.vpcs[i].security_groups.push(SecurityGroupSpec {
            id: Some(id.clone()),
            name: name_or(p.opt_str("SecurityGroupName"), &id),
            description: p.opt_str("Description").map(Into::into),
            intra_group,
            rules: Vec::new(),
        });
        Ok(())
    })?;
    Ok(json!({"SecurityGroupId": id}))
}

fn delete_group(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (i, j) = find::<SecurityGroupSpec>(doc, p.str("SecurityGroupId"))?;
        let vpc = &doc.vpcs[i];
        let name = vpc.security_groups[j].name.clone();
        if name == DEFAULT_GROUP {
            return Err(ApiError::conflict(code::SG_DEFAULT, "the VPC's default security group is deleted with the VPC"));
        }
        match dependencies::security_group_in_use(vpc, &name) {
            Some(SecurityGroupInUse::Members(enis)) => {
                return Err(ApiError::conflict(
                    code::SG_IN_USE,
                    format!("ENIs {} are in security group {name}; move them out first", enis.join(", ")),
                ));
            }
            Some(SecurityGroupInUse::NamedByRules(groups)) => {
                return Err(ApiError::conflict(
                    code::SG_IN_USE,
                    format!("rules of security groups {} name group {name}; revoke them first", groups.join(", ")),
                ));
            }
            None => {}
        }
        doc.vpcs[i].security_groups.remove(j);
        Ok(())
    })?;
    ok()
}

fn modify_group(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (i, j) = find::<SecurityGroupSpec>(doc, p.str("SecurityGroupId"))?;
        let old = doc.vpcs[i].security_groups[j].name.clone();
        if let Some(name) = p.opt_str("SecurityGroupName").filter(|n| *n != old) {
            if old == DEFAULT_GROUP {
                return Err(ApiError::conflict(code::SG_DEFAULT, "the default security group keeps its name"));
            }
            // Members and rules name the group: they follow the rename.
            let vpc = &mut doc.vpcs[i];
            for eni in &mut vpc.enis {
                eni.security_groups.iter_mut().filter(|g| **g == old).for_each(|g| *g = name.to_string());
            }
            for rule in vpc.security_groups.iter_mut().flat_map(|g| &mut g.rules) {
                if rule.peer == (PeerSpec::Group { group: old.clone() }) {
                    rule.peer = PeerSpec::Group { group: name.to_string() };
                }
            }
            vpc.security_groups[j].name = name.to_string();
        }
        if let Some(text) = p.opt_str("Description") {
            doc.vpcs[i].security_groups[j].description = Some(text.to_string());
        }
        Ok(())
    })?;
    ok()
}

fn modify_policy(agent: &mut Agent, p: &Params) -> R<Value> {
    let policy = inner_policy(p)?;
    transact(agent, p, |doc, _| {
        let (i, j) = find::<SecurityGroupSpec>(doc, p.str("SecurityGroupId"))?;
        doc.vpcs[i].security_groups[j].intra_group = policy;
        Ok(())
    })?;
    ok()
}

/// The parameter names of a direction's peer: (CIDR, group).
fn peer_params(ingress: bool) -> (&'static str, &'static str) {
    if ingress { ("SourceCidrIp", "SourceGroupId") } else { ("DestCidrIp", "DestGroupId") }
}

/// The rule the parameters describe.
fn rule_from(doc: &TopologySpec, vpc: usize, p: &Params, ingress: bool) -> R<SgRuleSpec> {
    let (cidr, group) = peer_params(ingress);
    let peer = match (p.opt_str(cidr), p.opt_str(group)) {
        (Some(c), None) => PeerSpec::Cidr(c.trim().to_string()),
        (None, Some(g)) => PeerSpec::Group { group: group_name(&doc.vpcs[vpc], g.trim(), group)? },
        (Some(_), Some(_)) => return Err(ApiError::bad(code::INVALID_PARAMETER, cidr, format!("give {cidr} or {group}, not both"))),
        (None, None) => return Err(ApiError::bad(code::MISSING_PARAMETER, cidr, format!("give {cidr} (a CIDR block) or {group}"))),
    };
    let protocol = p
        .opt_str("IpProtocol")
        .ok_or_else(|| ApiError::bad(code::MISSING_PARAMETER, "IpProtocol", "give IpProtocol: tcp, udp, icmp, gre or all"))?;
    let priority = match p.value("Priority").and_then(Value::as_u64) {
        Some(n) => Some(u32::try_from(n).map_err(|_| ApiError::bad(code::INVALID_PARAMETER, "Priority", "Priority is 1 to 100"))?),
        None => None,
    };
    Ok(SgRuleSpec {
        id: None,
        direction: if ingress { "ingress" } else { "egress" }.into(),
        policy: Some(p.opt_str("Policy").unwrap_or("accept").to_ascii_lowercase()),
        protocol: protocol.to_ascii_lowercase(),
        ports: Some(p.opt_str("PortRange").unwrap_or("-1/-1").to_string()),
        peer,
        priority: Some(priority.unwrap_or(1)),
        description: p.opt_str("Description").map(Into::into),
    })
}

fn authorize(agent: &mut Agent, p: &Params, ingress: bool) -> R<Value> {
    let doc = &agent.stored().doc;
    let (i, j) = find::<SecurityGroupSpec>(doc, p.str("SecurityGroupId"))?;
    let mut rule = rule_from(doc, i, p, ingress)?;
    let key = rule_key(&rule);
    // The same rule again is the one there.
    if let Some(existing) = doc.vpcs[i].security_groups[j].rules.iter().find(|r| rule_key(r) == key) {
        return Ok(json!({"SecurityGroupRuleId": existing.id.clone().unwrap_or_default()}));
    }
    let id = new_id(security_group::RULE_ID_PREFIX);
    rule.id = Some(id.clone());
    change(agent, p, Edit::AddSgRule { vpc: i, group: j, rule })?;
    Ok(json!({"SecurityGroupRuleId": id}))
}

fn authorize_ingress(agent: &mut Agent, p: &Params) -> R<Value> {
    authorize(agent, p, true)
}

fn authorize_egress(agent: &mut Agent, p: &Params) -> R<Value> {
    authorize(agent, p, false)
}

fn revoke(agent: &mut Agent, p: &Params, ingress: bool) -> R<Value> {
    let direction = if ingress { "ingress" } else { "egress" };
    let doc = &agent.stored().doc;
    let (i, j) = find::<SecurityGroupSpec>(doc, p.str("SecurityGroupId"))?;
    let rules = &doc.vpcs[i].security_groups[j].rules;
    let gone: Vec<String> = match p.opt_str("SecurityGroupRuleId") {
        Some(list) => {
            let ids: Vec<String> = list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            for id in &ids {
                match rules.iter().find(|r| r.id.as_deref() == Some(id)) {
                    None => return Err(ApiError::not_found(code::SG_RULE_NOT_FOUND, "SecurityGroupRuleId", id)),
                    Some(r) if r.direction != direction => {
                        return Err(ApiError::bad(
                            code::INVALID_PARAMETER,
                            "SecurityGroupRuleId",
                            format!("rule {id} is an {} rule", r.direction),
                        ));
                    }
                    Some(_) => {}
                }
            }
            ids
        }
        None => {
            let key = rule_key(&rule_from(doc, i, p, ingress)?);
            match rules.iter().find(|r| rule_key(r) == key) {
                Some(r) => vec![r.id.clone().unwrap_or_default()],
                None => {
                    return Err(ApiError::new(
                        404,
                        code::SG_RULE_NOT_FOUND,
                        format!("the group has no {direction} rule with these parameters"),
                    ));
                }
            }
        }
    };
    change(agent, p, Edit::RemoveSgRules { vpc: i, group: j, rules: gone })?;
    ok()
}

fn revoke_ingress(agent: &mut Agent, p: &Params) -> R<Value> {
    revoke(agent, p, true)
}

fn revoke_egress(agent: &mut Agent, p: &Params) -> R<Value> {
    revoke(agent, p, false)
}

fn join(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (gi, gj) = find::<SecurityGroupSpec>(doc, p.str("SecurityGroupId"))?;
        let (i, j) = find::<EniSpec>(doc, p.str("NetworkInterfaceId"))?;
        if gi != i {
            return Err(ApiError::conflict(code::OTHER_VPC, "an ENI joins security groups of its own VPC only"));
        }
        let name = doc.vpcs[i].security_groups[gj].name.clone();
        let eni = &mut doc.vpcs[i].enis[j];
        if eni.security_groups.contains(&name) {
            return Err(ApiError::conflict(code::SG_ALREADY_MEMBER, format!("ENI {} is already in security group {name}", eni.name)));
        }
        eni.security_groups.push(name);
        Ok(())
    })?;
    ok()
}

fn leave(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (gi, gj) = find::<SecurityGroupSpec>(doc, p.str("SecurityGroupId"))?;
        let (i, j) = find::<EniSpec>(doc, p.str("NetworkInterfaceId"))?;
        let name = doc.vpcs[gi].security_groups[gj].name.clone();
        let eni = &mut doc.vpcs[i].enis[j];
        if gi != i || !eni.security_groups.contains(&name) {
            return Err(ApiError::conflict(code::SG_NOT_MEMBER, format!("ENI {} is not in security group {name}", eni.name)));
        }
        if eni.security_groups.len() == 1 {
            return Err(ApiError::conflict(code::SG_LAST, format!("security group {name} is ENI {}'s last; join another first", eni.name)));
        }
        eni.security_groups.retain(|g| *g != name);
        Ok(())
    })?;
    ok()
}

fn policy_name(group: &SecurityGroup) -> &'static str {
    if group.intra_accept { "Accept" } else { "Drop" }
}

fn describe_groups(agent: &mut Agent, p: &Params) -> R<Value> {
    let topology = agent.topology();
    let eni = p.opt_str("NetworkInterfaceId").map(|id| topology.enis().find(|(_, _, e)| e.id == id).map(|(_, _, e)| e));
    if let Some(None) = eni {
        return Err(ApiError::not_found(code::ENI_NOT_FOUND, "NetworkInterfaceId", p.str("NetworkInterfaceId")));
    }
    let mut list = Vec::new();
    for vpc in &topology.vpcs {
        for group in &vpc.security_groups {
            let keep = p.opt_str("VpcId").is_none_or(|id| vpc.id == id)
                && p.opt_str("SecurityGroupId").is_none_or(|id| group.id == id)
                && p.opt_str("SecurityGroupName").is_none_or(|n| group.name == n)
                && eni.flatten().is_none_or(|e| e.security_groups.contains(&group.name) && vpc.enis.iter().any(|x| x.id == e.id));
            if !keep {
                continue;
            }
            let members: Vec<&str> = vpc.enis.iter().filter(|e| e.security_groups.contains(&group.name)).map(|e| e.id.as_str()).collect();
            list.push(json!({
                "SecurityGroupId": group.id, "SecurityGroupName": group.name, "VpcId": vpc.id, "Description": group.description,
                "InnerAccessPolicy": policy_name(group), "IsDefault": group.is_default(), "RuleCount": group.rules.len(),
                "NetworkInterfaceIds": members,
            }));
        }
    }
    Ok(json!({"SecurityGroups": list, "TotalCount": list.len()}))
}

fn describe_attribute(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = p.str("SecurityGroupId");
    let direction = match p.opt_str("Direction").unwrap_or("all") {
        d @ ("ingress" | "egress" | "all") => d,
        other => {
            return Err(ApiError::bad(code::INVALID_PARAMETER, "Direction", format!("Direction is ingress, egress or all, not '{other}'")));
        }
    };
    let hits = agent.rule_hits().ok();
    let topology = agent.topology();
    let (vpc, group) = topology
        .vpcs
        .iter()
        .find_map(|v| v.security_groups.iter().find(|g| g.id == id).map(|g| (v, g)))
        .ok_or_else(|| ApiError::not_found(code::SG_NOT_FOUND, "SecurityGroupId", id))?;
    let counters = |key: &str| hits.as_ref().and_then(|h| h.get(key)).copied();
    let mut rules: Vec<&SgRule> = group.rules.iter().filter(|r| direction == "all" || r.direction_name() == direction).collect();
    rules.sort_by_key(|r| (r.direction, r.precedence()));
    let permissions: Vec<Value> = rules.iter().map(|r| permission(r, vpc, counters(&r.id))).collect();
    let inner = counters(&intra_rule(&group.id)).map(|(packets, bytes)| json!({"Packets": packets, "Bytes": bytes}));
    Ok(json!({
        "SecurityGroupId": group.id, "SecurityGroupName": group.name, "VpcId": vpc.id, "Description": group.description,
        "InnerAccessPolicy": policy_name(group), "Permissions": permissions, "InnerAccess": inner,
        "StatisticsAvailable": hits.is_some(),
    }))
}

fn permission(rule: &SgRule, vpc: &crate::model::Vpc, hits: Option<(u64, u64)>) -> Value {
    let ingress = rule.direction_name() == "ingress";
    let (cidr_key, group_key) = peer_params(ingress);
    let mut out = json!({
        "SecurityGroupRuleId": rule.id,
        "Direction": rule.direction_name(),
        "Policy": if rule.accept { "accept" } else { "drop" },
        "IpProtocol": rule.protocol_name(),
        "PortRange": rule.ports.map(|(lo, hi)| format!("{lo}/{hi}")).unwrap_or_else(|| "-1/-1".into()),
        "Priority": rule.priority,
        "Description": rule.description,
    });
    match &rule.peer {
        Peer::Cidr(net) => out[cidr_key] = json!(net.to_string()),
        Peer::Group(name) => out[group_key] = json!(vpc.security_group(name).map(|g| g.id.clone()).unwrap_or_else(|| name.clone())),
    }
    if let Some((packets, bytes)) = hits {
        out["Packets"] = json!(packets);
        out["Bytes"] = json!(bytes);
    }
    out
}
