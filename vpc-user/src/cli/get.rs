//! `vpc get KIND`: the Describe operations as tables (or JSON).

use clap::ValueEnum;
use serde_json::{json, Value};

use super::{api_error, output, Format};
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
}

pub fn run(conn: &Conn, kind: Kind, route_table: Option<&str>, stats: bool, format: Format) -> anyhow::Result<()> {
    let call = |action: &str, body: Value| conn.call(action, body).map_err(|e| api_error(action, e));
    let (rows, columns): (Vec<Value>, &[(&str, &str)]) = match kind {
        Kind::Vpcs => (
            list(call("DescribeVpcs", json!({}))?, "Vpcs"),
            &[("ID", "VpcId"), ("NAME", "VpcName"), ("CIDR", "CidrBlock"), ("DEFAULT", "IsDefault"), ("VSWITCHES", "VSwitchIds"), ("ROUTE TABLES", "RouteTableIds")],
        ),
        Kind::Vswitches => (
            list(call("DescribeVSwitches", json!({}))?, "VSwitches"),
            &[
                ("ID", "VSwitchId"),
                ("NAME", "VSwitchName"),
                ("VPC", "VpcId"),
                ("CIDR", "CidrBlock"),
                ("ZONE", "ZoneId"),
                ("DEFAULT", "IsDefault"),
                ("GATEWAY", "GatewayIp"),
                ("AVAILABLE IPS", "AvailableIpAddressCount"),
                ("ROUTE TABLE", "RouteTableId"),
            ],
        ),
        Kind::RouteTables => (
            list(call("DescribeRouteTableList", json!({}))?, "RouterTableList"),
            &[("ID", "RouteTableId"), ("NAME", "RouteTableName"), ("TYPE", "RouteTableType"), ("VPC", "VpcId"), ("VSWITCHES", "VSwitchIds"), ("ENTRIES", "RouteEntryCount")],
        ),
        Kind::RouteEntries => {
            let tables: Vec<String> = match route_table {
                Some(id) => vec![id.to_string()],
                None => list(call("DescribeRouteTableList", json!({}))?, "RouterTableList")
                    .iter()
                    .filter_map(|t| t["RouteTableId"].as_str().map(str::to_string))
                    .collect(),
            };
            let mut rows = Vec::new();
            for table in tables {
                rows.extend(list(call("DescribeRouteEntryList", json!({"RouteTableId": table}))?, "RouteEntrys"));
            }
            (
                rows,
                &[("TABLE", "RouteTableId"), ("DESTINATION", "DestinationCidrBlock"), ("TYPE", "Type"), ("NEXT HOP TYPE", "NextHopType"), ("NEXT HOP", "NextHopId"), ("ID", "RouteEntryId")],
            )
        }
        Kind::Enis => (
            list(call("DescribeNetworkInterfaces", json!({}))?, "NetworkInterfaceSets"),
            &[
                ("ID", "NetworkInterfaceId"),
                ("NAME", "NetworkInterfaceName"),
                ("VSWITCH", "VSwitchId"),
                ("IP", "PrivateIpAddress"),
                ("MAC", "MacAddress"),
                ("INTERFACE", "Interface"),
                ("STATUS", "Status"),
            ],
        ),
        Kind::SecurityGroups if stats => {
            let mut rows = Vec::new();
            for group in list(call("DescribeSecurityGroups", json!({}))?, "SecurityGroups") {
                let id = group["SecurityGroupId"].clone();
                let attr = call("DescribeSecurityGroupAttribute", json!({"SecurityGroupId": id}))?;
                for mut rule in list(attr.clone(), "Permissions") {
                    rule["Group"] = group["SecurityGroupName"].clone();
                    rule["Peer"] = ["SourceCidrIp", "SourceGroupId", "DestCidrIp", "DestGroupId"]
                        .iter()
                        .find_map(|k| rule.get(*k).cloned())
                        .unwrap_or(Value::Null);
                    rows.push(rule);
                }
                // The intra-group policy decides like a last ingress rule.
                rows.push(json!({
                    "Group": group["SecurityGroupName"], "SecurityGroupRuleId": "(intra-group)", "Direction": "ingress",
                    "Policy": attr["InnerAccessPolicy"].as_str().map(str::to_lowercase), "IpProtocol": "all", "PortRange": "-1/-1",
                    "Peer": format!("group {}", group["SecurityGroupName"].as_str().unwrap_or_default()), "Priority": "last",
                    "Packets": attr["InnerAccess"]["Packets"], "Bytes": attr["InnerAccess"]["Bytes"],
                }));
            }
            (
                rows,
                &[
                    ("GROUP", "Group"),
                    ("RULE", "SecurityGroupRuleId"),
                    ("DIRECTION", "Direction"),
                    ("POLICY", "Policy"),
                    ("PROTOCOL", "IpProtocol"),
                    ("PORTS", "PortRange"),
                    ("PEER", "Peer"),
                    ("PRIORITY", "Priority"),
                    ("PACKETS", "Packets"),
                    ("BYTES", "Bytes"),
                ],
            )
        }
        Kind::Gateways => (
            list(call("DescribeGateways", json!({}))?, "Gateways"),
            &[
                ("ID", "GatewayId"),
                ("NAME", "GatewayName"),
                ("VPC", "VpcId"),
                ("NETWORKS", "Networks"),
                ("IP", "IpAddress"),
                ("MAC", "MacAddress"),
                ("INTERFACE", "Interface"),
                ("STATUS", "Status"),
            ],
        ),
        Kind::Cens => (list(call("DescribeCens", json!({}))?, "Cens"), &[("ID", "CenId"), ("NAME", "CenName"), ("VPCS", "ChildInstanceIds")]),
        Kind::MulticastGroups => (
            list(call("DescribeMulticastGroups", json!({}))?, "Groups"),
            &[("ID", "GroupId"), ("GROUP", "GroupAddress"), ("VPC", "VpcId"), ("SENDERS", "Senders"), ("MEMBERS", "Members")],
        ),
        Kind::FlowLogs => (
            list(call("DescribeFlowLogs", json!({}))?, "FlowLogs"),
            &[
                ("ID", "FlowLogId"),
                ("NAME", "FlowLogName"),
                ("RESOURCE", "ResourceType"),
                ("RESOURCE ID", "ResourceId"),
                ("TRAFFIC", "TrafficType"),
                ("WINDOW S", "AggregationInterval"),
                ("STATUS", "Status"),
                ("FILE", "LogFile"),
                ("IPFIX", "IpfixCollector"),
            ],
        ),
        Kind::SecurityGroups => (
            list(call("DescribeSecurityGroups", json!({}))?, "SecurityGroups"),
            &[
                ("ID", "SecurityGroupId"),
                ("NAME", "SecurityGroupName"),
                ("VPC", "VpcId"),
                ("INTRA-GROUP", "InnerAccessPolicy"),
                ("RULES", "RuleCount"),
                ("ENIS", "NetworkInterfaceIds"),
            ],
        ),
    };
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        output::table(&rows, columns);
    }
    Ok(())
}

fn list(mut response: Value, key: &str) -> Vec<Value> {
    response[key].take().as_array().cloned().unwrap_or_default()
}
