//! Which request parameter a document field came from, so an API caller's validation error
//! names the parameter it sent (`CidrBlock`) beside the document field (`vpcs[2].cidr`).

use super::ApiError;

/// A document field's name -> the parameters it is made from (the first one the request gave
/// wins). Fields are matched from the end of the path: `...routes[0].next_hop.hops[1].eni`
/// finds `next_hop`.
const MADE_FROM: &[(&str, &[&str])] = &[
    ("cidr", &["CidrBlock"]),
    (
        "name",
        &[
            "VpcName",
            "VSwitchName",
            "RouteTableName",
            "RouteEntryName",
            "NetworkInterfaceName",
            "GatewayName",
            "SecurityGroupName",
            "FlowLogName",
            "CenName",
        ],
    ),
    ("description", &["Description"]),
    ("zone", &["ZoneId"]),
    ("dst", &["DestinationCidrBlock"]),
    ("next_hop", &["NextHopId", "NextHop", "NextHopType"]),
    ("ip", &["PrimaryIpAddress", "IpAddress"]),
    ("mac", &["MacAddress"]),
    ("interface", &["Interface"]),
    ("mtu", &["Mtu"]),
    ("conntrack_limit", &["ConntrackLimit"]),
    ("source_dest_check", &["SourceDestCheck"]),
    ("vswitch", &["VSwitchId"]),
    ("security_groups", &["SecurityGroupIds", "SecurityGroupId"]),
    ("networks", &["Networks"]),
    ("intra_group", &["InnerAccessPolicy"]),
    ("direction", &["Direction"]),
    ("policy", &["Policy"]),
    ("protocol", &["IpProtocol"]),
    ("ports", &["PortRange"]),
    ("peer", &["SourceCidrIp", "SourceGroupId", "DestCidrIp", "DestGroupId"]),
    ("priority", &["Priority"]),
    ("resource", &["ResourceId", "ResourceType"]),
    ("traffic", &["TrafficType"]),
    ("window", &["AggregationInterval"]),
    ("file", &["LogFile"]),
    ("ipfix", &["IpfixCollector"]),
    ("sink", &["LogFile", "IpfixCollector"]),
    ("group", &["GroupAddress"]),
    ("senders", &["SenderIds"]),
    ("members", &["MemberIds"]),
];

/// The parameter `field` came from, among those the request gave (`given`).
pub fn made_from(field: &str, given: impl Fn(&str) -> bool) -> Option<&'static str> {
    let names = field.split('.').rev().map(|segment| segment.split('[').next().unwrap_or(segment));
    for name in names {
        if let Some((_, params)) = MADE_FROM.iter().find(|(f, _)| *f == name) {
            return params.iter().copied().find(|p| given(p));
        }
    }
    None
}

/// `err` with each validation problem naming its parameter, and the message saying both.
pub fn name_parameters(mut err: ApiError, given: impl Fn(&str) -> bool) -> ApiError {
    if err.problems.is_empty() {
        return err;
    }
    for problem in &mut err.problems {
        problem.parameter = made_from(&problem.field, &given).map(str::to_string);
    }
    err.message = err.problems.iter().map(|p| format!("{}: {}", p.location(), p.message)).collect::<Vec<_>>().join("; ");
    if let Some(first) = err.problems.first() {
        err.field = Some(first.parameter.clone().unwrap_or_else(|| first.field.clone()));
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_names_the_parameter_the_request_gave() {
        let given = |names: &'static [&'static str]| move |p: &str| names.contains(&p);
        assert_eq!(made_from("vpcs[3].cidr", given(&["CidrBlock", "VpcName"])), Some("CidrBlock"));
        assert_eq!(made_from("vpcs[0].vswitches[2].name", given(&["VSwitchName", "VpcId"])), Some("VSwitchName"));
        assert_eq!(made_from("vpcs[0].route_tables[1].routes[0].next_hop.hops[1].eni", given(&["NextHop"])), Some("NextHop"));
        assert_eq!(made_from("vpcs[0].security_groups[0].rules[4].peer", given(&["DestGroupId"])), Some("DestGroupId"));
        assert_eq!(made_from("flow_logs[0].sink.file", given(&["LogFile"])), Some("LogFile"));
        // Not sent in the request: no parameter to name.
        assert_eq!(made_from("vpcs[0].cidr", given(&["VpcName"])), None);
        assert_eq!(made_from("enis", given(&["CidrBlock"])), None);
    }
}
