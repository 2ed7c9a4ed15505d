//! The `vpc` binary as a user runs it: lab up, exec, stats, apply errors, lab down.

use std::{io::Write as _, process::Output};

use vpc_tests::{options, vpc_bin};

const TOPO: &str = "
vpcs:
  - name: prod
    cidr: 10.10.0.0/16
    vswitches:
      - {name: web, cidr: 10.10.1.0/24, zone: zone-a}
      - {name: db, cidr: 10.10.2.0/24, zone: zone-b}
    enis:
      - {name: web1, vswitch: web, ip: 10.10.1.10}
      - {name: db1, vswitch: db, ip: 10.10.2.10}
";

fn file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(name);
    std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
    path
}

fn vpc(tag: &str, args: &[&str]) -> Output {
    let o = options(tag);
    std::process::Command::new(vpc_bin())
        .arg("--bpffs")
        .arg(&o.bpffs)
        .arg("--state-dir")
        .arg(&o.state_dir)
        .arg("--prefix")
        .arg(&o.naming.prefix)
        .arg("--offline") // no agent: changes are made in process
        .args(args)
        .output()
        .expect("vpc binary (build it: cargo build --bin vpc)")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Everything the lab of `tag` could leave on the host.
fn traces(tag: &str) -> Vec<String> {
    let prefix = options(tag).naming.prefix;
    let mut out = Vec::new();
    let netns = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap();
    out.extend(String::from_utf8_lossy(&netns.stdout).lines().filter(|l| l.starts_with(&prefix)).map(|l| format!("netns {l}")));
    let links = std::process::Command::new("ip").args(["-o", "link"]).output().unwrap();
    out.extend(String::from_utf8_lossy(&links.stdout).lines().filter(|l| l.contains(&prefix)).map(|l| format!("link {l}")));
    if options(tag).bpffs.exists() {
        out.push(format!("pins {}", options(tag).bpffs.display()));
    }
    out
}

#[test]
fn lab_up_exec_stats_down_leaves_nothing_behind() {
    let path = file("vpc-cli-c1.yaml", TOPO);
    let path = path.to_str().unwrap();
    let _ = vpc("c1", &["lab", "down", "-f", path]);
    let up = vpc("c1", &["lab", "up", "-f", path]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(text(&up).contains("+ eni web1"), "{}", text(&up));
    let ping = vpc("c1", &["lab", "exec", "web1", "--", "ping", "-c", "2", "-W", "1", "10.10.2.10"]);
    assert!(ping.status.success(), "{}", text(&ping));
    let stats = vpc("c1", &["stats", "-o", "json"]);
    assert!(stats.status.success(), "{}", text(&stats));
    let json: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    let db1 = json["Enis"].as_array().unwrap().iter().find(|e| e["NetworkInterfaceName"] == "db1").unwrap();
    assert!(db1["TxPackets"].as_u64().unwrap() >= 2, "{json}");
    let table = vpc("c1", &["stats"]);
    assert!(text(&table).contains("DROP REASON"));
    // Exit status of the command run inside the namespace comes back.
    let fail = vpc("c1", &["lab", "exec", "web1", "--", "ping", "-c", "1", "-W", "1", "10.10.9.9"]);
    assert!(!fail.status.success());
    assert!(!traces("c1").is_empty(), "the lab exists while up");
    let down = vpc("c1", &["lab", "down", "-f", path]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(traces("c1"), Vec::<String>::new(), "lab down removes namespaces, veths and pins");
    assert!(!options("c1").state_dir.join("state.json").exists());
}

#[test]
fn invalid_file_names_file_field_and_rule_and_changes_nothing() {
    let path = file("vpc-cli-c2.yaml", TOPO);
    let path = path.to_str().unwrap();
    let _ = vpc("c2", &["lab", "down", "-f", path]);
    assert!(vpc("c2", &["lab", "up", "-f", path]).status.success());
    let before = vpc("c2", &["stats", "-o", "json"]);

    let bad = TOPO
        .replace("10.10.2.0/24", "10.10.1.128/25")
        .replace("{name: db1, vswitch: db, ip: 10.10.2.10}", "{name: db1, vswitch: web, ip: 10.10.1.255}");
    let bad_path = file("vpc-cli-c2-bad.yaml", &bad);
    let out = vpc("c2", &["apply", "-f", bad_path.to_str().unwrap()]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("vpc-cli-c2-bad.yaml"), "{msg}");
    assert!(msg.contains("vpcs[0].vswitches[1].cidr") && msg.contains("InvalidVSwitchCidr.Overlapped"), "{msg}");
    assert!(msg.contains("vpcs[0].enis[1].ip") && msg.contains("InvalidIpAddress.Reserved"), "{msg}");

    let syntax = file("vpc-cli-c2-syntax.yaml", "vpcs:\n  - name: prod\n    cidr: [oops\n");
    let out = vpc("c2", &["apply", "-f", syntax.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("vpc-cli-c2-syntax.yaml") && text(&out).contains("line 3 column 11"), "{}", text(&out));
    assert_eq!(text(&out).matches("line").count(), 1, "the location once: {}", text(&out));

    // An API call's error names the parameter sent and the document field it became.
    let out = vpc("c2", &["create-vpc", "--cidr-block", "8.8.0.0/16", "--vpc-name", "public"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("CidrBlock (vpcs[1].cidr)") && text(&out).contains("InvalidVpcCidr.NotPrivate"), "{}", text(&out));

    let unknown = file("vpc-cli-c2-unknown.yaml", &TOPO.replace("zone: zone-a", "zone: zone-a, colour: red"));
    let out = vpc("c2", &["apply", "-f", unknown.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("colour"), "{}", text(&out));

    // Nothing of the refused files was applied.
    let after = vpc("c2", &["stats", "-o", "json"]);
    let enis = |o: &Output| serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["Enis"].clone();
    assert_eq!(enis(&before), enis(&after));
    let dry = vpc("c2", &["apply", "--dry-run", "-f", path]);
    assert!(dry.status.success() && text(&dry).contains("no resource changes"), "{}", text(&dry));

    // An ENI whose interface does not exist yet is a resource like any other, just not in the
    // data path: Available, not InUse, and traffic to it is dropped as port_down.
    let missing = file("vpc-cli-c2-missing.yaml", &(TOPO.to_string() + "      - {name: web9, vswitch: web, ip: 10.10.1.99}\n"));
    let out = vpc("c2", &["apply", "-f", missing.to_str().unwrap()]);
    assert!(out.status.success() && text(&out).contains("+ eni web9"), "{}", text(&out));
    let enis = vpc("c2", &["get", "enis", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&enis.stdout).unwrap();
    let status = |name: &str| list.as_array().unwrap().iter().find(|e| e["NetworkInterfaceName"] == name).unwrap()["Status"].clone();
    assert_eq!((status("web9"), status("web1")), (serde_json::json!("Available"), serde_json::json!("InUse")));
    assert!(!vpc("c2", &["lab", "exec", "web1", "--", "ping", "-c", "1", "-W", "1", "10.10.1.99"]).status.success());
    let stats: serde_json::Value = serde_json::from_slice(&vpc("c2", &["stats", "-o", "json"]).stdout).unwrap();
    let port_down = stats["Drops"].as_array().unwrap().iter().find(|d| d["Reason"] == "port_down").unwrap()["Packets"].as_u64().unwrap();
    assert!(port_down >= 1, "{stats}");
    assert!(vpc("c2", &["lab", "exec", "web1", "--", "ping", "-c", "1", "-W", "1", "10.10.2.10"]).status.success());
    assert!(vpc("c2", &["lab", "down", "-f", path]).status.success());
    assert!(traces("c2").is_empty(), "{:?}", traces("c2"));
}

/// `vpc openapi | head -1`: the reader leaves after a few bytes; vpc ends quietly (killed by
/// SIGPIPE, as a shell pipeline expects, or exit 0), never with a panic about a broken pipe.
#[test]
fn closed_stdout_pipe_ends_quietly() {
    use std::{io::Read as _, os::unix::process::ExitStatusExt as _, process::Stdio};
    let mut child = std::process::Command::new(vpc_bin())
        .arg("openapi")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vpc binary (build it: cargo build --bin vpc)");
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 8];
    stdout.read_exact(&mut head).unwrap();
    // The document is larger than a pipe's buffer, so vpc is still writing when the reader goes.
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success() || out.status.signal() == Some(13), "{:?}: {stderr}", out.status);
}

/// Every kind of resource: two VPCs whose VSwitch, route table and security group names repeat,
/// a gateway, an ECMP and an active/standby route over two firewalls, a CEN, a security group
/// with rules, a flow log and a multicast group.
const EVERY_KIND: &str = "
vpcs:
  - name: prod
    cidr: 10.20.0.0/16
    vswitches:
      - {name: web, cidr: 10.20.1.0/24, zone: zone-a, route_table: edge}
      - {name: db, cidr: 10.20.2.0/24, zone: zone-b}
    route_tables:
      - name: edge
        routes:
          - {dst: 10.99.0.0/16, next_hop: {type: gateway, gateway: uplink}}
          - {dst: 0.0.0.0/0, next_hop: {type: ecmp, hops: [{eni: fw1, weight: 100}, {eni: fw2, weight: 50}]}}
          - {dst: 10.30.0.0/16, next_hop: {type: active_standby, hops: [{eni: fw1}, {eni: fw2}]}}
    gateways: [{name: uplink, networks: [10.99.0.0/16]}]
    security_groups:
      - name: web-sg
        rules:
          - {direction: ingress, policy: accept, protocol: tcp, ports: 80/80, peer: 0.0.0.0/0, priority: 1}
          - {direction: egress, policy: drop, protocol: udp, ports: 53/53, peer: {group: web-sg}, priority: 2}
    enis:
      - {name: fw1, vswitch: db, ip: 10.20.2.11, source_dest_check: false}
      - {name: fw2, vswitch: db, ip: 10.20.2.12, source_dest_check: false}
      - {name: web1, vswitch: web, ip: 10.20.1.10, security_groups: [web-sg]}
    multicast_groups:
      - {group: 239.1.1.1, senders: [web1], members: [fw1, fw2]}
  - name: dev
    cidr: 10.40.0.0/16
    vswitches:
      - {name: web, cidr: 10.40.1.0/24, zone: zone-a}
    enis:
      - {name: dev1, vswitch: web, ip: 10.40.1.10}
cens: [{name: corp, vpcs: [prod, dev]}]
flow_logs:
  - {name: web-log, resource: {vpc: prod, vswitch: web}}
";

/// `vpc get KIND`, the API operation it lists, that operation's list, and its objects' ID and
/// name keys.
const KINDS: &[(&str, &str, &str, &str, &str)] = &[
    ("vpcs", "describe-vpcs", "Vpcs", "VpcId", "VpcName"),
    ("vswitches", "describe-vswitches", "VSwitches", "VSwitchId", "VSwitchName"),
    ("route-tables", "describe-route-table-list", "RouterTableList", "RouteTableId", "RouteTableName"),
    ("enis", "describe-network-interfaces", "NetworkInterfaceSets", "NetworkInterfaceId", "NetworkInterfaceName"),
    ("gateways", "describe-gateways", "Gateways", "GatewayId", "GatewayName"),
    ("cens", "describe-cens", "Cens", "CenId", "CenName"),
    ("security-groups", "describe-security-groups", "SecurityGroups", "SecurityGroupId", "SecurityGroupName"),
    ("flow-logs", "describe-flow-logs", "FlowLogs", "FlowLogId", "FlowLogName"),
    ("multicast-groups", "describe-multicast-groups", "Groups", "GroupId", "GroupAddress"),
];

/// What a JSON value looks like, its values left out: its keys, and its lists' items' keys.
fn shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        _ => Value::Null,
    }
}

/// Keys anywhere in `v` that do not start with a capital (the API's PascalCase).
fn not_pascal(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| not_pascal(v).into_iter().chain((!k.starts_with(|c: char| c.is_ascii_uppercase())).then(|| k.clone())))
            .collect(),
        serde_json::Value::Array(items) => items.iter().flat_map(not_pascal).collect(),
        _ => Vec::new(),
    }
}

/// Takes a failed test's lab down (a passing test checks its own `lab down`).
struct LabDownOnPanic(&'static str, String);

impl Drop for LabDownOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = vpc(self.0, &["lab", "down", "-f", &self.1]);
        }
    }
}

#[test]
fn every_kind_has_one_json_shape_and_a_table_of_names_and_ids() {
    let path = file("vpc-cli-c4.yaml", EVERY_KIND);
    let path = path.to_str().unwrap();
    let _ = vpc("c4", &["lab", "down", "-f", path]);
    let up = vpc("c4", &["lab", "up", "-f", path]);
    let _down = LabDownOnPanic("c4", path.to_string());
    assert!(up.status.success(), "{}", text(&up));
    let run = |args: &[&str]| -> String {
        let o = vpc("c4", args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let json = |args: &[&str]| -> serde_json::Value {
        let out = run(&[args, &["-o", "json"]].concat());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} -o json: {e}: {out}"));
        assert_eq!(not_pascal(&v), Vec::<String>::new(), "{args:?} -o json: keys not in the API's casing");
        v
    };
    let table = |args: &[&str]| -> String {
        let out = run(&[args, &["-o", "table"]].concat());
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_err(), "{args:?} -o table printed JSON: {out}");
        out
    };
    // `name (id)` of every VPC, VSwitch, route table, ENI, gateway and security group.
    let mut named = std::collections::HashMap::new();
    let mut api_of = std::collections::HashMap::new();
    for (kind, op, list, id_key, name_key) in KINDS {
        let api = json(&[op])[list].as_array().unwrap().clone();
        for object in &api {
            named.insert(
                object[id_key].as_str().unwrap().to_string(),
                format!("{} ({})", object[name_key].as_str().unwrap(), object[id_key].as_str().unwrap()),
            );
        }
        api_of.insert(*kind, api);
    }
    let vpc_of = |object: &serde_json::Value| named[object["VpcId"].as_str().unwrap()].clone();

    for (kind, op, _, id_key, name_key) in KINDS {
        let api = &api_of[kind];
        assert!(!api.is_empty(), "the topology has {kind}");
        // -o json: the API's objects, one shape per resource.
        let got = json(&["get", kind]);
        let got = got.as_array().unwrap_or_else(|| panic!("get {kind} -o json is a list"));
        let ids = |list: &[serde_json::Value]| list.iter().map(|o| o[id_key].clone()).collect::<Vec<_>>();
        assert_eq!(ids(got), ids(api), "get {kind} -o json lists what {op} does");
        for (g, a) in got.iter().zip(api) {
            assert_eq!(shape(g), shape(a), "get {kind}: {} has the keys {op} gives it", g[id_key]);
        }
        // -o table: each row shows the ID with its name, and the VPC of a child by name and ID.
        let shown = table(&["get", kind]);
        for object in api {
            let id = object[id_key].as_str().unwrap();
            let row = shown.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("get {kind}: no row of {id}:\n{shown}"));
            assert!(row.contains(object[name_key].as_str().unwrap()), "get {kind}: {id} without its name:\n{row}");
            if *kind != "vpcs" && object.get("VpcId").is_some() {
                assert!(row.contains(&vpc_of(object)), "get {kind}: {id} without its VPC {}:\n{row}", vpc_of(object));
            }
        }
        // The operation as a table is the same table.
        assert_eq!(table(&[op]), shown, "{op} -o table");
    }
    // The VSwitch names repeat across the VPCs; each row says whose.
    let vswitches = table(&["get", "vswitches"]);
    for vsw in &api_of["vswitches"] {
        let row = vswitches.lines().find(|l| l.contains(vsw["VSwitchId"].as_str().unwrap())).unwrap();
        assert!(row.contains(&vpc_of(vsw)) && row.contains(&named[vsw["RouteTableId"].as_str().unwrap()]), "{row}");
    }
    let enis = table(&["get", "enis"]);
    for eni in &api_of["enis"] {
        let row = enis.lines().find(|l| l.contains(eni["NetworkInterfaceId"].as_str().unwrap())).unwrap();
        assert!(row.contains(&named[eni["VSwitchId"].as_str().unwrap()]), "the ENI's VSwitch by name and ID: {row}");
    }

    // Route entries: the API's objects of every table; the table shows every next hop.
    let mut api_entries = Vec::new();
    for t in &api_of["route-tables"] {
        let listed = json(&["describe-route-entry-list", "--route-table-id", t["RouteTableId"].as_str().unwrap()]);
        api_entries.extend(listed["RouteEntrys"].as_array().unwrap().iter().cloned());
    }
    let got = json(&["get", "route-entries"]);
    let key = |e: &serde_json::Value| (e["RouteTableId"].clone(), e["DestinationCidrBlock"].clone());
    assert_eq!(got.as_array().unwrap().iter().map(key).collect::<Vec<_>>(), api_entries.iter().map(key).collect::<Vec<_>>());
    for (g, a) in got.as_array().unwrap().iter().zip(&api_entries) {
        assert_eq!(shape(g), shape(a), "route entry {:?}", key(a));
    }
    let shown = table(&["get", "route-entries"]);
    let lines: Vec<&str> = shown.lines().collect();
    let hops_of = |next_hop_type: &str| -> Vec<String> {
        let entry = api_entries.iter().find(|e| e["NextHopType"] == next_hop_type).unwrap_or_else(|| panic!("a {next_hop_type} entry"));
        let id = entry["RouteEntryId"].as_str().unwrap();
        let at = lines.iter().position(|l| l.contains(id)).unwrap_or_else(|| panic!("no row of {id}:\n{shown}"));
        let table_id = entry["RouteTableId"].as_str().unwrap();
        assert!(lines[at].contains(&named[table_id]) && lines[at].contains("prod ("), "the entry's table and VPC: {}", lines[at]);
        let hops = entry["NextHops"].as_array().unwrap_or_else(|| panic!("{next_hop_type} entry lists its hops: {entry}"));
        assert_eq!(hops.len(), 2, "{entry}");
        for (k, hop) in hops.iter().enumerate() {
            let line = lines[at + k];
            let who = format!("{} ({})", hop["Name"].as_str().unwrap(), hop["NextHopId"].as_str().unwrap());
            assert_eq!(named[hop["NextHopId"].as_str().unwrap()], who);
            for part in [
                who.clone(),
                format!("weight {}", hop["Weight"]),
                hop["Status"].as_str().unwrap().into(),
                hop["Share"].as_str().unwrap().into(),
            ] {
                assert!(line.contains(&part), "hop {k} of {next_hop_type} entry {id}: {part} missing:\n{shown}");
            }
        }
        hops.iter().map(|h| h["Status"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(hops_of("Ecmp"), ["Active", "Active"]);
    assert_eq!(hops_of("ActiveStandby"), ["Active", "Standby"], "the table says which hop is live");
    let gateway = api_of["gateways"][0]["GatewayId"].as_str().unwrap();
    assert!(shown.lines().any(|l| l.contains("10.99.0.0/16") && l.contains(&named[gateway])), "{shown}");
    let dev = api_of["vpcs"].iter().find(|v| v["VpcName"] == "dev").unwrap()["VpcId"].as_str().unwrap();
    assert!(shown.lines().any(|l| l.contains("CEN") && l.contains(&named[dev])), "a CEN route leads to the VPC by name:\n{shown}");

    // Security groups with their rules: each group's DescribeSecurityGroupAttribute.
    let rules = json(&["get", "security-groups", "--stats"]);
    let groups = api_of["security-groups"]
        .iter()
        .map(|g| json(&["describe-security-group-attribute", "--security-group-id", g["SecurityGroupId"].as_str().unwrap()]));
    assert_eq!(rules.as_array().unwrap().iter().map(shape).collect::<Vec<_>>(), groups.map(|g| shape(&g)).collect::<Vec<_>>());
    let web_sg = api_of["security-groups"].iter().find(|g| g["SecurityGroupName"] == "web-sg").unwrap();
    let shown = table(&["get", "security-groups", "--stats"]);
    assert!(
        shown.lines().any(|l| l.contains("53/53")
            && l.matches(&named[web_sg["SecurityGroupId"].as_str().unwrap()]).count() == 2
            && l.contains(&vpc_of(web_sg))),
        "{shown}"
    );

    // Multicast: list, show and stats in the API's shapes; members by name and ID.
    let group = &api_of["multicast-groups"][0];
    assert_eq!(shape(&json(&["multicast", "list"])), shape(&serde_json::Value::Array(api_of["multicast-groups"].clone())));
    assert_eq!(shape(&json(&["multicast", "show", "239.1.1.1", "--vpc", "prod"])), shape(group));
    assert_eq!(shape(&json(&["multicast", "stats"])), shape(&json(&["describe-multicast-group-statistics"])["Groups"]));
    let fw1 = api_of["enis"].iter().find(|e| e["NetworkInterfaceName"] == "fw1").unwrap()["NetworkInterfaceId"].as_str().unwrap();
    for args in [&["multicast", "list"][..], &["multicast", "show", "239.1.1.1"], &["multicast", "stats"]] {
        assert!(table(args).contains(&named[fw1]), "{args:?}: members by name and ID");
    }

    // Statistics: DescribeStatistics' shape; an ENI's facts under the keys DescribeNetworkInterfaces uses.
    let stats = json(&["stats"]);
    assert_eq!(shape(&stats), shape(&json(&["describe-statistics"])));
    for eni in &api_of["enis"] {
        let counted = stats["Enis"].as_array().unwrap().iter().find(|e| e["NetworkInterfaceId"] == eni["NetworkInterfaceId"]).unwrap();
        for key in ["NetworkInterfaceName", "PrivateIpAddress", "ConntrackLimit"] {
            assert_eq!(counted[key], eni[key], "{key} in stats and in DescribeNetworkInterfaces");
        }
    }
    assert!(table(&["stats"]).contains("DROP REASON"));
    for op in ["describe-multicast-group-statistics", "describe-statistics"] {
        table(&[op]);
    }

    // Success that returns nothing: one line in a table, {} as JSON.
    let gid = group["GroupId"].as_str().unwrap();
    assert_eq!(run(&["multicast", "join", "239.1.1.1", "web1", "--vpc", "prod"]), format!("done: JoinMulticastGroup {gid} web1\n"));
    assert_eq!(json(&["multicast", "quit", "239.1.1.1", "web1", "--vpc", "prod"]), serde_json::json!({}));
    let cen = json(&["create-cen", "--cen-name", "spare"]);
    assert_eq!(shape(&cen), serde_json::json!({"CenId": null}));
    let cen = cen["CenId"].as_str().unwrap();
    assert_eq!(table(&["delete-cen", "--cen-id", cen]), format!("done: DeleteCen {cen}\n"));
    let cen = json(&["create-cen", "--cen-name", "spare"])["CenId"].as_str().unwrap().to_string();
    assert_eq!(json(&["delete-cen", "--cen-id", &cen]), serde_json::json!({}));
    // (ApplyTopology's data-path report keeps its own keys: not a resource.)
    let applied: serde_json::Value = serde_json::from_str(&run(&["apply", "--dry-run", "-f", path, "-o", "json"])).unwrap();
    assert_eq!(applied["Changes"], serde_json::json!([]), "{applied}");
    assert!(table(&["apply", "--dry-run", "-f", path]).contains("no resource changes"));

    assert_eq!(table(&["lab", "down", "-f", path]), "done: lab down\n");
    assert!(traces("c4").is_empty(), "{:?}", traces("c4"));
}
