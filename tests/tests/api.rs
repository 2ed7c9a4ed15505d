//! The control plane through its API and CLI, against a real `vpc daemon`: the guide's console
//! walk-throughs, every rule of the guide as a refused request (with the store and the kernel
//! maps unchanged), defaults and quotas, concurrent clients, metrics.

use std::{io::Write as _, process::Output};

use serde_json::{Value, json};
use vpc::dataplane::Dataplane;
use vpc_tests::{Daemon, HostVeth};

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ok_json(o: Output) -> Value {
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

fn id(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}")).to_string()
}

#[test]
fn the_guides_console_walk_through_as_cli_commands() {
    let d = Daemon::start("w1", &[]);
    let vpc = ok_json(d.cli(&["create-vpc", "--cidr-block", "192.168.0.0/16", "--vpc-name", "prod", "--description", "my first VPC"]));
    let vpc_id = id(&vpc, "VpcId");
    assert!(vpc_id.starts_with("vpc-") && id(&vpc, "RouteTableId").starts_with("vtb-") && id(&vpc, "VRouterId").starts_with("vrt-"));
    let vsw = ok_json(d.cli(&[
        "create-vswitch",
        "--vpc-id",
        &vpc_id,
        "--cidr-block",
        "192.168.1.0/24",
        "--zone-id",
        "zone-a",
        "--vswitch-name",
        "web",
    ]));
    let vsw_id = id(&vsw, "VSwitchId");
    let listed = ok_json(d.cli(&["describe-vswitches", "--vpc-id", &vpc_id]));
    assert_eq!(listed["VSwitches"][0]["AvailableIpAddressCount"], 252, "size - 4");
    assert_eq!(listed["VSwitches"][0]["GatewayIp"], "192.168.1.253");

    // Custom route table: create, associate, add an entry.
    let table_id = id(&ok_json(d.cli(&["create-route-table", "--vpc-id", &vpc_id, "--route-table-name", "table1"])), "RouteTableId");
    ok_json(d.cli(&["associate-route-table", "--route-table-id", &table_id, "--vswitch-id", &vsw_id]));
    let eni = ok_json(d.cli(&[
        "create-network-interface",
        "--vswitch-id",
        &vsw_id,
        "--network-interface-name",
        "ecs01",
        "--source-dest-check",
        "false",
    ]));
    let eni_id = id(&eni, "NetworkInterfaceId");
    assert_eq!(eni["PrivateIpAddress"], "192.168.1.1", "the next free address");
    let entry = ok_json(d.cli(&[
        "create-route-entry",
        "--route-table-id",
        &table_id,
        "--destination-cidr-block",
        "0.0.0.0/0",
        "--next-hop-type",
        "Instance",
        "--next-hop-id",
        &eni_id,
    ]));
    let entry_id = id(&entry, "RouteEntryId");
    let entries = ok_json(d.cli(&["describe-route-entry-list", "--route-table-id", &table_id]));
    let dsts: Vec<(String, String)> = entries["RouteEntrys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["DestinationCidrBlock"].as_str().unwrap().into(), e["Type"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        dsts,
        vec![("100.64.0.0/10".into(), "System".into()), ("192.168.1.0/24".into(), "System".into()), ("0.0.0.0/0".into(), "Custom".into())]
    );
    let tables = ok_json(d.cli(&["describe-route-table-list", "--vpc-id", &vpc_id]));
    let custom = tables["RouterTableList"].as_array().unwrap().iter().find(|t| t["RouteTableType"] == "Custom").unwrap();
    assert_eq!(custom["VSwitchIds"], json!([vsw_id]));
    assert!(text(&d.cli(&["get", "route-entries"])).contains("0.0.0.0/0"));
    // Every kind lists, as a table and as JSON with the API's PascalCase keys.
    let kinds = [
        "vpcs",
        "vswitches",
        "route-tables",
        "route-entries",
        "enis",
        "gateways",
        "cens",
        "security-groups",
        "flow-logs",
        "multicast-groups",
    ];
    for kind in kinds {
        let table = d.cli(&["get", kind]);
        assert!(table.status.success(), "get {kind}: {}", String::from_utf8_lossy(&table.stderr));
        let rows = ok_json(d.cli(&["get", kind, "-o", "json"]));
        for row in rows.as_array().unwrap_or_else(|| panic!("get {kind} -o json is a list: {rows}")) {
            for key in row.as_object().unwrap().keys() {
                assert!(key.chars().next().is_some_and(|c| c.is_ascii_uppercase()), "get {kind}: key {key} is not PascalCase");
            }
        }
    }

    // Deleting in the wrong order is refused, each with its reason.
    let refused = |args: &[&str], code: &str| {
        let o = d.cli(args);
        assert!(!o.status.success() && text(&o).contains(code), "{args:?}: {}", text(&o));
    };
    refused(&["delete-vpc", "--vpc-id", &vpc_id], "DependencyViolation.VSwitch");
    refused(&["delete-vswitch", "--vswitch-id", &vsw_id], "DependencyViolation.NetworkInterface");
    refused(&["delete-route-table", "--route-table-id", &table_id], "DependencyViolation.RouteTableAssociated");
    refused(&["delete-network-interface", "--network-interface-id", &eni_id], "DependencyViolation.RouteEntryNextHop");
    let system = id(&vpc, "RouteTableId");
    refused(&["delete-route-table", "--route-table-id", &system], "OperationDenied.SystemRouteTable");
    refused(
        &["delete-route-entry", "--route-table-id", &table_id, "--destination-cidr-block", "192.168.1.0/24"],
        "OperationDenied.SystemRouteEntry",
    );

    // The right order works; unbinding returns the VSwitch to the system table.
    ok_json(d.cli(&["delete-route-entry", "--route-entry-id", &entry_id]));
    ok_json(d.cli(&["unassociate-route-table", "--route-table-id", &table_id, "--vswitch-id", &vsw_id]));
    let listed = ok_json(d.cli(&["describe-vswitches", "--vswitch-id", &vsw_id]));
    assert_eq!(listed["VSwitches"][0]["RouteTableId"], json!(system));
    ok_json(d.cli(&["delete-route-table", "--route-table-id", &table_id]));
    ok_json(d.cli(&["delete-network-interface", "--network-interface-id", &eni_id]));
    ok_json(d.cli(&["delete-vswitch", "--vswitch-id", &vsw_id]));
    ok_json(d.cli(&["modify-vpc-attribute", "--vpc-id", &vpc_id, "--vpc-name", "renamed", "--description", "still here"]));
    assert_eq!(ok_json(d.cli(&["describe-vpcs"]))["Vpcs"][0]["VpcName"], "renamed");
    ok_json(d.cli(&["delete-vpc", "--vpc-id", &vpc_id]));
    assert_eq!(ok_json(d.cli(&["describe-vpcs"]))["TotalCount"], 0);
    assert_eq!(ok_json(d.cli(&["describe-route-table-list"]))["TotalCount"], 0, "the VPC's route tables went with it");
}

#[test]
fn default_vpc_and_vswitches() {
    let d = Daemon::start("w2", &["--quota", "vpcs=1"]);
    // An ENI created with only a zone lands in that zone's default VSwitch of the default VPC.
    let eni = d.call("CreateNetworkInterface", json!({"ZoneId": "zone-a", "NetworkInterfaceName": "first"}));
    let vpcs = d.call("DescribeVpcs", json!({"IsDefault": true}));
    assert_eq!(vpcs["TotalCount"], 1);
    assert_eq!(vpcs["Vpcs"][0]["CidrBlock"], "172.31.0.0/16");
    let vsw = d.call("DescribeVSwitches", json!({"VSwitchId": eni["VSwitchId"]}));
    assert_eq!(vsw["VSwitches"][0]["IsDefault"], true);
    assert_eq!(vsw["VSwitches"][0]["CidrBlock"], "172.31.0.0/20");
    assert_eq!(vsw["VSwitches"][0]["AvailableIpAddressCount"], 4092 - 1);
    // The same zone reuses it; another zone gets the next /20.
    let again = d.call("CreateNetworkInterface", json!({"ZoneId": "zone-a"}));
    assert_eq!(again["VSwitchId"], eni["VSwitchId"]);
    let other = d.call("CreateNetworkInterface", json!({"ZoneId": "zone-b"}));
    let vsw = d.call("DescribeVSwitches", json!({"VSwitchId": other["VSwitchId"]}));
    assert_eq!(vsw["VSwitches"][0]["CidrBlock"], "172.31.16.0/20");
    let created = d.call("CreateDefaultVSwitch", json!({"ZoneId": "zone-c"}));
    assert!(id(&created, "VSwitchId").starts_with("vsw-"));
    // The default VPC is outside the quota of 1; a second ordinary VPC is not.
    d.call("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "VpcName": "first"}));
    let err = d.conn().call("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "VpcName": "second"})).unwrap_err();
    assert_eq!(err.code, "QuotaExceeded.Vpc");
    let err = d.conn().call("CreateDefaultVpc", json!({})).unwrap_err();
    assert_eq!(err.code, "InvalidDefaultVpc.Exists");
    // Default resources are ordinary otherwise: they can be renamed and deleted in order.
    d.call("ModifyVSwitchAttribute", json!({"VSwitchId": created["VSwitchId"], "VSwitchName": "renamed-default"}));
    d.call("DeleteVSwitch", json!({"VSwitchId": created["VSwitchId"]}));
}

/// A state with something in every kind of resource and in every kernel map.
fn base_topology(nat_interface: &str) -> Value {
    json!({"vpcs": [
        {"name": "prod", "cidr": "192.168.0.0/16",
         "vswitches": [
            {"name": "web", "cidr": "192.168.1.0/24", "zone": "zone-a"},
            {"name": "db", "cidr": "192.168.2.0/24", "zone": "zone-b", "route_table": "edge"}],
         "route_tables": [{"name": "edge", "routes": [{"dst": "0.0.0.0/0", "next_hop": {"type": "eni", "eni": "nat1"}}]}],
         "enis": [
            {"name": "nat1", "vswitch": "web", "ip": "192.168.1.5", "interface": nat_interface, "source_dest_check": false},
            {"name": "db1", "vswitch": "db", "ip": "192.168.2.10", "mac": "02:00:00:00:00:db"}]},
        {"name": "default", "cidr": "172.31.0.0/16", "default": true,
         "vswitches": [{"name": "default-zone-a", "cidr": "172.31.0.0/20", "zone": "zone-a", "default": true}]}
    ]})
}

#[test]
fn every_rule_refuses_with_its_code_and_changes_nothing() {
    let nat = HostVeth::new("vtk1nat");
    let d = Daemon::start("k1", &["--quota", "vpcs=2,vswitches-per-vpc=3,route-entries-per-table=1,enis=4"]);
    d.call("ApplyTopology", json!({"Topology": base_topology(&nat.0)}));
    let export = d.call("ExportTopology", json!({}));
    let doc = &export["Topology"];
    let prod = &doc["vpcs"][0];
    let vpc = prod["id"].as_str().unwrap().to_string();
    let default_vpc = doc["vpcs"][1]["id"].as_str().unwrap().to_string();
    let web = prod["vswitches"][0]["id"].as_str().unwrap().to_string();
    let db = prod["vswitches"][1]["id"].as_str().unwrap().to_string();
    let default_vsw = doc["vpcs"][1]["vswitches"][0]["id"].as_str().unwrap().to_string();
    let system = prod["route_tables"][0]["id"].as_str().unwrap().to_string();
    let edge = prod["route_tables"][1]["id"].as_str().unwrap().to_string();
    let nat1 = prod["enis"][0]["id"].as_str().unwrap().to_string();
    let dataplane = Dataplane::new(&d.opts.bpffs, Default::default());
    let maps = dataplane.read_entries().unwrap();
    assert_eq!(maps.enis.len(), 1, "nat1's interface exists: it is in the data path");
    assert!(maps.routes.len() >= 7);

    // A topology document: the base with `edit` applied.
    let topo = |edit: &dyn Fn(&mut Value)| {
        let mut t = base_topology(&nat.0);
        edit(&mut t);
        json!({"Topology": t})
    };
    let long = "a".repeat(129);
    let long_desc = "d".repeat(257);
    let cases: Vec<(&str, Value, &str)> = vec![
        // VPCs
        ("CreateVpc", json!({}), "MissingParameter"),
        ("CreateVpc", json!({"CidrBlock": "8.8.0.0/16"}), "InvalidVpcCidr.NotPrivate"),
        ("CreateVpc", json!({"CidrBlock": "100.64.0.0/10"}), "InvalidVpcCidr.NotPrivate"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.1/8"}), "InvalidCidrBlock.Malformed"),
        ("CreateVpc", json!({"CidrBlock": "garbage"}), "InvalidCidrBlock.Malformed"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/33"}), "InvalidCidrBlock.Malformed"),
        ("CreateVpc", json!({"CidrBlock": 10}), "InvalidParameter"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "Colour": "red"}), "InvalidParameter.Unknown"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "VpcName": "a"}), "InvalidName.Malformed"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "VpcName": "1abc"}), "InvalidName.Malformed"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "VpcName": "has space"}), "InvalidName.Malformed"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "VpcName": long}), "InvalidName.Malformed"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "VpcName": "prod"}), "InvalidName.Duplicate"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "Description": "http://example.com"}), "InvalidDescription.Malformed"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "Description": "https://example.com"}), "InvalidDescription.Malformed"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "Description": "x"}), "InvalidDescription.Malformed"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "Description": long_desc}), "InvalidDescription.Malformed"),
        ("CreateVpc", json!({"CidrBlock": "10.0.0.0/8", "ConntrackLimit": 0}), "InvalidConntrackLimit.ValueNotSupported"),
        ("CreateDefaultVpc", json!({}), "InvalidDefaultVpc.Exists"),
        ("DeleteVpc", json!({"VpcId": "vpc-nothere"}), "InvalidVpcId.NotFound"),
        ("DeleteVpc", json!({"VpcId": vpc}), "DependencyViolation.VSwitch"),
        ("DeleteVpc", json!({"VpcId": default_vpc}), "DependencyViolation.VSwitch"),
        ("ModifyVpcAttribute", json!({"VpcId": vpc, "CidrBlock": "192.168.0.0/17"}), "OperationDenied.CidrImmutable"),
        ("ModifyVpcAttribute", json!({"VpcId": vpc, "VpcName": "-bad"}), "InvalidName.Malformed"),
        ("ModifyVpcAttribute", json!({"VpcId": vpc, "VpcName": "default"}), "InvalidName.Duplicate"),
        ("ModifyVpcAttribute", json!({"VpcId": "vpc-nothere", "VpcName": "x1"}), "InvalidVpcId.NotFound"),
        // VSwitches
        ("CreateVSwitch", json!({"VpcId": "vpc-nothere", "CidrBlock": "192.168.3.0/24", "ZoneId": "z"}), "InvalidVpcId.NotFound"),
        ("CreateVSwitch", json!({"VpcId": vpc, "CidrBlock": "192.168.3.0/24"}), "MissingParameter"),
        ("CreateVSwitch", json!({"VpcId": vpc, "CidrBlock": "192.168.3.0/24", "ZoneId": " "}), "InvalidZone.Missing"),
        ("CreateVSwitch", json!({"VpcId": vpc, "CidrBlock": "192.168.0.0/15", "ZoneId": "z"}), "InvalidVSwitchCidr.Mask"),
        ("CreateVSwitch", json!({"VpcId": vpc, "CidrBlock": "192.168.3.0/30", "ZoneId": "z"}), "InvalidVSwitchCidr.Mask"),
        ("CreateVSwitch", json!({"VpcId": vpc, "CidrBlock": "10.1.0.0/24", "ZoneId": "z"}), "InvalidVSwitchCidr.NotInVpc"),
        ("CreateVSwitch", json!({"VpcId": vpc, "CidrBlock": "192.168.1.128/25", "ZoneId": "z"}), "InvalidVSwitchCidr.Overlapped"),
        ("CreateVSwitch", json!({"VpcId": vpc, "CidrBlock": "192.168.0.0/16", "ZoneId": "z"}), "InvalidVSwitchCidr.Overlapped"),
        (
            "CreateVSwitch",
            json!({"VpcId": vpc, "CidrBlock": "192.168.3.0/24", "ZoneId": "z", "VSwitchName": "web"}),
            "InvalidName.Duplicate",
        ),
        ("CreateVSwitch", json!({"VpcId": vpc, "CidrBlock": "192.168.3.1/24", "ZoneId": "z"}), "InvalidCidrBlock.Malformed"),
        ("DeleteVSwitch", json!({"VSwitchId": web}), "DependencyViolation.NetworkInterface"),
        ("DeleteVSwitch", json!({"VSwitchId": "vsw-nothere"}), "InvalidVSwitchId.NotFound"),
        ("ModifyVSwitchAttribute", json!({"VSwitchId": web, "CidrBlock": "192.168.1.0/25"}), "OperationDenied.CidrImmutable"),
        ("ModifyVSwitchAttribute", json!({"VSwitchId": web, "VSwitchName": "db"}), "InvalidName.Duplicate"),
        ("CreateDefaultVSwitch", json!({"ZoneId": "zone-a"}), "InvalidDefaultVSwitch.Exists"),
        // Route tables
        ("CreateRouteTable", json!({"VpcId": "vpc-nothere"}), "InvalidVpcId.NotFound"),
        ("CreateRouteTable", json!({"VpcId": vpc, "RouteTableName": "system"}), "InvalidRouteTableName.Reserved"),
        ("CreateRouteTable", json!({"VpcId": vpc, "RouteTableName": "edge"}), "InvalidName.Duplicate"),
        ("DeleteRouteTable", json!({"RouteTableId": system}), "OperationDenied.SystemRouteTable"),
        ("DeleteRouteTable", json!({"RouteTableId": edge}), "DependencyViolation.RouteTableAssociated"),
        ("DeleteRouteTable", json!({"RouteTableId": "vtb-nothere"}), "InvalidRouteTableId.NotFound"),
        ("ModifyRouteTableAttributes", json!({"RouteTableId": system, "RouteTableName": "main"}), "OperationDenied.SystemRouteTable"),
        ("AssociateRouteTable", json!({"RouteTableId": edge, "VSwitchId": db}), "OperationDenied.VSwitchHasCustomRouteTable"),
        ("AssociateRouteTable", json!({"RouteTableId": system, "VSwitchId": web}), "OperationDenied.SystemRouteTable"),
        ("AssociateRouteTable", json!({"RouteTableId": edge, "VSwitchId": default_vsw}), "OperationDenied.DifferentVpc"),
        ("UnassociateRouteTable", json!({"RouteTableId": edge, "VSwitchId": web}), "OperationDenied.RouteTableNotAssociated"),
        // Route entries
        (
            "CreateRouteEntry",
            json!({"RouteTableId": system, "DestinationCidrBlock": "192.168.1.0/24", "NextHopType": "Blackhole"}),
            "InvalidRouteEntry.ConflictWithSystemEntry",
        ),
        (
            "CreateRouteEntry",
            json!({"RouteTableId": system, "DestinationCidrBlock": "100.64.0.0/10", "NextHopType": "Blackhole"}),
            "InvalidRouteEntry.ConflictWithSystemEntry",
        ),
        (
            "CreateRouteEntry",
            json!({"RouteTableId": system, "DestinationCidrBlock": "10.0.0.0/8", "NextHopType": "Instance", "NextHopId": "eni-nothere"}),
            "InvalidNextHop.NotFound",
        ),
        (
            "CreateRouteEntry",
            json!({"RouteTableId": system, "DestinationCidrBlock": "10.0.0.0/8", "NextHopType": "Teleporter"}),
            "InvalidParameter",
        ),
        ("CreateRouteEntry", json!({"RouteTableId": system, "DestinationCidrBlock": "10.0.0.0/8"}), "MissingParameter"),
        (
            "CreateRouteEntry",
            json!({"RouteTableId": system, "DestinationCidrBlock": "10.0.0.0/8", "NextHopType": "Instance"}),
            "MissingParameter",
        ),
        (
            "CreateRouteEntry",
            json!({"RouteTableId": system, "DestinationCidrBlock": "10.0.0.300/8", "NextHopType": "Blackhole"}),
            "InvalidCidrBlock.Malformed",
        ),
        (
            "CreateRouteEntry",
            json!({"RouteTableId": system, "DestinationCidrBlock": "10.0.0.0/8", "NextHop": {"type": "wormhole"}}),
            "InvalidParameter",
        ),
        (
            "CreateRouteEntry",
            json!({"RouteTableId": edge, "DestinationCidrBlock": "10.0.0.0/8", "NextHopType": "Blackhole"}),
            "QuotaExceeded.RouteEntry",
        ),
        (
            "CreateRouteEntry",
            json!({"RouteTableId": "vtb-nothere", "DestinationCidrBlock": "10.0.0.0/8", "NextHopType": "Blackhole"}),
            "InvalidRouteTableId.NotFound",
        ),
        ("DeleteRouteEntry", json!({"RouteTableId": edge, "DestinationCidrBlock": "100.64.0.0/10"}), "OperationDenied.SystemRouteEntry"),
        ("DeleteRouteEntry", json!({"RouteEntryId": "rte-nothere"}), "InvalidRouteEntryId.NotFound"),
        ("DeleteRouteEntry", json!({"RouteTableId": edge, "DestinationCidrBlock": "10.9.0.0/16"}), "InvalidRouteEntryId.NotFound"),
        ("DeleteRouteEntry", json!({}), "MissingParameter"),
        // ENIs
        ("CreateNetworkInterface", json!({"VSwitchId": web, "PrimaryIpAddress": "192.168.1.0"}), "InvalidIpAddress.Reserved"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "PrimaryIpAddress": "192.168.1.253"}), "InvalidIpAddress.Reserved"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "PrimaryIpAddress": "192.168.1.255"}), "InvalidIpAddress.Reserved"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "PrimaryIpAddress": "192.168.2.7"}), "InvalidIpAddress.NotInVSwitch"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "PrimaryIpAddress": "192.168.1.5"}), "InvalidIpAddress.InUse"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "PrimaryIpAddress": "192.168.1"}), "InvalidIpAddress.Malformed"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "MacAddress": "02:00:00:00:00"}), "InvalidMacAddress.Malformed"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "MacAddress": "01:00:5e:00:00:01"}), "InvalidMacAddress.Malformed"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "MacAddress": "02:00:00:00:00:db"}), "InvalidMacAddress.Duplicate"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "NetworkInterfaceName": "db1"}), "InvalidName.Duplicate"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "Interface": "far-too-long-ifname"}), "InvalidInterface.Malformed"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "Interface": nat.0}), "InvalidInterface.Duplicate"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "Mtu": 9000}), "InvalidMtu.ValueNotSupported"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "Mtu": 100}), "InvalidMtu.ValueNotSupported"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "Mtu": "big"}), "InvalidParameter"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "ConntrackLimit": 0}), "InvalidConntrackLimit.ValueNotSupported"),
        ("CreateNetworkInterface", json!({"VSwitchId": web, "ConntrackLimit": 20_000_000}), "InvalidConntrackLimit.ValueNotSupported"),
        (
            "CreateNetworkInterface",
            json!({"VSwitchId": web, "ConntrackLimit": 5_000_000_000u64}),
            "InvalidConntrackLimit.ValueNotSupported",
        ),
        ("CreateNetworkInterface", json!({}), "MissingParameter"),
        ("CreateNetworkInterface", json!({"VSwitchId": "vsw-nothere"}), "InvalidVSwitchId.NotFound"),
        ("DeleteNetworkInterface", json!({"NetworkInterfaceId": nat1}), "DependencyViolation.RouteEntryNextHop"),
        ("DeleteNetworkInterface", json!({"NetworkInterfaceId": "eni-nothere"}), "InvalidNetworkInterfaceId.NotFound"),
        // The API itself
        ("Teleport", json!({}), "InvalidAction.NotFound"),
        ("CreateVpc", json!(["not", "an", "object"]), "InvalidParameter"),
        ("ApplyTopology", json!({"Topology": {"vpcs": "many"}}), "InvalidTopology.Syntax"),
        ("ApplyTopology", json!({}), "MissingParameter"),
        // Whole documents: rules that need more than one request to break
        ("ApplyTopology", topo(&|t| t["vpcs"][0]["cidr"] = json!("192.168.0.0/17")), "OperationDenied.CidrImmutable"),
        ("ApplyTopology", topo(&|t| t["vpcs"][0]["vswitches"][0]["cidr"] = json!("192.168.1.0/25")), "OperationDenied.CidrImmutable"),
        ("ApplyTopology", topo(&|t| t["vpcs"][1]["cidr"] = json!("172.31.0.0/20")), "InvalidDefaultVpc.Cidr"),
        ("ApplyTopology", topo(&|t| t["vpcs"][0]["vswitches"][0]["default"] = json!(true)), "InvalidDefaultVSwitch.NotInDefaultVpc"),
        ("ApplyTopology", topo(&|t| t["vpcs"][1]["vswitches"][0]["cidr"] = json!("172.31.0.0/24")), "InvalidDefaultVSwitch.Cidr"),
        (
            "ApplyTopology",
            topo(&|t| {
                let extra = json!({"name": "default-again", "cidr": "172.31.16.0/20", "zone": "zone-a", "default": true});
                t["vpcs"][1]["vswitches"].as_array_mut().unwrap().push(extra);
            }),
            "InvalidDefaultVSwitch.Exists",
        ),
        (
            "ApplyTopology",
            topo(&|t| {
                let vpcs = t["vpcs"].as_array_mut().unwrap();
                vpcs.push(json!({"name": "two", "cidr": "10.2.0.0/16"}));
                vpcs.push(json!({"name": "three", "cidr": "10.3.0.0/16"}));
            }),
            "QuotaExceeded.Vpc",
        ),
        (
            "ApplyTopology",
            topo(&|t| {
                let vsws = t["vpcs"][0]["vswitches"].as_array_mut().unwrap();
                vsws.push(json!({"name": "s3", "cidr": "192.168.3.0/24", "zone": "z"}));
                vsws.push(json!({"name": "s4", "cidr": "192.168.4.0/24", "zone": "z"}));
            }),
            "QuotaExceeded.VSwitch",
        ),
        (
            "ApplyTopology",
            topo(&|t| {
                let tables = t["vpcs"][0]["route_tables"].as_array_mut().unwrap();
                for i in 0..10 {
                    tables.push(json!({"name": format!("extra{i}")}));
                }
            }),
            "QuotaExceeded.RouteTable",
        ),
        (
            "ApplyTopology",
            topo(&|t| {
                let enis = t["vpcs"][0]["enis"].as_array_mut().unwrap();
                for i in 0..3 {
                    enis.push(json!({"name": format!("more{i}"), "vswitch": "web"}));
                }
            }),
            "QuotaExceeded.NetworkInterface",
        ),
        (
            "ApplyTopology",
            topo(&|t| {
                t["vpcs"][0]["vswitches"].as_array_mut().unwrap().push(json!({"name": "tiny", "cidr": "192.168.9.0/29", "zone": "z"}));
                // A /29 has four usable addresses.
                t["vpcs"][0]["enis"] = json!((1..=5).map(|i| json!({"name": format!("t{i}"), "vswitch": "tiny"})).collect::<Vec<_>>());
                t["vpcs"][0]["route_tables"][0]["routes"] = json!([]);
            }),
            "InvalidIpAddress.NoFreeAddress",
        ),
        ("ApplyTopology", topo(&|t| t["vpcs"][0]["vswitches"][1]["route_table"] = json!("nowhere")), "InvalidRouteTable.NotFound"),
        (
            "ApplyTopology",
            topo(&|t| {
                t["vpcs"][0]["route_tables"][0]["routes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"dst": "0.0.0.0/0", "next_hop": {"type": "blackhole"}}))
            }),
            "InvalidRouteEntry.Duplicate",
        ),
        ("ApplyTopology", topo(&|t| t["vpcs"][0]["id"] = json!("VPC_1")), "InvalidId.Malformed"),
        ("ApplyTopology", topo(&|t| t["vpcs"][0]["enis"][1]["vswitch"] = json!("nowhere")), "InvalidVSwitch.NotFound"),
    ];
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for (action, body, want) in cases {
        let err = match d.conn().call(action, body.clone()) {
            Ok(v) => panic!("{action} {body} was accepted: {v}"),
            Err(e) => e,
        };
        assert_eq!(err.code, want, "{action} {body}: {}", err.message);
        assert!(!err.message.is_empty() && err.status >= 400, "{action}: {err:?}");
        assert_eq!(d.call("ExportTopology", json!({})), export, "{action} {body} changed the store");
        assert_eq!(dataplane.read_entries().unwrap(), maps, "{action} {body} changed the kernel maps");
    }
    // A dry run of a valid change reports it and changes nothing either.
    let dry = d.call("ApplyTopology", json!({"Topology": {"vpcs": []}, "DryRun": true}));
    assert!(dry["Changes"].as_array().unwrap().iter().any(|c| c == "- vpc prod"), "{dry}");
    assert_eq!(d.call("ExportTopology", json!({})), export);
    assert_eq!(dataplane.read_entries().unwrap(), maps);
}

#[test]
fn yaml_files_are_refused_with_codes_and_change_nothing() {
    let d = Daemon::start("k2", &[]);
    let good = "
vpcs:
  - name: prod
    cidr: 10.20.0.0/16
    vswitches: [{name: web, cidr: 10.20.1.0/24, zone: a}]
    route_tables: [{name: edge, routes: [{dst: 10.99.0.0/16, next_hop: {type: blackhole}}]}]
    enis: [{name: w1, vswitch: web}]
";
    let write = |name: &str, text: &str| {
        let path = std::env::temp_dir().join(name);
        std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
        path.display().to_string()
    };
    let out = d.cli(&["apply", "-f", &write("vpc-k2-good.yaml", good)]);
    assert!(out.status.success(), "{}", text(&out));
    let export = d.call("ExportTopology", json!({}));
    let cases: Vec<(&str, String, &str)> = vec![
        ("cidr change", good.replace("cidr: 10.20.0.0/16", "cidr: 10.20.0.0/17"), "OperationDenied.CidrImmutable"),
        ("vswitch cidr change", good.replace("10.20.1.0/24", "10.20.1.0/25"), "OperationDenied.CidrImmutable"),
        ("syntax", "vpcs: [\n".into(), "InvalidTopology.Syntax"),
        ("unknown key", good.replace("zone: a", "zone: a, colour: red"), "InvalidTopology.Syntax"),
        (
            "reserved address",
            good.replace("{name: w1, vswitch: web}", "{name: w1, vswitch: web, ip: 10.20.1.254}"),
            "InvalidIpAddress.Reserved",
        ),
        ("route over a system entry", good.replace("10.99.0.0/16", "10.20.1.0/24"), "InvalidRouteEntry.ConflictWithSystemEntry"),
        ("next hop missing", good.replace("{type: blackhole}", "{type: eni, eni: ghost}"), "InvalidNextHop.NotFound"),
        ("not private", good.replace("10.20.0.0/16", "11.20.0.0/16").replace("10.20.1.0/24", "11.20.1.0/24"), "InvalidVpcCidr.NotPrivate"),
        (
            "route table twice",
            good.replace("route_tables: [{name: edge,", "route_tables: [{name: edge}, {name: edge,"),
            "InvalidName.Duplicate",
        ),
    ];
    for (what, yaml, code) in cases {
        let file = write(&format!("vpc-k2-{}.yaml", what.replace(' ', "-")), &yaml);
        let out = d.cli(&["apply", "-f", &file]);
        let msg = text(&out);
        assert!(!out.status.success(), "{what}: accepted");
        assert!(msg.contains(code) && msg.contains(&file), "{what}: expected {code} naming the file: {msg}");
        assert_eq!(d.call("ExportTopology", json!({})), export, "{what} changed the store");
    }
}

#[test]
fn concurrent_clients_end_in_one_consistent_state() {
    let d = Daemon::start("k3", &[]);
    let doc = |cidr: &str, names: &[&str]| {
        let vswitches: Vec<Value> =
            names.iter().enumerate().map(|(i, n)| json!({"name": n, "cidr": format!("{cidr}.{}.0/24", i + 1), "zone": "z"})).collect();
        json!({"vpcs": [{"name": "prod", "cidr": format!("{cidr}.0.0/16"), "vswitches": vswitches}]})
    };
    // Conflicting wishes: the same VPC name with different CIDRs (and a CIDR cannot change),
    // and different VSwitch sets.
    let a = doc("10.1", &["a1", "a2", "a3"]);
    let b = doc("10.2", &["b1", "b2"]);
    let socket = d.opts.socket();
    let threads: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .map(|t| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let conn = vpc::api::Conn::Remote(socket);
                (0..15).map(|_| conn.call("ApplyTopology", json!({"Topology": t})).is_ok()).filter(|ok| *ok).count()
            })
        })
        .collect();
    let accepted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(accepted >= 1);
    let exported = d.call("ExportTopology", json!({}));
    let vpc = &exported["Topology"]["vpcs"][0];
    let names: Vec<&str> = vpc["vswitches"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    let state = (vpc["cidr"].as_str().unwrap(), names);
    assert!(state == ("10.1.0.0/16", vec!["a1", "a2", "a3"]) || state == ("10.2.0.0/16", vec!["b1", "b2"]), "mixed state: {state:?}");
    // The kernel holds exactly that state's routes: 100.64/10 and one per VSwitch.
    let maps = Dataplane::new(&d.opts.bpffs, Default::default()).read_entries().unwrap();
    assert_eq!(maps.routes.len(), 1 + state.1.len());
}

#[test]
fn metrics_pass_promtool_and_count_what_happened() {
    let veth = HostVeth::new("vtm1a");
    let port = 19464 + (std::process::id() % 500) as u16;
    let mut d = Daemon::start("m1", &[]);
    d.kill9();
    d.spawn(&["--metrics-addr", &format!("127.0.0.1:{port}")]);
    d.call(
        "ApplyTopology",
        json!({"Topology": {"vpcs": [{"name": "prod", "cidr": "10.30.0.0/16",
        "vswitches": [{"name": "web", "cidr": "10.30.1.0/24", "zone": "z"}],
        "enis": [{"name": "m1", "vswitch": "web", "interface": veth.0}],
        "multicast_groups": [{"group": "239.3.3.3", "senders": ["m1"], "members": ["m1"]}]}]}}),
    );
    let _ = d.conn().call("DeleteVpc", json!({"VpcId": "vpc-nothere"}));
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut conn, &mut response).unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
    for needle in [
        "vpc_eni_rx_packets_total{eni=\"m1\"",
        "vpc_drops_total{reason=\"spoofed_ip\"}",
        "vpc_events_total{event=\"flow_cache_hit\"}",
        "vpc_map_entries{map=\"ROUTES\"} 2",
        "vpc_map_capacity{map=\"ENIS\"}",
        "vpc_map_entries{map=\"MCAST_GROUPS\"} 1",
        "vpc_conntrack_entries ",
        "vpc_eni_connections{eni=\"m1\"",
        "vpc_eni_connection_limit{eni=\"m1\",eni_id=",
        "vpc_conntrack_refused_total{cause=\"limit\"} 0",
        "vpc_mcast_packets_total{vpc=\"prod\",group=\"239.3.3.3\"} 0",
        "vpc_mcast_member_packets_total{vpc=\"prod\",group=\"239.3.3.3\",member=\"m1\"} 0",
        "vpc_api_requests_total{action=\"ApplyTopology\",code=\"OK\"} 1",
        "vpc_api_requests_total{action=\"DeleteVpc\",code=\"InvalidVpcId.NotFound\"} 1",
        "vpc_store_revision 1",
    ] {
        assert!(body.contains(needle), "{needle} missing from:\n{body}");
    }
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (apt install prometheus)");
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(), "promtool: {}", text(&out));
}

#[test]
fn the_api_socket_is_private_and_the_openapi_document_is_served() {
    use std::os::unix::fs::PermissionsExt as _;
    let d = Daemon::start("o1", &[]);
    let mode = std::fs::metadata(d.opts.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (status, body) = vpc::api::client::request(&d.opts.socket(), "GET", "/openapi.json", "").unwrap();
    assert_eq!(status, 200);
    let served: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(served, vpc::api::openapi::document());
    for op in ["CreateVpc", "DescribeVSwitches", "AssociateRouteTable", "CreateRouteEntry", "DescribeNetworkInterfaces"] {
        assert!(served["paths"][format!("/api/{op}")].is_object(), "{op}");
    }
    // A body declared larger than the limit is refused before it is sent, in well under a
    // second, and the agent goes on answering.
    use std::io::{Read as _, Write as _};
    let started = std::time::Instant::now();
    let mut conn = std::os::unix::net::UnixStream::connect(d.opts.socket()).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    write!(conn, "POST /api/ApplyTopology HTTP/1.1\r\nHost: vpc\r\nContent-Type: application/json\r\nContent-Length: 1100000000\r\n\r\n")
        .unwrap();
    let mut reply = [0u8; 512];
    let n = conn.read(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert!(reply.starts_with("HTTP/1.1 413") && reply.contains("InvalidParameter.TooLarge"), "{reply}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "refused at once");
    let (status, _) = vpc::api::client::request(&d.opts.socket(), "GET", "/healthz", "").unwrap();
    assert_eq!(status, 200);
    // A body of no declared length (chunked) is refused the same way once it passes the limit.
    let mut d = d;
    d.kill9();
    d.spawn(&["--max-request-bytes", "100000"]);
    let mut conn = std::os::unix::net::UnixStream::connect(d.opts.socket()).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    write!(conn, "POST /api/ApplyTopology HTTP/1.1\r\nHost: vpc\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = vec![b' '; 50_000];
    for _ in 0..4 {
        if write!(conn, "{:x}\r\n", chunk.len()).and_then(|()| conn.write_all(&chunk)).and_then(|()| conn.write_all(b"\r\n")).is_err() {
            break; // the agent may close as soon as it refuses
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n");
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 413") && reply.contains("InvalidParameter.TooLarge"), "{reply}");
}

#[test]
fn security_groups_through_the_api_and_cli() {
    let d = Daemon::start("g1", &[]);
    let vpc_id = id(&d.call("CreateVpc", json!({"CidrBlock": "10.50.0.0/16", "VpcName": "prod"})), "VpcId");
    let vsw_id = id(
        &d.call("CreateVSwitch", json!({"VpcId": vpc_id, "CidrBlock": "10.50.1.0/24", "ZoneId": "a", "VSwitchName": "web"})),
        "VSwitchId",
    );
    let eni_id = id(&d.call("CreateNetworkInterface", json!({"VSwitchId": vsw_id, "NetworkInterfaceName": "w1"})), "NetworkInterfaceId");
    // Every VPC has its default group; an ENI created without groups is in it.
    let groups = d.call("DescribeSecurityGroups", json!({"VpcId": vpc_id}));
    assert_eq!(groups["TotalCount"], 1, "{groups}");
    let default = &groups["SecurityGroups"][0];
    assert_eq!((default["SecurityGroupName"].as_str(), default["IsDefault"].as_bool()), (Some("default"), Some(true)));
    assert_eq!(default["NetworkInterfaceIds"], json!([eni_id]));
    let default_id = id(default, "SecurityGroupId");
    let enis = d.call("DescribeNetworkInterfaces", json!({"NetworkInterfaceId": eni_id}));
    assert_eq!(enis["NetworkInterfaceSets"][0]["SecurityGroupIds"], json!([default_id]));

    // A group and its rules, through the CLI.
    let web = id(
        &ok_json(d.cli(&[
            "create-security-group",
            "--vpc-id",
            &vpc_id,
            "--security-group-name",
            "web-sg",
            "--inner-access-policy",
            "Drop",
        ])),
        "SecurityGroupId",
    );
    let http = ok_json(d.cli(&[
        "authorize-security-group",
        "--security-group-id",
        &web,
        "--ip-protocol",
        "tcp",
        "--port-range",
        "80/80",
        "--source-cidr-ip",
        "0.0.0.0/0",
    ]));
    let http_id = id(&http, "SecurityGroupRuleId");
    let again = d.call(
        "AuthorizeSecurityGroup",
        json!({"SecurityGroupId": web, "IpProtocol": "tcp", "PortRange": "80/80", "SourceCidrIp": "0.0.0.0/0"}),
    );
    assert_eq!(id(&again, "SecurityGroupRuleId"), http_id, "authorizing an existing rule is idempotent");
    let admin = d.call(
        "AuthorizeSecurityGroup",
        json!({"SecurityGroupId": web, "IpProtocol": "all", "SourceGroupId": "default", "Policy": "drop", "Priority": 2}),
    );
    let egress = d.call(
        "AuthorizeSecurityGroupEgress",
        json!({"SecurityGroupId": web, "IpProtocol": "tcp", "PortRange": "25/25", "DestCidrIp": "0.0.0.0/0", "Policy": "drop"}),
    );
    let attr = d.call("DescribeSecurityGroupAttribute", json!({"SecurityGroupId": web}));
    assert_eq!(attr["InnerAccessPolicy"], "Drop");
    let perms = attr["Permissions"].as_array().unwrap();
    assert_eq!(perms.len(), 3, "{attr}");
    assert_eq!(perms[0]["SecurityGroupRuleId"], http["SecurityGroupRuleId"], "ingress, priority 1 first");
    assert_eq!(perms[1]["SourceGroupId"], json!(default_id), "a group peer is shown by ID");
    assert_eq!(perms[2]["DestCidrIp"], "0.0.0.0/0");
    assert_eq!(perms[0]["Packets"], 0, "counters start at zero");
    let only_egress = d.call("DescribeSecurityGroupAttribute", json!({"SecurityGroupId": web, "Direction": "egress"}));
    assert_eq!(only_egress["Permissions"].as_array().unwrap().len(), 1);

    // Every rule of the guide as a refusal, nothing applied.
    let refused = [
        (
            "AuthorizeSecurityGroup",
            json!({"SecurityGroupId": web, "IpProtocol": "icmp", "PortRange": "1/2", "SourceCidrIp": "0.0.0.0/0"}),
            "InvalidPortRange.Malformed",
        ),
        (
            "AuthorizeSecurityGroup",
            json!({"SecurityGroupId": web, "IpProtocol": "tcp", "PortRange": "90/80", "SourceCidrIp": "0.0.0.0/0"}),
            "InvalidPortRange.Malformed",
        ),
        (
            "AuthorizeSecurityGroup",
            json!({"SecurityGroupId": web, "IpProtocol": "tcp", "SourceCidrIp": "10.0.0.1/8"}),
            "InvalidPeer.Malformed",
        ),
        (
            "AuthorizeSecurityGroup",
            json!({"SecurityGroupId": web, "IpProtocol": "tcp", "SourceCidrIp": "0.0.0.0/0", "Priority": 101}),
            "InvalidPriority.ValueNotSupported",
        ),
        (
            "AuthorizeSecurityGroup",
            json!({"SecurityGroupId": web, "IpProtocol": "sctp", "SourceCidrIp": "0.0.0.0/0"}),
            "InvalidIpProtocol.Malformed",
        ),
        (
            "AuthorizeSecurityGroup",
            json!({"SecurityGroupId": web, "IpProtocol": "tcp", "SourceCidrIp": "0.0.0.0/0", "SourceGroupId": web}),
            "InvalidParameter",
        ),
        ("AuthorizeSecurityGroup", json!({"SecurityGroupId": web, "IpProtocol": "tcp"}), "MissingParameter"),
        (
            "AuthorizeSecurityGroup",
            json!({"SecurityGroupId": "sg-nothere", "IpProtocol": "tcp", "SourceCidrIp": "0.0.0.0/0"}),
            "InvalidSecurityGroupId.NotFound",
        ),
        ("DeleteSecurityGroup", json!({"SecurityGroupId": default_id}), "OperationDenied.DefaultSecurityGroup"),
        ("RevokeSecurityGroup", json!({"SecurityGroupId": web, "SecurityGroupRuleId": "sgr-nothere"}), "InvalidPermission.NotFound"),
        ("RevokeSecurityGroupEgress", json!({"SecurityGroupId": web, "SecurityGroupRuleId": http_id}), "InvalidParameter"),
        ("LeaveSecurityGroup", json!({"SecurityGroupId": default_id, "NetworkInterfaceId": eni_id}), "OperationDenied.LastSecurityGroup"),
        (
            "LeaveSecurityGroup",
            json!({"SecurityGroupId": web, "NetworkInterfaceId": eni_id}),
            "InvalidNetworkInterfaceId.NotInSecurityGroup",
        ),
        ("ModifySecurityGroupPolicy", json!({"SecurityGroupId": web, "InnerAccessPolicy": "Maybe"}), "InvalidParameter"),
    ];
    let before = d.call("ExportTopology", json!({}))["Topology"].clone();
    for (action, body, want) in refused {
        let err = d.conn().call(action, body.clone()).expect_err(&format!("{action} {body} must be refused"));
        assert_eq!(err.code, want, "{action} {body}: {}", err.message);
    }
    assert_eq!(d.call("ExportTopology", json!({}))["Topology"], before, "refusals change nothing");

    // Membership: join, at most five groups, leave, and a group in use cannot go.
    d.call("JoinSecurityGroup", json!({"SecurityGroupId": web, "NetworkInterfaceId": eni_id}));
    let err = d.conn().call("JoinSecurityGroup", json!({"SecurityGroupId": web, "NetworkInterfaceId": eni_id})).unwrap_err();
    assert_eq!(err.code, "InvalidNetworkInterfaceId.AlreadyInSecurityGroup");
    let err = d.conn().call("DeleteSecurityGroup", json!({"SecurityGroupId": web})).unwrap_err();
    assert_eq!(err.code, "DependencyViolation.SecurityGroup", "{}", err.message);
    let more: Vec<String> = (1..=4)
        .map(|i| id(&d.call("CreateSecurityGroup", json!({"VpcId": vpc_id, "SecurityGroupName": format!("extra{i}")})), "SecurityGroupId"))
        .collect();
    for g in &more[..3] {
        d.call("JoinSecurityGroup", json!({"SecurityGroupId": g, "NetworkInterfaceId": eni_id}));
    }
    let err = d.conn().call("JoinSecurityGroup", json!({"SecurityGroupId": more[3], "NetworkInterfaceId": eni_id})).unwrap_err();
    assert_eq!(err.code, "InvalidSecurityGroup.Count", "a sixth group: {}", err.message);
    d.call("LeaveSecurityGroup", json!({"SecurityGroupId": default_id, "NetworkInterfaceId": eni_id}));
    let listed = d.call("DescribeSecurityGroups", json!({"NetworkInterfaceId": eni_id}));
    assert_eq!(listed["TotalCount"], 4);

    // Revoke by ID and by parameters; the policy and the name change.
    d.call("RevokeSecurityGroup", json!({"SecurityGroupId": web, "SecurityGroupRuleId": id(&admin, "SecurityGroupRuleId")}));
    d.call(
        "RevokeSecurityGroupEgress",
        json!({"SecurityGroupId": web, "IpProtocol": "tcp", "PortRange": "25/25", "DestCidrIp": "0.0.0.0/0", "Policy": "drop"}),
    );
    let _ = egress;
    d.call("ModifySecurityGroupPolicy", json!({"SecurityGroupId": web, "InnerAccessPolicy": "Accept"}));
    d.call("ModifySecurityGroupAttribute", json!({"SecurityGroupId": web, "SecurityGroupName": "web-tier"}));
    let attr = d.call("DescribeSecurityGroupAttribute", json!({"SecurityGroupId": web}));
    assert_eq!((attr["SecurityGroupName"].as_str(), attr["InnerAccessPolicy"].as_str()), (Some("web-tier"), Some("Accept")));
    assert_eq!(attr["Permissions"].as_array().unwrap().len(), 1);
    let table = d.cli(&["get", "security-groups"]);
    assert!(text(&table).contains("web-tier") && text(&table).contains("default"), "{}", text(&table));
    // Out of every group but the default, then the extra groups can go.
    d.call("JoinSecurityGroup", json!({"SecurityGroupId": default_id, "NetworkInterfaceId": eni_id}));
    for g in more[..3].iter().chain([&web]) {
        d.call("LeaveSecurityGroup", json!({"SecurityGroupId": g, "NetworkInterfaceId": eni_id}));
        d.call("DeleteSecurityGroup", json!({"SecurityGroupId": g}));
    }
    assert_eq!(d.call("DescribeSecurityGroups", json!({"VpcId": vpc_id}))["TotalCount"], 2, "default and extra4");
    // A VPC with a custom group left is not deleted with it: the group is the user's.
    let lone = id(&d.call("CreateVpc", json!({"CidrBlock": "172.16.0.0/16", "VpcName": "lone"})), "VpcId");
    let own = id(&d.call("CreateSecurityGroup", json!({"VpcId": lone, "SecurityGroupName": "own"})), "SecurityGroupId");
    let err = d.conn().call("DeleteVpc", json!({"VpcId": lone})).unwrap_err();
    assert_eq!(err.code, "DependencyViolation.SecurityGroup", "{}", err.message);
    assert!(err.message.contains("own"), "the error names the group: {}", err.message);
    assert_eq!(d.call("DescribeSecurityGroups", json!({"VpcId": lone}))["TotalCount"], 2, "nothing was deleted");
    d.call("DeleteSecurityGroup", json!({"SecurityGroupId": own}));
    d.call("DeleteVpc", json!({"VpcId": lone}));
}

#[test]
fn flow_logs_through_the_api_and_cli() {
    let d = Daemon::start("g2", &[]);
    let vpc_id = id(&d.call("CreateVpc", json!({"CidrBlock": "10.51.0.0/16", "VpcName": "prod"})), "VpcId");
    let vsw_id = id(
        &d.call("CreateVSwitch", json!({"VpcId": vpc_id, "CidrBlock": "10.51.1.0/24", "ZoneId": "a", "VSwitchName": "web"})),
        "VSwitchId",
    );
    let eni_id = id(&d.call("CreateNetworkInterface", json!({"VSwitchId": vsw_id, "NetworkInterfaceName": "w1"})), "NetworkInterfaceId");
    // Through the CLI: a VSwitch flow log with a 1 s window, records in the default file.
    let created = ok_json(d.cli(&[
        "create-flow-log",
        "--flow-log-name",
        "fl-web",
        "--resource-type",
        "VSwitch",
        "--resource-id",
        &vsw_id,
        "--aggregation-interval",
        "1",
    ]));
    let fl = id(&created, "FlowLogId");
    assert!(fl.starts_with("fl-"));
    let listed = d.call("DescribeFlowLogs", json!({"ResourceId": vsw_id}));
    let log = &listed["FlowLogs"][0];
    assert_eq!(
        (log["Status"].as_str(), log["TrafficType"].as_str(), log["AggregationInterval"].as_u64()),
        (Some("Active"), Some("all"), Some(1))
    );
    let file = std::path::PathBuf::from(log["LogFile"].as_str().unwrap());
    // An ENI without traffic: a NODATA record per window, read back with `vpc flow-logs tail`.
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&file).unwrap_or_default().lines().count() < 2 {
        assert!(started.elapsed().as_secs() < 10, "no records in {}: {}", file.display(), d.log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let tail = d.cli(&["flow-logs", "tail", "fl-web", "-n", "1", "--no-follow"]);
    assert!(tail.status.success(), "{}", text(&tail));
    let record: Value = serde_json::from_str(String::from_utf8_lossy(&tail.stdout).trim()).unwrap();
    assert_eq!((record["eni-id"].as_str(), record["log-status"].as_str()), (Some(eni_id.as_str()), Some("NODATA")));
    assert_eq!(record["end"].as_u64().unwrap() - record["start"].as_u64().unwrap(), 1);

    // Deactivate, modify, activate, and refusals that change nothing.
    d.call("DeactiveFlowLog", json!({"FlowLogId": fl}));
    assert_eq!(d.call("DescribeFlowLogs", json!({"FlowLogId": fl}))["FlowLogs"][0]["Status"], "Inactive");
    d.call("ModifyFlowLogAttribute", json!({"FlowLogId": fl, "FlowLogName": "fl-web2", "AggregationInterval": 600}));
    d.call("ActiveFlowLog", json!({"FlowLogId": fl}));
    let now = d.call("DescribeFlowLogs", json!({"FlowLogName": "fl-web2"}));
    assert_eq!((now["FlowLogs"][0]["Status"].as_str(), now["FlowLogs"][0]["AggregationInterval"].as_u64()), (Some("Active"), Some(600)));
    let before = d.call("ExportTopology", json!({}))["Topology"].clone();
    let refused = [
        (json!({"ResourceType": "Disk", "ResourceId": vsw_id}), "InvalidParameter"),
        (json!({"ResourceType": "VSwitch", "ResourceId": "vsw-nothere"}), "InvalidResourceId.NotFound"),
        (json!({"ResourceType": "VPC", "ResourceId": vpc_id, "TrafficType": "some"}), "InvalidTrafficType.Malformed"),
        (json!({"ResourceType": "VPC", "ResourceId": vpc_id, "AggregationInterval": 0}), "InvalidAggregationInterval.Malformed"),
        (json!({"ResourceType": "VPC", "ResourceId": vpc_id, "LogFile": "relative.jsonl"}), "InvalidFlowLog.Sink"),
        (json!({"ResourceType": "VPC", "ResourceId": vpc_id, "IpfixCollector": "nowhere"}), "InvalidFlowLog.Sink"),
        (json!({"ResourceType": "VPC", "ResourceId": vpc_id, "FlowLogName": "fl-web2"}), "InvalidName.Duplicate"),
    ];
    for (body, want) in refused {
        let err = d.conn().call("CreateFlowLog", body.clone()).expect_err(&format!("{body} must be refused"));
        assert_eq!(err.code, want, "{body}: {}", err.message);
    }
    // A file outside the agent's flow-log directory is refused, naming the parameter.
    let err = d
        .conn()
        .call("CreateFlowLog", json!({"ResourceType": "VPC", "ResourceId": vpc_id, "LogFile": "/etc/cron.d/vpc-flows"}))
        .unwrap_err();
    assert_eq!((err.code.as_str(), err.field.as_deref()), ("InvalidFlowLog.Sink", Some("LogFile")), "{}", err.message);
    assert!(err.message.contains("flow-log directory") && !std::path::Path::new("/etc/cron.d/vpc-flows").exists(), "{}", err.message);
    assert_eq!(d.call("ExportTopology", json!({}))["Topology"], before, "refusals change nothing");
    // The guide's limit: 10 flow logs in the region.
    for i in 2..=10 {
        d.call("CreateFlowLog", json!({"ResourceType": "NetworkInterface", "ResourceId": eni_id, "FlowLogName": format!("more{i}")}));
    }
    let err = d.conn().call("CreateFlowLog", json!({"ResourceType": "VPC", "ResourceId": vpc_id})).unwrap_err();
    assert_eq!(err.code, "QuotaExceeded.FlowLog", "{}", err.message);
    d.call("DeleteFlowLog", json!({"FlowLogId": fl}));
    assert_eq!(d.call("DescribeFlowLogs", json!({}))["TotalCount"], 9);
    let err = d.conn().call("DeleteFlowLog", json!({"FlowLogId": fl})).unwrap_err();
    assert_eq!(err.code, "InvalidFlowLogId.NotFound");
}
