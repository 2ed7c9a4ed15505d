//! The order a sync writes the config maps in, written once: phase one (`upsert`) walks it
//! forwards and phase two (`remove_stale`) backwards, so an entry is written after everything
//! it refers to and deleted before it.

use aya::maps::PerCpuArray;
use vpc_common::{
    AddrKey, EniCounters, maps as names,
    mcast::{McastCounters, McastKey, McastSenderKey},
    sg::RuleCounters,
};

use super::{
    MapChanges, eni_index, sg_sync, stats,
    sync::{self, ConfigMap as _, MapSource, Pending},
};
use crate::compile::{LpmKey, MapEntries, Patch};

/// One step of a sync: a part of `MapEntries` and the maps that hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `SG_SETS`, `SG_NODES`, `SG_WORDS`, `SG_RULES`, `PORT_GROUPS`; then the `SG_RULE_STATS`
    /// of rules no set used before start from zero.
    SecurityGroups,
    /// The `ENI_STATS` of a port handed to a new ENI and the `MCAST_MEMBER_STATS` of a new
    /// (group, member) start from zero.
    NewCounters,
    /// `GROUPS`: ECMP / active-standby hops.
    Groups,
    /// The overlay: `UNDERLAY`, `HOSTS`, `HOST_OF_IP`, `TUNNELS`, `DELIVERY`.
    Overlay,
    /// `TX_PORTS`.
    Ports,
    /// `ENI_ADDRS`.
    Addrs,
    /// `ROUTES`.
    Routes,
    /// `ENIS`.
    Enis,
    /// `ENI_INDEX` and `ENI_SLOTS`, after the `ENIS` entries they mirror (removals before).
    EniIndex,
    /// `MCAST_GROUPS`.
    McastGroups,
    /// `MCAST_SENDERS`.
    McastSenders,
}

/// Each step refers only to what the steps before it wrote.
pub const SYNC_ORDER: [Step; 11] = [
    // Before anything that could make a port live: no port is ever reachable without its groups.
    Step::SecurityGroups,
    // Before any entry that counts into them.
    Step::NewCounters,
    // Groups, ports and addresses first, then the routes that use them, then the senders
    // (ENIs) whose frames take the routes.
    Step::Groups,
    // The hosts and remote ENIs a tunnel port's delivery needs, before any route or address
    // leads to one.
    Step::Overlay,
    Step::Ports,
    Step::Addrs,
    Step::Routes,
    Step::Enis,
    Step::EniIndex,
    // A multicast group's members are ports; senders may only send to groups that exist.
    Step::McastGroups,
    Step::McastSenders,
];

/// Entries to delete once the new state is live (phase two of a sync).
#[derive(Default)]
pub struct PendingRemoval {
    enis: Pending<u32>,
    addrs: Pending<AddrKey>,
    routes: Pending<LpmKey>,
    ports: Pending<u32>,
    groups: Pending<u32>,
    sg: sg_sync::Pending,
    mcast_groups: Pending<McastKey>,
    mcast_senders: Pending<McastSenderKey>,
    overlay: OverlayPending,
    /// Interfaces whose ENI is gone.
    eni_index: Vec<u32>,
}

#[derive(Default)]
struct OverlayPending {
    underlay: Pending<u32>,
    hosts: Pending<u32>,
    host_of_ip: Pending<u32>,
    tunnels: Pending<u32>,
    delivery: Pending<u32>,
}

type Underlays<'a> = sync::Hash<'a, u32, vpc_common::tunnel::Underlay>;
type Hosts<'a> = sync::Hash<'a, u32, vpc_common::tunnel::Host>;
type HostOfIp<'a> = sync::Hash<'a, u32, u32>;
type Tunnels<'a> = sync::Hash<'a, u32, vpc_common::tunnel::Tunnel>;
type Delivery<'a> = sync::Hash<'a, u32, vpc_common::Port>;

/// What the config maps hold (the member counters are the agent's allocation, in no map).
pub fn read(maps: &mut impl MapSource) -> anyhow::Result<MapEntries> {
    let mut out = MapEntries::default();
    for step in SYNC_ORDER {
        step.read(maps, &mut out)?;
    }
    Ok(out)
}

/// Phase one: write every new and changed entry, in `SYNC_ORDER`. `known` is what the maps hold
/// when the caller wrote them last; otherwise they are read first.
pub fn upsert(maps: &mut impl MapSource, want: &MapEntries, known: Option<&MapEntries>) -> anyhow::Result<PendingRemoval> {
    let read_back;
    let current = match known {
        Some(known) => known,
        None => {
            read_back = read(maps)?;
            &read_back
        }
    };
    let mut pending = PendingRemoval::default();
    for step in SYNC_ORDER {
        step.upsert(maps, want, current, known, &mut pending)?;
    }
    // Cached flow decisions are taken again against the new entries.
    sync::bump_epoch(maps.map(names::CONFIG)?)?;
    Ok(pending)
}

/// Phase two: delete what nobody wants any more, in reverse `SYNC_ORDER`.
pub fn remove_stale(maps: &mut impl MapSource, pending: PendingRemoval) -> anyhow::Result<MapChanges> {
    for step in SYNC_ORDER.iter().rev() {
        step.remove(maps, &pending)?;
    }
    let changes = MapChanges {
        enis: pending.enis.changes,
        addrs: pending.addrs.changes,
        routes: pending.routes.changes,
        ports: pending.ports.changes,
        groups: pending.groups.changes,
        security_groups: pending.sg.changes,
        multicast: pending.mcast_groups.changes,
    };
    if changes.enis.removed + changes.addrs.removed + changes.routes.removed + changes.ports.removed + changes.groups.removed > 0 {
        sync::bump_epoch(maps.map(names::CONFIG)?)?;
    }
    Ok(changes)
}

/// A few entries written alone (`Patch`), made against `known` (what the maps hold, kept up to
/// date here): rule sets to their new places and switched to, their new counters zeroed; then
/// new and changed routes, the epoch, deletions and the epoch again -- the order a full sync
/// gives the same change. Nothing else is read or compared.
pub fn patch(maps: &mut impl MapSource, known: &mut MapEntries, patch: &Patch) -> anyhow::Result<MapChanges> {
    let mut out = MapChanges::default();
    if !patch.sg_sets.is_empty() {
        let mut sg = sg_sync::SgMaps::open(maps)?;
        for (set, content, place) in &patch.sg_sets {
            sg.put(*set, content, place, &known.sg, &mut out.security_groups)?;
        }
        let rule_stats = &mut PerCpuArray::try_from(maps.map(names::SG_RULE_STATS)?)?;
        stats::reset::<RuleCounters>(rule_stats, patch.fresh_counters.iter().copied())?;
    }
    let changes = &mut out.routes;
    let mut routes = sync::Routes::open(maps.map(names::ROUTES)?)?;
    for (key, value) in &patch.put_routes {
        match known.routes.get(key) {
            Some(existing) if existing == value => continue,
            Some(_) => changes.changed += 1,
            None => changes.added += 1,
        }
        routes.put(key, value)?;
    }
    sync::bump_epoch(maps.map(names::CONFIG)?)?;
    let mut routes = sync::Routes::open(maps.map(names::ROUTES)?)?;
    for key in &patch.delete_routes {
        if known.routes.contains_key(key) {
            routes.delete(key)?;
            changes.removed += 1;
        }
    }
    if changes.removed > 0 {
        sync::bump_epoch(maps.map(names::CONFIG)?)?;
    }
    patch.apply_to(known);
    Ok(out)
}

impl Step {
    fn read(self, maps: &mut impl MapSource, out: &mut MapEntries) -> anyhow::Result<()> {
        match self {
            Step::SecurityGroups => out.sg = sg_sync::SgMaps::open(maps)?.current()?,
            Step::NewCounters => {}
            Step::Groups => out.groups = sync::Groups::open(maps.map(names::GROUPS)?)?.current()?,
            Step::Overlay => {
                let o = &mut out.overlay;
                o.underlay = Underlays::open(maps.map(names::UNDERLAY)?)?.current()?;
                o.hosts = Hosts::open(maps.map(names::HOSTS)?)?.current()?;
                o.host_of_ip = HostOfIp::open(maps.map(names::HOST_OF_IP)?)?.current()?;
                o.tunnels = Tunnels::open(maps.map(names::TUNNELS)?)?.current()?;
                o.delivery = Delivery::open(maps.map(names::DELIVERY)?)?.current()?;
            }
            Step::Ports => out.ports = sync::Ports::open(maps.map(names::TX_PORTS)?)?.current()?,
            Step::Addrs => out.addrs = sync::Addrs::open(maps.map(names::ENI_ADDRS)?)?.current()?,
            Step::Routes => out.routes = sync::Routes::open(maps.map(names::ROUTES)?)?.current()?,
            Step::Enis => out.enis = sync::Enis::open(maps.map(names::ENIS)?)?.current()?,
            // A mirror of `ENIS`: nothing of its own to read.
            Step::EniIndex => {}
            Step::McastGroups => out.mcast_groups = sync::McastGroups::open(maps.map(names::MCAST_GROUPS)?)?.current()?,
            Step::McastSenders => out.mcast_senders = sync::McastSenders::open(maps.map(names::MCAST_SENDERS)?)?.current()?,
        }
        Ok(())
    }

    /// `current` is what the maps hold; `known` the same when the caller wrote them (rather than
    /// they were read back).
    fn upsert(
        self,
        maps: &mut impl MapSource,
        want: &MapEntries,
        current: &MapEntries,
        known: Option<&MapEntries>,
        pending: &mut PendingRemoval,
    ) -> anyhow::Result<()> {
        match self {
            Step::SecurityGroups => {
                pending.sg = sg_sync::upsert(&mut sg_sync::SgMaps::open(maps)?, &want.sg, Some(&current.sg))?;
                let rule_stats = &mut PerCpuArray::try_from(maps.map(names::SG_RULE_STATS)?)?;
                stats::reset::<RuleCounters>(rule_stats, pending.sg.fresh_counters.iter().copied())?;
            }
            Step::NewCounters => {
                let new_ports: Vec<u32> = want.ports.keys().copied().filter(|p| !current.ports.contains_key(p)).collect();
                stats::reset::<EniCounters>(&mut PerCpuArray::try_from(maps.map(names::ENI_STATS)?)?, new_ports.iter().copied())?;
                // A port number handed to a new ENI starts its monitoring counts and budgets afresh.
                let slots: Vec<u32> =
                    new_ports.iter().flat_map(|&p| vpc_common::monitor::KERNEL_KINDS.map(|k| vpc_common::monitor::slot(p, k))).collect();
                stats::reset::<vpc_common::monitor::MonSuppressed>(
                    &mut PerCpuArray::try_from(maps.map(names::MON_SUPPRESSED)?)?,
                    slots.iter().copied(),
                )?;
                stats::reset::<vpc_common::RateLimit>(&mut PerCpuArray::try_from(maps.map(names::MON_BUDGET)?)?, slots)?;
                // Read back after a restart, the member counters were allocated before it: none
                // is fresh.
                let fresh: Vec<u32> = match known {
                    Some(known) => want.mcast_member_counters.difference(&known.mcast_member_counters).copied().collect(),
                    None => Vec::new(),
                };
                stats::reset::<McastCounters>(&mut PerCpuArray::try_from(maps.map(names::MCAST_MEMBER_STATS)?)?, fresh)?;
            }
            Step::Groups => {
                pending.groups = sync::upsert(&mut sync::Groups::open(maps.map(names::GROUPS)?)?, &want.groups, Some(&current.groups))?
            }
            Step::Overlay => {
                let (w, c, p) = (&want.overlay, &current.overlay, &mut pending.overlay);
                p.underlay = sync::upsert(&mut Underlays::open(maps.map(names::UNDERLAY)?)?, &w.underlay, Some(&c.underlay))?;
                p.hosts = sync::upsert(&mut Hosts::open(maps.map(names::HOSTS)?)?, &w.hosts, Some(&c.hosts))?;
                p.host_of_ip = sync::upsert(&mut HostOfIp::open(maps.map(names::HOST_OF_IP)?)?, &w.host_of_ip, Some(&c.host_of_ip))?;
                p.tunnels = sync::upsert(&mut Tunnels::open(maps.map(names::TUNNELS)?)?, &w.tunnels, Some(&c.tunnels))?;
                p.delivery = sync::upsert(&mut Delivery::open(maps.map(names::DELIVERY)?)?, &w.delivery, Some(&c.delivery))?;
            }
            Step::Ports => {
                pending.ports = sync::upsert(&mut sync::Ports::open(maps.map(names::TX_PORTS)?)?, &want.ports, Some(&current.ports))?
            }
            Step::Addrs => {
                pending.addrs = sync::upsert(&mut sync::Addrs::open(maps.map(names::ENI_ADDRS)?)?, &want.addrs, Some(&current.addrs))?
            }
            Step::Routes => {
                pending.routes = sync::upsert(&mut sync::Routes::open(maps.map(names::ROUTES)?)?, &want.routes, Some(&current.routes))?
            }
            Step::Enis => pending.enis = sync::upsert(&mut sync::Enis::open(maps.map(names::ENIS)?)?, &want.enis, Some(&current.enis))?,
            Step::EniIndex => {
                eni_index::EniIndex::open(maps)?.upsert(&want.enis, &current.enis, known.is_some())?;
                pending.eni_index = current.enis.keys().filter(|i| !want.enis.contains_key(i)).copied().collect();
            }
            Step::McastGroups => {
                let map = &mut sync::McastGroups::open(maps.map(names::MCAST_GROUPS)?)?;
                pending.mcast_groups = sync::upsert(map, &want.mcast_groups, Some(&current.mcast_groups))?;
            }
            Step::McastSenders => {
                let map = &mut sync::McastSenders::open(maps.map(names::MCAST_SENDERS)?)?;
                pending.mcast_senders = sync::upsert(map, &want.mcast_senders, Some(&current.mcast_senders))?;
            }
        }
        Ok(())
    }

    fn remove(self, maps: &mut impl MapSource, pending: &PendingRemoval) -> anyhow::Result<()> {
        match self {
            Step::SecurityGroups => sg_sync::remove(&mut sg_sync::SgMaps::open(maps)?, &pending.sg),
            Step::NewCounters => Ok(()),
            Step::Groups => sync::remove(&mut sync::Groups::open(maps.map(names::GROUPS)?)?, &pending.groups),
            Step::Overlay => {
                let p = &pending.overlay;
                sync::remove(&mut Delivery::open(maps.map(names::DELIVERY)?)?, &p.delivery)?;
                sync::remove(&mut Tunnels::open(maps.map(names::TUNNELS)?)?, &p.tunnels)?;
                sync::remove(&mut HostOfIp::open(maps.map(names::HOST_OF_IP)?)?, &p.host_of_ip)?;
                sync::remove(&mut Hosts::open(maps.map(names::HOSTS)?)?, &p.hosts)?;
                sync::remove(&mut Underlays::open(maps.map(names::UNDERLAY)?)?, &p.underlay)
            }
            Step::Ports => sync::remove(&mut sync::Ports::open(maps.map(names::TX_PORTS)?)?, &pending.ports),
            Step::Addrs => sync::remove(&mut sync::Addrs::open(maps.map(names::ENI_ADDRS)?)?, &pending.addrs),
            Step::Routes => sync::remove(&mut sync::Routes::open(maps.map(names::ROUTES)?)?, &pending.routes),
            Step::Enis => sync::remove(&mut sync::Enis::open(maps.map(names::ENIS)?)?, &pending.enis),
            Step::EniIndex => eni_index::EniIndex::open(maps)?.remove(&pending.eni_index),
            Step::McastGroups => sync::remove(&mut sync::McastGroups::open(maps.map(names::MCAST_GROUPS)?)?, &pending.mcast_groups),
            Step::McastSenders => sync::remove(&mut sync::McastSenders::open(maps.map(names::MCAST_SENDERS)?)?, &pending.mcast_senders),
        }
    }
}
