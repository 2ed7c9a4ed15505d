//! What ships beside the binary: the systemd unit and the OpenAPI document.

use std::path::PathBuf;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn systemd_accepts_the_unit() {
    let unit = std::fs::read_to_string(repo("vpc-user/dist/vpc.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/vpc daemon"));
    assert!(unit.contains("KillMode=process"), "stopping the agent must not stop forwarding");
    // Verify the unit as installed, with the binary where the unit expects it.
    let dir = std::env::temp_dir().join(format!("vpc-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vpc.service");
    let bin = std::fs::canonicalize(vpc_tests::vpc_bin()).expect("vpc binary");
    std::fs::write(&path, unit.replace("/usr/local/bin/vpc", &bin.display().to_string())).unwrap();
    let out = match std::process::Command::new("systemd-analyze").arg("verify").arg(&path).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let _ = std::fs::remove_dir_all(&dir);
            eprintln!("skipping: systemd-analyze is not installed");
            return;
        }
        Err(e) => panic!("running systemd-analyze: {e}"),
    };
    // The sandbox: systemd's own review must rate the unit at most 5.0 ("OK"). --threshold is
    // on the 0-100 scale behind the printed 0.0-10.0 one.
    let security = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=50"])
        .arg(&path)
        .output()
        .expect("systemd-analyze security");
    let _ = std::fs::remove_dir_all(&dir);
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && complaints.trim().is_empty(), "systemd-analyze verify: {complaints}");
    let review = String::from_utf8_lossy(&security.stdout);
    let overall = review.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| {
        panic!("no overall exposure level from systemd-analyze security: {review}{}", String::from_utf8_lossy(&security.stderr))
    });
    let level: f64 = overall
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unparsable exposure line: {overall}"));
    assert!(level <= 5.0 && security.status.success(), "the unit's sandbox is too weak ({overall}):\n{review}");
}

#[test]
fn the_committed_openapi_document_is_current() {
    let committed = std::fs::read_to_string(repo("vpc-user/api/openapi.json")).unwrap();
    assert!(
        committed == vpc::api::openapi::pretty(),
        "vpc-user/api/openapi.json is stale: run `target/debug/vpc openapi > vpc-user/api/openapi.json`"
    );
    let doc: serde_json::Value = serde_json::from_str(&committed).unwrap();
    // Every operation of the guide that this issue names is in it.
    for op in [
        "CreateVpc",
        "DeleteVpc",
        "DescribeVpcs",
        "ModifyVpcAttribute",
        "CreateVSwitch",
        "DeleteVSwitch",
        "DescribeVSwitches",
        "ModifyVSwitchAttribute",
        "CreateRouteTable",
        "DeleteRouteTable",
        "ModifyRouteTableAttributes",
        "AssociateRouteTable",
        "UnassociateRouteTable",
        "DescribeRouteTableList",
        "CreateRouteEntry",
        "DeleteRouteEntry",
        "DescribeRouteEntryList",
        "CreateNetworkInterface",
        "DeleteNetworkInterface",
        "DescribeNetworkInterfaces",
    ] {
        assert!(doc["paths"][format!("/api/{op}")]["post"].is_object(), "{op} missing");
    }
}

#[test]
fn the_readme_topology_example_is_valid() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let start = readme.find("```yaml\n").expect("a YAML example in the README") + 8;
    let end = start + readme[start..].find("```").unwrap();
    vpc::cli::parse_topology("README.md", &readme[start..end]).unwrap();
}
