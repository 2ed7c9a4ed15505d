//! The store of one host: redb, an embedded transactional key-value store: pure Rust
//! (no C library to build), ACID with crash-safe commits, one file. We look resources up by ID
//! only and keep the model in memory, so SQL would buy nothing.
//!
//! Each resource is one row keyed by its ID (`vpc-…`, `vsw-…`, …) holding the resource without its
//! children plus its parent and position, so a change to one route entry writes one row, not the
//! whole VPC. The numbers the data path uses and the revision live in the `meta` table. A commit
//! writes only the rows that differ from the previous state, in one write transaction.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};

use super::{
    Conflict, Revision, Store, Stored,
    rows::{Row, differences, encode_rows, unflatten, written},
};
use crate::model::ids::Ids;

const RESOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("resources");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SCHEMA_VERSION: &[u8] = b"1";

pub struct RedbStore {
    path: PathBuf,
    /// `None` after a failed write: redb refuses every later transaction of a handle that saw
    /// an I/O error ("Previous I/O error"), so the next commit opens the file again (a full disk
    /// that has room again, say).
    db: Option<Database>,
    /// A random number given to this database when it was created: the data path records it, so
    /// an agent started with another database (a mistyped state directory, a deleted file)
    /// knows the data path is not its own.
    id: u64,
}

/// The key in `meta` of the store's id.
const STORE_ID: &str = "store-id";
/// The key in `meta` of the revision: commits since the database was made.
const REVISION: &str = "revision";

impl RedbStore {
    /// Open (or create) the database at `path`. A damaged file is an error naming it, never a
    /// panic (redb may panic on some corruptions: caught here).
    pub fn open(path: &Path) -> anyhow::Result<RedbStore> {
        let (db, id) = guarded(path, || open_db(path))?;
        set_private(path);
        Ok(RedbStore { path: path.to_path_buf(), db: Some(db), id })
    }

    /// Create the database at `path` holding `stored` and `id` (rebuilt from a backup).
    pub fn create_with(path: &Path, id: u64, stored: &Stored) -> anyhow::Result<RedbStore> {
        let mut store = RedbStore::open(path)?;
        guarded(path, || {
            let txn = store.db.as_ref().expect("just opened").begin_write()?;
            txn.open_table(META)?.insert(STORE_ID, id.to_string().as_bytes())?;
            txn.commit()?;
            Ok(())
        })?;
        store.id = id;
        let (_, at) = store.load()?;
        store.commit(at, &Stored::default(), stored)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&mut self) -> anyhow::Result<&Database> {
        if self.db.is_none() {
            let (db, _) = guarded(&self.path, || open_db(&self.path)).context("opening the state database again after an error")?;
            log::info!("state database {} opened again", self.path.display());
            self.db = Some(db);
        }
        Ok(self.db.as_ref().expect("opened above"))
    }
}

impl Store for RedbStore {
    fn id(&self) -> u64 {
        self.id
    }

    fn describe(&self) -> String {
        format!("the state database {}", self.path.display())
    }

    fn load(&mut self) -> anyhow::Result<(Stored, Revision)> {
        let path = self.path.clone();
        let db = self.db()?;
        guarded(&path, || load(db))
    }

    /// Changed rows written, gone ones deleted, in one transaction. After a failure nothing
    /// changed, and the next commit starts from a freshly opened file.
    fn commit(&mut self, at: Revision, old: &Stored, new: &Stored) -> anyhow::Result<Revision> {
        let path = self.path.clone();
        let db = self.db()?;
        let result = guarded(&path, || commit(db, at, old, new));
        if result.as_ref().is_err_and(|e| e.downcast_ref::<Conflict>().is_none()) {
            self.db = None;
        }
        result
    }

    fn commit_rows(&mut self, at: Revision, rows: &[super::RowChange<'_>]) -> anyhow::Result<Revision> {
        let path = self.path.clone();
        let db = self.db()?;
        let result = guarded(&path, || commit_rows(db, at, rows));
        if result.as_ref().is_err_and(|e| e.downcast_ref::<Conflict>().is_none()) {
            self.db = None;
        }
        result
    }

    /// One agent holds the database (the state lock), so only it commits: a revision past
    /// `after` means someone wrote the file behind the lock's back; it is read again.
    fn changed_since(&mut self, after: Revision) -> anyhow::Result<Option<(Stored, Revision)>> {
        let path = self.path.clone();
        let db = self.db()?;
        let now = guarded(&path, || revision(&db.begin_read()?))?;
        if now == after { Ok(None) } else { self.load().map(Some) }
    }
}

/// The revision the database is at.
fn revision(txn: &redb::ReadTransaction) -> anyhow::Result<Revision> {
    let meta = txn.open_table(META)?;
    let value = meta.get(REVISION)?.map(|v| String::from_utf8_lossy(v.value()).into_owned());
    Ok(value.map(|v| v.parse()).transpose().context("decoding the revision")?.unwrap_or(0))
}

fn open_db(path: &Path) -> anyhow::Result<(Database, u64)> {
    let db = Database::create(path).with_context(|| format!("opening the state database {}", path.display()))?;
    // Read first: a database already set up is opened without writing (a full disk allows that).
    let (version, id) = {
        let txn = db.begin_read()?;
        match txn.open_table(META) {
            Ok(meta) => (meta.get("schema")?.map(|v| v.value().to_vec()), meta.get(STORE_ID)?.map(|v| v.value().to_vec())),
            Err(redb::TableError::TableDoesNotExist(_)) => (None, None),
            Err(e) => return Err(e.into()),
        }
    };
    match version.as_deref() {
        None | Some(SCHEMA_VERSION) => {}
        Some(other) => anyhow::bail!(
            "{} has schema version {}, this build reads {}",
            path.display(),
            String::from_utf8_lossy(other),
            String::from_utf8_lossy(SCHEMA_VERSION)
        ),
    }
    let known = id.as_deref().and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
    if let (Some(_), Some(id)) = (&version, known) {
        return Ok((db, id));
    }
    let id = known.unwrap_or_else(random_id);
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert("schema", SCHEMA_VERSION)?;
        meta.insert(STORE_ID, id.to_string().as_bytes())?;
        txn.open_table(RESOURCES)?;
    }
    txn.commit()?;
    Ok((db, id))
}

fn load(db: &Database) -> anyhow::Result<(Stored, Revision)> {
    let txn = db.begin_read()?;
    let at = revision(&txn)?;
    let table = txn.open_table(RESOURCES)?;
    let mut rows = BTreeMap::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        let row: Row<'static> = serde_json::from_slice(value.value()).with_context(|| format!("decoding row {}", key.value()))?;
        rows.insert(key.value().to_string(), row);
    }
    let meta = txn.open_table(META)?;
    let ids = match meta.get("ids")? {
        Some(v) => serde_json::from_slice(v.value()).context("decoding the resource numbers")?,
        None => Ids::default(),
    };
    Ok((Stored { doc: unflatten(rows), ids }, at))
}

fn commit(db: &Database, at: Revision, old: &Stored, new: &Stored) -> anyhow::Result<Revision> {
    let (changed, gone) = differences(&old.doc, &new.doc);
    let changed: Vec<(&str, &Row<'_>)> = changed.iter().map(|(id, row)| (*id, row)).collect();
    let t = std::time::Instant::now();
    let encoded = encode_rows(&changed)?;
    let txn = begin_at(db, at)?;
    {
        let mut table = txn.open_table(RESOURCES)?;
        for ((id, _), bytes) in changed.iter().zip(&encoded) {
            table.insert(*id, bytes.as_slice())?;
        }
        for id in &gone {
            table.remove(id)?;
        }
        let mut meta = txn.open_table(META)?;
        if old.ids != new.ids {
            meta.insert("ids", serde_json::to_vec(&new.ids)?.as_slice())?;
        }
        meta.insert(REVISION, (at + 1).to_string().as_bytes())?;
    }
    txn.commit().context("committing the state database")?;
    log::debug!("store: {} rows written, {} removed in {:?}", changed.len(), gone.len(), t.elapsed());
    Ok(at + 1)
}

/// A write transaction, if the database is still at revision `at`.
fn begin_at(db: &Database, at: Revision) -> anyhow::Result<redb::WriteTransaction> {
    let txn = db.begin_write()?;
    let now = {
        let meta = txn.open_table(META)?;
        let value = meta.get(REVISION)?.map(|v| String::from_utf8_lossy(v.value()).into_owned());
        value.map(|v| v.parse::<Revision>()).transpose().context("decoding the revision")?.unwrap_or(0)
    };
    if now != at {
        return Err(Conflict { at, now }.into());
    }
    Ok(txn)
}

/// The rows a change names, written as `commit` would write them (same row encoding).
fn commit_rows(db: &Database, at: Revision, rows: &[super::RowChange<'_>]) -> anyhow::Result<Revision> {
    use super::RowChange;
    let txn = begin_at(db, at)?;
    {
        let mut table = txn.open_table(RESOURCES)?;
        for change in rows {
            match *change {
                RowChange::Remove(id) => {
                    table.remove(id)?;
                }
                RowChange::Ids(ids) => txn.open_table(META)?.insert("ids", serde_json::to_vec(ids)?.as_slice()).map(drop)?,
                _ => {
                    if let Some((id, row)) = written(change) {
                        table.insert(id, serde_json::to_vec(&row)?.as_slice())?;
                    }
                }
            }
        }
        let mut meta = txn.open_table(META)?;
        meta.insert(REVISION, (at + 1).to_string().as_bytes())?;
    }
    txn.commit().context("committing the state database")?;
    Ok(at + 1)
}

/// A nonzero random number.
pub(super) fn random_id() -> u64 {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).is_err() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes = (now.as_nanos() as u64 ^ u64::from(std::process::id()) << 32).to_ne_bytes();
    }
    u64::from_ne_bytes(bytes).max(1)
}

/// Only the owner reads the state (it describes the whole network).
fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

thread_local! {
    /// Set while this thread runs a store operation: its panics are the store's to report.
    static IN_STORE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f`, turning a panic inside it (redb's, on a damaged file) into an error naming `path`.
/// The panic's message goes into the error, not onto stderr.
fn guarded<T>(path: &Path, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_STORE.with(|s| s.get()) {
                previous(info);
            }
        }));
    });
    IN_STORE.with(|s| s.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_STORE.with(|s| s.set(false));
    match result {
        Ok(result) => result,
        Err(panic) => {
            let what =
                panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
            anyhow::bail!("the state database {} is damaged ({what})", path.display())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Topology,
        normalize::normalize,
        spec::{RouteSpec, TopologySpec},
    };
    use crate::store::rows::flatten;

    #[test]
    fn documents_round_trip_and_commits_write_only_differences() {
        let dir = std::env::temp_dir().join(format!("vpc-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vpc.redb");
        let _ = std::fs::remove_file(&path);
        let mut store = RedbStore::open(&path).unwrap();
        assert_eq!(store.load().unwrap(), (Stored::default(), 0));

        let yaml = "
vpcs:
  - name: prod
    cidr: 10.0.0.0/16
    vswitches: [{name: web, cidr: 10.0.1.0/24, zone: a}, {name: db, cidr: 10.0.2.0/24, zone: b, route_table: edge}]
    route_tables:
      - name: edge
        routes: [{dst: 0.0.0.0/0, next_hop: {type: eni, eni: w1}}, {dst: 10.9.0.0/16, next_hop: {type: blackhole}}]
    enis: [{name: w1, vswitch: web}, {name: d1, vswitch: db}]
    gateways: [{name: idc, networks: [172.16.0.0/12]}]
  - name: dev
    cidr: 10.0.0.0/16
  - name: third
    cidr: 10.9.0.0/16
cens: [{name: cen1, vpcs: [prod, third]}]
";
        let doc = normalize(&TopologySpec::default(), TopologySpec::from_yaml(yaml).unwrap());
        let topology = Topology::from_spec(&doc, &Default::default()).unwrap();
        let mut ids = Ids::default();
        ids.assign(&topology, 64).unwrap();
        let first = Stored { doc, ids };
        assert_eq!(store.commit(0, &Stored::default(), &first).unwrap(), 1);
        let id = store.id();
        drop(store);
        let mut store = RedbStore::open(&path).unwrap();
        assert_eq!(store.id(), id, "the store keeps its id");
        assert_eq!(store.load().unwrap(), (first.clone(), 1), "what was committed comes back, in order");

        assert_eq!(store.load().unwrap().0.doc.cens.len(), 1, "top-level resources are stored too");
        let mut second = first.clone();
        second.doc.vpcs[0].route_tables[1].routes.remove(0);
        second.doc.vpcs.remove(1);
        // A commit at a revision the store has moved past changes nothing.
        let err = store.commit(0, &first, &second).unwrap_err();
        assert_eq!(err.downcast_ref::<Conflict>(), Some(&Conflict { at: 0, now: 1 }));
        assert_eq!(store.load().unwrap(), (first.clone(), 1));
        assert!(store.changed_since(1).unwrap().is_none(), "nothing new since the revision loaded");
        assert_eq!(store.commit(1, &first, &second).unwrap(), 2);
        assert_eq!(store.load().unwrap(), (second.clone(), 2));
        assert_eq!(store.changed_since(1).unwrap(), Some((second.clone(), 2)), "a follower at 1 gets the state at 2");
        // One route entry, and the dev VPC with its system route table and its default
        // security group's row and three rule rows.
        assert_eq!(flatten(&second.doc).len(), flatten(&first.doc).len() - 7);

        // Rows named by a change: the same state as a commit of the whole documents.
        let mut third = second.clone();
        let table = &mut third.doc.vpcs[0].route_tables[1];
        let added = RouteSpec {
            id: Some("rte-added".into()),
            dst: "10.7.0.0/16".into(),
            next_hop: crate::model::spec::NextHopSpec::Blackhole,
            name: None,
            description: None,
        };
        table.routes.push(added.clone());
        let (table_id, pos) = (table.id.clone().unwrap(), table.routes.len() - 1);
        let put = [super::super::RowChange::PutRoute { table: &table_id, pos, route: &added }];
        let err = store.commit_rows(1, &put).unwrap_err();
        assert_eq!(err.downcast_ref::<Conflict>(), Some(&Conflict { at: 1, now: 2 }), "the revision is checked");
        assert_eq!(store.commit_rows(2, &put).unwrap(), 3);
        assert_eq!(store.load().unwrap(), (third.clone(), 3));
        let removed = third.doc.vpcs[0].route_tables[1].routes.remove(0);
        assert_eq!(store.commit_rows(3, &[super::super::RowChange::Remove(removed.id.as_deref().unwrap())]).unwrap(), 4);
        assert_eq!(store.load().unwrap(), (third.clone(), 4));
        // A security-group rule moved up and the numbers changed with it.
        let group = &mut third.doc.vpcs[0].security_groups[0];
        let moved = group.rules.remove(0);
        let (group_id, rule) = (group.id.clone().unwrap(), group.rules[0].clone());
        third.ids.sg_rules.remove(moved.id.as_deref().unwrap());
        let rows = [
            super::super::RowChange::Remove(moved.id.as_deref().unwrap()),
            super::super::RowChange::PutSgRule { group: &group_id, pos: 0, rule: &rule },
            super::super::RowChange::Ids(&third.ids),
        ];
        assert_eq!(store.commit_rows(4, &rows).unwrap(), 5);
        assert_eq!(store.load().unwrap(), (third, 5));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
