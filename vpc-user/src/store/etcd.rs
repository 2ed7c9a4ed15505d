//! The store of a cluster: etcd v3, every host's agent committing to and following the same
//! prefix (`/vpc/<cluster>/v1`). The document is kept as the same rows as on one host
//! (`rows`), one key each under `P/r/`; the numbers the data path uses under `P/ids`, so every
//! host numbers ports, VPCs and rule counters alike (ports and VPC numbers are on the wire); the
//! revision, commits since the cluster was made, under `P/rev`. A commit is one etcd
//! transaction guarded on `P/rev`: no update is lost between hosts or clients. A change larger
//! than one transaction may hold is written in stages (`staged`), and only its last transaction
//! moves `P/rev`; a load reads the prefix as of `P/rev`'s last write (etcd keeps every revision),
//! so it sees one commit whole, never a change half-written.

use std::{collections::BTreeMap, sync::Arc};

use anyhow::Context as _;
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn, TxnOp};

use super::{
    Changes, Conflict, Delta, Revision, Store, Stored,
    rows::{Body, Row, differences, encode_rows, unflatten, written},
};
use crate::model::ids::Ids;

/// Operations etcd takes in one transaction by default (`--max-txn-ops`).
pub const MAX_TXN_OPS: usize = 128;

/// How long a host's registration outlives its agent's last renewal.
pub const HOST_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a staged commit's claim (`P/lock`) outlives its writer.
const STAGE_TTL: i64 = 60;
/// Bytes of values one transaction carries at most (etcd refuses requests above 1.5 MiB).
const TXN_BYTES: usize = 1 << 20;

/// What a commit writes: each key's new value, or none to delete it.
type Writes = BTreeMap<String, Option<Vec<u8>>>;

/// This agent's registration: its lease and what it says.
struct Lease {
    id: i64,
    host: String,
    underlay: std::net::Ipv4Addr,
    renewed: std::time::Instant,
}

pub struct EtcdStore {
    endpoints: Vec<String>,
    prefix: String,
    runtime: tokio::runtime::Runtime,
    client: Client,
    id: u64,
    /// Operations one commit may take (the server's `--max-txn-ops`).
    max_ops: usize,
    lease: Option<Lease>,
    /// Fed by a watch of the revision key, on a thread of its own (started on first ask).
    changes: Option<Arc<Changes>>,
    /// The committed state as last read: a follower then reads only the keys changed since.
    read: Option<Read>,
    /// Rows decoded since connecting (what reading only the changes saves).
    decoded: u64,
    /// The rows the last read took, when it read only the changes.
    delta: Option<Delta>,
}

/// The committed state as of one etcd revision, decoded.
struct Read {
    /// The etcd revision the keys are as of.
    etcd: i64,
    revision: Revision,
    rows: BTreeMap<String, Row<'static>>,
    ids: Ids,
}

impl Read {
    fn stored(&self) -> (Stored, Revision) {
        (Stored { doc: unflatten(self.rows.clone()), ids: self.ids.clone() }, self.revision)
    }
}

impl EtcdStore {
    /// Rows decoded since connecting: a follower decodes only the rows a commit wrote.
    pub fn rows_decoded(&self) -> u64 {
        self.decoded
    }

    /// Connect to `endpoints` and use cluster `cluster`'s keys; its id is made on first use.
    pub fn connect(endpoints: &[String], cluster: &str, max_ops: usize) -> anyhow::Result<EtcdStore> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let options = ConnectOptions::new()
            // Short: the agent follows the store every second, holding its lock meanwhile.
            .with_connect_timeout(std::time::Duration::from_secs(1))
            .with_timeout(std::time::Duration::from_secs(2));
        let client = runtime
            .block_on(Client::connect(endpoints, Some(options)))
            .with_context(|| format!("connecting to etcd at {}", endpoints.join(",")))?;
        let prefix = format!("/vpc/{cluster}/v1/");
        let mut store = EtcdStore {
            endpoints: endpoints.to_vec(),
            prefix,
            runtime,
            client,
            id: 0,
            max_ops,
            lease: None,
            changes: None,
            read: None,
            decoded: 0,
            delta: None,
        };
        // (The client connects on first use: this is where an unreachable etcd shows.)
        store.id = store.claim_id().with_context(|| format!("connecting to etcd at {}", endpoints.join(",")))?;
        Ok(store)
    }

    fn key(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    /// The cluster's id: read, or made by whoever comes first (a transaction on its absence).
    fn claim_id(&mut self) -> anyhow::Result<u64> {
        let key = self.key("id");
        let mine = super::redb::random_id().to_string();
        let txn = Txn::new()
            .when([Compare::version(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.as_str(), mine.as_str(), None)])
            .or_else([TxnOp::get(key.as_str(), None)]);
        let response = self.runtime.block_on(self.client.txn(txn)).context("etcd: reading the cluster's id")?;
        if response.succeeded() {
            return Ok(mine.parse()?);
        }
        for op in response.op_responses() {
            if let etcd_client::TxnOpResponse::Get(get) = op
                && let Some(kv) = get.kvs().first()
            {
                return kv.value_str()?.parse().context("etcd: the cluster's id is not a number");
            }
        }
        anyhow::bail!("etcd: the cluster's id vanished while it was read")
    }

    /// The revision the cluster is at.
    fn revision(&mut self) -> anyhow::Result<Revision> {
        Ok(self.committed()?.0)
    }

    /// The revision the cluster is at and the etcd revision of the transaction that committed
    /// it (`P/rev`'s last write; 0: nothing committed yet).
    fn committed(&mut self) -> anyhow::Result<(Revision, i64)> {
        let key = self.key("rev");
        let response = self.runtime.block_on(self.client.get(key.as_str(), None)).context("etcd: reading the revision")?;
        match response.kvs().first() {
            Some(kv) => Ok((kv.value_str()?.parse().context("etcd: the revision is not a number")?, kv.mod_revision())),
            None => Ok((0, 0)),
        }
    }

    /// Every key under the prefix (without it) and its value, as of etcd revision `at` (0: now),
    /// and the revision they are as of.
    fn read_prefix(&mut self, at: i64) -> Result<(BTreeMap<String, Vec<u8>>, i64), etcd_client::Error> {
        self.read_keys("", at, GetOptions::new())
    }

    /// The keys under `P/<under>` (without the prefix) `options` selects as of etcd revision
    /// `at` (0: now), and the revision they are as of.
    fn read_keys(&mut self, under: &str, at: i64, options: GetOptions) -> Result<(BTreeMap<String, Vec<u8>>, i64), etcd_client::Error> {
        let options = options.with_prefix().with_revision(at);
        let response = self.runtime.block_on(self.client.get(self.key(under), Some(options)))?;
        let strip = |k: &str| k.strip_prefix(self.prefix.as_str()).unwrap_or_default().to_string();
        let keys = response.kvs().iter().map(|kv| (strip(kv.key_str().unwrap_or_default()), kv.value().to_vec())).collect();
        let now = response.header().map_or(0, |h| h.revision());
        Ok((keys, if at > 0 { at } else { now }))
    }

    /// The committed state's keys and the etcd revision they are as of: as of the last commit
    /// (`committed`; none before the first), or, when etcd has compacted that revision away, as
    /// they are now -- unless a staged change is under way.
    fn committed_keys(&mut self) -> anyhow::Result<(BTreeMap<String, Vec<u8>>, i64)> {
        let (_, at) = self.committed()?;
        if at == 0 {
            // Nothing committed yet: whatever is there is a first change half-written.
            return Ok((BTreeMap::new(), 0));
        }
        match self.read_prefix(at) {
            Ok(keys) => Ok(keys),
            Err(e) if is_compacted(&e) => {
                let now = self.read_prefix(0).context("etcd: loading the state")?;
                anyhow::ensure!(!now.0.contains_key("staging"), "etcd: a change is being written in stages; try again");
                Ok(now)
            }
            Err(e) => Err(anyhow::Error::from(e).context("etcd: loading the state")),
        }
    }

    /// Decode the row or numbers under `key` into `read` (other keys are not the state's).
    fn decode(&mut self, read: &mut Read, key: &str, value: &[u8]) -> anyhow::Result<()> {
        if let Some(id) = key.strip_prefix("r/") {
            let row: Row<'static> = serde_json::from_slice(value).with_context(|| format!("etcd: decoding row {id}"))?;
            read.rows.insert(id.to_string(), row);
            self.decoded += 1;
        } else if key == "ids" {
            read.ids = serde_json::from_slice(value).context("etcd: decoding the resource numbers")?;
        } else if key == "rev" {
            read.revision = std::str::from_utf8(value)?.parse().context("etcd: the revision is not a number")?;
        }
        Ok(())
    }

    /// `read` brought to the commit at etcd revision `at`: the keys written since it (their
    /// values as of `at`) and the rows gone by then. `Ok(None)`: etcd no longer keeps a revision
    /// this needs (compacted); a whole load tells.
    fn read_changes(&mut self, mut read: Read, at: i64) -> anyhow::Result<Option<Read>> {
        let changed = self.read_keys("", at, GetOptions::new().with_min_mod_revision(read.etcd + 1));
        let present = self.read_keys("r/", at, GetOptions::new().with_keys_only());
        let ((changed, _), (present, _)) = match (changed, present) {
            (Ok(changed), Ok(present)) => (changed, present),
            (Err(e), _) | (_, Err(e)) if is_compacted(&e) => return Ok(None),
            (Err(e), _) | (_, Err(e)) => return Err(anyhow::Error::from(e).context("etcd: reading what changed")),
        };
        let mut delta = Delta::default();
        read.rows.retain(|id, _| {
            let kept = present.contains_key(&format!("r/{id}"));
            if !kept {
                delta.gone.push(id.clone());
            }
            kept
        });
        for (key, value) in &changed {
            self.decode(&mut read, key, value)?;
            let Some(row) = key.strip_prefix("r/").and_then(|id| read.rows.get(id)) else { continue };
            match &row.body {
                Body::Route(route) => delta.routes.push((row.parent.to_string(), row.pos, route.clone().into_owned())),
                Body::SgRule(rule) => delta.sg_rules.push((row.parent.to_string(), row.pos, rule.clone().into_owned())),
                _ => delta.others += 1,
            }
        }
        read.etcd = at;
        self.delta = Some(delta);
        Ok(Some(read))
    }

    /// The guard of a commit made from revision `at`.
    fn at(&self, at: Revision) -> Compare {
        let rev = self.key("rev");
        if at == 0 { Compare::version(rev, CompareOp::Equal, 0) } else { Compare::value(rev, CompareOp::Equal, at.to_string()) }
    }

    /// Write `writes` and step the revision from `at`, if the cluster is still at `at`: in one
    /// transaction when they fit in one and no staged change is under way or was left
    /// half-written, else in stages.
    fn commit_writes(&mut self, at: Revision, writes: Writes) -> anyhow::Result<Revision> {
        let (rev, lock, staging) = (self.key("rev"), self.key("lock"), self.key("staging"));
        let bytes: usize = writes.values().flatten().map(Vec::len).sum();
        if writes.len() < self.max_ops && bytes <= TXN_BYTES {
            let mut ops = ops(&writes);
            ops.push(TxnOp::put(rev.as_str(), (at + 1).to_string(), None));
            let guard = [
                self.at(at),
                Compare::version(lock.as_str(), CompareOp::Equal, 0),
                Compare::version(staging.as_str(), CompareOp::Equal, 0),
            ];
            let response = self.runtime.block_on(self.client.txn(Txn::new().when(guard).and_then(ops))).context("etcd: committing")?;
            if response.succeeded() {
                return Ok(at + 1);
            }
            let now = self.revision()?;
            if now != at {
                return Err(Conflict { at, now }.into());
            }
            // A staged change is under way or was left half-written: the staged path says which.
        }
        self.staged(at, writes)
    }

    /// A change in several transactions. The first claims it (`P/lock`, on a lease: this writer
    /// is alive) and marks the keys as possibly half-written (`P/staging`, on no lease: it
    /// stays if this writer dies); the last one moves `P/rev` and clears both. Readers never see
    /// the keys in between (`committed_keys`). A change another writer left half-written is
    /// undone by the next one, which puts back every key changed since the last commit.
    fn staged(&mut self, at: Revision, mut writes: Writes) -> anyhow::Result<Revision> {
        let (rev, lock, staging) = (self.key("rev"), self.key("lock"), self.key("staging"));
        let me = super::redb::random_id().to_string();
        let left = self.runtime.block_on(self.client.get(staging.as_str(), None)).context("etcd: committing")?.count() > 0;
        let lease = self.runtime.block_on(self.client.lease_grant(STAGE_TTL, None)).context("etcd: committing")?.id();
        let claim = Txn::new().when([self.at(at), Compare::version(lock.as_str(), CompareOp::Equal, 0)]).and_then([
            TxnOp::put(lock.as_str(), me.as_str(), Some(etcd_client::PutOptions::new().with_lease(lease))),
            TxnOp::put(staging.as_str(), me.as_str(), None),
        ]);
        if !self.runtime.block_on(self.client.txn(claim)).context("etcd: committing")?.succeeded() {
            let now = self.revision()?;
            anyhow::ensure!(now == at, Conflict { at, now });
            anyhow::bail!("etcd: another writer is committing a change in stages; try again");
        }
        if left {
            // Put back what a writer that died changed after the last commit (ours written over it).
            let then: BTreeMap<String, Vec<u8>> = self.committed_keys()?.0.into_iter().filter(|(k, _)| is_state(k)).collect();
            let now: BTreeMap<String, Vec<u8>> =
                self.read_prefix(0).context("etcd: committing")?.0.into_iter().filter(|(k, _)| is_state(k)).collect();
            let mut undo = Writes::new();
            for (key, value) in &now {
                if then.get(key) != Some(value) {
                    undo.insert(self.key(key), then.get(key).cloned());
                }
            }
            for (key, value) in then.iter().filter(|(k, _)| !now.contains_key(*k)) {
                undo.insert(self.key(key), Some(value.clone()));
            }
            log::warn!("etcd: undoing {} keys a staged change left half-written", undo.len());
            for (key, write) in undo {
                writes.entry(key).or_insert(write);
            }
        }
        // Room in the last transaction for the revision, the claim and the mark.
        let per_txn = self.max_ops.saturating_sub(3).max(1);
        let mut chunks: Vec<Writes> = vec![Writes::new()];
        let mut bytes = 0;
        for (key, write) in writes {
            let size = write.as_ref().map_or(0, Vec::len) + key.len();
            let last = chunks.last_mut().expect("one at least");
            if !last.is_empty() && (last.len() == per_txn || bytes + size > TXN_BYTES) {
                chunks.push(Writes::new());
                bytes = 0;
            }
            chunks.last_mut().expect("one at least").insert(key, write);
            bytes += size;
        }
        let last = chunks.pop().expect("one at least");
        let mine = || Compare::value(lock.as_str(), CompareOp::Equal, me.as_str());
        for chunk in &chunks {
            let response =
                self.runtime.block_on(self.client.txn(Txn::new().when([mine()]).and_then(ops(chunk)))).context("etcd: committing")?;
            anyhow::ensure!(response.succeeded(), "etcd: this change's claim lapsed half-way (the next change undoes what it wrote)");
        }
        let mut ops = ops(&last);
        ops.extend([
            TxnOp::put(rev.as_str(), (at + 1).to_string(), None),
            TxnOp::delete(lock.as_str(), None),
            TxnOp::delete(staging.as_str(), None),
        ]);
        let response =
            self.runtime.block_on(self.client.txn(Txn::new().when([mine(), self.at(at)]).and_then(ops))).context("etcd: committing")?;
        anyhow::ensure!(
            response.succeeded(),
            "etcd: this change's claim lapsed before its last step (the next change undoes what it wrote)"
        );
        let _ = self.runtime.block_on(self.client.lease_revoke(lease));
        Ok(at + 1)
    }
}

fn is_compacted(e: &etcd_client::Error) -> bool {
    e.to_string().contains("compacted")
}

/// Keys of the configuration (rows and numbers), which a commit writes.
fn is_state(key: &str) -> bool {
    key.starts_with("r/") || key == "ids"
}

fn ops(writes: &Writes) -> Vec<TxnOp> {
    writes
        .iter()
        .map(|(key, write)| match write {
            Some(value) => TxnOp::put(key.as_str(), value.clone(), None),
            None => TxnOp::delete(key.as_str(), None),
        })
        .collect()
}

impl Store for EtcdStore {
    fn id(&self) -> u64 {
        self.id
    }

    fn describe(&self) -> String {
        format!("etcd at {} ({})", self.endpoints.join(","), self.prefix.trim_end_matches('/'))
    }

    fn load(&mut self) -> anyhow::Result<(Stored, Revision)> {
        (self.read, self.delta) = (None, None);
        let (keys, etcd) = self.committed_keys()?;
        let mut read = Read { etcd, revision: 0, rows: BTreeMap::new(), ids: Ids::default() };
        for (key, value) in &keys {
            self.decode(&mut read, key, value)?;
        }
        let loaded = read.stored();
        self.read = Some(read);
        Ok(loaded)
    }

    fn commit(&mut self, at: Revision, old: &Stored, new: &Stored) -> anyhow::Result<Revision> {
        let (changed, gone) = differences(&old.doc, &new.doc);
        let changed: Vec<(&str, &Row<'_>)> = changed.iter().map(|(id, row)| (*id, row)).collect();
        let encoded = encode_rows(&changed)?;
        let mut writes: Writes = changed.iter().zip(encoded).map(|((id, _), bytes)| (self.key(&format!("r/{id}")), Some(bytes))).collect();
        writes.extend(gone.iter().map(|id| (self.key(&format!("r/{id}")), None)));
        if old.ids != new.ids {
            writes.insert(self.key("ids"), Some(serde_json::to_vec(&new.ids)?));
        }
        self.commit_writes(at, writes)
    }

    fn commit_rows(&mut self, at: Revision, rows: &[super::RowChange<'_>]) -> anyhow::Result<Revision> {
        use super::RowChange;
        let mut writes = Writes::new();
        for change in rows {
            match *change {
                RowChange::Remove(id) => _ = writes.insert(self.key(&format!("r/{id}")), None),
                RowChange::Ids(ids) => _ = writes.insert(self.key("ids"), Some(serde_json::to_vec(ids)?)),
                _ => {
                    if let Some((id, row)) = written(change) {
                        writes.insert(self.key(&format!("r/{id}")), Some(serde_json::to_vec(&row)?));
                    }
                }
            }
        }
        self.commit_writes(at, writes)
    }

    /// Another host or client committed when the revision moved past `after`. Only the keys
    /// written since the last read are read and decoded (the rows gone seen in a listing of
    /// keys); the whole prefix only without a last read, or when etcd compacted it away.
    fn changed_since(&mut self, after: Revision) -> anyhow::Result<Option<(Stored, Revision)>> {
        let (revision, at) = self.committed()?;
        if revision == after {
            return Ok(None);
        }
        match self.read.take() {
            // Read already (the caller's copy is older: its own change failed to apply).
            Some(read) if read.etcd == at => {
                self.delta = None;
                let followed = read.stored();
                self.read = Some(read);
                Ok(Some(followed))
            }
            Some(read) if read.etcd > 0 && read.etcd < at => match self.read_changes(read, at)? {
                Some(read) => {
                    let followed = read.stored();
                    self.read = Some(read);
                    Ok(Some(followed))
                }
                None => self.load().map(Some),
            },
            _ => self.load().map(Some),
        }
    }

    fn shared(&self) -> bool {
        true
    }

    fn delta(&self) -> Option<&Delta> {
        self.delta.as_ref()
    }

    /// `P/hosts/<host>` = the underlay address, on a lease of `HOST_TTL` renewed every third of
    /// it: when the agent stops (or loses etcd for longer), the key goes and every other host
    /// sees this one down. A lease that lapsed meanwhile is made again.
    fn register(&mut self, host: &str, underlay: std::net::Ipv4Addr) -> anyhow::Result<()> {
        if let Some(lease) = &self.lease
            && lease.host == host
            && lease.underlay == underlay
        {
            if lease.renewed.elapsed() < HOST_TTL / 3 {
                return Ok(());
            }
            let id = lease.id;
            let alive = self.runtime.block_on(async {
                let (mut keeper, mut answers) = self.client.lease_keep_alive(id).await?;
                keeper.keep_alive().await?;
                Ok::<_, etcd_client::Error>(answers.message().await?.is_some_and(|a| a.ttl() > 0))
            });
            if alive.context("etcd: renewing this host's registration")? {
                self.lease.as_mut().expect("checked above").renewed = std::time::Instant::now();
                return Ok(());
            }
        }
        let key = self.key(&format!("hosts/{host}"));
        let id = self
            .runtime
            .block_on(self.client.lease_grant(HOST_TTL.as_secs() as i64, None))
            .context("etcd: a lease for this host's registration")?
            .id();
        let options = etcd_client::PutOptions::new().with_lease(id);
        self.runtime.block_on(self.client.put(key, underlay.to_string(), Some(options))).context("etcd: registering this host")?;
        self.lease = Some(Lease { id, host: host.to_string(), underlay, renewed: std::time::Instant::now() });
        Ok(())
    }

    fn changes(&mut self) -> Option<Arc<Changes>> {
        if self.changes.is_none() {
            let changes = Arc::new(Changes::default());
            let (endpoints, key, seen) = (self.endpoints.clone(), self.key("rev"), changes.clone());
            std::thread::Builder::new().name("etcd-watch".into()).spawn(move || watch_revision(&endpoints, &key, &seen)).ok()?;
            self.changes = Some(changes);
        }
        self.changes.clone()
    }

    fn watched(&self) -> Option<Revision> {
        self.changes.as_ref().map(|c| c.seen())
    }

    fn hosts(&mut self) -> anyhow::Result<BTreeMap<String, std::net::Ipv4Addr>> {
        let prefix = self.key("hosts/");
        let response = self
            .runtime
            .block_on(self.client.get(prefix.as_str(), Some(GetOptions::new().with_prefix())))
            .context("etcd: reading the hosts")?;
        let mut hosts = BTreeMap::new();
        for kv in response.kvs() {
            let name = kv.key_str()?.strip_prefix(prefix.as_str()).unwrap_or_default().to_string();
            if let Ok(addr) = kv.value_str()?.parse() {
                hosts.insert(name, addr);
            }
        }
        Ok(hosts)
    }
}

/// Watch the revision key and tell `changes` each value it takes; when the watch breaks (etcd
/// gone, the watch cancelled), connect again a second later. Its own client and runtime: the
/// store's are used under the agent's lock, and a watch lives long.
fn watch_revision(endpoints: &[String], key: &str, changes: &Changes) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    let options = || {
        ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(1))
            // A silent partition would leave the stream open forever: probe the connection.
            .with_keep_alive(std::time::Duration::from_secs(2), std::time::Duration::from_secs(2))
    };
    loop {
        let watched: Result<(), etcd_client::Error> = runtime.block_on(async {
            let mut client = Client::connect(endpoints, Some(options())).await?;
            let mut stream = client.watch(key, None).await?;
            // Once the watch is in place (its first answer), the value now: nothing committed
            // before it goes unseen.
            if stream.message().await?.is_none_or(|r| r.canceled()) {
                return Ok(());
            }
            let now = client.get(key, None).await?;
            if let Some(revision) = now.kvs().first().and_then(|kv| kv.value_str().ok()?.parse().ok()) {
                changes.saw(revision);
            }
            while let Some(response) = stream.message().await? {
                for kv in response.events().iter().filter_map(|e| e.kv()) {
                    if let Some(revision) = kv.value_str().ok().and_then(|v| v.parse().ok()) {
                        changes.saw(revision);
                    }
                }
                if response.canceled() {
                    break;
                }
            }
            Ok(())
        });
        if let Err(e) = watched {
            log::debug!("etcd watch of {key}: {e}");
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
