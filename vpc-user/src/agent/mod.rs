//! The agent: the one writer of the kernel maps and of the state database. Every change -- an
//! API call or a whole file -- is one transaction: edit a copy of the stored document,
//! normalize and validate it, compile it, make the data path match, commit the store. If the
//! data path or the store fails, the previous configuration is put back in the kernel, so
//! either both change or neither does.

pub mod backup;
pub mod cluster;
pub mod error;
pub mod health;
pub mod incremental;
pub mod state;
mod stats;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use anyhow::Context as _;
use serde::Serialize;

pub use error::ChangeError;
pub use stats::{ConntrackStats, DropStats, EniStats, EventStats, Stats};

use crate::{
    compile::{self, MapEntries},
    dataplane::{self, ApplyReport, Dataplane, Limits, Loaded},
    model::{
        Topology,
        binding::Binding,
        diff::{Change, diff},
        normalize::normalize,
        spec::TopologySpec,
        topology::Quotas,
    },
    naming::Naming,
    store::{RedbStore, Revision, Store, Stored},
};

/// Everything host-wide the agent touches, settable so several instances can run side by side.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Pin root on a BPF filesystem.
    pub bpffs: PathBuf,
    pub state_dir: PathBuf,
    /// The API socket; `<state_dir>/vpc.sock` when unset.
    pub socket: Option<PathBuf>,
    /// The only directory flow logs write files in; `<state_dir>/flowlogs` when unset.
    pub flow_log_dir: Option<PathBuf>,
    pub naming: Naming,
    pub limits: Limits,
    pub quotas: Quotas,
    /// What to do with a live data path this state directory does not know.
    pub takeover: Takeover,
    /// Rebuild the state database from its last good backup before starting.
    pub restore: bool,
    /// Make `quotas` the state directory's recorded quotas (`state::recorded_quotas`): set for
    /// the daemon and offline changes given --quota.
    pub record_quotas: bool,
    /// This host's place in a cluster (none: a single host).
    pub cluster: Option<cluster::ClusterOptions>,
    /// The cluster's shared store (none: this host's own database).
    pub etcd: Option<EtcdOptions>,
}

/// `--etcd URL,... [--cluster NAME] [--etcd-max-ops N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    pub endpoints: Vec<String>,
    /// Whose keys (`/vpc/<cluster>/v1/`): several clusters share one etcd.
    pub cluster: String,
    /// Operations one transaction may hold (the server's `--max-txn-ops`).
    pub max_ops: usize,
}

/// A live data path under the pin root that another state database wrote (or that no state
/// database claims while this one is empty): a mistyped `--state-dir` or a deleted database
/// would otherwise reconcile it with "nothing" and stop every ENI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Takeover {
    /// Refuse to start, saying what was found and what to do.
    #[default]
    Refuse,
    /// Keep forwarding on it as it is; the next change is written over it.
    Adopt,
    /// Remove it first (forwarding stops until something is applied).
    Reset,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            bpffs: PathBuf::from("/sys/fs/bpf/vpc"),
            state_dir: PathBuf::from("/var/lib/vpc"),
            socket: None,
            flow_log_dir: None,
            naming: Naming::default(),
            limits: Limits::default(),
            quotas: Quotas::default(),
            takeover: Takeover::default(),
            restore: false,
            record_quotas: false,
            cluster: None,
            etcd: None,
        }
    }
}

impl HostOptions {
    pub fn socket(&self) -> PathBuf {
        self.socket.clone().unwrap_or_else(|| self.state_dir.join("vpc.sock"))
    }

    pub fn flow_log_dir(&self) -> PathBuf {
        self.flow_log_dir.clone().unwrap_or_else(|| self.state_dir.join("flowlogs"))
    }

    /// The `vpc` arguments that point a command (or an agent started) at these paths and names.
    pub fn paths_args(&self) -> Vec<String> {
        let (bpffs, state_dir) = (self.bpffs.display().to_string(), self.state_dir.display().to_string());
        vec!["--bpffs".into(), bpffs, "--state-dir".into(), state_dir, "--prefix".into(), self.naming.prefix.clone()]
    }
}

/// What a transaction changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    pub changes: Vec<Change>,
    pub report: ApplyReport,
}

pub struct Agent {
    pub opts: HostOptions,
    _lock: state::StateLock,
    store: Box<dyn Store>,
    /// The store's revision `stored` is at: the next commit is made from it.
    revision: Revision,
    stored: Stored,
    topology: Topology,
    binding: Binding,
    /// The entries the kernel maps hold (as last written by this agent).
    entries: MapEntries,
    /// The program instance, loaded on first need.
    loaded: Option<Loaded>,
    /// Hops the health checks found down: (route entry ID, hop index).
    down: std::collections::BTreeSet<(String, usize)>,
    /// Bumped whenever the topology changes, so watchers (health checks) rescan only then.
    generation: u64,
    /// Started with `Takeover::Adopt` over a data path it did not write: not reconciled.
    adopted: bool,
    /// The document was validated under `opts.quotas` (not only the unlimited ones it is
    /// opened with): a change that validates only what it touches may rely on the rest.
    quotas_checked: bool,
    /// The state changed since the backup was written (`flush_backup` writes it).
    backup_due: bool,
    /// Where connections this agent's sweeps end go (the daemon's monitoring stream).
    pub ended: Option<std::sync::mpsc::Sender<crate::monitor::EndedBatch>>,
    /// The hosts alive in a shared store, as last read (none: no shared store, or not read yet).
    registered: Option<BTreeMap<String, std::net::Ipv4Addr>>,
    /// `down` removed the data path: it is loaded again only for entries that forward something.
    taken_down: bool,
    /// Every host seen, with its number here and last address (`ClusterOptions::view`): kept
    /// for the agent's life so that numbers never change under a running data path.
    host_numbers: std::cell::RefCell<BTreeMap<String, (u32, std::net::Ipv4Addr)>>,
    /// Commits of other writers followed: (on the incremental path, whole).
    follows: (u64, u64),
}

impl Agent {
    /// Take the state lock and read the stored state. The data path is not touched until a
    /// transaction or `reconcile`.
    pub fn open(opts: HostOptions) -> anyhow::Result<Agent> {
        let lock = state::StateLock::take(&opts.state_dir)?;
        if opts.record_quotas {
            state::record_quotas(&opts.state_dir, &opts.quotas)?;
        }
        let opened: anyhow::Result<(Box<dyn Store>, (Stored, Revision))> = if let Some(etcd) = &opts.etcd {
            crate::store::EtcdStore::connect(&etcd.endpoints, &etcd.cluster, etcd.max_ops)
                .and_then(|mut store| store.load().map(|loaded| (Box::new(store) as Box<dyn Store>, loaded)))
        } else if opts.restore {
            restore(&lock).map(|(store, loaded)| (Box::new(store) as Box<dyn Store>, loaded))
        } else {
            RedbStore::open(&lock.database()).and_then(|mut store| store.load().map(|loaded| (Box::new(store) as Box<dyn Store>, loaded))).map_err(|e| {
                anyhow::anyhow!(
                    "{e:#}. The state as of the last change (a single route entry's within a second) is in {}: start the agent with --restore to rebuild the database \
                     from it (the damaged file is kept beside it)",
                    lock.backup().display()
                )
            })
        };
        let (store, (stored, revision)) = opened?;
        let dataplane = Dataplane::new(&opts.bpffs, opts.limits);
        let adopted = claim(&dataplane, store.as_ref(), &stored, &opts)?;
        // A copy of the state for a database damaged later, if there is none yet (a database
        // from before backups); every commit writes it after that. Never at every open: a new
        // or reset database must not write its nothing over a good copy. Best effort: a full
        // disk must not stop the agent.
        if !lock.backup().exists()
            && let Err(e) = backup::write(&lock.backup(), store.id(), &stored)
        {
            log::warn!("backing up the state: {e:#}");
        }
        // The stored document was valid when committed; quotas may have shrunk since, which must
        // not make the agent unable to start (only its incremental path waits for a document
        // valid under them).
        let (topology, quotas_checked) = match Topology::from_spec(&stored.doc, &opts.quotas) {
            Ok(topology) => (topology, true),
            Err(_) => (
                Topology::from_spec(&stored.doc, &Quotas::unlimited())
                    .map_err(|e| anyhow::anyhow!("the stored configuration does not validate: {e}"))?,
                false,
            ),
        };
        let binding = Binding { ids: stored.ids.clone(), ..Default::default() };
        let mut agent = Agent {
            opts,
            _lock: lock,
            store,
            stored,
            revision,
            topology,
            binding,
            entries: MapEntries::default(),
            loaded: None,
            down: Default::default(),
            generation: 0,
            adopted,
            quotas_checked,
            backup_due: false,
            ended: None,
            registered: None,
            taken_down: false,
            host_numbers: Default::default(),
            follows: (0, 0),
        };
        agent.binding = agent.bind(&agent.topology, agent.stored.ids.clone());
        // What the kernel holds if it is in step with the store: the state to restore to.
        agent.entries = compile::compile(&agent.topology, &agent.binding);
        if agent.entries.sg.sets.keys().any(|set| !agent.entries.sg.places.contains_key(set)) {
            // A state stored before security groups had places: place them now.
            compile::sg::place_sets(&mut agent.entries, &Default::default(), &mut agent.binding.ids, agent.opts.limits.sg_capacity())
                .map_err(anyhow::Error::msg)?;
        }
        Ok(agent)
    }

    /// Say in the state directory that this agent runs as the daemon answering on `socket`,
    /// so a command given another socket is told where it is (`StateLock::take`).
    pub fn announce(&self, socket: &std::path::Path) -> anyhow::Result<()> {
        self._lock.record_agent(socket)
    }

    pub fn unannounce(&self) {
        self._lock.forget_agent();
    }

    /// Open an agent, run `f`, release the lock.
    pub fn with<T>(opts: HostOptions, f: impl FnOnce(&mut Agent) -> anyhow::Result<T>) -> anyhow::Result<T> {
        f(&mut Agent::open(opts)?)
    }

    pub fn dataplane(&self) -> Dataplane {
        Dataplane::new(&self.opts.bpffs, self.opts.limits)
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Changes whenever `topology()` does.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn stored(&self) -> &Stored {
        &self.stored
    }

    /// What wakes a follower of the store when someone else commits (see `Store::changes`).
    pub fn store_changes(&mut self) -> Option<std::sync::Arc<crate::store::Changes>> {
        self.store.changes()
    }

    /// The newest revision the store's watch has seen (none: not watched).
    pub fn watched_revision(&self) -> Option<Revision> {
        self.store.watched()
    }

    /// The store's revision this agent's state (and data path) is at.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// The entries the kernel maps hold, as this agent last wrote them (it is the only writer).
    pub fn entries(&self) -> &MapEntries {
        &self.entries
    }

    /// The host interface of every ENI and gateway that has one now, and the hops found down.
    pub fn bind(&self, topology: &Topology, ids: crate::model::ids::Ids) -> Binding {
        let ifindex = interfaces_here(&self.opts.naming, topology);
        let down = self.down.iter().filter(|(route, _)| ids.groups.contains_key(route)).cloned().collect();
        let cluster =
            self.opts.cluster.as_ref().map(|c| c.view(self.registered.as_ref(), &mut self.host_numbers.borrow_mut())).unwrap_or_default();
        Binding { ids, ifindex, down, cluster }
    }

    /// Record the health of a hop (the daemon's checks); the data path follows at once.
    pub fn set_hop_down(&mut self, route: &str, hop: usize, down: bool) -> anyhow::Result<()> {
        let key = (route.to_string(), hop);
        let changed = if down { self.down.insert(key) } else { self.down.remove(&key) };
        if changed {
            let binding = self.bind(&self.topology, self.stored.ids.clone());
            let entries = compile::compile(&self.topology, &binding);
            self.write_dataplane(&entries)?;
            self.binding = binding;
            self.entries = entries;
        }
        Ok(())
    }

    /// In a cluster on a shared store: renew this host's registration and read who else is
    /// alive; when that changed, the data path follows (a host gone is down for this one).
    /// `false`: nothing changed. With the store unreachable the last view stays.
    pub fn heartbeat(&mut self) -> anyhow::Result<bool> {
        let Some(cluster) = &self.opts.cluster else { return Ok(false) };
        if !self.store.shared() {
            return Ok(false);
        }
        if let Ok(ip) = dataplane::iface::ipv4(&cluster.underlay) {
            self.store.register(&cluster.me, ip)?;
        }
        let hosts = self.store.hosts()?;
        if self.registered.as_ref() == Some(&hosts) {
            return Ok(false);
        }
        log::info!("hosts alive: {}", hosts.iter().map(|(name, ip)| format!("{name} ({ip})")).collect::<Vec<_>>().join(", "));
        self.registered = Some(hosts);
        self.rebind()
    }

    /// Take what others committed to a shared store since this agent's revision (another host's
    /// agent, another client): it becomes this agent's state, numbers included, and the data
    /// path follows. `false`: nothing new (always so on one host's own database).
    pub fn follow(&mut self) -> anyhow::Result<bool> {
        let clock = std::time::Instant::now();
        let lap = |what: &str| log::debug!("following: {what} after {:?}", clock.elapsed());
        let Some((stored, revision)) = self.store.changed_since(self.revision)? else { return Ok(false) };
        lap("loaded");
        if self.follow_incrementally(&stored) {
            log::info!("following {}: revision {} -> {revision} (incremental)", self.store.describe(), self.revision);
            self.revision = revision;
            self.follows.0 += 1;
            lap("data path written (incremental)");
            return Ok(true);
        }
        self.follows.1 += 1;
        let topology = Topology::from_spec(&stored.doc, &Quotas::unlimited())
            .map_err(|e| anyhow::anyhow!("the configuration in {} does not validate: {e}", self.store.describe()))?;
        lap("validated");
        log::info!("following {}: revision {} -> {revision}", self.store.describe(), self.revision);
        let released: BTreeSet<u32> =
            self.stored.ids.ports.iter().filter(|(id, port)| stored.ids.ports.get(*id) != Some(*port)).map(|(_, port)| *port).collect();
        let before = self.revision;
        self.stored = stored;
        self.revision = revision;
        self.topology = topology;
        self.quotas_checked = false;
        self.generation += 1;
        if let Err(e) = self.reconcile() {
            // Taken again at the next look, until the data path holds it.
            self.revision = before;
            return Err(e);
        }
        lap("data path written");
        if !released.is_empty() {
            self.sweep_conntrack(&released)?;
        }
        Ok(true)
    }

    /// Another writer's commit on the incremental path: when the rows it wrote make one edit
    /// that path decides (a route entry or rules added or removed), its patch is written and the
    /// state edited in place, and the result must be the stored state. `false`: the full path's
    /// to do (it then replaces whatever this did).
    fn follow_incrementally(&mut self, stored: &Stored) -> bool {
        if !self.writes_incrementally() {
            return false;
        }
        let Some(edit) = self.store.delta().and_then(|delta| incremental::edit_of(&self.stored.doc, delta)) else { return false };
        let state = self.incremental_state();
        // The writer checked its quotas; a follower takes what was committed.
        let Ok(Ok(planned)) = incremental::plan(&state, &Quotas::unlimited(), edit) else { return false };
        if planned.ids().unwrap_or(&self.stored.ids) != &stored.ids {
            return false;
        }
        let loaded = self.loaded.as_mut().expect("checked by writes_incrementally");
        if let Err(e) = loaded.apply_patch(planned.patch()) {
            log::warn!("following on the incremental path: {e:#} (the whole state is written instead)");
            return false;
        }
        planned.apply_to(&mut self.stored.doc, &mut self.topology, &mut self.stored.ids, &mut self.entries);
        if self.stored.doc != stored.doc {
            log::warn!("following on the incremental path gave another document than the store holds: the whole state is written instead");
            return false;
        }
        self.binding.ids = self.stored.ids.clone();
        self.generation += 1;
        self.backup_due = true;
        true
    }

    /// Commits of other writers followed: (on the incremental path, whole).
    pub fn follows(&self) -> (u64, u64) {
        self.follows
    }

    /// Make the kernel match the stored state (at start, after a restart or an upgrade): maps
    /// are updated in place, never flushed; the program is swapped atomically under each link.
    pub fn reconcile(&mut self) -> anyhow::Result<ApplyReport> {
        self.binding = self.bind(&self.topology, self.stored.ids.clone());
        let entries = compile::compile(&self.topology, &self.binding);
        let report = self.write_dataplane(&entries)?;
        self.entries = entries;
        Ok(report)
    }

    /// Re-resolve ENI interfaces; when one appeared or went away, update the data path.
    pub fn rebind(&mut self) -> anyhow::Result<bool> {
        let binding = self.bind(&self.topology, self.stored.ids.clone());
        if binding == self.binding {
            return Ok(false);
        }
        let entries = compile::compile(&self.topology, &binding);
        self.write_dataplane(&entries)?;
        self.binding = binding;
        self.entries = entries;
        Ok(true)
    }

    fn write_dataplane(&mut self, entries: &MapEntries) -> anyhow::Result<ApplyReport> {
        if self.loaded.is_none() {
            // Taken down, it stays down (no pins, no programs) until there is something to
            // forward again: a host's interfaces or another host's commit must not bring back
            // what `down` removed.
            if self.taken_down && entries.enis.is_empty() && entries.routes.is_empty() && entries.addrs.is_empty() {
                return Ok(ApplyReport::default());
            }
            self.loaded = Some(self.dataplane().load()?);
            self.taken_down = false;
        }
        let dataplane = self.dataplane();
        let report = self.loaded.as_mut().expect("loaded above").apply(&dataplane.pins, entries)?;
        // The data path is this database's now.
        dataplane.set_owner(self.store.id())?;
        self.adopted = false;
        Ok(report)
    }

    /// Started over a data path it did not write, and told to keep it as it is: the daemon
    /// skips its reconcile.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// Run `edit` on a copy of the stored document and make the result the new state: the
    /// transaction every API call and every file apply goes through.
    pub fn transact<T, E: From<ChangeError>>(
        &mut self,
        dry_run: bool,
        edit: impl FnOnce(&mut TopologySpec, &Topology) -> Result<T, E>,
    ) -> Result<(T, Applied), E> {
        self.catch_up().map_err(E::from)?;
        let mut doc = self.stored.doc.clone();
        let out = edit(&mut doc, &self.topology)?;
        self.commit_document(doc, dry_run).map(|applied| (out, applied)).map_err(E::from)
    }

    /// Make `doc` (edited from the stored document, or a whole new one) the new state.
    fn commit_document(&mut self, doc: TopologySpec, dry_run: bool) -> Result<Applied, ChangeError> {
        let clock = std::time::Instant::now();
        let lap = |what: &str| log::debug!("transaction: {what} after {:?}", clock.elapsed());
        let doc = normalize(&self.stored.doc, doc);
        lap("normalized");
        let topology = Topology::from_spec(&doc, &self.opts.quotas)?;
        crate::flowlog::check_confined(&topology, &self.opts.flow_log_dir())?;
        Topology::check_transition(&self.topology, &topology)?;
        lap("validated");
        let mut ids = self.stored.ids.clone();
        ids.assign(&topology, self.opts.limits[vpc_common::maps::Size::Enis])
            .map_err(|m| ChangeError::rule(crate::model::error::code::QUOTA_ENI, "enis", m))?;
        let changes = diff(&self.topology, &topology);
        lap("diffed");
        if dry_run {
            return Ok(Applied { changes, report: ApplyReport::default() });
        }
        let mut binding = self.bind(&topology, ids.clone());
        let mut entries = compile::compile(&topology, &binding);
        // A table changing in more than one entry is written as a new generation under a fresh
        // number, and each ENI flips to it in one atomic update: no packet sees it half written.
        let flips = widely_changed_tables(&self.entries, &entries);
        if !flips.is_empty() {
            let avoid: BTreeSet<u32> = self.entries.routes.keys().chain(entries.routes.keys()).map(|k| k.key.table).collect();
            let mut renumbered = BTreeMap::new();
            for number in flips {
                let id = binding.ids.route_tables.iter().find(|(_, n)| **n == number).map(|(id, _)| id.clone());
                if let Some(id) = id {
                    renumbered.insert(number, binding.ids.renumber_table(&id, &avoid));
                }
            }
            entries = entries.renumber_tables(&renumbered);
        }
        // Changed security-group sets go to free space beside the old ones (switched per set).
        compile::sg::place_sets(&mut entries, &self.entries.sg.sets, &mut binding.ids, self.opts.limits.sg_capacity())
            .map_err(|m| ChangeError::rule(crate::model::error::code::QUOTA_SG_RULE, "security_groups", m))?;
        let ids = binding.ids.clone();
        let previous = self.entries.clone();
        lap("compiled");
        let report = match self.write_dataplane(&entries) {
            Ok(report) => report,
            Err(err) => return Err(self.restore(&previous, err.context("updating the data path"))),
        };
        lap("data path written");
        let stored = Stored { doc, ids };
        match self.store.commit(self.revision, &self.stored, &stored) {
            Ok(revision) => self.revision = revision,
            Err(err) => return Err(self.restore(&previous, err.context(format!("committing to {}", self.store.describe())))),
        }
        lap("committed");
        if let Err(e) = backup::write(&self._lock.backup(), self.store.id(), &stored) {
            log::warn!("backing up the state: {e:#}");
        }
        self.backup_due = false;
        self.quotas_checked = true;
        // A port number handed to another ENI (or to none) must not keep its connections.
        let released: BTreeSet<u32> =
            self.stored.ids.ports.iter().filter(|(id, port)| stored.ids.ports.get(*id) != Some(*port)).map(|(_, port)| *port).collect();
        // The released ports' connections end with them, named as they were.
        let names = (!released.is_empty() && self.ended.is_some()).then(|| crate::monitor::Names::of(&self.topology, &self.stored.ids));
        self.stored = stored;
        self.topology = topology;
        self.generation += 1;
        self.binding = binding;
        self.entries = entries;
        if !released.is_empty() {
            match self.sweep_conntrack(&released) {
                Ok(swept) => {
                    if let Some(to) = &self.ended {
                        let _ = to.send(crate::monitor::EndedBatch { ended: swept.ended, names });
                    }
                }
                Err(e) => log::warn!("releasing the connections of ports {released:?}: {e:#}"),
            }
        }
        Ok(Applied { changes, report })
    }

    /// Write the backup if a change since the last one did not (the incremental path leaves it
    /// to this, called each second by the daemon and when the agent closes).
    pub fn flush_backup(&mut self) {
        if !self.backup_due {
            return;
        }
        match backup::write(&self._lock.backup(), self.store.id(), &self.stored) {
            Ok(()) => self.backup_due = false,
            Err(e) => log::warn!("backing up the state: {e:#}"),
        }
    }

    /// Delete expired connection-table entries, and every entry of the ports in `released`.
    pub fn sweep_conntrack(&self, released: &BTreeSet<u32>) -> anyhow::Result<dataplane::conntrack::Swept> {
        let dataplane = self.dataplane();
        if !dataplane.is_up() {
            return Ok(Default::default());
        }
        dataplane::conntrack::sweep(&dataplane.pins, released, dataplane::conntrack::now())
    }

    /// Put `previous` back in the kernel after a failed transaction.
    fn restore(&mut self, previous: &MapEntries, err: anyhow::Error) -> ChangeError {
        match self.write_dataplane(previous) {
            Ok(_) => ChangeError::Failed(err.context("the previous configuration was restored")),
            Err(e) => ChangeError::Failed(err.context(format!("restoring the previous configuration failed too: {e:#}"))),
        }
    }

    /// Make the stored state equal to `spec` (a topology file). With `dry_run`, only report.
    pub fn apply_spec(&mut self, spec: TopologySpec, dry_run: bool) -> Result<Applied, ChangeError> {
        self.catch_up()?;
        self.commit_document(spec, dry_run)
    }

    /// Before a change: on a shared store, what the cluster holds now becomes the state the
    /// change is made from (its IDs matched, its revision the one the commit is guarded on).
    pub(crate) fn catch_up(&mut self) -> Result<(), ChangeError> {
        self.follow().map(drop).map_err(|e| ChangeError::Failed(e.context(format!("reading {}", self.store.describe()))))
    }

    /// Detach everything, remove every pin, forget the state.
    pub fn down(&mut self) -> anyhow::Result<()> {
        // The backup keeps the state from before (as a full commit leaves it).
        self.flush_backup();
        self.loaded = None;
        self.taken_down = true;
        self.dataplane().down()?;
        // On a shared store another host may have committed since (or taken it down already).
        if let Some((stored, revision)) = self.store.changed_since(self.revision)? {
            (self.stored, self.revision) = (stored, revision);
        }
        self.revision = self.store.commit(self.revision, &self.stored, &Stored::default())?;
        self.stored = Stored::default();
        self.topology = Topology { vpcs: Vec::new(), cens: Vec::new(), flow_logs: Vec::new() };
        self.generation += 1;
        self.binding = Binding::default();
        self.entries = MapEntries::default();
        Ok(())
    }
}

impl Drop for Agent {
    /// A change the backup does not have yet goes into it before the lock is released.
    fn drop(&mut self) {
        self.flush_backup();
    }
}

/// The ENIs and gateways whose interfaces are in this namespace: ID -> ifindex.
pub fn interfaces_here(naming: &Naming, topology: &Topology) -> BTreeMap<String, u32> {
    let here = dataplane::ifindexes();
    naming.interfaces(topology).filter_map(|(id, _, ifname)| Some((id.to_string(), *here.get(&ifname)?))).collect()
}

/// Rebuild the state database from its backup, keeping the damaged (or current) file aside.
fn restore(lock: &state::StateLock) -> anyhow::Result<(RedbStore, (Stored, Revision))> {
    let (db, copy) = (lock.database(), lock.backup());
    let (id, stored) = backup::read(&copy)?;
    if db.exists() {
        let aside = backup::damaged(&db);
        std::fs::rename(&db, &aside).with_context(|| format!("moving {} aside", db.display()))?;
        log::warn!("state database moved to {}; rebuilding it from {}", aside.display(), copy.display());
    }
    let mut store = RedbStore::create_with(&db, id, &stored)?;
    let loaded = store.load()?;
    Ok((store, loaded))
}

/// Whether this agent may take the data path under the pin root: it is its own, or nothing
/// live is there, or the options say what to do with someone else's. `Ok(true)`: adopted.
fn claim(dataplane: &Dataplane, store: &dyn Store, stored: &Stored, opts: &HostOptions) -> anyhow::Result<bool> {
    let attached = dataplane.attached();
    let owner = dataplane.owner();
    if owner == Some(store.id()) || attached == 0 {
        return Ok(false);
    }
    match opts.takeover {
        Takeover::Adopt => Ok(true),
        Takeover::Reset => {
            dataplane.down()?;
            Ok(false)
        }
        // An older agent recorded no owner: its store, if it has anything, is taken as the owner.
        Takeover::Refuse if owner.is_none() && !stored.doc.vpcs.is_empty() => Ok(false),
        Takeover::Refuse => anyhow::bail!(
            "{} holds a live data path ({attached} interfaces attached) that state directory {} does not know: {}. \
             If the state directory is mistyped, start again with the right --state-dir. To keep forwarding on it and \
             write over it with the next change, start the agent with --adopt; to remove it, --reset or `vpc down`.",
            dataplane.pins.root.display(),
            opts.state_dir.display(),
            if stored.doc.vpcs.is_empty() {
                format!("{} is new or empty, and the data path was written with another one", store.describe())
            } else {
                format!("the data path was written with another state than {}'s", store.describe())
            }
        ),
    }
}

/// Route tables (by number) that exist in `old` and whose entries differ from `new` in more
/// than one place.
fn widely_changed_tables(old: &MapEntries, new: &MapEntries) -> Vec<u32> {
    let mut changed: BTreeMap<u32, usize> = BTreeMap::new();
    let existing: BTreeSet<u32> = old.routes.keys().map(|k| k.key.table).collect();
    let keys: BTreeSet<&crate::compile::LpmKey> = old.routes.keys().chain(new.routes.keys()).collect();
    for key in keys {
        if old.routes.get(key) != new.routes.get(key) {
            *changed.entry(key.key.table).or_default() += 1;
        }
    }
    changed.into_iter().filter(|(table, n)| existing.contains(table) && *n > 1).map(|(t, _)| t).collect()
}
