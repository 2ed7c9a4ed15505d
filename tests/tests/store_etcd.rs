//! The etcd store against a real etcd (a plain process on a loopback port of its own): what
//! one agent commits, another loads whole; a commit from a revision the cluster moved past
//! changes nothing and says so; a change that names its rows equals a commit of the whole
//! documents; every host sees the same cluster id; a watch wakes a follower at each commit; a
//! change larger than one transaction is written in stages and never seen half-written, and
//! what a writer that died half-way left is undone by the next; a follower reads only what each
//! commit wrote (whole when etcd compacted its revision away); an unreachable etcd is a clear
//! error.

use std::{
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use vpc::{
    model::{Topology, ids::Ids, normalize::normalize, spec::TopologySpec},
    store::{Conflict, EtcdStore, RowChange, Store, Stored},
};

/// An etcd of this test's own, removed on drop.
struct Etcd {
    child: Child,
    dir: std::path::PathBuf,
    url: String,
}

impl Etcd {
    fn start(client: u16, peer: u16) -> Etcd {
        let dir = std::env::temp_dir().join(format!("vpc-t-etcd-{}-{client}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .args(["--name", "t", "--data-dir", &dir.display().to_string(), "--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &format!("t={peer_url}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd (Debian's etcd-server; cargo xtask setup installs it)");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", client)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "etcd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Etcd { child, dir, url }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stored(yaml: &str) -> Stored {
    let doc = normalize(&TopologySpec::default(), TopologySpec::from_yaml(yaml).unwrap());
    let topology = Topology::from_spec(&doc, &Default::default()).unwrap();
    let mut ids = Ids::default();
    ids.assign(&topology, 64).unwrap();
    Stored { doc, ids }
}

const YAML: &str = "
vpcs:
  - name: prod
    cidr: 10.0.0.0/16
    vswitches: [{name: web, cidr: 10.0.1.0/24, zone: a}, {name: db, cidr: 10.0.2.0/24, zone: b, route_table: edge}]
    route_tables:
      - name: edge
        routes: [{dst: 0.0.0.0/0, next_hop: {type: eni, eni: w1}}, {dst: 10.9.0.0/16, next_hop: {type: blackhole}}]
    security_groups: [{name: sg, rules: [{direction: ingress, protocol: tcp, ports: 22/22, peer: 0.0.0.0/0}]}]
    enis: [{name: w1, vswitch: web, host: h1}, {name: d1, vswitch: db, host: h2}]
  - name: dev
    cidr: 10.0.0.0/16
cens: [{name: cen1, vpcs: [prod, dev]}]
";

#[test]
fn two_agents_share_one_state_without_losing_an_update() {
    let etcd = Etcd::start(23791, 23792);
    let endpoints = vec![etcd.url.clone()];
    let mut h1 = EtcdStore::connect(&endpoints, "t1", 128).unwrap();
    let mut h2 = EtcdStore::connect(&endpoints, "t1", 128).unwrap();
    assert_eq!(h1.id(), h2.id(), "one cluster id, made by whoever came first");
    assert_ne!(EtcdStore::connect(&endpoints, "other", 128).unwrap().id(), h1.id(), "another cluster's keys are its own");
    assert_eq!(h1.load().unwrap(), (Stored::default(), 0));
    // h2's watch wakes it when h1 commits.
    let changes = h2.changes().expect("etcd is watched");

    let first = stored(YAML);
    assert_eq!(h1.commit(0, &Stored::default(), &first).unwrap(), 1);
    let asked = Instant::now();
    changes.wait_past(0, Duration::from_secs(5));
    assert_eq!(changes.seen(), 1, "the watch saw h1's commit ({:?})", asked.elapsed());
    assert_eq!(h2.changed_since(0).unwrap(), Some((first.clone(), 1)), "h2 follows what h1 committed, whole and in order");
    assert!(h2.changed_since(1).unwrap().is_none());

    // Both edit revision 1; the second to commit is refused and nothing of it is written.
    let mut by_h1 = first.clone();
    by_h1.doc.vpcs[0].route_tables[1].routes.remove(0);
    let mut by_h2 = first.clone();
    by_h2.doc.vpcs.remove(1);
    by_h2.doc.cens.clear();
    assert_eq!(h1.commit(1, &first, &by_h1).unwrap(), 2);
    changes.wait_past(1, Duration::from_secs(5));
    assert_eq!(changes.seen(), 2);
    let err = h2.commit(1, &first, &by_h2).unwrap_err();
    assert_eq!(err.downcast_ref::<Conflict>(), Some(&Conflict { at: 1, now: 2 }));
    assert_eq!(h2.load().unwrap(), (by_h1.clone(), 2), "h1's change, and nothing of h2's");

    // Rows named by a change: the same state as a commit of the whole documents.
    let mut third = by_h1.clone();
    let route = vpc::model::spec::RouteSpec { id: Some("vtbe-extra".into()), ..third.doc.vpcs[0].route_tables[1].routes[0].clone() };
    let table = third.doc.vpcs[0].route_tables[1].id.clone().unwrap();
    third.doc.vpcs[0].route_tables[1].routes.push(route.clone());
    let rows = [RowChange::PutRoute { table: &table, pos: 1, route: &route }];
    assert_eq!(h2.commit_rows(2, &rows).unwrap(), 3);
    assert_eq!(h1.load().unwrap().0.doc, third.doc);
    assert_eq!(h1.load().unwrap().1, 3);

    // Taken down: everything goes.
    assert_eq!(h1.commit(3, &third, &Stored::default()).unwrap(), 4);
    assert_eq!(h2.load().unwrap(), (Stored::default(), 4));
}

/// etcd's keys as another client sees them: written directly, as a writer that died half-way
/// through a staged change leaves them.
struct Raw {
    runtime: tokio::runtime::Runtime,
    client: etcd_client::Client,
    prefix: String,
}

impl Raw {
    fn connect(url: &str, cluster: &str) -> Raw {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = runtime.block_on(etcd_client::Client::connect([url], None)).unwrap();
        Raw { runtime, client, prefix: format!("/vpc/{cluster}/v1/") }
    }

    fn keys(&mut self) -> Vec<String> {
        let options = etcd_client::GetOptions::new().with_prefix().with_keys_only();
        let response = self.runtime.block_on(self.client.get(self.prefix.as_str(), Some(options))).unwrap();
        response.kvs().iter().map(|kv| kv.key_str().unwrap().strip_prefix(self.prefix.as_str()).unwrap().to_string()).collect()
    }

    fn put(&mut self, key: &str, value: &str, lease: Option<i64>) {
        let options = lease.map(|l| etcd_client::PutOptions::new().with_lease(l));
        self.runtime.block_on(self.client.put(format!("{}{key}", self.prefix), value, options)).unwrap();
    }

    fn delete(&mut self, key: &str) {
        self.runtime.block_on(self.client.delete(format!("{}{key}", self.prefix), None)).unwrap();
    }

    /// Forget every revision before now.
    fn compact(&mut self) {
        let now = self.runtime.block_on(self.client.get(self.prefix.as_str(), None)).unwrap().header().unwrap().revision();
        self.runtime.block_on(self.client.compact(now, None)).unwrap();
    }

    fn lease(&mut self) -> i64 {
        self.runtime.block_on(self.client.lease_grant(30, None)).unwrap().id()
    }
}

#[test]
fn a_change_larger_than_one_transaction_is_written_in_stages_and_seen_whole_or_not_at_all() {
    let etcd = Etcd::start(23796, 23797);
    let endpoints = vec![etcd.url.clone()];
    // Eight operations a transaction: the document takes several.
    let mut writer = EtcdStore::connect(&endpoints, "t3", 8).unwrap();
    let mut reader = EtcdStore::connect(&endpoints, "t3", 8).unwrap();
    let mut raw = Raw::connect(&etcd.url, "t3");
    let whole = stored(YAML);
    assert!(raw.keys().len() < 8);
    assert_eq!(writer.commit(0, &Stored::default(), &whole).unwrap(), 1);
    let rows = raw.keys().iter().filter(|k| k.starts_with("r/")).count();
    assert!(rows > 8, "{rows} rows: more than one transaction holds");
    assert_eq!(reader.load().unwrap(), (whole.clone(), 1), "all of it, at one revision");
    assert!(!raw.keys().iter().any(|k| k == "staging" || k == "lock"), "claim and mark cleared");

    // A writer that died half-way: its mark left, its claim lapsed, a row of its own written
    // and one of the committed rows deleted. Readers still see the last commit whole.
    let victim = raw.keys().into_iter().find(|k| k.starts_with("r/")).unwrap();
    raw.put("staging", "dead", None);
    raw.put("r/vsw-half-written", "{not even a row", None);
    raw.delete(&victim);
    assert_eq!(reader.load().unwrap(), (whole.clone(), 1), "never a change half-written");

    // The next change (a small one: one transaction would hold it) undoes what was left, then
    // makes its own.
    let mut next = whole.clone();
    next.doc.vpcs[0].security_groups[0].description = Some("changed".into());
    assert_eq!(writer.commit(1, &whole, &next).unwrap(), 2);
    assert_eq!(reader.load().unwrap(), (next.clone(), 2));
    let keys = raw.keys();
    assert!(keys.contains(&victim) && !keys.iter().any(|k| k == "r/vsw-half-written" || k == "staging"), "{keys:?}");

    // A writer alive in the middle of a staged change (its claim held): others wait for it.
    let lease = raw.lease();
    raw.put("lock", "busy", Some(lease));
    raw.put("staging", "busy", None);
    let err = writer.commit(2, &next, &whole).unwrap_err();
    assert!(format!("{err:#}").contains("another writer is committing a change in stages"), "{err:#}");
    assert_eq!(reader.load().unwrap(), (next.clone(), 2), "nothing of it written");
}

#[test]
fn an_agent_applies_a_file_larger_than_one_transaction_to_an_etcd_with_its_default_limits() {
    let etcd = Etcd::start(23798, 23799);
    let mut daemon = vpc_tests::Daemon::start("se", &["--etcd", &etcd.url, "--cluster", "se"]);
    let metrics = 19964 + (std::process::id() % 500) as u16;
    daemon.kill9();
    daemon.spawn(&["--metrics-addr", &format!("127.0.0.1:{metrics}")]);
    // 240 route entries in two tables: two hundred and more keys, etcd takes 128 a transaction.
    let mut yaml = String::from(
        "vpcs:\n  - name: big\n    cidr: 10.0.0.0/8\n    vswitches: [{name: s1, cidr: 10.0.1.0/24, zone: a}]\n    route_tables:\n",
    );
    for table in ["t1", "t2"] {
        yaml += &format!("      - name: {table}\n        routes:\n");
        for i in 0..120 {
            yaml += &format!("          - {{dst: 172.{}.{i}.0/24, next_hop: {{type: blackhole}}}}\n", if table == "t1" { 16 } else { 17 });
        }
    }
    let file = daemon.opts.state_dir.join("big.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let out = daemon.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stderr), daemon.log());
    // Another client of the cluster loads all of it.
    let (loaded, revision) = EtcdStore::connect(std::slice::from_ref(&etcd.url), "se", 128).unwrap().load().unwrap();
    let tables = &loaded.doc.vpcs[0].route_tables;
    assert_eq!(tables.iter().map(|t| t.routes.len()).sum::<usize>(), 240, "{revision}");
    let listed = daemon.call("DescribeRouteEntryList", json!({"RouteTableId": tables.iter().find(|t| t.name == "t2").unwrap().id}));
    let custom = listed["RouteEntrys"].as_array().unwrap().iter().filter(|e| e["Type"] == "Custom").count();
    assert_eq!(custom, 120, "{listed}");
    // The metrics: the revision the data path holds, and the newest the watch has seen.
    let gauge = |name: &str| -> Option<u64> {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", metrics)).unwrap();
        std::io::Write::write_all(&mut conn, b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut response = String::new();
        std::io::Read::read_to_string(&mut conn, &mut response).unwrap();
        response.lines().find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
    };
    let start = Instant::now();
    while gauge("vpc_store_watched_revision") != Some(revision) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the watch never told of revision {revision}: {:?}",
            gauge("vpc_store_watched_revision")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(gauge("vpc_store_revision"), Some(revision));
}

#[test]
fn a_follower_reads_only_what_each_commit_wrote_and_loads_whole_when_etcd_forgot() {
    let etcd = Etcd::start(23800, 23801);
    let endpoints = vec![etcd.url.clone()];
    // Eight operations a transaction: the first commit is staged.
    let mut writer = EtcdStore::connect(&endpoints, "t5", 8).unwrap();
    let mut follower = EtcdStore::connect(&endpoints, "t5", 8).unwrap();
    let mut raw = Raw::connect(&etcd.url, "t5");
    let fresh = || EtcdStore::connect(std::slice::from_ref(&etcd.url), "t5", 8).unwrap().load().unwrap();
    let whole = stored(YAML);
    assert_eq!(writer.commit(0, &Stored::default(), &whole).unwrap(), 1);
    assert_eq!(follower.changed_since(0).unwrap(), Some((whole.clone(), 1)));
    let rows = follower.rows_decoded();
    assert!(rows > 8, "the first read decodes every row ({rows})");

    // One row changed, one added, one removed, the numbers changed: two rows decoded.
    let mut next = whole.clone();
    next.doc.vpcs[0].security_groups[0].description = Some("changed".into());
    let table = &mut next.doc.vpcs[0].route_tables[1];
    table.routes.pop();
    let route = vpc::model::spec::RouteSpec { id: Some("vtbe-added".into()), ..table.routes[0].clone() };
    table.routes.push(vpc::model::spec::RouteSpec { dst: "10.8.0.0/16".parse().unwrap(), ..route });
    next.ids.ports.insert("eni-made-up".into(), 9);
    assert_eq!(writer.commit(1, &whole, &next).unwrap(), 2);
    let followed = follower.changed_since(1).unwrap();
    assert_eq!(followed, Some((next.clone(), 2)));
    assert_eq!(followed, Some(fresh()), "what a whole load gives");
    assert_eq!(follower.rows_decoded() - rows, 2, "only the rows the commit wrote");
    assert!(follower.changed_since(2).unwrap().is_none());

    // A writer that died half-way leaves a row and its mark; the next commit (staged, to undo
    // them) is followed exactly, and nothing of the dead writer's shows.
    raw.put("staging", "dead", None);
    raw.put("r/vsw-half-written", "{not even a row", None);
    assert!(follower.changed_since(2).unwrap().is_none(), "nothing committed");
    assert_eq!(writer.commit(2, &next, &whole).unwrap(), 3);
    let followed = follower.changed_since(2).unwrap();
    assert_eq!(followed, Some((whole.clone(), 3)));
    assert_eq!(followed, Some(fresh()));

    // etcd compacted away the revision the follower read at: it loads whole, and right.
    assert_eq!(writer.commit(3, &whole, &next).unwrap(), 4);
    raw.put("hosts/other", "10.255.0.9", None);
    raw.compact();
    let decoded = follower.rows_decoded();
    let followed = follower.changed_since(3).unwrap();
    assert_eq!(followed, Some((next.clone(), 4)));
    assert!(follower.rows_decoded() - decoded > 8, "a whole load after the compaction");
    // And reads only changes again after it.
    assert_eq!(writer.commit(4, &next, &whole).unwrap(), 5);
    let decoded = follower.rows_decoded();
    assert_eq!(follower.changed_since(4).unwrap(), Some((whole.clone(), 5)));
    assert_eq!(follower.rows_decoded() - decoded, 2);
}

/// A metric of the daemon whose metrics listen on `port`.
fn metric(port: u16, line: &str) -> Option<u64> {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    std::io::Write::write_all(&mut conn, b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut response = String::new();
    std::io::Read::read_to_string(&mut conn, &mut response).ok()?;
    response.lines().find_map(|l| l.strip_prefix(&format!("{line} "))?.parse().ok())
}

/// Route entries added and removed and rules authorized and revoked through one agent reach
/// another on the incremental path (the rows the commit wrote, not the whole document compiled
/// again), and leave its kernel maps exactly as the writer's.
#[test]
fn a_follower_takes_route_and_rule_changes_on_the_incremental_path() {
    let etcd = Etcd::start(23802, 23803);
    let base = 20464 + (std::process::id() % 500) as u16;
    let start = |tag: &str, port: u16| {
        let mut daemon = vpc_tests::Daemon::start(tag, &["--etcd", &etcd.url, "--cluster", "fi"]);
        daemon.kill9();
        daemon.spawn(&["--metrics-addr", &format!("127.0.0.1:{port}")]);
        daemon
    };
    let (writer, follower) = (start("fiw", base), start("fif", base + 1));
    let mut yaml = String::from(
        "vpcs:\n  - name: big\n    cidr: 10.0.0.0/8\n    vswitches: [{name: s1, cidr: 10.0.1.0/24, zone: a, route_table: t1}]\n    security_groups: [{name: sg, rules: [{direction: ingress, protocol: tcp, ports: 22/22, peer: 0.0.0.0/0}]}]\n    enis: [{name: e1, vswitch: s1, security_groups: [sg]}]\n    route_tables:\n      - name: t1\n        routes:\n",
    );
    for i in 0..200 {
        yaml += &format!("          - {{dst: 172.16.{i}.0/24, next_hop: {{type: blackhole}}}}\n");
    }
    let file = writer.opts.state_dir.join("fi.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let out = writer.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stderr), writer.log());
    let caught_up = |what: &str| {
        let want = metric(base, "vpc_store_revision");
        let start = Instant::now();
        while metric(base + 1, "vpc_store_revision") != want {
            assert!(start.elapsed() < Duration::from_secs(5), "{what}: the follower never reached {want:?}\n{}", follower.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let maps = |d: &vpc_tests::Daemon| vpc::dataplane::Dataplane::new(&d.opts.bpffs, Default::default()).read_entries().unwrap();
    caught_up("the file");
    let incremental = || metric(base + 1, "vpc_store_follows_total{path=\"incremental\"}").unwrap();
    let whole = metric(base + 1, "vpc_store_follows_total{path=\"whole\"}").unwrap();
    assert!(whole >= 1, "the first commit is followed whole");

    let t1 = writer.call("DescribeRouteTableList", json!({"RouteTableName": "t1"}))["RouterTableList"][0]["RouteTableId"].clone();
    let sg = writer.call("DescribeSecurityGroups", json!({"SecurityGroupName": "sg"}))["SecurityGroups"][0]["SecurityGroupId"].clone();
    let mut steps: Vec<(&str, Value)> = vec![
        ("CreateRouteEntry", json!({"RouteTableId": t1, "DestinationCidrBlock": "192.168.9.0/24", "NextHopType": "Blackhole"})),
        ("AuthorizeSecurityGroup", json!({"SecurityGroupId": sg, "IpProtocol": "udp", "PortRange": "53/53", "SourceCidrIp": "10.0.0.0/8"})),
    ];
    let mut made = Vec::new();
    for (n, (action, body)) in steps.drain(..).enumerate() {
        let before = incremental();
        made.push(writer.call(action, body));
        caught_up(action);
        assert_eq!(incremental(), before + 1, "{action} followed on the incremental path\n{}", follower.log());
        assert_eq!(maps(&follower), maps(&writer), "step {n}: the follower's maps are the writer's");
        assert_eq!(follower.call("ExportTopology", json!({}))["Topology"], writer.call("ExportTopology", json!({}))["Topology"]);
    }
    let route = made[0]["RouteEntryId"].clone();
    let rule = made[1]["SecurityGroupRuleId"].clone();
    for (action, body) in [
        ("RevokeSecurityGroup", json!({"SecurityGroupId": sg, "SecurityGroupRuleId": rule})),
        ("DeleteRouteEntry", json!({"RouteEntryId": route})),
    ] {
        let before = incremental();
        writer.call(action, body);
        caught_up(action);
        assert_eq!(incremental(), before + 1, "{action} followed on the incremental path\n{}", follower.log());
        assert_eq!(maps(&follower), maps(&writer), "{action}: the follower's maps are the writer's");
    }
    assert_eq!(metric(base + 1, "vpc_store_follows_total{path=\"whole\"}").unwrap(), whole, "nothing followed whole since");
}

#[test]
fn an_unreachable_etcd_is_a_clear_error() {
    let etcd = Etcd::start(23793, 23794);
    let mut store = EtcdStore::connect(std::slice::from_ref(&etcd.url), "t2", 8).unwrap();
    assert_eq!(store.load().unwrap(), (Stored::default(), 0));
    drop(etcd);
    let err = store.load().unwrap_err();
    assert!(format!("{err:#}").contains("etcd"), "{err:#}");
    let err = EtcdStore::connect(&["http://127.0.0.1:23795".into()], "t2", 8).err().expect("no etcd there");
    assert!(format!("{err:#}").contains("connecting to etcd at http://127.0.0.1:23795"), "{err:#}");
}
