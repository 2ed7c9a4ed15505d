//! The daemon's background work, each on a thread of its own: rebinding ENI interfaces, health
//! checks of active/standby hops, writing the state's backup, sweeping the connection table, and
//! the flow-log collector.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::agent::{Agent, health};

/// How often the agent reads what other hosts committed.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

pub fn start(agent: &Arc<Mutex<Agent>>, monitor: &Arc<crate::monitor::Hub>, rebind: Duration) -> anyhow::Result<()> {
    // ENI interfaces come and go: re-resolve them.
    let rebinder = agent.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(rebind);
            if let Ok(mut agent) = rebinder.lock()
                && let Err(e) = agent.rebind()
            {
                log::warn!("rebinding ENI interfaces: {e:#}");
            }
        }
    });

    // What other hosts committed to a shared store, as soon as its watch tells (else five times
    // a second; on one host's own database a read of its revision), and which hosts are alive
    // (this one's registration renewed).
    let follower = agent.clone();
    let changes = agent.lock().ok().and_then(|mut a| a.store_changes());
    std::thread::spawn(move || {
        // Said once when it starts failing and once when it works again, not five times a second.
        let mut failing = false;
        let mut at = 0;
        loop {
            match &changes {
                // After a failure the interval, not the watch: it may tell of what cannot be read.
                Some(changes) if !failing => changes.wait_past(at, FOLLOW_INTERVAL),
                _ => std::thread::sleep(FOLLOW_INTERVAL),
            }
            let Ok(mut agent) = follower.lock() else { return };
            let followed = agent.follow().and_then(|_| agent.heartbeat());
            at = agent.revision();
            match followed {
                Err(e) if !failing => {
                    log::warn!("following the shared store: {e:#} (forwarding goes on as configured; retrying)");
                    failing = true;
                }
                Ok(_) if failing => {
                    log::info!("following the shared store again");
                    failing = false;
                }
                _ => {}
            }
        }
    });

    // Health checks of active/standby hops, on their own thread (they block on sockets briefly).
    let checker_agent = agent.clone();
    std::thread::spawn(move || {
        let mut checker = health::Checker::default();
        let mut seen = None;
        loop {
            // Rescan the routes for active/standby hops only when the topology changed.
            match checker_agent.lock() {
                Ok(agent) if seen != Some(agent.generation()) => {
                    seen = Some(agent.generation());
                    checker.update(health::probes(agent.topology(), &agent.opts.naming));
                }
                Ok(_) => {}
                Err(_) => return,
            }
            for ((route, hop), down) in checker.tick() {
                log::warn!("route {route}: hop {hop} is {}", if down { "down" } else { "up again" });
                if let Ok(mut agent) = checker_agent.lock()
                    && let Err(e) = agent.set_hop_down(&route, hop, down)
                {
                    log::error!("moving traffic off a failed hop: {e:#}");
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });

    // The backup of the state: a change on the incremental path leaves it to this, so a copy at
    // most a second old exists without writing the whole document on every change.
    let backer = agent.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            match backer.lock() {
                Ok(mut agent) => agent.flush_backup(),
                Err(_) => return,
            }
        }
    });

    // The connection table's sweeper: expired entries give their ports room back (nothing else
    // does). It works on the pinned maps alone, so it never holds the agent's lock.
    let sweep_pins = match agent.lock() {
        Ok(agent) => agent.dataplane(),
        Err(_) => anyhow::bail!("the agent is poisoned"),
    };
    let (ended_tx, ended_rx) = std::sync::mpsc::channel();
    if let Ok(mut agent) = agent.lock() {
        // The connections of ports a change releases end through the stream too.
        agent.ended = Some(ended_tx.clone());
    }
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            if !sweep_pins.is_up() {
                continue;
            }
            match crate::dataplane::conntrack::sweep(&sweep_pins.pins, &Default::default(), crate::dataplane::conntrack::now()) {
                Ok(swept) if !swept.ended.is_empty() => {
                    let _ = ended_tx.send(crate::monitor::EndedBatch { ended: swept.ended, names: None });
                }
                Ok(_) => {}
                Err(e) => log::warn!("sweeping the connection table: {e:#}"),
            }
        }
    });

    // The monitoring stream: the one reader of the kernel's ring, and the sweeper's ends.
    let (monitor_agent, hub) = (agent.clone(), monitor.clone());
    std::thread::spawn(move || monitor_loop(&monitor_agent, &hub, &ended_rx));

    // Flow logs: a tick every second, on a thread of its own (it writes files and sockets).
    let flow_agent = agent.clone();
    std::thread::spawn(move || {
        let (pins, state_dir, flow_log_dir) = match flow_agent.lock() {
            Ok(agent) => (agent.dataplane().pins, agent.opts.state_dir.clone(), agent.opts.flow_log_dir()),
            Err(_) => return,
        };
        let account = std::env::var("VPC_ACCOUNT_ID").unwrap_or_else(|_| "local".into());
        let mut collector = crate::flowlog::Collector::open(pins.clone(), &state_dir, &flow_log_dir, &account);
        let mut seen = None;
        loop {
            // On the second, so ticks and windows line up with wall-clock seconds.
            let into = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_millis());
            std::thread::sleep(Duration::from_millis(u64::from(1000 - into)));
            // The tick never waits for the agent: a long change (a lab coming up) holding it
            // would look like an outage, and traffic counted before a first tick has no time.
            // Counts of ports the scope does not know yet wait in the table for the next scope
            // (`Collector::tick`).
            match flow_agent.try_lock() {
                Ok(agent) => {
                    let interfaces = agent.binding().ifindex.len();
                    if seen != Some((agent.generation(), interfaces)) {
                        seen = Some((agent.generation(), interfaces));
                        collector.set_scope(crate::flowlog::Scope::of(agent.topology(), &agent.stored().ids, &agent.binding().ifindex));
                    }
                }
                Err(std::sync::TryLockError::WouldBlock) => {}
                Err(std::sync::TryLockError::Poisoned(_)) => return,
            }
            if pins.is_up()
                && let Err(e) = collector.tick()
            {
                log::warn!("flow logs: {e:#}");
            }
        }
    });
    Ok(())
}

/// Read the kernel's events as they come (and what it held back, once a second), name them
/// and feed the stream; connections the sweeper ended arrive on `ended`.
fn monitor_loop(agent: &Arc<Mutex<Agent>>, hub: &crate::monitor::Hub, ended: &std::sync::mpsc::Receiver<crate::monitor::EndedBatch>) {
    let (dataplane, ring_bytes) = match agent.lock() {
        Ok(agent) => (agent.dataplane(), u64::from(agent.opts.limits[vpc_common::maps::Size::EventRing])),
        Err(_) => return,
    };
    let mut reader = None;
    let (mut names, mut seen) = (crate::monitor::Names::default(), None);
    loop {
        let Some(ring) = reader.as_mut() else {
            // Nothing applied yet: the ring appears with the first apply (no connection has
            // ended either; nothing waits meanwhile).
            std::thread::sleep(Duration::from_secs(1));
            ended.try_iter().for_each(drop);
            if dataplane.is_up() {
                match crate::monitor::reader::Reader::open(&dataplane.pins, ring_bytes) {
                    Ok(opened) => reader = Some(opened),
                    Err(e) => log::warn!("monitoring: {e:#}"),
                }
            }
            continue;
        };
        ring.wait(Duration::from_millis(200));
        match agent.try_lock() {
            Ok(agent) if seen != Some(agent.generation()) => {
                seen = Some(agent.generation());
                names = crate::monitor::Names::of(agent.topology(), &agent.stored().ids);
            }
            Err(std::sync::TryLockError::Poisoned(_)) => return,
            _ => {}
        }
        let (events, bytes) = ring.read(&names);
        hub.ring(bytes, ring_bytes);
        hub.push(events);
        for batch in ended.try_iter() {
            let named = batch.names.as_ref().unwrap_or(&names);
            hub.push(crate::monitor::collect(named, &[], &batch.ended, &[], crate::monitor::unix_ms()));
        }
    }
}
