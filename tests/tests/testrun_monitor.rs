//! Monitoring events through the loaded program, field by field: a drop by a rule names it, the
//! side and both ENIs; a drop before parsing names what the headers say; a first packet opens
//! a connection once and its next packets make nothing; an expiring datagram's ICMP answer is
//! an event; a re-judged verdict is one; the limiter passes its budget and counts the rest
//! exactly. (Every frame of the other TestRun tests is also checked against the model's events.)

use std::net::Ipv4Addr;

use vpc::{
    model::Topology,
    packet::Ipv4,
    tools::testrun::{Harness, with_harness},
};
use vpc_common::{
    DropReason,
    ct::NO_RULE,
    monitor::{EVENT_BURST, MonEvent, NO_PORT, kind},
    sg::direction,
};

const TOPOLOGY: &str = "
vpcs:
  - name: prod
    cidr: 10.9.0.0/16
    vswitches: [{name: sw, cidr: 10.9.1.0/24, zone: a}]
    security_groups:
      - {name: client}
      - name: server
        rules:
          - {direction: ingress, protocol: udp, ports: 53/53, peer: 10.9.0.0/16}
          - {direction: ingress, policy: drop, protocol: udp, ports: 99/99, peer: 10.9.0.0/16, priority: 1}
    enis:
      - {name: cl, vswitch: sw, ip: 10.9.1.10, security_groups: [client]}
      - {name: sv, vswitch: sw, ip: 10.9.1.20, security_groups: [server]}
";

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn raw(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

/// A UDP datagram from `cl` (source `src`) to `sv`.
fn from_client(h: &Harness, src: &str, sport: u16, dport: u16, ttl: u8) -> Vec<u8> {
    let (_, sw, cl) = h.topology.eni("cl").unwrap();
    Ipv4::udp(ip(src), ip("10.9.1.20"), sport, dport, b"monitor").ttl(ttl).frame(sw.gateway_mac, cl.mac)
}

fn rule_counter(h: &Harness, port_range: &str) -> u32 {
    let (vpc, _, _) = h.topology.eni("sv").unwrap();
    let group = vpc.security_groups.iter().find(|g| g.name == "server").unwrap();
    let rule = group
        .rules
        .iter()
        .find(|r| r.ports.map(|(a, b)| format!("{a}/{b}")).as_deref() == Some(port_range))
        .unwrap_or_else(|| panic!("no rule {port_range}"));
    h.binding.ids.sg_rules[&rule.id]
}

fn one(events: &[MonEvent], what: u8) -> MonEvent {
    let found: Vec<&MonEvent> = events.iter().filter(|e| e.kind == what).collect();
    assert_eq!(found.len(), 1, "one event of kind {what}: {events:?}");
    *found[0]
}

#[test]
fn events_carry_the_right_fields_and_established_packets_make_none() {
    let topology = Topology::from_yaml(TOPOLOGY).unwrap();
    with_harness(topology, |h| {
        let (cl, sv) = (h.port("cl"), h.port("sv"));
        let from = h.ifindex("cl");
        h.refill_event_budgets()?;

        // Dropped by the explicit rule at the receiver: both ENIs, the side, the rule, the packet.
        let (_, events) = h.run_events(from, &from_client(h, "10.9.1.10", 4000, 99, 64))?;
        let e = one(&events, kind::DROP);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!((e.reason, e.port, e.peer_port), (DropReason::SgIngress as u32, cl, sv));
        assert_eq!((e.direction, e.rule), (direction::INGRESS as u8, rule_counter(h, "99/99")));
        assert_eq!((e.proto, e.saddr, e.daddr, e.sport, e.dport), (17, raw(ip("10.9.1.10")), raw(ip("10.9.1.20")), 4000, 99));
        assert!(e.ktime > 0);

        // No rule accepts port 100: the drop says no rule did.
        let (_, events) = h.run_events(from, &from_client(h, "10.9.1.10", 4000, 100, 64))?;
        assert_eq!(one(&events, kind::DROP).rule, NO_RULE);

        // A spoofed source, dropped before the halves: the sender and the headers as they are.
        let (_, events) = h.run_events(from, &from_client(h, "10.9.1.99", 4001, 53, 64))?;
        let e = one(&events, kind::DROP);
        assert_eq!((e.reason, e.port, e.peer_port, e.rule), (DropReason::SpoofedIp as u32, cl, NO_PORT, NO_RULE));
        assert_eq!((e.saddr, e.sport, e.dport), (raw(ip("10.9.1.99")), 4001, 53));

        // From an interface that is no ENI (the loopback): no port.
        let (_, events) = h.run_events(1, &from_client(h, "10.9.1.10", 4002, 53, 64))?;
        let e = one(&events, kind::DROP);
        assert_eq!((e.reason, e.port), (DropReason::UnknownEni as u32, NO_PORT));

        // A first packet opens a connection (once); the next ones make no event at all.
        let frame = from_client(h, "10.9.1.10", 4003, 53, 64);
        let (_, events) = h.run_events(from, &frame)?;
        let e = one(&events, kind::OPEN);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!((e.port, e.peer_port, e.peer_rule), (cl, sv, rule_counter(h, "53/53")));
        assert_eq!((e.rule, e.table), (NO_RULE, h.binding.ids.route_tables.values().copied().min().unwrap()));
        for _ in 0..5 {
            let (_, events) = h.run_events(from, &frame)?;
            assert!(events.is_empty(), "an established packet makes no event: {events:?}");
        }

        // An expiring datagram is answered with time exceeded: an ICMP event (and no drop).
        let (_, events) = h.run_events(from, &from_client(h, "10.9.1.10", 4004, 53, 1))?;
        let e = one(&events, kind::ICMP);
        assert_eq!((e.reason, e.port, e.saddr), (11 << 8, cl, raw(ip("10.9.1.10"))));
        assert!(events.iter().all(|e| e.kind != kind::DROP), "{events:?}");

        // The accepting rule is revoked: the established flow's next packet is re-judged at the
        // receiver, and that is an event.
        let mut changed = h.topology.clone();
        let group = changed.vpcs[0].security_groups.iter_mut().find(|g| g.name == "server").unwrap();
        group.rules.retain(|r| r.ports != Some((53, 53)));
        h.apply(changed)?;
        h.refill_event_budgets()?;
        let (_, events) = h.run_events(from, &frame)?;
        let policy = one(&events, kind::POLICY);
        assert_eq!((policy.port, policy.flags, policy.direction, policy.rule), (sv, 0, direction::INGRESS as u8, NO_RULE));
        assert_eq!((policy.saddr, policy.sport, policy.dport), (raw(ip("10.9.1.10")), 4003, 53));
        assert_eq!(one(&events, kind::DROP).reason, DropReason::SgIngress as u32);
        Ok(())
    })
    .unwrap();
}

#[test]
fn the_limiter_passes_its_burst_and_counts_the_rest_exactly() {
    // Far more than a burst and what refills while they run (100 a second).
    const FRAMES: u64 = EVENT_BURST + 1000;
    let topology = Topology::from_yaml(TOPOLOGY).unwrap();
    with_harness(topology, |h| {
        // One CPU's bucket: spread over two, twice the burst would pass.
        vpc::tools::bench::pin_to_last_cpu();
        let from = h.ifindex("cl");
        h.refill_event_budgets()?;
        let held_before = h.suppressed(h.port("cl"), kind::DROP)?;
        let mut written = 0;
        let start = std::time::Instant::now();
        for i in 0..FRAMES {
            let (_, events) = h.run_events(from, &from_client(h, "10.9.1.10", 5000 + i as u16, 99, 64))?;
            written += events.iter().filter(|e| e.kind == kind::DROP).count() as u64;
        }
        let seconds = start.elapsed().as_secs_f64();
        let held = h.suppressed(h.port("cl"), kind::DROP)? - held_before;
        assert_eq!(written + held, FRAMES, "{written} written, {held} limited");
        // The bucket refills while it runs.
        let budget = (EVENT_BURST as f64 + vpc_common::monitor::EVENTS_PER_SECOND as f64 * (seconds + 0.1)) as u64;
        assert!(written >= EVENT_BURST.min(FRAMES) && written <= budget, "{written} events, budget {budget}");
        assert!(held > 0);
        Ok(())
    })
    .unwrap();
}
