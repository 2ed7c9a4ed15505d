//! Gateway operations: ports from a VPC to networks outside it (VPN gateway, router interface).

use serde_json::{Value, json};

use super::{DRY_RUN, Kind::Integer, Op, Param, R, S, lookup::find, name_or, ok, p, transact};
use crate::{
    agent::Agent,
    api::{
        Params,
        error::{ApiError, code},
    },
    model::{
        addr,
        dependencies::{self, NextHopInUse},
        kinds::gateway,
        normalize::new_id,
        spec::{GatewaySpec, VpcSpec},
    },
};

pub static OPS: &[Op] = &[
    Op {
        name: "CreateGateway",
        summary: "Create a gateway: a port from the VPC to a network outside it (VPN gateway, router interface to a VBR or a local data centre).",
        params: &[
            p!("VpcId", S, req, "The VPC."),
            p!("GatewayName", S, opt, "Unique among ENIs and gateways; names the lab namespace; the ID when omitted."),
            p!("Networks", S, opt, "The networks behind it, comma separated (the lab gives its namespace an address in each)."),
            p!("IpAddress", S, opt, "The far-side router's address, for ARP health checks."),
            p!("MacAddress", S, opt, "The far-side router's MAC; generated when omitted."),
            p!("Interface", S, opt, "The host interface; the lab's name when omitted."),
            p!("Description", S, opt, "2-256 characters, not starting with http:// or https://."),
            p!("Mtu", Integer, opt, "The largest IP packet the link takes, 576-3500 (default 1500)."),
            p!("ConntrackLimit", Integer, opt, "Connections the gateway may track, 1-16777216 (default: no limit of its own)."),
            p!("Host", S, opt, "In a cluster, the host its interface is on (default: every host's own link)."),
            DRY_RUN,
        ],
        returns: &[("GatewayId", "The new gateway.")],
        mutates: true,
        run: create_gateway,
    },
    Op {
        name: "DeleteGateway",
        summary: "Delete a gateway no route entry uses.",
        params: &[p!("GatewayId", S, req, "The gateway."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: delete_gateway,
    },
    Op {
        name: "DescribeGateways",
        summary: "List gateways.",
        params: &[p!("VpcId", S, opt, "Only gateways of this VPC."), p!("GatewayId", S, opt, "Only this gateway.")],
        returns: &[
            ("Gateways", "GatewayId, GatewayName, VpcId, Networks, IpAddress, MacAddress, Interface, Status (InUse|Available), Host."),
            ("TotalCount", "Number listed."),
        ],
        mutates: false,
        run: describe_gateways,
    },
];

fn create_gateway(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id(gateway::ID_PREFIX);
    transact(agent, p, |doc, _| {
        let i = find::<VpcSpec>(doc, p.str("VpcId"))?;
        let networks = p
            .opt_str("Networks")
            .map(|n| n.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        doc.vpcs[i].gateways.push(GatewaySpec {
            id: Some(id.clone()),
            name: name_or(p.opt_str("GatewayName"), &id),
            description: p.opt_str("Description").map(Into::into),
            networks,
            ip: p.opt_str("IpAddress").map(Into::into),
            mac: p.opt_str("MacAddress").map(Into::into),
            interface: p.opt_str("Interface").map(Into::into),
            mtu: p.opt_u32("Mtu"),
            conntrack_limit: p.opt_u32("ConntrackLimit"),
            host: p.opt_str("Host").map(Into::into),
        });
        Ok(())
    })?;
    Ok(json!({"GatewayId": id}))
}

fn delete_gateway(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (i, j) = find::<GatewaySpec>(doc, p.str("GatewayId"))?;
        if let Some(NextHopInUse { destinations }) = dependencies::next_hop_in_use(&doc.vpcs[i], &doc.vpcs[i].gateways[j].name) {
            return Err(ApiError::conflict(
                code::ENI_IS_NEXT_HOP,
                format!("gateway {} is a next hop of route entries for {}; delete them first", p.str("GatewayId"), destinations.join(", ")),
            ));
        }
        doc.vpcs[i].gateways.remove(j);
        Ok(())
    })?;
    ok()
}

fn describe_gateways(agent: &mut Agent, p: &Params) -> R<Value> {
    let binding = agent.binding();
    let mut list = Vec::new();
    for vpc in &agent.topology().vpcs {
        if p.opt_str("VpcId").is_some_and(|id| vpc.id != id) {
            continue;
        }
        for g in vpc.gateways.iter().filter(|g| p.opt_str("GatewayId").is_none_or(|id| g.id == id)) {
            list.push(json!({
                "GatewayId": g.id, "GatewayName": g.name, "VpcId": vpc.id, "Description": g.description,
                "Networks": g.networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "IpAddress": g.ip.map(|a| a.to_string()), "MacAddress": addr::format_mac(&g.mac),
                "Interface": agent.opts.naming.host_ifname_of(&g.name, g.interface.as_deref()),
                "Status": if binding.ifindex.contains_key(&g.id) { "InUse" } else { "Available" },
                "Host": g.host,
            }));
        }
    }
    Ok(json!({"Gateways": list, "TotalCount": list.len()}))
}
