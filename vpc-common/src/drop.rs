//! Why the data path dropped a frame. The same enum indexes the per-CPU `DROP_STATS` array,
//! names the `vpc stats` row and the Prometheus label, and is what the model predicts.

/// Slots reserved in `DROP_STATS`, so new reasons do not resize the pinned map.
pub const DROP_REASON_SLOTS: u32 = 64;

macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $variant:ident = $value:literal, $name:literal;)+) => {
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum DropReason {
            $($(#[doc = $doc])* $variant = $value,)+
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)+];

            /// Stable snake_case name (stats rows, metric labels, JSON).
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)+
                }
            }

            /// One-line explanation for humans.
            pub const fn describe(self) -> &'static str {
                match self {
                    $(DropReason::$variant => concat!($($doc),+),)+
                }
            }

            pub const fn from_u32(value: u32) -> Option<DropReason> {
                match value {
                    $($value => Some(DropReason::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

drop_reasons! {
    /// Truncated or inconsistent Ethernet, ARP or IPv4 header.
    Malformed = 0, "malformed";
    /// Neither IPv4 nor ARP (IPv6, other EtherTypes).
    NotIpv4 = 1, "not_ipv4";
    /// The frame arrived on an interface the agent has no ENI for.
    UnknownEni = 2, "unknown_eni";
    /// Source MAC is not the ENI's own.
    SpoofedMac = 3, "spoofed_mac";
    /// Source IPv4 address is not the ENI's own (source/destination check on).
    SpoofedIp = 4, "spoofed_ip";
    /// No route in the ENI's route table matches the destination.
    NoRoute = 5, "no_route";
    /// The route says the destination is in a VSwitch, but no ENI has that address.
    UnknownDestination = 6, "unknown_destination";
    /// TTL would reach zero at the gateway.
    TtlExceeded = 7, "ttl_exceeded";
    /// ARP that the gateway does not answer (replies, other senders, targets outside the VPC).
    ArpIgnored = 8, "arp_ignored";
    /// The destination ENI has no interface attached (or is being removed).
    PortDown = 9, "port_down";
    /// A blackhole route matched.
    Blackhole = 10, "blackhole";
    /// A second VPC crossing (a `vpc` route in the peer's table): at most one per packet.
    VpcHopLimit = 11, "vpc_hop_limit";
    /// Every hop of the ECMP or active/standby route is down.
    NoLiveHop = 12, "no_live_hop";
    /// The sender's security groups dropped it (an egress drop rule matched).
    SgEgress = 13, "sg_egress";
    /// The receiver's security groups dropped it (an ingress drop rule matched, or no rule accepted).
    SgIngress = 14, "sg_ingress";
    /// To a multicast group of the VPC, from an ENI that is not one of its senders.
    McastNotSender = 15, "mcast_not_sender";
    /// To a multicast address that is no group of the sender's VPC (IGMP reports included).
    McastUnknownGroup = 16, "mcast_unknown_group";
    /// A later IP fragment whose first fragment was not seen (or has expired).
    FragNoFirst = 17, "frag_no_first";
    /// A first IP fragment too short to hold its transport header (RFC 1858).
    FragTiny = 18, "frag_tiny";
    /// An IP fragment at offset 1, inside the transport header (RFC 1858).
    FragOffsetOne = 19, "frag_offset_one";
    /// An IP fragment overlapping the first fragment, or a second first fragment of a datagram.
    FragOverlap = 20, "frag_overlap";
    /// A new connection beyond the connection limit of the sending or the receiving ENI.
    ConntrackLimit = 21, "conntrack_limit";
    /// A new connection while the connection table is full.
    ConntrackFull = 22, "conntrack_full";
    /// An ICMP error that is not one: a quote that is unreadable or inconsistent (lengths,
    /// protocol, an error about an error), longer than 576 bytes, with IP options, or fragmented;
    /// or a redirect or source quench, which a guest never sends.
    IcmpInvalid = 23, "icmp_invalid";
    /// An 802.1Q / 802.1ad VLAN tag, in the frame or in the packet's metadata.
    VlanTagged = 24, "vlan_tagged";
    /// Longer than the receiving ENI's MTU without DF (with DF the gateway answers
    /// fragmentation needed, unless over the ICMP error rate).
    TooBig = 25, "too_big";
    /// To a peer VPC from a source outside the sender's VPC (an ENI without source/destination
    /// check or a gateway forwarding for other networks: peering is not transit).
    VpcForeignSource = 26, "vpc_foreign_source";
    /// From the overlay with a VNI that is not the sending ENI's VPC.
    UnknownVni = 27, "unknown_vni";
    /// From the overlay, from an underlay address that is no registered host.
    UnknownHost = 28, "unknown_host";
    /// To an ENI on a host that is down or whose underlay neighbour is not resolved.
    HostDown = 29, "host_down";
    /// To an ENI on another host while this host has no underlay interface configured.
    NoUnderlay = 30, "no_underlay";
    /// From the overlay, claiming a source ENI that is not on the host it came from.
    TunnelSpoofed = 31, "tunnel_spoofed";
    /// A Geneve packet to this host that is not one of ours: version, lengths, checksum,
    /// options, a fragmented outer packet, or an unknown ENI number.
    BadGeneve = 32, "bad_geneve";
    /// From the overlay to an ENI that is not on this host: never sent on again.
    TunnelLoop = 33, "tunnel_loop";
}
