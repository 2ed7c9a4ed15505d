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

    let bad = TOPO.replace("10.10.2.0/24", "10.10.1.128/25").replace("{name: db1, vswitch: db, ip: 10.10.2.10}", "{name: db1, vswitch: web, ip: 10.10.1.255}");
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
    assert!(text(&out).contains("vpc-cli-c2-syntax.yaml") && text(&out).contains("line"), "{}", text(&out));

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
