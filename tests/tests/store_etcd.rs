//! The etcd store against a real etcd (a plain process on a loopback port of its own): what
//! one agent commits, another loads whole; a commit from a revision the cluster moved past
//! changes nothing and says so; a change that names its rows equals a commit of the whole
//! documents; every host sees the same cluster id; a watch wakes a follower at each commit; an
//! unreachable etcd is a clear error.

use std::{
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

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

#[test]
fn a_change_too_large_for_one_transaction_or_an_unreachable_etcd_is_a_clear_error() {
    let etcd = Etcd::start(23793, 23794);
    let mut store = EtcdStore::connect(std::slice::from_ref(&etcd.url), "t2", 8).unwrap();
    let err = store.commit(0, &Stored::default(), &stored(YAML)).unwrap_err();
    assert!(format!("{err:#}").contains("--max-txn-ops"), "{err:#}");
    assert_eq!(store.load().unwrap(), (Stored::default(), 0), "nothing was written");
    drop(etcd);
    let err = store.load().unwrap_err();
    assert!(format!("{err:#}").contains("etcd"), "{err:#}");
    let err = EtcdStore::connect(&["http://127.0.0.1:23795".into()], "t2", 8).err().expect("no etcd there");
    assert!(format!("{err:#}").contains("connecting to etcd at http://127.0.0.1:23795"), "{err:#}");
}
