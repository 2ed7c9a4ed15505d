//! A careless operator: a mistyped or emptied state directory over a live data path, a damaged
//! database, a full disk. Forwarding never stops, nothing panics, and the agent says what it
//! found and what to do.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;
use vpc::tools::lab::probe;
use vpc_tests::{DaemonLab, vpc_bin};

const PAIR: &str = "
vpcs:
  - name: prod
    cidr: 10.70.0.0/16
    vswitches: [{name: sw, cidr: 10.70.1.0/24, zone: a}]
    enis:
      - {name: p1, vswitch: sw, ip: 10.70.1.10}
      - {name: p2, vswitch: sw, ip: 10.70.1.11}
";

/// Run `vpc daemon` with these global options and daemon flags until it exits, or answers on
/// its socket (then it is stopped): its exit code (None if it started) and its output.
fn daemon_once(bpffs: &Path, state_dir: &Path, prefix: &str, flags: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(vpc_bin())
        .arg("--bpffs")
        .arg(bpffs)
        .arg("--state-dir")
        .arg(state_dir)
        .args(["--prefix", prefix, "daemon"])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if vpc::api::client::is_running(&state_dir.join("vpc.sock")) || start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    (code, String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_state_dir_that_does_not_know_the_live_data_path_refuses_to_take_it() {
    let mut lab = DaemonLab::up("o1", PAIR, &[]);
    let (bpffs, state, prefix) = (lab.daemon.opts.bpffs.clone(), lab.daemon.opts.state_dir.clone(), lab.daemon.opts.naming.prefix.clone());
    let p2 = lab.ip("p2");
    assert!(probe::ping(&lab.ns("p1"), p2, 1));
    lab.daemon.kill9();
    assert!(probe::ping(&lab.ns("p1"), p2, 1), "forwarding outlives the agent");

    // A mistyped state directory: refused, both paths named, forwarding untouched.
    let typo = scratch("vpc-t-o1-typo");
    let (code, out) = daemon_once(&bpffs, &typo, &prefix, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&bpffs.display().to_string()) && out.contains(&typo.display().to_string()) && out.contains("--adopt"), "{out}");
    assert!(probe::ping(&lab.ns("p1"), p2, 2), "still forwarding");

    // The right directory with its database deleted: refused too.
    let db = state.join("vpc.redb");
    std::fs::rename(&db, state.join("vpc.redb.bak")).unwrap();
    let (code, out) = daemon_once(&bpffs, &state, &prefix, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("new or empty"), "{out}");
    assert!(probe::ping(&lab.ns("p1"), p2, 2), "still forwarding");

    // --restore rebuilds the database from the backup written after the last change: the data
    // path is its own again, and the agent starts.
    let _ = std::fs::remove_file(&db);
    lab.daemon.spawn(&["--restore"]);
    assert!(probe::ping(&lab.ns("p1"), p2, 2));
    let enis = lab.call("DescribeNetworkInterfaces", json!({}));
    assert_eq!(enis["TotalCount"], 2, "the configuration came back: {enis}");
    lab.daemon.kill9();

    // --adopt with the mistyped directory keeps forwarding as it is.
    let mut adopter = Command::new(vpc_bin())
        .arg("--bpffs")
        .arg(&bpffs)
        .arg("--state-dir")
        .arg(&typo)
        .args(["--prefix", &prefix, "daemon", "--adopt"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = typo.join("vpc.sock");
    let start = Instant::now();
    while !vpc::api::client::is_running(&socket) {
        assert!(start.elapsed() < Duration::from_secs(10), "the adopting agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(probe::ping(&lab.ns("p1"), p2, 3), "forwarding on the adopted data path");
    adopter.kill().unwrap();
    adopter.wait().unwrap();
    let _ = std::fs::remove_dir_all(&typo);
    // And the owner can come back (the adopter never wrote anything: still the owner's).
    lab.daemon.spawn(&[]);
    assert!(probe::ping(&lab.ns("p1"), p2, 1));
}

/// A copy of `db` with 512 random bytes written at a random place: anywhere, in the header
/// page (commit slots, the region table), or in the last pages written.
fn corrupt(db: &[u8], rng: &mut vpc_tests::rng::Rng) -> Vec<u8> {
    let mut copy = db.to_vec();
    let at = match rng.below(3) {
        0 => rng.below(4096 - 512) as usize,
        1 => copy.len() - 4096 * (1 + rng.below(4) as usize) + rng.below(4096 - 512) as usize,
        _ => rng.below((copy.len() - 512) as u64) as usize,
    };
    for b in &mut copy[at..at + 512] {
        *b = rng.next() as u8;
    }
    copy
}

#[test]
fn a_damaged_database_is_an_error_never_a_panic() {
    // A database with a real configuration in it, large enough for B-trees of several levels.
    let dir = scratch("vpc-t-o2-db");
    let routes: Vec<String> =
        (0..800).map(|i| format!("          - {{dst: 10.{}.{}.0/24, next_hop: {{type: blackhole}}}}", 100 + i / 256, i % 256)).collect();
    let yaml = format!("{PAIR}    route_tables:\n      - name: big\n        routes:\n{}\n", routes.join("\n"));
    let lab = DaemonLab::up("o2", &yaml, &["--quota", "route-entries-per-table=1000"]);
    lab.call("CreateVpc", json!({"CidrBlock": "10.71.0.0/16", "VpcName": "more"}));
    let good = std::fs::read(lab.daemon.opts.state_dir.join("vpc.redb")).unwrap();
    assert!(good.len() > 4096);
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = vpc_tests::rng::Rng::new(0xbad);
    let (mut opened, mut refused, mut caught) = (0, 0, 0);
    for i in 0..1000 {
        let path = dir.join(format!("copy-{}.redb", i % 4));
        std::fs::write(&path, corrupt(&good, &mut rng)).unwrap();
        // Open, read, and write a change, as the agent does.
        let result = std::panic::catch_unwind(|| {
            use vpc::store::Store as _;
            let mut store = vpc::store::RedbStore::open(&path)?;
            let (stored, at) = store.load()?;
            let mut changed = stored.clone();
            changed.doc.vpcs.retain(|v| v.name != "more");
            store.commit(at, &stored, &changed)?;
            store.load()
        });
        match result {
            Ok(Ok(_)) => opened += 1,
            Ok(Err(e)) => {
                let text = format!("{e:#}");
                assert!(text.contains(&path.display().to_string()) || text.contains("decoding"), "{text}");
                refused += 1;
                // A panic redb raised, turned into this error.
                caught += usize::from(text.contains("is damaged ("));
            }
            Err(_) => panic!("copy {i} made the store panic"),
        }
    }
    eprintln!(
        "1000 damaged copies of {} bytes: {opened} still readable, {refused} refused with an error ({caught} of them panics of redb's)",
        good.len()
    );
    assert!(refused > 0, "some damage reached what matters");
    // The agent itself on damaged copies: a clean error naming the file and --restore, never
    // exit code 101 (a panic).
    let state = lab.daemon.opts.state_dir.clone();
    let bpffs = lab.daemon.opts.bpffs.clone();
    let prefix = lab.daemon.opts.naming.prefix.clone();
    drop(lab);
    for i in 0..20 {
        let tries = scratch(&format!("vpc-t-o2-{i}"));
        std::fs::create_dir_all(&tries).unwrap();
        std::fs::copy(state.join("vpc.backup.json"), tries.join("vpc.backup.json")).ok();
        std::fs::write(tries.join("vpc.redb"), corrupt(&good, &mut rng)).unwrap();
        let (code, out) = daemon_once(&bpffs, &tries, &prefix, &[]);
        assert_ne!(code, Some(101), "the agent panicked: {out}");
        if code == Some(1) {
            assert!(out.contains("vpc.redb") || out.contains("decoding"), "{out}");
        }
        let _ =
            Command::new(vpc_bin()).arg("--bpffs").arg(&bpffs).arg("--state-dir").arg(&tries).args(["--prefix", &prefix, "down"]).output();
        let _ = std::fs::remove_dir_all(&tries);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&state);
}

/// A tmpfs of `bytes` at `dir`, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn new(dir: &Path, bytes: usize) -> SmallDisk {
        let _ = Command::new("umount").arg(dir).status();
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"]).arg(dir).status().unwrap();
        assert!(ok.success(), "mounting a tmpfs at {}", dir.display());
        SmallDisk(dir.to_path_buf())
    }

    /// Fill it up.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let _ =
            Command::new("dd").arg("if=/dev/zero").arg(format!("of={}", filler.display())).args(["bs=64k"]).stderr(Stdio::null()).status();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_rolls_back_and_recovers_by_itself() {
    let mut opts = vpc_tests::options("o3");
    let disk = SmallDisk::new(&opts.state_dir, 8 << 20);
    let socket = std::env::temp_dir().join("vpc-t-o3.sock");
    opts.socket = Some(socket.clone());
    let lab = DaemonLab::up_with_opts(opts, PAIR, &["--socket", socket.to_str().unwrap()]);
    let p2 = lab.ip("p2");
    assert!(probe::ping(&lab.ns("p1"), p2, 1));
    let filler = disk.fill();
    // A change cannot be committed: refused, nothing changed, forwarding on.
    let vpcs = |lab: &DaemonLab| lab.call("DescribeVpcs", json!({}))["TotalCount"].as_u64().unwrap();
    let before = vpcs(&lab);
    let err = lab.daemon.conn().call("CreateVpc", json!({"CidrBlock": "10.72.0.0/16", "VpcName": "full"})).unwrap_err();
    assert!(err.message.contains("No space") || err.message.contains("space"), "{err:?}");
    assert_eq!(vpcs(&lab), before, "nothing half-applied");
    assert!(probe::ping(&lab.ns("p1"), p2, 2));
    // Room again: the next change goes through, without a restart.
    std::fs::remove_file(&filler).unwrap();
    lab.call("CreateVpc", json!({"CidrBlock": "10.72.0.0/16", "VpcName": "room"}));
    assert_eq!(vpcs(&lab), before + 1);
    // A restart while the disk is full starts, and forwards.
    let filler = disk.fill();
    let mut lab = lab;
    lab.daemon.kill9();
    lab.daemon.spawn(&["--socket", socket.to_str().unwrap()]);
    assert_eq!(vpcs(&lab), before + 1);
    assert!(probe::ping(&lab.ns("p1"), p2, 2));
    std::fs::remove_file(&filler).unwrap();
}

#[test]
fn a_command_given_the_wrong_socket_says_where_the_agent_is_within_a_second() {
    let d = vpc_tests::Daemon::start("op4", &[]);
    let real = d.opts.socket();
    let wrong = std::env::temp_dir().join(format!("vpc-op4-wrong-{}.sock", std::process::id()));
    let started = std::time::Instant::now();
    let out = d.cli(&["--socket", wrong.to_str().unwrap(), "get", "vpcs"]);
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a command must not run beside the agent: {stderr}");
    assert!(elapsed < std::time::Duration::from_secs(1), "answered in {elapsed:?}");
    assert!(stderr.contains(&real.display().to_string()), "names the socket the agent answers on: {stderr}");
    assert!(!wrong.exists(), "no file made at the wrong socket path");
    // The right socket (the default here) works, and HOST:PORT is refused as no path.
    assert!(d.cli(&["get", "vpcs"]).status.success());
    for bad in ["127.0.0.1:8080", "localhost:9000"] {
        let out = d.cli(&["--socket", bad, "get", "vpcs"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("not a path"), "{bad}: {stderr}");
        assert!(!Path::new(bad).exists());
    }
}

#[test]
fn a_change_without_an_agent_needs_offline_and_is_judged_by_the_agents_quotas() {
    let mut d = vpc_tests::Daemon::start("op5", &[]);
    d.kill9();
    d.spawn(&["--quota", "vpcs=1"]);
    let create = |d: &vpc_tests::Daemon, extra: &[&str], cidr: &str| {
        let mut args = extra.to_vec();
        args.extend(["create-vpc", "--cidr-block", cidr]);
        d.cli(&args)
    };
    assert!(create(&d, &[], "10.1.0.0/16").status.success());
    let refused = create(&d, &[], "10.2.0.0/16");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("QuotaExceeded.Vpc"), "the agent's quota: {refused:?}");
    d.kill9();

    // No agent: a change is refused at once, saying how to make it anyway; nothing changes.
    let started = std::time::Instant::now();
    let out = create(&d, &[], "10.2.0.0/16");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--offline") && stderr.contains("no agent answers"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // Reads still work without an agent.
    let vpcs = d.cli(&["describe-vpcs"]);
    assert!(vpcs.status.success());
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&vpcs.stdout).unwrap()["TotalCount"], 1);
    // Offline, the agent's quota still holds (the default would allow 10)...
    let out = create(&d, &["--offline"], "10.2.0.0/16");
    assert!(String::from_utf8_lossy(&out.stderr).contains("QuotaExceeded.Vpc"), "offline uses the agent's quotas: {out:?}");
    // ...until an offline change raises it, which the next agent keeps.
    assert!(create(&d, &["--offline", "--quota", "vpcs=2"], "10.2.0.0/16").status.success());
    d.spawn(&[]);
    let out = create(&d, &[], "10.3.0.0/16");
    assert!(String::from_utf8_lossy(&out.stderr).contains("QuotaExceeded.Vpc"), "the recorded quota of 2: {out:?}");
    let vpcs: serde_json::Value = serde_json::from_slice(&d.cli(&["describe-vpcs"]).stdout).unwrap();
    assert_eq!(vpcs["TotalCount"], 2);
}
