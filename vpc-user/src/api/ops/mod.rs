//! Every API operation: its parameters and what it does to the configuration document. Each
//! mutating operation is one `Agent::transact`: the edit here, then normalization, every rule of
//! the guide, the data path and the store, all or nothing.

mod flow_log;
mod multicast;
mod security_group;

use ipnet::Ipv4Net;
use serde_json::{json, Value};

use super::{
    error::{code, ApiError},
    Params,
};
use crate::{
    agent::Agent,
    model::{
        addr,
        dependencies::{self, CenInUse, NextHopInUse, RouteTableInUse, VSwitchInUse, VpcInUse},
        ids::SYSTEM_TABLE,
        normalize::{ensure_default_vswitch, new_id, DEFAULT_VPC_CIDR, DEFAULT_VPC_NAME},
        spec::{CenSpec, EniSpec, GatewaySpec, NextHopSpec, RouteSpec, RouteTableSpec, TopologySpec, VSwitchSpec, VpcSpec},
        topology::{HopTarget, NextHop, Origin},
        Topology,
    },
};

/// The JSON type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Boolean,
    /// Any JSON object or array (a next hop, a whole topology).
    Object,
}

/// One parameter of an operation: the request parser, the CLI flags and the OpenAPI schema are
/// all read from it.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub doc: &'static str,
}

/// One API operation: its name, parameters and response fields, and the handler that runs it.
pub struct Op {
    pub name: &'static str,
    pub summary: &'static str,
    pub params: &'static [Param],
    /// Fields of the response object, with their meaning.
    pub returns: &'static [(&'static str, &'static str)],
    /// Whether the operation changes the configuration.
    pub mutates: bool,
    pub run: fn(&mut Agent, &Params) -> Result<Value, ApiError>,
}

use Kind::{Boolean, Integer, Object};

pub(super) const S: Kind = Kind::String;

macro_rules! p {
    ($name:literal, $kind:expr, req, $doc:literal) => {
        Param { name: $name, kind: $kind, required: true, doc: $doc }
    };
    ($name:literal, $kind:expr, opt, $doc:literal) => {
        Param { name: $name, kind: $kind, required: false, doc: $doc }
    };
}
pub(super) use p;

pub(super) const DRY_RUN: Param = p!("DryRun", Boolean, opt, "Check the request and report the changes without making them.");

pub static OPS: &[Op] = &[
    // VPCs
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
        returns: &[("Vpcs", "VpcId, VpcName, CidrBlock, Description, IsDefault, VRouterId, VSwitchIds, RouteTableIds, Status."), ("TotalCount", "Number of VPCs listed.")],
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
    // VSwitches
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
            ("VSwitches", "VSwitchId, VpcId, VSwitchName, CidrBlock, ZoneId, Description, IsDefault, RouteTableId, GatewayIp, AvailableIpAddressCount, Status."),
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
    // Route tables
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
    // Route entries
    Op {
        name: "CreateRouteEntry",
        summary: "Add a custom route entry. Its destination may not equal a system entry's; a more specific one overrides it.",
        params: &[
            p!("RouteTableId", S, req, "The route table."),
            p!("DestinationCidrBlock", S, req, "The destination, e.g. 0.0.0.0/0."),
            p!("NextHopType", S, opt, "Instance or NetworkInterface (an ENI), Gateway (VpnGateway, RouterInterface to a VBR), Vpc (RouterInterface to a VPC), or Blackhole."),
            p!("NextHopId", S, opt, "The ENI, gateway or VPC (ID or name)."),
            p!("NextHop", Object, opt, "The next hop as in a topology file, e.g. {\"type\": \"ecmp\", \"hops\": [{\"eni\": \"n1\"}, {\"eni\": \"n2\"}]}."),
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
        returns: &[("RouteEntrys", "RouteEntryId, RouteTableId, DestinationCidrBlock, Type (System|Custom), NextHopType, NextHopId, Status."), ("TotalCount", "Number of entries listed.")],
        mutates: false,
        run: describe_route_entries,
    },
    // ENIs
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
            p!("SecurityGroupIds", S, opt, "1-5 security groups of the VPC (IDs or names, comma-separated); the VPC's default group when omitted."),
            p!("Mtu", Integer, opt, "The largest IP packet delivered to the ENI, 576-3500 (default 1500)."),
            p!("ConntrackLimit", Integer, opt, "Connections the ENI may track, 1-16777216 (default: its VPC's); new ones beyond are refused."),
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
            ("NetworkInterfaceSets", "NetworkInterfaceId, NetworkInterfaceName, VpcId, VSwitchId, ZoneId, PrivateIpAddress, MacAddress, Interface, SourceDestCheck, SecurityGroupIds, Mtu, ConntrackLimit, Status (InUse when its interface exists, else Available)."),
            ("TotalCount", "Number of ENIs listed."),
        ],
        mutates: false,
        run: describe_enis,
    },
    // Gateways
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
        returns: &[("Gateways", "GatewayId, GatewayName, VpcId, Networks, IpAddress, MacAddress, Interface, Status (InUse|Available)."), ("TotalCount", "Number listed.")],
        mutates: false,
        run: describe_gateways,
    },
    // CENs
    Op {
        name: "CreateCen",
        summary: "Create a CEN: a group of VPCs that learn each other's VSwitch CIDRs.",
        params: &[p!("CenName", S, req, "2-128 characters, starts with a letter."), p!("Description", S, opt, "2-256 characters."), DRY_RUN],
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
    // Whole configuration
    Op {
        name: "ApplyTopology",
        summary: "Make the configuration equal to a topology document (the YAML file as JSON); resources are matched by name.",
        params: &[p!("Topology", Object, req, "The document: {\"vpcs\": [...], \"enis\": [...]}."), DRY_RUN],
        returns: &[("Changes", "What was (or would be) added, modified and removed."), ("Report", "What changed in the kernel maps and links.")],
        mutates: true,
        run: apply_topology,
    },
    Op {
        name: "ExportTopology",
        summary: "The whole configuration as a topology document, with IDs.",
        params: &[],
        returns: &[
            ("Topology", "The document."),
            ("Ids", "The data path's numbers of every resource (for `vpc trace`)."),
            ("Down", "Hops the health checks found down: [route entry ID, hop index]."),
        ],
        mutates: false,
        run: export_topology,
    },
    Op {
        name: "SyncInterfaces",
        summary: "Re-resolve every ENI's host interface now and update the data path (the agent also does this every second).",
        params: &[],
        returns: &[("Attached", "ENIs and gateways whose interface exists."), ("Detached", "Those without one.")],
        mutates: false,
        run: sync_interfaces,
    },
    Op {
        name: "Teardown",
        summary: "Detach the data path from every interface, remove every pin and delete the whole configuration.",
        params: &[],
        returns: &[],
        mutates: true,
        run: teardown,
    },
    Op {
        name: "DescribeStatistics",
        summary: "Per-ENI packet and byte counters and drops by reason, from the data path.",
        params: &[],
        returns: &[
            ("Enis", "Per ENI: NetworkInterfaceName, NetworkInterfaceId, VpcName, VSwitchName, PrivateIpAddress, Attached, RxPackets, RxBytes, TxPackets, TxBytes, Connections, ConntrackLimit, ConntrackRefused."),
            ("Drops", "Per drop reason: Reason, Packets, Meaning."),
            ("Events", "Per event: Event, Count."),
            ("Conntrack", "The connection table: Entries, Capacity, Created, Swept, Refused, Full."),
        ],
        mutates: false,
        run: describe_statistics,
    },
];

/// Every operation: the table above, then the security groups', the flow logs' and multicast's.
pub fn all() -> impl Iterator<Item = &'static Op> {
    OPS.iter().chain(security_group::OPS).chain(flow_log::OPS).chain(multicast::OPS)
}

// ---------------------------------------------------------------------------------------------
// Lookups in the document

pub(super) type R<T> = Result<T, ApiError>;

pub(super) fn vpc_index(doc: &TopologySpec, id: &str) -> R<usize> {
    doc.vpcs.iter().position(|v| v.id.as_deref() == Some(id)).ok_or_else(|| ApiError::not_found(code::VPC_NOT_FOUND, "VpcId", id))
}

fn vswitch_index(doc: &TopologySpec, id: &str) -> R<(usize, usize)> {
    for (i, vpc) in doc.vpcs.iter().enumerate() {
        if let Some(j) = vpc.vswitches.iter().position(|s| s.id.as_deref() == Some(id)) {
            return Ok((i, j));
        }
    }
    Err(ApiError::not_found(code::VSWITCH_NOT_FOUND, "VSwitchId", id))
}

fn table_index(doc: &TopologySpec, id: &str) -> R<(usize, usize)> {
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

/// Run a mutating edit; `DryRun` only reports.
pub(super) fn transact<T>(agent: &mut Agent, p: &Params, edit: impl FnOnce(&mut TopologySpec, &Topology) -> R<T>) -> R<T> {
    agent.transact(p.opt_bool("DryRun").unwrap_or(false), edit).map(|(out, _)| out)
}

pub(super) fn name_or(name: Option<&str>, id: &str) -> String {
    name.map(str::to_string).unwrap_or_else(|| id.to_string())
}

pub(super) fn ok() -> R<Value> {
    Ok(json!({}))
}

/// The document after an edit, for returning IDs normalization assigned.
fn stored(agent: &Agent) -> &TopologySpec {
    &agent.stored().doc
}

// ---------------------------------------------------------------------------------------------
// VPCs

fn vpc_created(agent: &Agent, id: &str) -> R<Value> {
    let doc = stored(agent);
    let table = doc.vpcs.iter().find(|v| v.id.as_deref() == Some(id)).and_then(|v| v.route_tables.first()).and_then(|t| t.id.clone());
    Ok(json!({"VpcId": id, "VRouterId": router_id(id), "RouteTableId": table}))
}

fn router_id(vpc_id: &str) -> String {
    vpc_id.replacen("vpc-", "vrt-", 1)
}

fn create_vpc(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id("vpc");
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
    let id = new_id("vpc");
    transact(agent, p, |doc, _| {
        let name = if doc.vpcs.iter().any(|v| v.name == DEFAULT_VPC_NAME) { id.clone() } else { DEFAULT_VPC_NAME.into() };
        doc.vpcs.push(VpcSpec { id: Some(id.clone()), name, cidr: DEFAULT_VPC_CIDR.into(), default: true, ..Default::default() });
        Ok(())
    })?;
    vpc_created(agent, &id)
}

fn delete_vpc(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let i = vpc_index(doc, p.str("VpcId"))?;
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
        VpcInUse::VSwitches(count) => ApiError::conflict(code::VPC_HAS_VSWITCHES, format!("VPC {id} still has {count} VSwitch(es); delete them first")),
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
        let i = vpc_index(doc, p.str("VpcId"))?;
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

// ---------------------------------------------------------------------------------------------
// VSwitches

fn create_vswitch(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id("vsw");
    transact(agent, p, |doc, _| {
        let i = vpc_index(doc, p.str("VpcId"))?;
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
    let existing = agent.topology().vpcs.iter().filter(|v| v.is_default).flat_map(|v| &v.vswitches).find(|s| s.is_default && s.zone == zone);
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
        let (i, j) = vswitch_index(doc, p.str("VSwitchId"))?;
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
        let (i, j) = vswitch_index(doc, p.str("VSwitchId"))?;
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

// ---------------------------------------------------------------------------------------------
// Route tables

fn create_route_table(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id("vtb");
    transact(agent, p, |doc, _| {
        let i = vpc_index(doc, p.str("VpcId"))?;
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
        let (i, j) = table_index(doc, p.str("RouteTableId"))?;
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
        let (i, j) = table_index(doc, p.str("RouteTableId"))?;
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
        let (ti, tj) = table_index(doc, p.str("RouteTableId"))?;
        let (si, sj) = vswitch_index(doc, p.str("VSwitchId"))?;
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
        let (ti, tj) = table_index(doc, p.str("RouteTableId"))?;
        let (si, sj) = vswitch_index(doc, p.str("VSwitchId"))?;
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

// ---------------------------------------------------------------------------------------------
// Route entries

/// The next hop of a CreateRouteEntry request, by the cloud API's names or as a document object.
fn next_hop(doc: &TopologySpec, vpc: usize, p: &Params) -> R<NextHopSpec> {
    if let Some(hop) = p.object("NextHop") {
        return hop.map_err(|e| ApiError::bad(code::INVALID_PARAMETER, "NextHop", format!("not a next hop: {e}")));
    }
    let target = || p.opt_str("NextHopId").ok_or_else(|| ApiError::bad(code::MISSING_PARAMETER, "NextHopId", "this NextHopType needs NextHopId"));
    let missing = |what: &str, id: &str| ApiError::bad(crate::model::error::code::NEXT_HOP_NOT_FOUND, "NextHopId", format!("no {what} {id} in the route table's VPC"));
    match p.opt_str("NextHopType") {
        Some("Instance" | "NetworkInterface") => {
            let id = target()?;
            let eni = doc.vpcs[vpc].enis.iter().find(|e| e.id.as_deref() == Some(id) || e.name == id).ok_or_else(|| missing("ENI", id))?;
            Ok(NextHopSpec::Eni { eni: eni.name.clone() })
        }
        Some("Gateway" | "VpnGateway" | "RouterInterface") if !target()?.starts_with("vpc-") => {
            let id = target()?;
            let gw = doc.vpcs[vpc].gateways.iter().find(|g| g.id.as_deref() == Some(id) || g.name == id).ok_or_else(|| missing("gateway", id))?;
            Ok(NextHopSpec::Gateway { gateway: gw.name.clone() })
        }
        Some("Vpc" | "RouterInterface") => {
            let id = target()?;
            let peer = doc.vpcs.iter().find(|v| v.id.as_deref() == Some(id) || v.name == id);
            let peer = peer.ok_or_else(|| ApiError::bad(crate::model::error::code::NEXT_HOP_NOT_FOUND, "NextHopId", format!("no VPC {id}")))?;
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
    let id = new_id("rte");
    transact(agent, p, |doc, _| {
        let (i, j) = table_index(doc, p.str("RouteTableId"))?;
        let next_hop = next_hop(doc, i, p)?;
        doc.vpcs[i].route_tables[j].routes.push(RouteSpec {
            id: Some(id.clone()),
            dst: p.str("DestinationCidrBlock").into(),
            next_hop,
            name: p.opt_str("RouteEntryName").map(Into::into),
            description: p.opt_str("Description").map(Into::into),
        });
        Ok(())
    })?;
    Ok(json!({"RouteEntryId": id}))
}

fn delete_route_entry(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, topology| {
        if let Some(id) = p.opt_str("RouteEntryId") {
            for vpc in &mut doc.vpcs {
                for table in &mut vpc.route_tables {
                    if let Some(k) = table.routes.iter().position(|r| r.id.as_deref() == Some(id)) {
                        table.routes.remove(k);
                        return Ok(());
                    }
                }
            }
            return Err(ApiError::not_found(code::ROUTE_ENTRY_NOT_FOUND, "RouteEntryId", id));
        }
        let (Some(table_id), Some(dst)) = (p.opt_str("RouteTableId"), p.opt_str("DestinationCidrBlock")) else {
            return Err(ApiError::bad(code::MISSING_PARAMETER, "RouteEntryId", "give RouteEntryId, or RouteTableId and DestinationCidrBlock"));
        };
        let (i, j) = table_index(doc, table_id)?;
        let parsed: Option<Ipv4Net> = dst.parse().ok();
        let vpc = topology.vpcs.iter().find(|v| Some(&v.id) == doc.vpcs[i].id.as_ref());
        if let (Some(vpc), Some(net)) = (vpc, parsed)
            && vpc.system_routes().iter().any(|(d, _)| *d == net)
        {
            return Err(ApiError::bad(code::SYSTEM_ROUTE_ENTRY, "DestinationCidrBlock", format!("{net} is a system route entry; it cannot be deleted")));
        }
        let routes = &mut doc.vpcs[i].route_tables[j].routes;
        let k = routes
            .iter()
            .position(|r| r.dst == dst || r.dst.parse::<Ipv4Net>().ok() == parsed && parsed.is_some())
            .ok_or_else(|| ApiError::not_found(code::ROUTE_ENTRY_NOT_FOUND, "DestinationCidrBlock", dst))?;
        routes.remove(k);
        Ok(())
    })?;
    ok()
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
                .map(|(i, h)| hop_target_id(vpc, &h.target).is_some_and(|t| binding.ifindex.contains_key(&t)) && !binding.down.contains(&(id.clone(), i)))
                .collect();
            let slots = crate::model::ecmp::slots(&weights, &live);
            let hops: Vec<Value> = group
                .hops
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let share = slots.iter().filter(|s| usize::from(**s) == i).count();
                    let status = if !live[i] { "Down" } else if share > 0 { "Active" } else { "Standby" };
                    json!({"NextHopId": hop_target_id(vpc, &h.target), "Name": h.target.name(), "Weight": h.weight,
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

// ---------------------------------------------------------------------------------------------
// ENIs

fn create_eni(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id("eni");
    transact(agent, p, |doc, _| {
        let name = name_or(p.opt_str("NetworkInterfaceName"), &id);
        let (ip, mac, interface) = (
            p.opt_str("PrimaryIpAddress").map(Into::into),
            p.opt_str("MacAddress").map(Into::into),
            p.opt_str("Interface").map(Into::into),
        );
        let (i, vswitch) = match (p.opt_str("VSwitchId"), p.opt_str("ZoneId")) {
            (Some(vsw), _) => {
                let (i, j) = vswitch_index(doc, vsw)?;
                (i, doc.vpcs[i].vswitches[j].name.clone())
            }
            (None, Some(zone)) => ensure_default_vswitch(doc, zone),
            (None, None) => {
                return Err(ApiError::bad(code::MISSING_PARAMETER, "VSwitchId", "give VSwitchId, or ZoneId for the zone's default VSwitch"));
            }
        };
        let source_dest_check = p.opt_bool("SourceDestCheck");
        let security_groups = match p.opt_str("SecurityGroupIds") {
            Some(list) => list.split(',').map(|g| group_name(&doc.vpcs[i], g.trim(), "SecurityGroupIds")).collect::<R<Vec<_>>>()?,
            None => Vec::new(),
        };
        let (mtu, conntrack_limit) = (p.opt_u32("Mtu"), p.opt_u32("ConntrackLimit"));
        doc.vpcs[i].enis.push(EniSpec { id: Some(id.clone()), name, vswitch, ip, mac, interface, source_dest_check, security_groups, mtu, conntrack_limit });
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
        let (i, j) = eni_index(doc, p.str("NetworkInterfaceId"))?;
        if let Some(NextHopInUse { destinations }) = dependencies::next_hop_in_use(&doc.vpcs[i], &doc.vpcs[i].enis[j].name) {
            return Err(ApiError::conflict(
                code::ENI_IS_NEXT_HOP,
                format!("ENI {} is the next hop of route entries for {}; delete them first", p.str("NetworkInterfaceId"), destinations.join(", ")),
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
            })
        })
        .collect();
    Ok(json!({"NetworkInterfaceSets": list, "TotalCount": list.len()}))
}

// ---------------------------------------------------------------------------------------------
// Whole configuration

fn apply_topology(agent: &mut Agent, p: &Params) -> R<Value> {
    let spec: TopologySpec = p
        .object("Topology")
        .unwrap_or_else(|| serde_json::from_str("null"))
        .map_err(|e| ApiError::bad(crate::model::error::code::YAML_SYNTAX, "Topology", format!("not a topology document: {e}")))?;
    let applied = agent.apply_spec(spec, p.opt_bool("DryRun").unwrap_or(false))?;
    Ok(json!({"Changes": applied.changes.iter().map(ToString::to_string).collect::<Vec<_>>(), "Report": applied.report}))
}

fn export_topology(agent: &mut Agent, _: &Params) -> R<Value> {
    Ok(json!({"Topology": agent.stored().doc, "Ids": agent.stored().ids, "Down": agent.binding().down}))
}

fn describe_statistics(agent: &mut Agent, _: &Params) -> R<Value> {
    let stats = agent.stats().map_err(|e| ApiError::new(503, code::UNAVAILABLE, format!("{e:#}")))?;
    serde_json::to_value(stats).map_err(|e| ApiError::internal(e.into()))
}

fn sync_interfaces(agent: &mut Agent, _: &Params) -> R<Value> {
    agent.reconcile().map_err(ApiError::internal)?;
    let attached = agent.binding().ifindex.len();
    let topology = agent.topology();
    let total = topology.enis().count() + topology.vpcs.iter().map(|v| v.gateways.len()).sum::<usize>();
    Ok(json!({"Attached": attached, "Detached": total - attached}))
}

fn teardown(agent: &mut Agent, _: &Params) -> R<Value> {
    agent.down().map_err(ApiError::internal)?;
    ok()
}

// ---------------------------------------------------------------------------------------------
// Gateways

fn gateway_index(doc: &TopologySpec, id: &str) -> R<(usize, usize)> {
    for (i, vpc) in doc.vpcs.iter().enumerate() {
        if let Some(j) = vpc.gateways.iter().position(|g| g.id.as_deref() == Some(id)) {
            return Ok((i, j));
        }
    }
    Err(ApiError::not_found(code::GATEWAY_NOT_FOUND, "GatewayId", id))
}

fn create_gateway(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id("gw");
    transact(agent, p, |doc, _| {
        let i = vpc_index(doc, p.str("VpcId"))?;
        let networks = p.opt_str("Networks").map(|n| n.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()).unwrap_or_default();
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
        });
        Ok(())
    })?;
    Ok(json!({"GatewayId": id}))
}

fn delete_gateway(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let (i, j) = gateway_index(doc, p.str("GatewayId"))?;
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
            }));
        }
    }
    Ok(json!({"Gateways": list, "TotalCount": list.len()}))
}

// ---------------------------------------------------------------------------------------------
// CENs

fn cen_index(doc: &TopologySpec, id: &str) -> R<usize> {
    doc.cens.iter().position(|c| c.id.as_deref() == Some(id)).ok_or_else(|| ApiError::not_found(code::CEN_NOT_FOUND, "CenId", id))
}

fn create_cen(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id("cen");
    transact(agent, p, |doc, _| {
        doc.cens.push(CenSpec { id: Some(id.clone()), name: p.str("CenName").into(), description: p.opt_str("Description").map(Into::into), vpcs: Vec::new() });
        Ok(())
    })?;
    Ok(json!({"CenId": id}))
}

fn delete_cen(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let i = cen_index(doc, p.str("CenId"))?;
        if let Some(CenInUse { vpcs }) = dependencies::cen_in_use(&doc.cens[i]) {
            return Err(ApiError::conflict(code::CEN_HAS_VPCS, format!("CEN {} still has VPCs {}; detach them first", p.str("CenId"), vpcs.join(", "))));
        }
        doc.cens.remove(i);
        Ok(())
    })?;
    ok()
}

fn attach_cen(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let i = cen_index(doc, p.str("CenId"))?;
        let vpc = doc.vpcs[vpc_index(doc, p.str("ChildInstanceId")).map_err(|mut e| {
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
        let i = cen_index(doc, p.str("CenId"))?;
        let vpc = doc.vpcs[vpc_index(doc, p.str("ChildInstanceId"))?].name.clone();
        let before = doc.cens[i].vpcs.len();
        doc.cens[i].vpcs.retain(|v| *v != vpc);
        if doc.cens[i].vpcs.len() == before {
            return Err(ApiError::bad(code::NOT_ATTACHED, "ChildInstanceId", format!("VPC {} is not attached to CEN {}", p.str("ChildInstanceId"), p.str("CenId"))));
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
