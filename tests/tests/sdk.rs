//! The guide's API on TCP (`vpc daemon --listen`), driven by the official Alibaba Cloud SDKs
//! (installed from PyPI into a venv under target/ the first time, at pinned versions): the Tea
//! SDK with ACS3-HMAC-SHA256 and with HMAC-SHA1, and the classic SDK, changed only in endpoint
//! and keys, make and list VPCs and a VSwitch (Tea's models reading the API's nested lists, a
//! page at a time), ENIs through ECS's API, a custom route table with an ECMP entry from the
//! API's NextHopList; a dry run answers DryRunOperation; a wrong secret raises the API's error in
//! each.
//! Raw signed requests check what the SDKs never send: a replayed nonce, a skewed timestamp,
//! an unknown key, an admin operation or an unknown version over TCP, all refused with the
//! API's codes and nothing changed.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use vpc::api::signature::{self, Request, Signed};

const SDKS: &[&str] = &["alibabacloud-vpc20160428==7.2.2", "aliyun-python-sdk-core==2.16.1", "aliyun-python-sdk-vpc==3.0.48"];

/// target/sdk-venv/bin/python with the SDKs, made on first use and reused after.
fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/sdk-venv");
    let (bin, done) = (venv.join("bin/python"), venv.join("sdks-installed"));
    if done.exists() && std::fs::read_to_string(&done).unwrap_or_default() == SDKS.join(" ") {
        return bin;
    }
    let text = |o: &std::process::Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let made = Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv).output().expect("python3");
    assert!(made.status.success(), "python3 -m venv (is python3-venv installed?):\n{}", text(&made));
    let pip =
        Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check"]).args(SDKS).output().expect("pip");
    assert!(pip.status.success(), "pip install the SDKs:\n{}", text(&pip));
    std::fs::write(&done, SDKS.join(" ")).unwrap();
    bin
}

/// A daemon with the TCP API on a port of its own, and an AccessKey pair of account `a1`.
fn daemon(tag: &str, offset: u16) -> (vpc_tests::Daemon, u16, String, String) {
    let port = 21464 + offset + (std::process::id() % 400) as u16 * 2;
    let mut daemon = vpc_tests::Daemon::start(tag, &[]);
    daemon.kill9();
    daemon.spawn(&["--listen", &format!("127.0.0.1:{port}")]);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "the TCP API never listened:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = daemon.cli(&["create-access-key", "--account", "a1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, secret) = (key["AccessKeyId"].as_str().unwrap().to_string(), key["AccessKeySecret"].as_str().unwrap().to_string());
    (daemon, port, id, secret)
}

#[test]
fn the_official_sdks_drive_the_tcp_api() {
    let python = python();
    let (daemon, port, id, secret) = daemon("sdk", 0);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sdk/drive.py");
    let out = Command::new(&python).arg(&script).arg(format!("127.0.0.1:{port}")).arg(&id).arg(&secret).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}\n{}", String::from_utf8_lossy(&out.stderr), daemon.log());
    let steps: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let step = |name: &str| steps.iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("no step {name}: {stdout}")).clone();

    let vpc = step("tea-v3 CreateVpc");
    assert_eq!(vpc["status"], 200, "{vpc}");
    let vpc_id = vpc["vpc_id"].as_str().unwrap().to_string();
    assert!(vpc_id.starts_with("vpc-") && vpc["request_id"].is_string(), "{vpc}");
    let vsw = step("tea-v1 CreateVSwitch");
    let vsw_id = vsw["vswitch_id"].as_str().unwrap_or_else(|| panic!("{vsw}")).to_string();
    let listed = step("classic DescribeVpcs")["body"].to_string();
    assert!(listed.contains(&vpc_id) && listed.contains("sdk-vpc"), "{listed}");
    let listed = step("classic DescribeVSwitches")["body"].to_string();
    assert!(listed.contains(&vsw_id) && listed.contains("made by the Tea SDK"), "{listed}");
    // Made: as the admin sees it on the Unix socket.
    let vpcs = daemon.call("DescribeVpcs", json!({}))["Vpcs"].to_string();
    assert!(vpcs.contains(&vpc_id), "{vpcs}");

    // Pages of one, as the Tea models read them (the API's nested lists).
    let (first, second) = (step("tea-v3 DescribeVpcs page 1"), step("tea-v3 DescribeVpcs page 2"));
    for (n, page) in [(1, &first), (2, &second)] {
        assert_eq!((page["total"].as_u64(), page["page"].as_u64(), page["size"].as_u64()), (Some(2), Some(n), Some(1)), "{page}");
        assert_eq!(page["vpcs"].as_array().map(Vec::len), Some(1), "{page}");
    }
    let mut names = [first["vpcs"][0]["name"].clone(), second["vpcs"][0]["name"].clone()];
    names.sort_by_key(|n| n.to_string());
    assert_eq!(names, [json!("sdk-vpc"), json!("sdk-vpc-2")]);
    let ours = [&first, &second].into_iter().find(|p| p["vpcs"][0]["id"] == vpc_id.as_str()).expect("the first VPC on a page");
    assert_eq!(ours["vpcs"][0]["vswitches"], json!([vsw_id]), "its VSwitch in VSwitchIds.VSwitchId");

    // ECS's spellings: protocols in upper case, a policy capitalized, one SecurityGroupId.
    let sg = step("ecs security group");
    assert_eq!(sg["rules"], json!([{"protocol": "TCP", "ports": "22/22", "policy": "Accept"}]), "{sg}");
    let enis_groups = step("ecs network interfaces");
    assert_eq!(enis_groups["groups"], json!([[enis_groups["group"]], [enis_groups["group"]]]), "{enis_groups}");

    // ECMP from the API's NextHopList, in the data path's terms and back in the API's.
    let ecmp = step("tea ECMP route entry");
    let enis = ecmp["enis"].clone();
    assert_eq!(
        ecmp["hops"],
        json!([{"id": enis[0], "type": "NetworkInterface", "weight": 100}, {"id": enis[1], "type": "NetworkInterface", "weight": 50}]),
        "{ecmp}"
    );
    // By token, two at a time: every entry once, in order, then no token.
    let tokened = step("tea route entries by token");
    let pages = tokened["pages"].as_array().unwrap();
    let joined: Vec<Value> = pages.iter().flat_map(|p| p.as_array().unwrap().clone()).collect();
    assert_eq!(Value::from(joined.clone()), tokened["all"], "{tokened}");
    assert_eq!(tokened["total"].as_u64(), Some(joined.len() as u64), "{tokened}");
    assert!(joined.len() >= 3 && pages.iter().all(|p| p.as_array().unwrap().len() <= 2), "{tokened}");
    let dry = step("classic dry run");
    assert_eq!(dry["code"], "DryRunOperation", "{dry}");

    let refused = step("tea-v3 wrong secret");
    assert_eq!((refused["code"].as_str(), refused["status"].as_u64()), (Some("SignatureDoesNotMatch"), Some(400)), "{refused}");
    let refused = step("classic wrong secret");
    // The classic SDK compares the server's string to sign with its own: the same one, so it
    // names the secret.
    assert!(refused["code"] == "SignatureDoesNotMatch" || refused["code"] == "InvalidAccessKeySecret", "{refused}");
    let vpcs = daemon.call("DescribeVpcs", json!({}))["Vpcs"].as_array().unwrap().len();
    assert_eq!(vpcs, 2, "the refused CreateVpc made nothing");
}

/// `YYYY-MM-DDThh:mm:ssZ`, `secs` from now.
fn timestamp(secs: i64) -> String {
    let out = Command::new("date").args(["-u", "-d", &format!("{secs} seconds"), "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A v1-signed POST of `params` to the TCP API: (HTTP status, the answer).
fn call(port: u16, id: &str, secret: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let mut query: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for (k, v) in [("Format", "JSON"), ("SignatureMethod", "HMAC-SHA1"), ("SignatureVersion", "1.0"), ("AccessKeyId", id)] {
        if !query.iter().any(|(q, _)| q == k) {
            query.push((k.into(), v.into()));
        }
    }
    let req = Request { method: "POST".into(), path: "/".into(), query: query.clone(), ..Default::default() };
    let (_, signature) = signature::sign(&req, &Signed::V1 { key_id: id.into(), signature: String::new() }, secret);
    query.push(("Signature".into(), signature));
    let encoded: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", signature::encode(k), signature::encode(v))).collect();
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(conn, "POST /?{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", encoded.join("&")).unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // (A chunked answer: the JSON between the chunk sizes.)
    let json = body.find('{').and_then(|at| body.rfind('}').map(|end| &body[at..=end])).unwrap_or("null");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

#[test]
fn replays_skews_unknown_keys_and_admin_operations_are_refused_with_the_apis_codes() {
    let (daemon, port, id, secret) = daemon("sdr", 1);
    let create = |nonce: &str, stamp: &str, name: &str| {
        call(
            port,
            &id,
            &secret,
            &[
                ("Action", "CreateVpc"),
                ("Version", "2016-04-28"),
                ("RegionId", "cn-hangzhou"),
                ("CidrBlock", "10.0.0.0/16"),
                ("VpcName", name),
                ("SignatureNonce", nonce),
                ("Timestamp", stamp),
            ],
        )
    };
    let now = timestamp(0);
    let (status, made) = create("n-1", &now, "first");
    assert_eq!(status, 200, "{made}\n{}", daemon.log());
    assert!(made["VpcId"].as_str().is_some_and(|v| v.starts_with("vpc-")) && made["RequestId"].is_string(), "{made}");

    let refusal = |(status, body): (u16, Value)| (status, body["Code"].as_str().unwrap_or_default().to_string(), body);
    let (status, code, body) = refusal(create("n-1", &now, "again"));
    assert_eq!((status, code.as_str()), (400, "SignatureNonceUsed"), "{body}");
    assert!(
        body["RequestId"].is_string() && body["HostId"].is_string() && body["Message"].is_string() && body.get("Recommend").is_some(),
        "{body}"
    );
    let (status, code, body) = refusal(create("n-2", &timestamp(-3600), "stale"));
    assert_eq!((status, code.as_str()), (400, "InvalidTimeStamp.Expired"), "{body}");
    let (status, code, body) = refusal(create("n-3", &timestamp(3600), "early"));
    assert_eq!((status, code.as_str()), (400, "InvalidTimeStamp.Expired"), "{body}");
    let (status, code, body) = refusal(call(
        port,
        "LTAInobodyhasthiskey",
        &secret,
        &[("Action", "DescribeVpcs"), ("Version", "2016-04-28"), ("SignatureNonce", "n-4"), ("Timestamp", &now)],
    ));
    assert_eq!((status, code.as_str()), (404, "InvalidAccessKeyId.NotFound"), "{body}");
    let (status, code, body) = refusal(call(
        port,
        &id,
        &secret,
        &[("Action", "CreateAccessKey"), ("Version", "2016-04-28"), ("Account", "a1"), ("SignatureNonce", "n-5"), ("Timestamp", &now)],
    ));
    assert_eq!((status, code.as_str()), (404, "InvalidAction.NotFound"), "admin operations stay on the Unix socket: {body}");
    let (status, code, body) = refusal(call(
        port,
        &id,
        &secret,
        &[("Action", "DescribeVpcs"), ("Version", "2099-01-01"), ("SignatureNonce", "n-6"), ("Timestamp", &now)],
    ));
    assert_eq!((status, code.as_str()), (404, "InvalidAction.NotFound"), "{body}");
    let (status, code, body) = refusal(call(
        port,
        &id,
        "a wrong secret",
        &[("Action", "DescribeVpcs"), ("Version", "2016-04-28"), ("SignatureNonce", "n-7"), ("Timestamp", &now)],
    ));
    assert_eq!((status, code.as_str()), (400, "SignatureDoesNotMatch"), "{body}");
    assert!(body["Message"].as_str().unwrap().split_once("is:").is_some_and(|(_, s)| s.starts_with("POST&%2F&")), "{body}");
    // A deleted key is refused from then on.
    let out = daemon.cli(&["delete-access-key", "--access-key-id", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, code, body) = refusal(create("n-8", &now, "after"));
    assert_eq!((status, code.as_str()), (404, "InvalidAccessKeyId.NotFound"), "{body}");

    let names: Vec<String> =
        daemon.call("DescribeVpcs", json!({}))["Vpcs"].as_array().unwrap().iter().map(|v| v["VpcName"].to_string()).collect();
    assert_eq!(names, vec!["\"first\""], "only the accepted request changed anything");
    // The secret is root's alone at rest.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(daemon.opts.state_dir.join("access-keys.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
