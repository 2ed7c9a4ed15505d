//! The overlay between hosts, as the model sees it: a packet to an ENI on another host leaves
//! encapsulated (`vpc_common::tunnel`), and what arrives on the underlay is checked and
//! decapsulated, then goes through the receiver half (or, a multicast copy, to this host's
//! members of its group). The byte layout is `vpc_common::tunnel`'s,
//! shared with the XDP program; what is decided here is which packets get it.

use vpc_common::{
    DropReason, addr_raw, flow_hash,
    mcast::{ARRIVAL_MAGIC, McastArrival, group_mac},
    tunnel::{self, ENCAP_LEN, Encap, MCAST_ENI, OUTER_LEN, Outer, TC_XMIT_MAGIC, TcXmit},
};

use super::{Action, ETH_HLEN, Model, Outcome, Packet, Sender, Target};

impl<'a> Model<'a> {
    /// Send `pkt` (`total_len` bytes of IPv4) from `sender` to `target`, on host `host`: the
    /// inner packet as it came (its TTL is the receiving host's to decrement) behind the outer
    /// headers, redirected to the tunnel port, whose slot is the underlay.
    pub(super) fn encap(
        &self,
        sender: &Sender<'_>,
        target: &Target<'_>,
        host: &str,
        pkt: &Packet,
        total_len: usize,
        out: &mut Outcome,
    ) -> Result<Action, DropReason> {
        let cluster = &self.binding.cluster;
        let (Some(underlay), Some(host), Some(my_ip)) = (cluster.underlay, cluster.hosts.get(host), cluster.my_ip()) else {
            out.steps.push(format!("{} is on host {host}, and this host has no overlay to it", target.name));
            return Err(DropReason::NoUnderlay);
        };
        if !host.up {
            out.steps.push(format!("{} is on a host that is down", target.name));
            return Err(DropReason::HostDown);
        }
        let (saddr, daddr) = (addr_raw(pkt.saddr.octets()), addr_raw(pkt.daddr.octets()));
        let header = tunnel::header(&Encap {
            dst_mac: host.mac,
            src_mac: underlay.mac,
            src_ip: addr_raw(my_ip.octets()),
            dst_ip: addr_raw(host.ip.octets()),
            tos: out.frame[ETH_HLEN + 1],
            inner_len: total_len as u16,
            sport: tunnel::source_port(flow_hash(saddr, daddr, pkt.ports, u32::from(pkt.proto))),
            vni: self.binding.ids.vpc(&sender.vpc.id),
            src_eni: sender.port,
            dst_eni: target.port,
        });
        let mut frame = header.to_vec();
        frame.extend_from_slice(&out.frame[ETH_HLEN..ETH_HLEN + total_len]);
        out.steps.push(format!("encapsulate to host {} ({}) for {} (port {})", host.number, host.ip, target.name, target.port));
        out.tx_port = Some(target.port);
        if underlay.tc_xmit {
            // The metadata in front (the test run's output starts at it), for the TC program.
            let meta = TcXmit { magic: TC_XMIT_MAGIC, port: target.port };
            out.frame = [meta.magic, meta.port].iter().flat_map(|w| w.to_ne_bytes()).chain(frame).collect();
            out.steps.push("XDP cannot transmit on the underlay: to the TC program, which sends it there".into());
            return Ok(Action::Pass);
        }
        out.frame = frame;
        Ok(Action::Redirect { port: target.port })
    }

    /// A frame on the underlay: not Geneve to this host passes; ours is taken only from a
    /// registered host, for an ENI of that host, with its VPC as the VNI, to an ENI or gateway
    /// here; then it is decapsulated and goes through the receiver half.
    pub(super) fn arrive(&mut self, out: &mut Outcome) -> Result<Action, DropReason> {
        let cluster = &self.binding.cluster;
        let (Some(me), Some(my_ip)) = (cluster.me.as_deref(), cluster.my_ip()) else {
            out.steps.push("no underlay here: to the host stack".into());
            return Ok(Action::Pass);
        };
        let Some(h) = out.frame.get(..OUTER_LEN).and_then(|h| <&[u8; OUTER_LEN]>::try_from(h).ok()) else {
            out.steps.push("shorter than the overlay's headers: to the host stack".into());
            return Ok(Action::Pass);
        };
        let (src_ip, vni, src_eni, dst_eni) = match tunnel::outer(h, out.frame.len(), addr_raw(my_ip.octets())) {
            Outer::NotOurs => {
                out.steps.push("not Geneve to this host: to the host stack".into());
                return Ok(Action::Pass);
            }
            Outer::Bad => return Err(DropReason::BadGeneve),
            Outer::Geneve { src_ip, vni, src_eni, dst_eni } => (src_ip, vni, src_eni, dst_eni),
        };
        let ids = &self.binding.ids;
        let topology = self.topology;
        let host = cluster.hosts.iter().find(|(name, h)| *name != me && addr_raw(h.ip.octets()) == src_ip);
        let Some((host_name, host)) = host else { return Err(DropReason::UnknownHost) };
        // The ENI or gateway it claims to come from: one on another host (known, so it has a
        // tunnel).
        let known = |h: Option<&str>| h.is_some_and(|h| cluster.hosts.contains_key(h)) && cluster.underlay.is_some();
        let port = src_eni;
        let from = match topology.enis().find(|(_, _, e)| ids.port(&e.id) == src_eni && known(cluster.remote_host(e))) {
            Some((vpc, vswitch, eni)) => Some((vpc, eni.host.as_deref(), super::eni_sender(vpc, vswitch, eni, port, true))),
            None => topology.vpcs.iter().find_map(|vpc| {
                let gw = vpc.gateways.iter().find(|g| ids.port(&g.id) == src_eni && known(cluster.remote_gateway(g)))?;
                Some((vpc, gw.host.as_deref(), Some(super::gateway_sender(vpc, gw, port, true))))
            }),
        };
        let Some((vpc, placed, sender)) = from else { return Err(DropReason::TunnelSpoofed) };
        let sender = sender.ok_or(DropReason::NoRoute)?;
        if cluster.hosts.get(placed.unwrap_or_default()).map(|h| h.number) != Some(host.number) {
            out.steps.push(format!("{} is not on host {host_name}", sender.name));
            return Err(DropReason::TunnelSpoofed);
        }
        if vni != ids.vpc(&vpc.id) {
            out.steps.push(format!("VNI {vni} is not VPC {}'s", vpc.name));
            return Err(DropReason::UnknownVni);
        }
        // A multicast copy is for every member here (`group_copy`), else one ENI or gateway.
        let target = if dst_eni == MCAST_ENI {
            None
        } else {
            Some(self.local_target(dst_eni).ok_or_else(|| {
                let remote = topology.enis().any(|(_, _, e)| ids.port(&e.id) == dst_eni && cluster.remote_host(e).is_some());
                if remote && cluster.underlay.is_some() { DropReason::TunnelLoop } else { DropReason::UnknownDestination }
            })?)
        };
        // Decapsulated: the inner packet behind an Ethernet header made of the outer bytes it
        // now starts at (its MACs are written on delivery).
        let mut frame = out.frame[ENCAP_LEN..].to_vec();
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        out.frame = frame;
        out.steps.push(format!(
            "from host {host_name}: {} to {}",
            sender.name,
            target.as_ref().map_or("its group's members here", |t| &t.name)
        ));
        out.rx_port = Some(port);
        self.forward_ipv4(&sender, target, out)
    }

    /// A multicast copy from `sender` on another host, for this host's members of group `dst`,
    /// if the group is known here and `sender` is one of its senders (its own host judged its
    /// egress rules). It passes to the TC program with a group's Ethernet header, from the
    /// sender, and the sender named in the metadata in front (`McastArrival`).
    pub(super) fn group_copy(
        &self,
        sender: &Sender<'_>,
        dst: std::net::Ipv4Addr,
        pkt: &Packet,
        out: &mut Outcome,
    ) -> Result<Action, DropReason> {
        let Some(group) = sender.vpc.multicast_groups.iter().find(|g| g.group == dst) else {
            return Err(DropReason::McastUnknownGroup);
        };
        if !sender.eni.is_some_and(|e| group.senders.contains(&e.name)) {
            return Err(DropReason::McastNotSender);
        }
        out.frame[0..6].copy_from_slice(&group_mac(addr_raw(dst.octets())));
        out.frame[6..12].copy_from_slice(&sender.mac);
        let meta = McastArrival {
            magic: ARRIVAL_MAGIC,
            vpc: self.binding.ids.vpc(&sender.vpc.id),
            sender: sender.port,
            vouched: u32::from(pkt.vouched),
        };
        let mut frame: Vec<u8> = [meta.magic, meta.vpc, meta.sender, meta.vouched].iter().flat_map(|w| w.to_ne_bytes()).collect();
        frame.extend_from_slice(&out.frame);
        out.frame = frame;
        out.copies = self.copies(sender, group, pkt);
        out.steps.push(format!("multicast group {dst} from host of {}: to the TC program, for the members here", sender.name));
        Ok(Action::Pass)
    }

    /// The ENI or gateway of this host at `port`, with its interface.
    fn local_target(&self, port: u32) -> Option<Target<'a>> {
        let ids = &self.binding.ids;
        let attached = |id: &str| ids.port(id) == port && self.binding.ifindex.contains_key(id);
        for vpc in &self.topology.vpcs {
            if let Some(eni) = vpc.enis.iter().find(|e| attached(&e.id) && self.binding.cluster.remote_host(e).is_none()) {
                return Some(self.target(vpc, &super::HopTarget::Eni(eni.name.clone())));
            }
            if let Some(gw) = vpc.gateways.iter().find(|g| attached(&g.id)) {
                return Some(self.target(vpc, &super::HopTarget::Gateway(gw.name.clone())));
            }
        }
        None
    }
}
