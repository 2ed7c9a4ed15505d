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
}

pub fn run(conn: &Conn, kind: Kind, route_table: Option<&str>, format: Format) -> anyhow::Result<()> {
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
