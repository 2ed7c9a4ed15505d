//! ENI operations: create (in a VSwitch or a zone's default one), delete and describe.

use serde_json::{Value, json};

use super::{
    DRY_RUN,
    Kind::{Boolean, Integer},
    Op, Param, R, S,
    lookup::{find, group_name},
    name_or, ok, p, transact,
};
use crate::{
    agent::Agent,
    api::{
        Params,
        error::{ApiError, code},
    },
    model::{
        addr,
        dependencies::{self, NextHopInUse},
        kinds::eni,
        normalize::{ensure_default_vswitch, new_id},
        spec::{EniSpec, VSwitchSpec},
    },
};

pub static OPS: &[Op] = &[
    Op {
        name: "CreateNetworkInterface",
        summary: "Create an ENI in a VSwitch, or in a zone's default VSwitch (created on demand).",
        params: &[
            p!("VSwitchId", S, opt, "The VSwitch; or give ZoneId for the zone's default VSwitch."),
            p!("ZoneId", S, opt, "The zone whose default VSwitch gets the ENI."),
            p!("NetworkInterfaceName", S, opt, "2-128 characters, starts with a letter; names the lab namespace; the ID when omitted."),
            p!("PrimaryIpAddress", S, opt, "A free, unreserved address of the VSwitch; the next free one when omitted."),
            p!("MacAddress", S, opt, "A unicast MAC; generated when omitted."),
            p!("Interface", S, opt, "The host-side interface (veth or tap); the lab's name when omitted."),
            p!("SourceDestCheck", Boolean, opt, "false lets the ENI use addresses that are not its own (NAT, firewall)."),
            p!(
                "SecurityGroupIds",
                S,
                opt,
                "1-5 security groups of the VPC (IDs or names, comma-separated); the VPC's default group when omitted."
            ),
            p!("Mtu", Integer, opt, "The largest IP packet delivered to the ENI, 576-3500 (default 1500)."),
            p!(
                "ConntrackLimit",
                Integer,
                opt,
                "Connections the ENI may track, 1-16777216 (default: its VPC's); new ones beyond are refused."
            ),
            p!("Host", S, opt, "In a cluster, the host its guest runs on (default: every host's own)."),
            DRY_RUN,
        ],
        returns: &[
            ("NetworkInterfaceId", "The new ENI."),
            ("PrivateIpAddress", "Its address."),
            ("MacAddress", "Its MAC."),
            ("VSwitchId", "Its VSwitch."),
            ("VpcId", "Its VPC."),
        ],
        mutates: true,
        run: create_eni,
    },
    Op {
        name: "DeleteNetworkInterface",
        summary: "Delete an ENI that no route entry uses as next hop.",
        params: &[p!("NetworkInterfaceId", S, req, "The ENI."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: delete_eni,
    },
    Op {
        name: "DescribeNetworkInterfaces",
        summary: "List ENIs.",
        params: &[
            p!("VpcId", S, opt, "Only ENIs of this VPC."),
            p!("VSwitchId", S, opt, "Only ENIs of this VSwitch."),
            p!("NetworkInterfaceId", S, opt, "Only this ENI."),
            p!("NetworkInterfaceName", S, opt, "Only the ENI with this name."),
        ],
        returns: &[
            (
                "NetworkInterfaceSets",
                "NetworkInterfaceId, NetworkInterfaceName, VpcId, VSwitchId, ZoneId, PrivateIpAddress, MacAddress, Interface, SourceDestCheck, SecurityGroupIds, Mtu, ConntrackLimit, Status (InUse when its interface exists, else Available), Host.",
            ),
            ("TotalCount", "Number of ENIs listed."),
        ],
        mutates: false,
        run: describe_enis,
    },
];

fn create_eni(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id(eni::ID_PREFIX);
    transact(agent, p, |doc, _| {
        let name = name_or(p.opt_str("NetworkInterfaceName"), &id);
        let (ip, mac, interface) = (
            p.opt_str("PrimaryIpAddress").map(Into::into),
            p.opt_str("MacAddress").map(Into::into),
            p.opt_str("Interface").map(Into::into),
        );
        let (i, vswitch) = match (p.opt_str("VSwitchId"), p.opt_str("ZoneId")) {
            (Some(vsw), _) => {
                let (i, j) = find::<VSwitchSpec>(doc, vsw)?;
                (i, doc.vpcs[i].vswitches[j].name.clone())
            }
            (None, Some(zone)) => ensure_default_vswitch(doc, zone),
            (None, None) => {
                return Err(ApiError::bad(
                    code::MISSING_PARAMETER,
                    "VSwitchId",
                    "give VSwitchId, or ZoneId for the zone's default VSwitch",
                ));
            }
        };
        let source_dest_check = p.opt_bool("SourceDestCheck");
        let security_groups = match p.opt_str("SecurityGroupIds") {
            Some(list) => list.split(',').map(|g| group_name(&doc.vpcs[i], g.trim(), "SecurityGroupIds")).collect::<R<Vec<_>>>()?,
            None => Vec::new(),
        };
        let (mtu, conntrack_limit) = (p.opt_u32("Mtu"), p.opt_u32("ConntrackLimit"));
        doc.vpcs[i].enis.push(EniSpec {
            id: Some(id.clone()),
            name,
            vswitch,
            ip,
            mac,
            interface,
            source_dest_check,
            security_groups,
            mtu,
            conntrack_limit,
            host: p.opt_str("Host").map(Into::into),
        });
        Ok(())
    })?;
    let (vpc, vsw, eni) = agent
        .topology()
        .enis()
        .find(|(_, _, e)| e.id == id)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("created ENI {id} is missing")))?;
    Ok(json!({
        "NetworkInterfaceId": id, "PrivateIpAddress": eni.ip.to_string(), "MacAddress": addr::format_mac(&eni.mac),
        "VSwitchId": vsw.id, "VpcId": vpc.id,
    }))
}

fn delete_eni(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (i, j) = find::<EniSpec>(doc, p.str("NetworkInterfaceId"))?;
        if let Some(NextHopInUse { destinations }) = dependencies::next_hop_in_use(&doc.vpcs[i], &doc.vpcs[i].enis[j].name) {
            return Err(ApiError::conflict(
                code::ENI_IS_NEXT_HOP,
                format!(
                    "ENI {} is the next hop of route entries for {}; delete them first",
                    p.str("NetworkInterfaceId"),
                    destinations.join(", ")
                ),
            ));
        }
        doc.vpcs[i].enis.remove(j);
        Ok(())
    })?;
    ok()
}

fn describe_enis(agent: &mut Agent, p: &Params) -> R<Value> {
    let binding = agent.binding();
    let list: Vec<Value> = agent
        .topology()
        .enis()
        .filter(|(vpc, vsw, eni)| {
            p.opt_str("VpcId").is_none_or(|id| vpc.id == id)
                && p.opt_str("VSwitchId").is_none_or(|id| vsw.id == id)
                && p.opt_str("NetworkInterfaceId").is_none_or(|id| eni.id == id)
                && p.opt_str("NetworkInterfaceName").is_none_or(|n| eni.name == n)
        })
        .map(|(vpc, vsw, eni)| {
            json!({
                "NetworkInterfaceId": eni.id, "NetworkInterfaceName": eni.name, "VpcId": vpc.id, "VSwitchId": vsw.id,
                "ZoneId": vsw.zone, "PrivateIpAddress": eni.ip.to_string(), "MacAddress": addr::format_mac(&eni.mac),
                "Interface": agent.opts.naming.host_ifname(eni), "SourceDestCheck": eni.source_dest_check,
                "Mtu": eni.mtu, "ConntrackLimit": eni.conntrack_limit,
                "SecurityGroupIds": eni.security_groups.iter().filter_map(|g| vpc.security_group(g).map(|g| g.id.clone())).collect::<Vec<_>>(),
                "Status": if binding.ifindex.contains_key(&eni.id) { "InUse" } else { "Available" },
                "Host": eni.host,
            })
        })
        .collect();
    Ok(json!({"NetworkInterfaceSets": list, "TotalCount": list.len()}))
}
