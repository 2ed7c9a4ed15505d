//! Reference semantics of the data path, written for clarity rather than speed: given the
//! topology (bound to a host), the connections seen so far and a frame arriving from an ENI or a
//! gateway, what must happen to it. The XDP program must agree with this on the verdict, the
//! output port, the output bytes and the counters (see the TestRun differential tests). The
//! route cache in the connections is not modelled: it must not change any outcome, which the
//! tests check by sending every frame twice.

use std::net::Ipv4Addr;

use vpc_common::{DropReason, NO_HOP, addr_raw, flow::slot_of, flow_hash};

use super::{
    Eni, Topology, Vpc,
    addr::format_mac,
    binding::Binding,
    conntrack::{Cache, Checked, Conn, Conntrack, Guarded, Packet},
    ecmp,
    topology::{HopTarget, NextHop, RouteTable},
};

mod arp;
mod fragments;
mod frame;
mod icmp;
mod overlay;
mod routes;

use arp::{ArpVerdict, answer_arp};
use frame::ETH_HLEN;
use icmp::IcmpError;
use routes::hop_text;
pub use routes::lpm;

/// What the data path does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Drop(DropReason),
    /// Redirected to the port (ARP replies and ICMP errors go back to the sender's own port).
    Redirect {
        port: u32,
    },
    /// Handed to the host's network stack (XDP_PASS).
    Pass,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub action: Action,
    /// The frame as it leaves (unchanged for drops and passes).
    pub frame: Vec<u8>,
    /// Port credited with the received frame (rx), if the sender is known.
    pub rx_port: Option<u32>,
    /// Port credited with the delivered frame (tx).
    pub tx_port: Option<u32>,
    /// Security-group rule counters credited (counter, bytes).
    pub rule_hits: Vec<(u32, u64)>,
    /// Flow-log counts credited (key with tick 0, IP bytes): a packet of an ENI that a flow
    /// log captures, on each side it passed or was dropped at.
    pub flow_log: Vec<(vpc_common::flowlog::FlKey, u64)>,
    /// A multicast packet's copies (member port, accepted by its ingress rules), made by the
    /// TC program after XDP passed the packet.
    pub copies: Vec<(u32, bool)>,
    /// The other hosts a multicast packet's sender here sent one encapsulated copy each (by
    /// number), made by the TC program too.
    pub remote_copies: Vec<u32>,
    /// The port whose connection limit refused the packet's new connection.
    pub refused_port: Option<u32>,
    /// For a drop by security groups: the counter of the rule whose verdict it was
    /// (`ct::NO_RULE`: none accepted). The monitoring event names it.
    pub deny_rule: Option<u32>,
    /// A new connection was recorded (the monitoring event's fields).
    pub opened: Option<super::conntrack::Opened>,
    /// The receiving port, once the route found one (a drop after it names it).
    pub to_port: Option<u32>,
    /// An ICMP error the data path answered with: type << 8 | code.
    pub icmp_sent: Option<u32>,
    /// Human-readable steps of the decision, for `vpc trace` and failing tests.
    pub steps: Vec<String>,
}

/// Who a frame came from: an ENI, or a gateway (the network behind it).
struct Sender<'a> {
    vpc: &'a Vpc,
    name: &'a str,
    mac: [u8; 6],
    /// The ENI's address (none for a gateway).
    ip: Option<Ipv4Addr>,
    /// The address ICMP errors come from (the ENI's VSwitch gateway; none for a gateway).
    gw_ip: Option<Ipv4Addr>,
    gw_mac: [u8; 6],
    table: &'a RouteTable,
    source_check: bool,
    port: u32,
    /// The ENI (none for a gateway).
    eni: Option<&'a Eni>,
    /// Its connection limit (0: none).
    limit: u32,
    /// An ENI on another host, whose frame arrived through the overlay: its own host judged
    /// its side and routed the packet.
    remote: bool,
}

/// Where a route delivers.
struct Target<'a> {
    id: String,
    name: String,
    port: u32,
    mac: [u8; 6],
    gw_mac: [u8; 6],
    /// The largest IP packet it takes.
    mtu: u16,
    /// Its connection limit (0: none).
    limit: u32,
    /// The receiving ENI and its VPC (none for a gateway, and for an ENI on another host:
    /// its own host judges its side).
    eni: Option<(&'a Vpc, &'a Eni)>,
    /// On another host: delivered through the overlay, to that host.
    remote: Option<&'a str>,
    /// Its interface is here, or its host is up.
    reachable: bool,
}

enum Decision<'a> {
    Deliver(Target<'a>),
    ToHost,
    /// The TTL runs out at the gateway: answered before the route goes any further.
    Expired,
}

/// The flow fields that steer ECMP, and the TTL.
struct Flow {
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    ports: u32,
    proto: u8,
    ttl: u8,
    /// The source is inside the sender's VPC (the only datagrams that cross to a peer).
    in_vpc: bool,
}

pub struct Model<'a> {
    pub topology: &'a Topology,
    pub binding: &'a Binding,
    ct: Tracked<'a>,
}

/// The model's connections: its own, or a caller's that outlive it (a harness's).
enum Tracked<'a> {
    Own(Conntrack),
    Shared(&'a mut Conntrack),
}

impl<'a> Model<'a> {
    /// A model with no connections seen yet.
    pub fn new(topology: &'a Topology, binding: &'a Binding) -> Self {
        Model { topology, binding, ct: Tracked::Own(Conntrack::default()) }
    }

    /// A model that continues from (and updates) `ct`.
    pub fn with_conntrack(topology: &'a Topology, binding: &'a Binding, ct: &'a mut Conntrack) -> Self {
        Model { topology, binding, ct: Tracked::Shared(ct) }
    }

    fn conntrack(&mut self) -> &mut Conntrack {
        match &mut self.ct {
            Tracked::Own(ct) => ct,
            Tracked::Shared(ct) => ct,
        }
    }

    /// The multicast copies of `pkt`: every member of `group` but the sender, with whether its
    /// ingress rules accept the copy (no connection state: a copy is judged on its own) and
    /// its MTU takes it.
    fn copies(&self, sender: &Sender<'_>, group: &crate::model::multicast::McastGroup, pkt: &Packet) -> Vec<(u32, bool)> {
        let ids = &self.binding.ids;
        group
            .members
            .iter()
            .filter_map(|name| sender.vpc.eni(name))
            .filter(|e| self.binding.ifindex.contains_key(&e.id) && Some(e.name.as_str()) != sender.eni.map(|s| s.name.as_str()))
            .map(|e| {
                let (verdict, _) = super::conntrack::decide(
                    sender.vpc,
                    e,
                    ids,
                    super::security::Direction::Ingress,
                    pkt.proto,
                    pkt.saddr,
                    pkt.dport,
                    pkt.vouched,
                );
                (ids.port(&e.id), verdict.accept && pkt.bytes <= u64::from(e.mtu))
            })
            .collect()
    }

    /// Credit `pkt` to the flow logs when a flow log captures `side`'s ENI: one count per
    /// (port, direction, 5-tuple, security-group action, deciding rule); ports only for TCP
    /// and UDP. `checked` holds what the side's verdict credited (its rule, if one decided).
    fn log_flow(&self, side: Guarded<'_>, received: bool, pkt: &Packet, accepted: bool, checked: &Checked, out: &mut Outcome) {
        use vpc_common::flowlog::{FlKey, action, direction};
        let Some((vpc, eni)) = side.eni else { return };
        let covering: Vec<_> =
            self.topology.flow_logs.iter().filter(|f| f.active && f.covers(&vpc.name, &eni.vswitch, &eni.name)).collect();
        if covering.is_empty() {
            return;
        }
        // Counted for every covering log; written by those whose traffic type keeps it.
        let keeping: Vec<&str> = covering.iter().filter(|f| f.traffic.keeps(accepted)).map(|f| f.name.as_str()).collect();
        let ports = if pkt.proto == 6 || pkt.proto == 17 { pkt.ports } else { 0 };
        let key = FlKey {
            port: side.port,
            saddr: u32::from_ne_bytes(pkt.saddr.octets()),
            daddr: u32::from_ne_bytes(pkt.daddr.octets()),
            sport: (ports >> 16) as u16,
            dport: ports as u16,
            proto: pkt.proto,
            direction: if received { direction::IN } else { direction::OUT },
            action: if accepted { action::ACCEPT } else { action::REJECT },
            _pad: 0,
            tick: 0,
            rule: checked.rule_hits.first().map_or(vpc_common::ct::NO_RULE, |(rule, _)| *rule),
        };
        out.steps.push(format!(
            "flow log: {} this {} packet ({} bytes) at {} as {} (record action {})",
            if keeping.is_empty() {
                "no flow log keeps (by its traffic type)".to_string()
            } else {
                format!("{} counts", keeping.join(", "))
            },
            if received { "received" } else { "sent" },
            pkt.bytes,
            eni.name,
            if accepted { "accepted by its security groups" } else { "rejected by its security groups" },
            if accepted { "ACCEPT" } else { "REJECT" },
        ));
        out.flow_log.push((key, pkt.bytes));
    }

    /// Decide what happens to `frame` arriving on interface `ifindex`.
    pub fn process(&mut self, ifindex: u32, frame: &[u8]) -> Outcome {
        let mut out = Outcome::of(frame);
        let decided = self.decide(ifindex, &mut out);
        out.finish(decided)
    }

    /// Decide what happens to `frame` arriving on this host's underlay interface.
    pub fn process_underlay(&mut self, frame: &[u8]) -> Outcome {
        let mut out = Outcome::of(frame);
        let decided = self.arrive(&mut out);
        out.finish(decided)
    }
}

impl Outcome {
    /// Nothing decided yet about `frame`.
    fn of(frame: &[u8]) -> Outcome {
        Outcome {
            action: Action::Drop(DropReason::Malformed),
            frame: frame.to_vec(),
            rx_port: None,
            tx_port: None,
            rule_hits: Vec::new(),
            flow_log: Vec::new(),
            copies: Vec::new(),
            remote_copies: Vec::new(),
            refused_port: None,
            deny_rule: None,
            opened: None,
            to_port: None,
            icmp_sent: None,
            steps: Vec::new(),
        }
    }

    fn finish(mut self, decided: Result<Action, DropReason>) -> Outcome {
        match decided {
            Ok(action) => self.action = action,
            Err(reason) => {
                self.steps.push(format!("drop: {}", reason.name()));
                self.action = Action::Drop(reason);
                self.tx_port = None;
            }
        }
        self
    }
}

impl<'a> Model<'a> {
    fn sender(&self, ifindex: u32) -> Option<Sender<'a>> {
        let id = self.binding.eni_at(ifindex)?;
        let port = self.binding.ids.port(id);
        if let Some((vpc, vswitch, eni)) = self.topology.enis().find(|(_, _, e)| e.id == id) {
            return eni_sender(vpc, vswitch, eni, port, false);
        }
        let (vpc, gw) = self.topology.vpcs.iter().find_map(|v| v.gateways.iter().find(|g| g.id == id).map(|g| (v, g)))?;
        Some(gateway_sender(vpc, gw, port, false))
    }

    fn decide(&mut self, ifindex: u32, out: &mut Outcome) -> Result<Action, DropReason> {
        let sender = self.sender(ifindex).ok_or(DropReason::UnknownEni)?;
        out.rx_port = Some(sender.port);
        out.steps.push(format!("from {} (VPC {}, route table {})", sender.name, sender.vpc.name, sender.table.name));
        if out.frame.len() < ETH_HLEN {
            return Err(DropReason::Malformed);
        }
        if out.frame[6..12] != sender.mac {
            return Err(DropReason::SpoofedMac);
        }
        match u16::from_be_bytes([out.frame[12], out.frame[13]]) {
            0x0800 => self.forward_ipv4(&sender, None, out),
            0x0806 => match answer_arp(&sender, out)? {
                ArpVerdict::Answered => self.deliver(&sender.port, &self.own_id(&sender), out),
                ArpVerdict::ToHost => Ok(Action::Pass),
            },
            0x8100 | 0x88a8 => Err(DropReason::VlanTagged),
            _ => Err(DropReason::NotIpv4),
        }
    }

    fn own_id(&self, sender: &Sender<'_>) -> String {
        self.binding.ids.ports.iter().find(|(_, p)| **p == sender.port).map(|(id, _)| id.clone()).unwrap_or_default()
    }

    /// An IPv4 packet from `sender`; `arrived`: from the overlay, for that target (the sending
    /// host routed it).
    fn forward_ipv4(&mut self, sender: &Sender<'a>, arrived: Option<Target<'a>>, out: &mut Outcome) -> Result<Action, DropReason> {
        let frame = &out.frame.clone();
        let ip = frame.get(ETH_HLEN..ETH_HLEN + 20).ok_or(DropReason::Malformed)?;
        let header_len = usize::from(ip[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ip[0] >> 4 != 4 || header_len < 20 || total_len < header_len || total_len > frame.len() - ETH_HLEN {
            return Err(DropReason::Malformed);
        }
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        if sender.source_check && Some(src) != sender.ip {
            return Err(DropReason::SpoofedIp);
        }
        let l4 = self.fragment_l4(sender.port, frame, header_len, out)?;
        let pkt = Packet {
            saddr: src,
            daddr: dst,
            ports: l4.ports,
            proto: ip[9],
            tag: l4.tag,
            vouched: Some(src) == sender.ip,
            dport: l4.dport,
            tcp_flags: l4.tcp_flags,
            opens: l4.opens,
            icmp_error: l4.icmp_error,
            quoted: l4.quoted,
            bytes: total_len as u64,
        };
        let ids = &self.binding.ids;
        let mut checked = Checked::default();
        let eni = if sender.remote { None } else { sender.eni.map(|e| (sender.vpc, e)) };
        let from = Guarded { port: sender.port, eni, limit: sender.limit };
        // A multicast group: only its senders may send; the TC program copies to the members.
        // From another host only as a group's copy (no target), never as unicast to one ENI.
        if sender.remote && arrived.is_none() {
            if !dst.is_multicast() {
                return Err(DropReason::UnknownDestination);
            }
            return self.group_copy(sender, dst, &pkt, out);
        }
        if dst.is_multicast() && sender.remote {
            return Err(DropReason::McastNotSender);
        }
        if dst.is_multicast() {
            let Some(group) = sender.vpc.multicast_groups.iter().find(|g| g.group == dst) else {
                return Err(DropReason::McastUnknownGroup);
            };
            if !sender.eni.is_some_and(|e| group.senders.contains(&e.name)) {
                return Err(DropReason::McastNotSender);
            }
            // A group has no connections: every packet is judged by the sender's egress rules.
            let sent = match from.eni {
                Some((vpc, eni)) => {
                    let (verdict, why) =
                        super::conntrack::decide(vpc, eni, ids, super::security::Direction::Egress, pkt.proto, pkt.daddr, pkt.dport, true);
                    checked.steps.push(format!("security groups of {} (egress): {why}", eni.name));
                    if let Some(rule) = verdict.rule {
                        checked.rule_hits.push((rule, pkt.bytes));
                    }
                    let _ = checked.verdict(verdict, DropReason::SgEgress);
                    verdict.accept
                }
                None => true,
            };
            self.log_flow(from, false, &pkt, sent, &checked, out);
            self.take(&mut checked, out);
            if !sent {
                return Err(DropReason::SgEgress);
            }
            out.copies = self.copies(sender, group, &pkt);
            let cluster = &self.binding.cluster;
            let up = |number: &u32| cluster.hosts.values().any(|h| h.number == *number && h.up);
            out.remote_copies = cluster.member_hosts(sender.vpc, group).into_iter().filter(up).collect();
            let names: Vec<String> = out.copies.iter().map(|(p, ok)| format!("port {p}{}", if *ok { "" } else { " (refused)" })).collect();
            out.steps.push(format!("multicast group {dst}: to the TC program, which copies it to {}", names.join(", ")));
            if !out.remote_copies.is_empty() {
                out.steps.push(format!("and one encapsulated copy to each of hosts {:?}", out.remote_copies));
            }
            return Ok(Action::Pass);
        }
        // The sender half: its connection or its egress rules, then the route.
        let mut conn = Conn::default();
        let sent = self.conntrack().send(from, &pkt, ids, &mut checked, &mut conn);
        self.log_flow(from, false, &pkt, sent.is_ok(), &checked, out);
        self.take(&mut checked, out);
        sent?;
        let in_vpc = sender.vpc.cidr.contains(&src);
        let flow = Flow { saddr: src, daddr: dst, ports: pkt.ports, proto: pkt.proto, ttl: frame[ETH_HLEN + 8], in_vpc };
        let decision = match arrived {
            Some(_) if flow.ttl <= 1 => Decision::Expired,
            Some(target) => Decision::Deliver(target),
            None => self.resolve(sender.vpc, sender.table, &flow, out)?,
        };
        let target = match decision {
            Decision::Deliver(target) => target,
            Decision::Expired => return self.icmp_error(sender, header_len, IcmpError::TimeExceeded, out),
            Decision::ToHost => {
                let ct = self.conntrack();
                ct.cache_host(&conn);
                let committed = ct.commit(from, None, &pkt, &mut checked, &conn);
                self.take(&mut checked, out);
                committed?;
                return Ok(Action::Pass);
            }
        };
        // The receiver half: its ingress rules (or its side of the connection).
        let to = Guarded { port: target.port, eni: target.eni, limit: target.limit };
        out.to_port = Some(target.port);
        if matches!(self.conntrack().cached(&conn), Some(Cache::Host)) {
            // Cannot happen: a connection cached as to the host stack is routed there.
            out.steps.push("cached as to the host stack".into());
        }
        let received = self.conntrack().receive(to, &pkt, ids, &mut checked, &mut conn);
        self.log_flow(to, true, &pkt, received.is_ok(), &checked, out);
        self.take(&mut checked, out);
        received?;
        if total_len > usize::from(target.mtu) {
            if u16::from_be_bytes([out.frame[ETH_HLEN + 6], out.frame[ETH_HLEN + 7]]) & 0x4000 != 0 {
                return self.icmp_error(sender, header_len, IcmpError::FragNeeded(target.mtu), out);
            }
            return Err(DropReason::TooBig);
        }
        let committed = self.conntrack().commit(from, Some(to), &pkt, &mut checked, &conn);
        self.take(&mut checked, out);
        committed?;
        if let Some(host) = target.remote {
            return self.encap(sender, &target, host, &pkt, total_len, out);
        }
        let frame = &mut out.frame;
        frame[ETH_HLEN + 8] -= 1;
        let check = u32::from(u16::from_be_bytes([frame[ETH_HLEN + 10], frame[ETH_HLEN + 11]])) + 0x0100;
        let check = (check + u32::from(check >= 0xffff)) as u16;
        frame[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&check.to_be_bytes());
        frame[0..6].copy_from_slice(&target.mac);
        frame[6..12].copy_from_slice(&target.gw_mac);
        out.steps.push(format!("deliver to {} (port {})", target.name, target.port));
        self.deliver(&target.port, &target.id, out)
    }

    /// Move what a conntrack step recorded into the outcome.
    fn take(&self, checked: &mut Checked, out: &mut Outcome) {
        out.rule_hits.append(&mut checked.rule_hits);
        out.steps.append(&mut checked.steps);
        if let Some(port) = checked.refused.take() {
            out.refused_port = Some(port);
        }
        if let Some(rule) = checked.deny_rule.take() {
            out.deny_rule = Some(rule);
        }
        if let Some(to) = checked.opened.take() {
            out.opened = Some(to);
        }
    }

    /// Longest-prefix match in `table` of `vpc`, then a second one in a peer VPC's system table
    /// for a `vpc` route (at most one crossing), then the next hop.
    fn resolve(&self, vpc: &'a Vpc, table: &'a RouteTable, flow: &Flow, out: &mut Outcome) -> Result<Decision<'a>, DropReason> {
        let mut vpc = vpc;
        let mut route = lpm(&self.topology.routes(vpc, table), flow.daddr).ok_or(DropReason::NoRoute)?;
        out.steps.push(format!(
            "route table {} of VPC {}: entry #{} {} -> {}",
            table.name,
            vpc.name,
            route.number,
            route.dst,
            hop_text(&route.next_hop)
        ));
        if let NextHop::Vpc { vpc: peer } = &route.next_hop {
            if !flow.in_vpc {
                out.steps.push(format!("source {} is outside VPC {}: it does not cross to a peer", flow.saddr, vpc.name));
                return Err(DropReason::VpcForeignSource);
            }
            vpc = self.topology.vpc(peer).expect("validated reference");
            let table = vpc.system_table();
            route = lpm(&self.topology.routes(vpc, table), flow.daddr).ok_or(DropReason::NoRoute)?;
            out.steps.push(format!(
                "route table {} of VPC {}: entry #{} {} -> {}",
                table.name,
                vpc.name,
                route.number,
                route.dst,
                hop_text(&route.next_hop)
            ));
            if matches!(route.next_hop, NextHop::Vpc { .. }) {
                return Err(DropReason::VpcHopLimit);
            }
        }
        if route.next_hop == NextHop::Host {
            out.steps.push("to the host's network stack".into());
            return Ok(Decision::ToHost);
        }
        // Whatever the destination is and whatever its groups say, an expiring datagram is
        // answered here.
        if flow.ttl <= 1 {
            return Ok(Decision::Expired);
        }
        match &route.next_hop {
            NextHop::Local => {
                let eni = vpc.enis.iter().find(|e| e.ip == flow.daddr).ok_or(DropReason::UnknownDestination)?;
                Ok(Decision::Deliver(self.target(vpc, &HopTarget::Eni(eni.name.clone()))))
            }
            NextHop::Host => {
                out.steps.push("to the host's network stack".into());
                Ok(Decision::ToHost)
            }
            NextHop::Blackhole => Err(DropReason::Blackhole),
            NextHop::Eni { eni } => Ok(Decision::Deliver(self.target(vpc, &HopTarget::Eni(eni.clone())))),
            NextHop::Gateway { gateway } => Ok(Decision::Deliver(self.target(vpc, &HopTarget::Gateway(gateway.clone())))),
            NextHop::Vpc { .. } => unreachable!("a second crossing was refused above"),
            NextHop::Group(group) => {
                let route_id = route.id.clone().expect("group routes are custom");
                let live: Vec<bool> = group
                    .hops
                    .iter()
                    .enumerate()
                    .map(|(i, hop)| self.target(vpc, &hop.target).reachable && !self.binding.down.contains(&(route_id.clone(), i)))
                    .collect();
                let weights: Vec<u8> = group.hops.iter().map(|h| h.weight).collect();
                let slots = ecmp::slots(&weights, &live);
                let hash = flow_hash(addr_raw(flow.saddr.octets()), addr_raw(flow.daddr.octets()), flow.ports, u32::from(flow.proto));
                let hop = slots[slot_of(hash)];
                out.steps.push(format!("flow hash {hash:#010x}: slot {} -> hop {hop}", slot_of(hash)));
                if hop == NO_HOP {
                    return Err(DropReason::NoLiveHop);
                }
                Ok(Decision::Deliver(self.target(vpc, &group.hops[usize::from(hop)].target)))
            }
        }
    }

    fn target(&self, vpc: &'a Vpc, hop: &HopTarget) -> Target<'a> {
        match hop {
            HopTarget::Eni(name) => {
                let eni = vpc.eni(name).expect("validated reference");
                let vswitch = vpc.vswitch(&eni.vswitch).expect("validated reference");
                let remote = self.binding.cluster.remote_host(eni);
                // Through the overlay, whose headers take from the underlay's MTU.
                let limit = remote.and(self.binding.cluster.tunnel_mtu()).unwrap_or(u16::MAX);
                Target {
                    id: eni.id.clone(),
                    name: eni.name.clone(),
                    port: self.binding.ids.port(&eni.id),
                    mac: eni.mac,
                    gw_mac: vswitch.gateway_mac,
                    mtu: eni.mtu.min(limit),
                    limit: eni.conntrack_limit,
                    eni: if remote.is_some() { None } else { Some((vpc, eni)) },
                    remote,
                    reachable: self.binding.reachable(&eni.id, eni.host.as_deref()),
                }
            }
            HopTarget::Gateway(name) => {
                let gw = vpc.gateway(name).expect("validated reference");
                let remote = self.binding.cluster.remote_gateway(gw);
                let limit = remote.and(self.binding.cluster.tunnel_mtu()).unwrap_or(u16::MAX);
                Target {
                    id: gw.id.clone(),
                    name: gw.name.clone(),
                    port: self.binding.ids.port(&gw.id),
                    mac: gw.mac,
                    gw_mac: gw.local_mac,
                    mtu: gw.mtu.min(limit),
                    limit: gw.conntrack_limit,
                    eni: None,
                    remote,
                    reachable: self.binding.reachable(&gw.id, gw.host.as_deref()),
                }
            }
        }
    }

    /// Redirect to `port`: counted there if its ENI or gateway has an interface, dropped otherwise.
    fn deliver(&self, port: &u32, id: &str, out: &mut Outcome) -> Result<Action, DropReason> {
        if !self.binding.ifindex.contains_key(id) {
            return Err(DropReason::PortDown);
        }
        out.tx_port = Some(*port);
        Ok(Action::Redirect { port: *port })
    }
}

/// ENI `eni` as the sender of what it sends (`remote`: from another host, through the overlay,
/// where no gateway of this host answers it).
fn eni_sender<'a>(vpc: &'a Vpc, vswitch: &'a super::VSwitch, eni: &'a Eni, port: u32, remote: bool) -> Option<Sender<'a>> {
    Some(Sender {
        vpc,
        name: &eni.name,
        mac: eni.mac,
        ip: Some(eni.ip),
        gw_ip: (!remote).then_some(vswitch.gateway),
        gw_mac: vswitch.gateway_mac,
        table: vpc.route_table(&vswitch.route_table)?,
        source_check: eni.source_dest_check,
        port,
        eni: Some(eni),
        limit: eni.conntrack_limit,
        remote,
    })
}

/// Gateway `gw` as the sender of what enters from its network: any source address, routed by
/// the system table.
fn gateway_sender<'a>(vpc: &'a Vpc, gw: &'a super::kinds::gateway::Gateway, port: u32, remote: bool) -> Sender<'a> {
    Sender {
        vpc,
        name: &gw.name,
        mac: gw.mac,
        ip: None,
        gw_ip: None,
        gw_mac: gw.local_mac,
        table: vpc.system_table(),
        source_check: false,
        port,
        eni: None,
        limit: gw.conntrack_limit,
        remote,
    }
}
