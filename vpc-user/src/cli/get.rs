//! `vpc get KIND`: the Describe operations' objects, as JSON exactly as the API gives them, or
//! as a table that also shows each reference by name and the VPC of every child resource.

use clap::ValueEnum;
use serde_json::{Value, json};

use super::{
    Format, api_error,
    names::Names,
    output,
    table::{self, Col, Col::*},
};
use crate::api::Conn;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Vpcs,
    Vswitches,
    RouteTables,
    RouteEntries,
    Enis,
    Gateways,
    Cens,
    SecurityGroups,
    FlowLogs,
    MulticastGroups,
    Hosts,
}

pub fn run(conn: &Conn, kind: Kind, route_table: Option<&str>, stats: bool, format: Format) -> anyhow::Result<()> {
    let objects = objects(conn, kind, route_table, stats)?;
    if format == Format::Json {
        return output::json(&objects);
    }
    if kind == Kind::SecurityGroups && stats {
        table::print(&rule_rows(&objects), RULES, &Names::of(conn)?);
        return Ok(());
    }
    print(conn, kind, &objects)
}

/// API objects of `kind` as its table.
pub fn print(conn: &Conn, kind: Kind, objects: &[Value]) -> anyhow::Result<()> {
    table::print(objects, columns(kind), &Names::of(conn)?);
    Ok(())
}

/// The Describe operation of a kind and the key of its list.
fn describe(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Vpcs => ("DescribeVpcs", "Vpcs"),
        Kind::Vswitches => ("DescribeVSwitches", "VSwitches"),
        Kind::RouteTables => ("DescribeRouteTableList", "RouterTableList"),
        Kind::RouteEntries => ("DescribeRouteEntryList", "RouteEntrys"),
        Kind::Enis => ("DescribeNetworkInterfaces", "NetworkInterfaceSets"),
        Kind::Gateways => ("DescribeGateways", "Gateways"),
        Kind::Cens => ("DescribeCens", "Cens"),
        Kind::SecurityGroups => ("DescribeSecurityGroups", "SecurityGroups"),
        Kind::FlowLogs => ("DescribeFlowLogs", "FlowLogs"),
        Kind::MulticastGroups => ("DescribeMulticastGroups", "Groups"),
        Kind::Hosts => ("DescribeHosts", "Hosts"),
    }
}

/// The API's objects of `kind`: route entries of every table (or one), and with `stats` each
/// security group's DescribeSecurityGroupAttribute (its rules with their hit counters).
fn objects(conn: &Conn, kind: Kind, route_table: Option<&str>, stats: bool) -> anyhow::Result<Vec<Value>> {
    let call = |action: &str, body: Value| conn.call(action, body).map_err(|e| api_error(action, e));
    let (action, key) = describe(kind);
    match kind {
        Kind::RouteEntries => {
            let tables: Vec<String> = match route_table {
                Some(id) => vec![id.to_string()],
                None => list(call("DescribeRouteTableList", json!({}))?, "RouterTableList")
                    .iter()
                    .filter_map(|t| t["RouteTableId"].as_str().map(str::to_string))
                    .collect(),
            };
            let mut entries = Vec::new();
            for table in tables {
                entries.extend(list(call(action, json!({"RouteTableId": table}))?, key));
            }
            Ok(entries)
        }
        Kind::SecurityGroups if stats => list(call(action, json!({}))?, key)
            .iter()
            .map(|g| call("DescribeSecurityGroupAttribute", json!({"SecurityGroupId": g["SecurityGroupId"]})))
            .collect(),
        _ => Ok(list(call(action, json!({}))?, key)),
    }
}

/// The kind whose Describe operation `action` is, and the key of its list.
pub fn described_by(action: &str) -> Option<(Kind, &'static str)> {
    Kind::value_variants().iter().map(|k| (*k, describe(*k))).find(|(_, (a, _))| *a == action).map(|(k, (_, list))| (k, list))
}

fn list(mut response: Value, key: &str) -> Vec<Value> {
    response[key].take().as_array().cloned().unwrap_or_default()
}

fn columns(kind: Kind) -> &'static [(&'static str, Col<'static>)] {
    match kind {
        Kind::Vpcs => &[
            ("ID", Key("VpcId")),
            ("NAME", Key("VpcName")),
            ("CIDR", Key("CidrBlock")),
            ("DEFAULT", Key("IsDefault")),
            ("VSWITCHES", Named("VSwitchIds")),
            ("ROUTE TABLES", Named("RouteTableIds")),
        ],
        Kind::Vswitches => &[
            ("ID", Key("VSwitchId")),
            ("NAME", Key("VSwitchName")),
            ("VPC", Named("VpcId")),
            ("CIDR", Key("CidrBlock")),
            ("ZONE", Key("ZoneId")),
            ("DEFAULT", Key("IsDefault")),
            ("GATEWAY", Key("GatewayIp")),
            ("AVAILABLE IPS", Key("AvailableIpAddressCount")),
            ("ROUTE TABLE", Named("RouteTableId")),
        ],
        Kind::RouteTables => &[
            ("ID", Key("RouteTableId")),
            ("NAME", Key("RouteTableName")),
            ("TYPE", Key("RouteTableType")),
            ("VPC", Named("VpcId")),
            ("VSWITCHES", Named("VSwitchIds")),
            ("ENTRIES", Key("RouteEntryCount")),
        ],
        Kind::RouteEntries => &[
            ("VPC", VpcOf("RouteTableId")),
            ("TABLE", Named("RouteTableId")),
            ("DESTINATION", Key("DestinationCidrBlock")),
            ("TYPE", Key("Type")),
            ("NEXT HOP TYPE", Key("NextHopType")),
            ("NEXT HOP", NextHops),
            ("ID", Key("RouteEntryId")),
            ("NAME", Key("RouteEntryName")),
        ],
        Kind::Enis => &[
            ("ID", Key("NetworkInterfaceId")),
            ("NAME", Key("NetworkInterfaceName")),
            ("VPC", Named("VpcId")),
            ("VSWITCH", Named("VSwitchId")),
            ("IP", Key("PrivateIpAddress")),
            ("MAC", Key("MacAddress")),
            ("INTERFACE", Key("Interface")),
            ("SECURITY GROUPS", Named("SecurityGroupIds")),
            ("STATUS", Key("Status")),
        ],
        Kind::Gateways => &[
            ("ID", Key("GatewayId")),
            ("NAME", Key("GatewayName")),
            ("VPC", Named("VpcId")),
            ("NETWORKS", Key("Networks")),
            ("IP", Key("IpAddress")),
            ("MAC", Key("MacAddress")),
            ("INTERFACE", Key("Interface")),
            ("STATUS", Key("Status")),
        ],
        Kind::Cens => &[("ID", Key("CenId")), ("NAME", Key("CenName")), ("VPCS", Named("ChildInstanceIds"))],
        Kind::SecurityGroups => &[
            ("ID", Key("SecurityGroupId")),
            ("NAME", Key("SecurityGroupName")),
            ("VPC", Named("VpcId")),
            ("INTRA-GROUP", Key("InnerAccessPolicy")),
            ("RULES", Key("RuleCount")),
            ("ENIS", Named("NetworkInterfaceIds")),
        ],
        Kind::FlowLogs => &[
            ("ID", Key("FlowLogId")),
            ("NAME", Key("FlowLogName")),
            ("VPC", VpcOf("ResourceId")),
            ("RESOURCE TYPE", Key("ResourceType")),
            ("RESOURCE", Named("ResourceId")),
            ("TRAFFIC", Key("TrafficType")),
            ("WINDOW S", Key("AggregationInterval")),
            ("STATUS", Key("Status")),
            ("FILE", Key("LogFile")),
            ("IPFIX", Key("IpfixCollector")),
        ],
        Kind::MulticastGroups => &[
            ("ID", Key("GroupId")),
            ("GROUP", Key("GroupAddress")),
            ("VPC", Named("VpcId")),
            ("SENDERS", EniNames("Senders")),
            ("MEMBERS", EniNames("Members")),
        ],
        Kind::Hosts => &[
            ("HOST", Key("HostName")),
            ("NUMBER", Key("HostNumber")),
            ("UNDERLAY", Key("UnderlayAddress")),
            ("STATUS", Key("Status")),
            ("NEXT HOP MAC", Key("NextHopMac")),
            ("ENIS", Key("NetworkInterfaceNames")),
        ],
    }
}

/// `get security-groups --stats`: every rule of every group, then the intra-group policy,
/// which decides like a last ingress rule.
const RULES: &[(&str, Col<'static>)] = &[
    ("VPC", Named("VpcId")),
    ("GROUP", Named("SecurityGroupId")),
    ("RULE", Key("SecurityGroupRuleId")),
    ("DIRECTION", Key("Direction")),
    ("POLICY", Key("Policy")),
    ("PROTOCOL", Key("IpProtocol")),
    ("PORTS", Key("PortRange")),
    ("PEER", Named("Peer")),
    ("PRIORITY", Key("Priority")),
    ("PACKETS", Key("Packets")),
    ("BYTES", Key("Bytes")),
];

fn rule_rows(attributes: &[Value]) -> Vec<Value> {
    let mut rows = Vec::new();
    for attr in attributes {
        for rule in attr["Permissions"].as_array().into_iter().flatten() {
            let mut row = rule.clone();
            row["SecurityGroupId"] = attr["SecurityGroupId"].clone();
            row["VpcId"] = attr["VpcId"].clone();
            row["Peer"] = ["SourceCidrIp", "SourceGroupId", "DestCidrIp", "DestGroupId"]
                .iter()
                .find_map(|k| rule.get(*k).cloned())
                .unwrap_or(Value::Null);
            rows.push(row);
        }
        rows.push(json!({
            "SecurityGroupId": attr["SecurityGroupId"], "VpcId": attr["VpcId"], "SecurityGroupRuleId": "(intra-group)", "Direction": "ingress",
            "Policy": attr["InnerAccessPolicy"].as_str().map(str::to_lowercase), "IpProtocol": "all", "PortRange": "-1/-1",
            "Peer": format!("group {}", attr["SecurityGroupName"].as_str().unwrap_or_default()), "Priority": "last",
            "Packets": attr["InnerAccess"]["Packets"], "Bytes": attr["InnerAccess"]["Bytes"],
        }));
    }
    rows
}
