//! Health checks of active/standby hops, run by the daemon. Each hop of each active/standby
//! route is probed every `interval`: `arp` asks the hop for its address through its host
//! interface (the guest's own network stack must answer; the reply reaches us because guests'
//! ARP replies to the gateway MAC are passed to the host), `link` reads the interface's carrier.
//! `threshold` failures in a row make a hop down, as many successes bring it back; with the
//! defaults (200 ms, 3) a failure moves traffic to the standby within about 0.7 s.

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    time::{Duration, Instant},
};

use crate::{
    dataplane,
    model::Topology,
    model::topology::{HealthMethod, HopTarget, NextHop},
    naming::Naming,
};

/// What to probe for one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub method: HealthMethod,
    pub interval: Duration,
    pub threshold: u32,
    /// The host interface towards the hop.
    pub ifname: String,
    /// The hop's address (ARP target) and the address we ask from (0.0.0.0: an ARP probe).
    pub target: Option<Ipv4Addr>,
    pub source: Ipv4Addr,
}

/// Every hop of every active/standby route: (route entry ID, hop index) -> probe.
pub fn probes(topology: &Topology, naming: &Naming) -> BTreeMap<(String, usize), Probe> {
    let mut out = BTreeMap::new();
    for vpc in &topology.vpcs {
        for route in vpc.route_tables.iter().flat_map(|t| &t.routes) {
            let NextHop::Group(group) = &route.next_hop else { continue };
            if !group.active_standby {
                continue;
            }
            for (i, hop) in group.hops.iter().enumerate() {
                let (ifname, target, source) = match &hop.target {
                    HopTarget::Eni(name) => {
                        let eni = vpc.eni(name).expect("validated reference");
                        let gw = vpc.vswitch(&eni.vswitch).map(|s| s.gateway).unwrap_or(Ipv4Addr::UNSPECIFIED);
                        (naming.host_ifname(eni), Some(eni.ip), gw)
                    }
                    HopTarget::Gateway(name) => {
                        let gw = vpc.gateway(name).expect("validated reference");
                        (naming.host_ifname_of(&gw.name, gw.interface.as_deref()), gw.ip, Ipv4Addr::UNSPECIFIED)
                    }
                };
                let check = group.health_check;
                let method = if target.is_none() { HealthMethod::Link } else { check.method };
                out.insert(
                    (route.id.clone(), i),
                    Probe {
                        method,
                        interval: Duration::from_millis(u64::from(check.interval_ms)),
                        threshold: check.threshold,
                        ifname,
                        target,
                        source,
                    },
                );
            }
        }
    }
    out
}

/// The running state of one check.
struct Check {
    probe: Probe,
    socket: Option<OwnedFd>,
    next: Instant,
    awaiting: bool,
    fails: u32,
    oks: u32,
    down: bool,
}

/// All checks, advanced by `tick`.
#[derive(Default)]
pub struct Checker {
    checks: BTreeMap<(String, usize), Check>,
}

impl Checker {
    /// Follow the configuration: add new checks, drop gone ones, keep the state of the rest.
    pub fn update(&mut self, wanted: BTreeMap<(String, usize), Probe>) {
        self.checks.retain(|key, check| wanted.get(key) == Some(&check.probe));
        for (key, probe) in wanted {
            self.checks.entry(key).or_insert_with(|| Check {
                probe,
                socket: None,
                next: Instant::now(),
                awaiting: false,
                fails: 0,
                oks: 0,
                down: false,
            });
        }
    }

    /// Probe what is due and collect answers; returns the hops whose state changed, with
    /// their new state (true: down).
    pub fn tick(&mut self) -> Vec<((String, usize), bool)> {
        let now = Instant::now();
        let mut changed = Vec::new();
        for (key, check) in &mut self.checks {
            let answered = match check.probe.method {
                HealthMethod::Arp => check.awaiting && arp_answered(check),
                HealthMethod::Link => false,
            };
            if answered {
                check.awaiting = false;
                if record(check, true) {
                    changed.push((key.clone(), check.down));
                }
            }
            if now < check.next {
                continue;
            }
            check.next = now + check.probe.interval;
            let result = match check.probe.method {
                HealthMethod::Link => Some(carrier(&check.probe.ifname)),
                HealthMethod::Arp => {
                    // The previous probe got no answer in time.
                    let missed = check.awaiting.then_some(false);
                    check.awaiting = send_arp(check);
                    if !check.awaiting && missed.is_none() { Some(false) } else { missed }
                }
            };
            if let Some(ok) = result
                && record(check, ok)
            {
                changed.push((key.clone(), check.down));
            }
        }
        changed
    }
}

/// Count a result; true when the hop's state flips.
fn record(check: &mut Check, ok: bool) -> bool {
    if ok {
        check.fails = 0;
        check.oks += 1;
        if check.down && check.oks >= check.probe.threshold {
            check.down = false;
            return true;
        }
    } else {
        check.oks = 0;
        check.fails += 1;
        if !check.down && check.fails >= check.probe.threshold {
            check.down = true;
            return true;
        }
    }
    false
}

fn carrier(ifname: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/carrier")).is_ok_and(|c| c.trim() == "1")
}

const ETH_P_ARP: u16 = 0x0806;

/// Send an ARP request for the hop's address out of its interface; false if it could not be sent.
fn send_arp(check: &mut Check) -> bool {
    let (Some(target), Some(ifindex)) = (check.probe.target, dataplane::ifindex(&check.probe.ifname)) else { return false };
    let Ok(mac) = dataplane::iface::mac(&check.probe.ifname) else { return false };
    if check.socket.is_none() {
        check.socket = arp_socket(ifindex);
    }
    let Some(socket) = &check.socket else { return false };
    let mut frame = crate::packet::arp_request(mac, check.probe.source, target);
    frame.resize(60, 0);
    // SAFETY: sending an owned buffer on a bound packet socket.
    unsafe { libc::send(socket.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) >= 0 }
}

fn arp_socket(ifindex: u32) -> Option<OwnedFd> {
    // SAFETY: socket(2); owned right away.
    let fd =
        unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, i32::from(ETH_P_ARP.to_be())) };
    if fd < 0 {
        return None;
    }
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = ETH_P_ARP.to_be();
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: binding to a valid link-layer address.
    let rc = unsafe {
        libc::bind(socket.as_raw_fd(), (&addr as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32)
    };
    (rc == 0).then_some(socket)
}

/// Whether an ARP reply from the hop's address is waiting on the check's socket.
fn arp_answered(check: &mut Check) -> bool {
    let (Some(socket), Some(target)) = (&check.socket, check.probe.target) else { return false };
    let mut buf = [0u8; 128];
    loop {
        // SAFETY: receiving into an owned buffer.
        let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 42 {
            return false;
        }
        let is_reply = buf[12..14] == ETH_P_ARP.to_be_bytes() && buf[20..22] == [0, 2];
        if is_reply && buf[28..32] == target.octets() {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(threshold: u32) -> Check {
        let probe = Probe {
            method: HealthMethod::Link,
            interval: Duration::from_millis(10),
            threshold,
            ifname: "none".into(),
            target: None,
            source: Ipv4Addr::UNSPECIFIED,
        };
        Check { probe, socket: None, next: Instant::now(), awaiting: false, fails: 0, oks: 0, down: false }
    }

    #[test]
    fn threshold_failures_make_down_and_as_many_successes_bring_back() {
        let mut c = check(3);
        assert!(!record(&mut c, false) && !record(&mut c, false));
        assert!(record(&mut c, false) && c.down, "third failure flips");
        assert!(!record(&mut c, false), "already down");
        assert!(!record(&mut c, true) && !record(&mut c, true));
        assert!(!record(&mut c, false), "a failure restarts the count");
        assert!(!record(&mut c, true) && !record(&mut c, true));
        assert!(record(&mut c, true) && !c.down, "third success in a row flips back");
    }

    #[test]
    fn a_missing_interface_fails_its_link_check() {
        let mut checker = Checker::default();
        let mut wanted = BTreeMap::new();
        wanted.insert(("rte-x".to_string(), 0), check(1).probe);
        checker.update(wanted);
        assert_eq!(checker.tick(), vec![(("rte-x".to_string(), 0), true)]);
    }
}
