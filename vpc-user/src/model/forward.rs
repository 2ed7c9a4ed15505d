//! Reference semantics of the data path, written for clarity rather than speed: given the
//! topology and a frame arriving from an ENI, what must happen to it. The XDP program must agree
//! with this on the verdict, the output port, the output bytes and the counters (see the TestRun
//! differential tests).

use std::net::Ipv4Addr;

use vpc_common::DropReason;

use super::{binding::Binding, topology::NextHop, Eni, Topology, VSwitch, Vpc};

const ETH_HLEN: usize = 14;

/// What the data path does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Drop(DropReason),
    /// Redirected to the ENI on `port` (ARP replies go back to the asker's own port).
    Redirect { port: u32 },
    /// Handed to the host's network stack (XDP_PASS).
    Pass,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub action: Action,
    /// The frame as it leaves (unchanged for drops).
    pub frame: Vec<u8>,
    /// Port credited with the received frame (rx), if the sender is a known ENI.
    pub rx_port: Option<u32>,
    /// Port credited with the delivered frame (tx).
    pub tx_port: Option<u32>,
    /// Human-readable steps of the decision, for `vpc trace` and failing tests.
    pub steps: Vec<String>,
}

pub struct Model<'a> {
    pub topology: &'a Topology,
    pub binding: &'a Binding,
}

/// The ENI a frame came from, with everything the decision needs about it.
struct Sender<'a> {
    vpc: &'a Vpc,
    vswitch: &'a VSwitch,
    eni: &'a Eni,
    port: u32,
}

impl<'a> Model<'a> {
    pub fn new(topology: &'a Topology, binding: &'a Binding) -> Self {
        Model { topology, binding }
    }

    /// Decide what happens to `frame` arriving on interface `ifindex`.
    pub fn process(&self, ifindex: u32, frame: &[u8]) -> Outcome {
        let mut out = Outcome { action: Action::Drop(DropReason::Malformed), frame: frame.to_vec(), rx_port: None, tx_port: None, steps: Vec::new() };
        match self.decide(ifindex, &mut out) {
            Ok(action) => out.action = action,
            Err(reason) => {
                out.steps.push(format!("drop: {}", reason.name()));
                out.action = Action::Drop(reason);
            }
        }
        out
    }

    fn sender(&self, ifindex: u32) -> Option<Sender<'a>> {
        let id = self.binding.eni_at(ifindex)?;
        let (vpc, vswitch, eni) = self.topology.enis().find(|(_, _, e)| e.id == id)?;
        Some(Sender { vpc, vswitch, eni, port: self.binding.ids.port(id) })
    }

    fn decide(&self, ifindex: u32, out: &mut Outcome) -> Result<Action, DropReason> {
        let sender = self.sender(ifindex).ok_or(DropReason::UnknownEni)?;
        out.rx_port = Some(sender.port);
        out.steps.push(format!("from ENI {} (VPC {}, VSwitch {})", sender.eni.name, sender.vpc.name, sender.vswitch.name));
        if out.frame.len() < ETH_HLEN {
            return Err(DropReason::Malformed);
        }
        if out.frame[6..12] != sender.eni.mac {
            return Err(DropReason::SpoofedMac);
        }
        match u16::from_be_bytes([out.frame[12], out.frame[13]]) {
            0x0800 => self.forward_ipv4(&sender, out),
            0x0806 => match answer_arp(&sender, out)? {
                ArpVerdict::Answered => self.deliver(sender.port, out),
                ArpVerdict::ToHost => Ok(Action::Pass),
            },
            _ => Err(DropReason::NotIpv4),
        }
    }

    fn forward_ipv4(&self, sender: &Sender<'a>, out: &mut Outcome) -> Result<Action, DropReason> {
        let frame = &mut out.frame;
        let ip = frame.get(ETH_HLEN..ETH_HLEN + 20).ok_or(DropReason::Malformed)?;
        let header_len = usize::from(ip[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ip[0] >> 4 != 4 || header_len < 20 || total_len < header_len || total_len > frame.len() - ETH_HLEN {
            return Err(DropReason::Malformed);
        }
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        if src != sender.eni.ip && sender.eni.source_dest_check {
            return Err(DropReason::SpoofedIp);
        }
        // The ENI's VSwitch's route table: system and custom entries, longest prefix wins.
        let table = sender.vpc.route_table(&sender.vswitch.route_table).expect("validated reference");
        let (prefix, hop) = sender
            .vpc
            .effective_routes(table)
            .into_iter()
            .filter(|(net, _)| net.contains(&dst))
            .max_by_key(|(net, _)| net.prefix_len())
            .ok_or(DropReason::NoRoute)?;
        out.steps.push(format!("route table {}: {prefix} -> {hop:?}", table.name));
        let dest = match &hop {
            NextHop::Local => sender.vpc.enis.iter().find(|e| e.ip == dst).ok_or(DropReason::UnknownDestination)?,
            NextHop::Eni { eni } => sender.vpc.eni(eni).expect("validated reference"),
            NextHop::Host => return Ok(Action::Pass),
            NextHop::Blackhole => return Err(DropReason::Blackhole),
        };
        let dest_vswitch = sender.vpc.vswitch(&dest.vswitch).expect("validated reference");
        let port = self.binding.ids.port(&dest.id);
        out.steps.push(format!("next hop: ENI {} (port {port})", dest.name));

        let ttl = frame[ETH_HLEN + 8];
        if ttl <= 1 {
            return Err(DropReason::TtlExceeded);
        }
        frame[ETH_HLEN + 8] = ttl - 1;
        let check = u32::from(u16::from_be_bytes([frame[ETH_HLEN + 10], frame[ETH_HLEN + 11]])) + 0x0100;
        let check = (check + u32::from(check >= 0xffff)) as u16;
        frame[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&check.to_be_bytes());
        frame[0..6].copy_from_slice(&dest.mac);
        frame[6..12].copy_from_slice(&dest_vswitch.gateway_mac);
        self.deliver(port, out)
    }

    /// Redirect to `port`: counted there if the ENI has an interface, dropped otherwise.
    fn deliver(&self, port: u32, out: &mut Outcome) -> Result<Action, DropReason> {
        let attached = self.binding.ids.ports.iter().any(|(id, p)| *p == port && self.binding.ifindex.contains_key(id));
        if !attached {
            return Err(DropReason::PortDown);
        }
        out.tx_port = Some(port);
        Ok(Action::Redirect { port })
    }
}

enum ArpVerdict {
    /// A reply was built in place, for the asker.
    Answered,
    /// A guest's reply to the host itself: for the host stack.
    ToHost,
}

/// The gateway answers ARP requests for any address of the VPC but the sender's own; the reply
/// is built in place and goes back to the asker. A guest's replies to the gateway MAC (the host
/// interface's own) go to the host stack.
fn answer_arp(sender: &Sender<'_>, out: &mut Outcome) -> Result<ArpVerdict, DropReason> {
    let frame = &mut out.frame;
    let arp = frame.get(ETH_HLEN..ETH_HLEN + 28).ok_or(DropReason::Malformed)?;
    let (htype, ptype, hlen, plen) = (u16::from_be_bytes([arp[0], arp[1]]), u16::from_be_bytes([arp[2], arp[3]]), arp[4], arp[5]);
    if htype != 1 || ptype != 0x0800 || hlen != 6 || plen != 4 {
        return Err(DropReason::Malformed);
    }
    let oper = u16::from_be_bytes([arp[6], arp[7]]);
    if oper != 1 && oper != 2 {
        return Err(DropReason::ArpIgnored);
    }
    if arp[8..14] != sender.eni.mac {
        return Err(DropReason::SpoofedMac);
    }
    let sender_ip = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
    let target_ip = Ipv4Addr::new(arp[24], arp[25], arp[26], arp[27]);
    if oper == 2 {
        if sender_ip != sender.eni.ip && sender.eni.source_dest_check {
            return Err(DropReason::SpoofedIp);
        }
        return if arp[18..24] == sender.vswitch.gateway_mac { Ok(ArpVerdict::ToHost) } else { Err(DropReason::ArpIgnored) };
    }
    if sender_ip.is_unspecified() {
        return Err(DropReason::ArpIgnored);
    }
    if sender_ip != sender.eni.ip && sender.eni.source_dest_check {
        return Err(DropReason::SpoofedIp);
    }
    if !sender.vpc.cidr.contains(&target_ip) || target_ip == sender.eni.ip {
        return Err(DropReason::ArpIgnored);
    }
    out.steps.push(format!("ARP: {target_ip} is-at {} (gateway)", super::addr::format_mac(&sender.vswitch.gateway_mac)));
    let a = ETH_HLEN;
    frame[a + 7] = 2; // reply
    let requester_mac: [u8; 6] = frame[a + 8..a + 14].try_into().expect("6 bytes");
    frame.copy_within(a + 8..a + 18, a + 18); // tha/tpa = sha/spa
    frame[a + 8..a + 14].copy_from_slice(&sender.vswitch.gateway_mac);
    frame[a + 14..a + 18].copy_from_slice(&target_ip.octets());
    frame[0..6].copy_from_slice(&requester_mac);
    frame[6..12].copy_from_slice(&sender.vswitch.gateway_mac);
    Ok(ArpVerdict::Answered)
}
