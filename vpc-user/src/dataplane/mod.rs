//! The kernel side of the agent: load the XDP object, pin it under the pin root, make the maps
//! equal to the compiled entries and attach the program to every ENI interface.

pub mod attach;
pub mod bpffs;
pub mod conntrack;
pub mod eni_index;
pub mod iface;
pub mod limits;
pub mod loader;
pub mod netlink;
pub mod object;
pub mod sg_sync;
pub mod stats;
pub mod sync;
pub mod sync_order;
pub mod sys;
pub mod veth;
pub mod vlan_gate;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use serde::Serialize;
use vpc_common::maps as names;

pub use bpffs::PinDirs;
pub use limits::Limits;
pub use sync_order::PendingRemoval;

use crate::compile::MapEntries;

/// The data path on this host, rooted at one pin directory.
#[derive(Debug, Clone)]
pub struct Dataplane {
    pub pins: PinDirs,
    pub limits: Limits,
}

/// What an apply changed.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApplyReport {
    pub changes: MapChanges,
    pub links: attach::AttachChanges,
    /// Pinned maps recreated because this build declares them differently.
    pub retired_maps: Vec<&'static str>,
    pub warnings: Vec<String>,
}

impl Dataplane {
    pub fn new(root: impl Into<std::path::PathBuf>, limits: Limits) -> Self {
        Dataplane { pins: PinDirs::new(root), limits }
    }

    /// Make the kernel forward as `entries` say (load a program instance, then `Loaded::apply`).
    pub fn apply(&self, entries: &MapEntries) -> anyhow::Result<ApplyReport> {
        self.load()?.apply(&self.pins, entries)
    }

    /// Load a program instance over the pinned maps (creating them on first use), not attached.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        bpffs::ensure(&self.pins.root)?;
        let retired = loader::retire_incompatible(&self.pins, &self.limits)?;
        let ebpf = loader::load(&self.pins, &self.limits)?;
        Ok(Loaded { ebpf, retired, attached: BTreeSet::new(), underlay: None, known: None })
    }

    /// Detach from every interface and remove every pin. Forwarding stops.
    pub fn down(&self) -> anyhow::Result<()> {
        let root = &self.pins.root;
        if !root.exists() {
            return Ok(());
        }
        for dir in [self.pins.links(), self.pins.gates(), self.pins.maps()] {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries {
                    let path = entry?.path();
                    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                }
                std::fs::remove_dir(&dir).with_context(|| format!("removing {}", dir.display()))?;
            }
        }
        let prog = self.pins.program();
        if prog.exists() {
            std::fs::remove_file(&prog)?;
        }
        // The root itself may be a bpffs mount point we made; leave an empty mount alone.
        if !is_mount_point(root) {
            std::fs::remove_dir(root).with_context(|| format!("removing {}", root.display()))?;
        }
        Ok(())
    }

    /// Whether something is applied under this pin root.
    pub fn is_up(&self) -> bool {
        self.pins.is_up()
    }

    /// Interfaces the data path is attached to (a live data path: traffic depends on it).
    pub fn attached(&self) -> usize {
        attach::pinned_links(&self.pins).map_or(0, |l| l.len())
    }

    /// The id of the state database whose agent last wrote the data path, if one is recorded.
    pub fn owner(&self) -> Option<u64> {
        let map = stats::open(&self.pins, names::CONFIG).ok()?;
        let config: aya::maps::Array<_, u64> = aya::maps::Array::try_from(map).ok()?;
        config.get(&vpc_common::CONFIG_OWNER, 0).ok().filter(|id| *id != 0)
    }

    /// Record that the agent of state database `id` wrote the data path.
    pub fn set_owner(&self, id: u64) -> anyhow::Result<()> {
        let mut config: aya::maps::Array<_, u64> = aya::maps::Array::try_from(stats::open(&self.pins, names::CONFIG)?)?;
        if config.get(&vpc_common::CONFIG_OWNER, 0)? != id {
            config.set(vpc_common::CONFIG_OWNER, id, 0)?;
        }
        Ok(())
    }

    /// What the pinned config maps hold right now (for checks that nothing changed).
    pub fn read_entries(&self) -> anyhow::Result<MapEntries> {
        sync_order::read(&mut sync::Pinned::new(&self.pins))
    }

    pub fn counters(&self, ports: impl IntoIterator<Item = u32>) -> anyhow::Result<stats::Counters> {
        stats::read(&self.pins, ports)
    }
}

/// Per config map, what a sync changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MapChanges {
    pub enis: sync::Changes,
    pub addrs: sync::Changes,
    pub routes: sync::Changes,
    pub ports: sync::Changes,
    pub groups: sync::Changes,
    /// Security-group rule sets.
    pub security_groups: sync::Changes,
    /// Multicast groups and senders.
    pub multicast: sync::Changes,
}

/// A program instance loaded over the pinned maps.
pub struct Loaded {
    pub ebpf: aya::Ebpf,
    /// Pinned maps recreated because this build declares them differently.
    pub retired: Vec<&'static str>,
    /// Interfaces whose link already runs this instance.
    attached: BTreeSet<u32>,
    /// The underlay interface whose link runs this instance's underlay program.
    underlay: Option<u32>,
    /// What the config maps hold, when this instance wrote them last (else they are read).
    known: Option<MapEntries>,
}

impl Loaded {
    /// Make the kernel forward as `entries` say. Writes new and changed entries first, puts this
    /// program under every ENI interface (swapping it atomically under existing links, attaching
    /// new ones), detaches gone interfaces, and only then deletes stale entries. Unchanged
    /// entries are never touched, so flows they carry are not disturbed.
    pub fn apply(&mut self, pins: &PinDirs, entries: &MapEntries) -> anyhow::Result<ApplyReport> {
        let mut report = ApplyReport { retired_maps: std::mem::take(&mut self.retired), ..Default::default() };
        // The gateway MAC goes on interfaces new to this instance or whose MAC changed (one
        // request each: a thousand unchanged ENIs must not cost a follower's every sync).
        let macs: BTreeMap<u32, [u8; 6]> = self.known.iter().flat_map(|k| k.enis.iter().map(|(i, e)| (*i, e.gw_mac))).collect();
        let pending = self.upsert(entries)?;

        let ifindexes: BTreeSet<u32> = entries.enis.keys().copied().collect();
        for (ifindex, eni) in entries.enis.iter().filter(|(i, e)| macs.get(*i) != Some(&e.gw_mac)) {
            iface::ensure_mac(&ifname(*ifindex), eni.gw_mac)?;
        }
        let pinned: BTreeSet<u32> = attach::pinned_links(pins)?.into_iter().collect();
        let todo: BTreeSet<u32> = ifindexes.difference(&self.attached).copied().collect();
        // Veths get the data path behind their VLAN gate: point the gates at this instance.
        let gates = self.point_gates()?;
        if gates.is_none() && todo.iter().any(|i| veth::is_veth(&ifname(*i))) {
            report.warnings.push("this kernel cannot read VLAN tags from packet metadata: veth ENIs run without their VLAN gate".into());
        }
        for &ifindex in &todo {
            match gates {
                Some(kfunc) if veth::is_veth(&ifname(ifindex)) => match self.gate(pins, ifindex, kfunc) {
                    Ok(mut gate) => attach::attach(&mut gate, pins, ifindex, &mut report.links)?,
                    Err(e) => {
                        // The interface still forwards, filtered as every other; only tags in
                        // metadata are not seen.
                        report.warnings.push(format!("{}: its VLAN gate did not load ({e:#}): it runs without", ifname(ifindex)));
                        attach::attach(self.program()?, pins, ifindex, &mut report.links)?;
                    }
                },
                _ => attach::attach(self.program()?, pins, ifindex, &mut report.links)?,
            }
        }
        attach::attach_tc_all(loader::mcast_program(&mut self.ebpf)?, pins, &todo)?;
        // The underlay takes what other hosts send (its own program, verified only here).
        let underlay = entries.overlay.underlay.get(&0).map(|u| u.ifindex);
        let mut new_veths: Vec<u32> = todo.difference(&pinned).copied().filter(|i| veth::is_veth(&ifname(*i))).collect();
        if let Some(ifindex) = underlay
            && self.underlay != Some(ifindex)
        {
            attach::attach(loader::underlay_program(&mut self.ebpf)?, pins, ifindex, &mut report.links)?;
            // Multicast copies from other hosts are cloned to the members by the TC program.
            attach::attach_tc_all(loader::mcast_program(&mut self.ebpf)?, pins, &BTreeSet::from([ifindex]))?;
            if !pinned.contains(&ifindex) && veth::is_veth(&ifname(ifindex)) {
                new_veths.push(ifindex);
            }
        }
        self.underlay = underlay;
        for lost in veth::ensure_delivery(&new_veths)? {
            report.warnings.push(format!(
                "veth {}: its peer is not in this or a named namespace; turn GRO on there or redirected frames are dropped",
                ifname(lost)
            ));
        }
        attach::detach_others(pins, &ifindexes.iter().copied().chain(underlay).collect(), &mut report.links)?;
        self.attached = ifindexes;

        report.changes = self.remove_stale(pending)?;
        self.known = Some(entries.clone());
        loader::pin_program(&mut self.ebpf, &pins.program())?;
        Ok(report)
    }

    /// Whether this instance wrote the config maps last and knows what they hold, so a change
    /// of a few entries can be written alone (`apply_patch`).
    pub fn knows_entries(&self) -> bool {
        self.known.is_some()
    }

    /// Write a few entries computed against what this instance wrote last (the incremental
    /// change path): no interface changes, nothing else compared. After a failure the maps are
    /// read again by the next sync.
    pub fn apply_patch(&mut self, patch: &crate::compile::Patch) -> anyhow::Result<ApplyReport> {
        let known = self.known.as_mut().ok_or_else(|| anyhow::anyhow!("the config maps are not known: a full sync is needed"))?;
        let result = sync_order::patch(&mut self.ebpf, known, patch);
        if result.is_err() {
            self.known = None;
        }
        Ok(ApplyReport { changes: result?, ..Default::default() })
    }

    pub fn program(&mut self) -> anyhow::Result<&mut aya::programs::Xdp> {
        loader::program(&mut self.ebpf)
    }

    /// Make this instance the program every VLAN gate tail-calls (one atomic update for all of
    /// them). `None` when the kernel has no metadata VLAN kfunc (gates cannot be loaded).
    fn point_gates(&mut self) -> anyhow::Result<Option<u32>> {
        let Ok(kfunc) = vlan_gate::kfunc_id() else { return Ok(None) };
        let fd = self.program()?.fd()?.try_clone()?;
        let mut progs = aya::maps::ProgramArray::try_from(sync::MapSource::map(&mut self.ebpf, names::PROGS)?)?;
        progs.set(0, &fd, 0)?;
        Ok(Some(kfunc))
    }

    /// A fresh VLAN gate bound to `ifindex`, loaded over this instance's `PROGS` and
    /// `DROP_STATS`.
    fn gate(&mut self, pins: &PinDirs, ifindex: u32, kfunc: u32) -> anyhow::Result<aya::programs::Xdp> {
        use std::os::fd::AsFd as _;
        std::fs::create_dir_all(pins.gates())?;
        let path = pins.gate(ifindex);
        let progs = aya::maps::MapData::from_pin(pins.map(names::PROGS))?;
        let drops = aya::maps::MapData::from_pin(pins.map(names::DROP_STATS))?;
        loader::retrying(|| vlan_gate::load(ifindex, kfunc, progs.fd().as_fd(), drops.fd().as_fd(), &path))?;
        Ok(aya::programs::Xdp::from_pin(&path, aya_obj::programs::XdpAttachType::Interface)?)
    }

    /// The program, for BPF_PROG_TEST_RUN (which needs no mutable access).
    pub fn program_ref(&self) -> anyhow::Result<&aya::programs::Xdp> {
        let prog = self.ebpf.program(names::PROG_ENI_INGRESS).ok_or_else(|| anyhow::anyhow!("XDP program missing"))?;
        Ok(prog.try_into()?)
    }

    /// Phase one of a sync: write every new and changed entry (`sync_order`). A port handed to
    /// a new ENI starts with zeroed counters.
    pub fn upsert(&mut self, entries: &MapEntries) -> anyhow::Result<PendingRemoval> {
        let known = self.known.take();
        sync_order::upsert(&mut self.ebpf, entries, known.as_ref())
    }

    /// Phase two: delete what nobody wants any more.
    pub fn remove_stale(&mut self, pending: PendingRemoval) -> anyhow::Result<MapChanges> {
        sync_order::remove_stale(&mut self.ebpf, pending)
    }

    /// Both phases at once (nothing is attached to this instance yet).
    pub fn sync(&mut self, entries: &MapEntries) -> anyhow::Result<MapChanges> {
        let pending = self.upsert(entries)?;
        let changes = self.remove_stale(pending)?;
        self.known = Some(entries.clone());
        Ok(changes)
    }
}

fn is_mount_point(path: &std::path::Path) -> bool {
    let parent = path.parent().unwrap_or(path);
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(path), std::fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

/// Name of `ifindex` in the calling thread's namespace (for messages).
pub fn ifname(ifindex: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buffer of IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("ifindex {ifindex}");
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Every interface of the calling thread's namespace, name -> ifindex, from one request (a
/// lookup by name opens a socket each: a thousand ENIs made that most of a sync).
pub fn ifindexes() -> std::collections::HashMap<String, u32> {
    let mut out = std::collections::HashMap::new();
    // SAFETY: if_nameindex returns an array ended by a zero entry, or null; freed below.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return out;
    }
    let mut at = list;
    // SAFETY: every entry before the zero one holds a NUL-terminated name.
    unsafe {
        while (*at).if_index != 0 && !(*at).if_name.is_null() {
            out.insert(std::ffi::CStr::from_ptr((*at).if_name).to_string_lossy().into_owned(), (*at).if_index);
            at = at.add(1);
        }
        libc::if_freenameindex(list);
    }
    out
}

/// The ifindex of `name` in the calling thread's namespace.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}
