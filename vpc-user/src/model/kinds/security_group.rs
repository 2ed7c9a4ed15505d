//! Security groups and their rules, as written and as validated. How a rule is checked and what a
//! verdict is: `model::security`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::{change::Change, constants::DEFAULT_GROUP};

/// What every security group ID starts with.
pub const ID_PREFIX: &str = "sg";
/// What every security group rule ID starts with.
pub const RULE_ID_PREFIX: &str = "sgr";

/// A security group: rules deciding what may enter and leave its member ENIs.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What members may send each other when no rule says otherwise: `accept` (default) or `drop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intra_group: Option<String>,
    #[serde(default)]
    pub rules: Vec<SgRuleSpec>,
}

/// One rule of a security group.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SgRuleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `accept` (default) or `drop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// `tcp`, `udp`, `icmp`, `gre` or `all`.
    pub protocol: String,
    /// Destination port range `start/end` for tcp and udp; `-1/-1` (the default) for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<String>,
    /// The other end: a CIDR block, or `{group: NAME}` for the members of a group of the VPC.
    pub peer: PeerSpec,
    /// 1 (first, the default) to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The other end of a rule.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(untagged)]
pub enum PeerSpec {
    Cidr(String),
    Group { group: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Ingress,
    Egress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Gre,
    All,
}

impl Protocol {
    /// Whether a packet of IP protocol `proto` is of this rule's protocol.
    pub fn matches(self, proto: u8) -> bool {
        match self {
            Protocol::Tcp => proto == 6,
            Protocol::Udp => proto == 17,
            Protocol::Icmp => proto == 1,
            Protocol::Gre => proto == 47,
            Protocol::All => true,
        }
    }

    pub(in crate::model) fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    Cidr(Ipv4Net),
    /// The members of this group (by name) of the same VPC.
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SgRule {
    pub id: String,
    pub direction: Direction,
    pub accept: bool,
    pub protocol: Protocol,
    /// Destination ports, inclusive; `None` for all.
    pub ports: Option<(u16, u16)>,
    pub peer: Peer,
    pub priority: u8,
    pub description: Option<String>,
}

impl SgRule {
    pub fn direction_name(&self) -> &'static str {
        match self.direction {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    pub fn protocol_name(&self) -> &'static str {
        match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Gre => "gre",
            Protocol::All => "all",
        }
    }

    /// The rule's precedence: lower wins; drop before accept at the same priority.
    pub fn precedence(&self) -> u16 {
        vpc_common::sg::precedence(self.priority, if self.accept { vpc_common::sg::policy::ACCEPT } else { vpc_common::sg::policy::DROP })
    }

    /// Whether the rule matches a packet of `proto` to `dport` (none: no ports, as for fragments
    /// and protocols without ports) whose other end is `peer` (members: the peer group's).
    pub fn matches(&self, proto: u8, dport: Option<u16>, peer: Ipv4Addr, members: &dyn Fn(&str) -> Vec<Ipv4Addr>) -> bool {
        self.protocol.matches(proto)
            && match self.ports {
                None => true,
                Some((lo, hi)) => dport.is_some_and(|p| lo <= p && p <= hi),
            }
            && match &self.peer {
                Peer::Cidr(net) => net.contains(&peer),
                Peer::Group(group) => members(group).contains(&peer),
            }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Members reach each other unless a rule says otherwise (the intra-group policy).
    pub intra_accept: bool,
    pub rules: Vec<SgRule>,
}

impl SecurityGroup {
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_GROUP
    }

    /// The rules of `direction` in the order the data path tries them: by precedence, ties in
    /// the order they were written.
    pub fn ordered(&self, direction: Direction) -> Vec<&SgRule> {
        let mut rules: Vec<&SgRule> = self.rules.iter().filter(|r| r.direction == direction).collect();
        rules.sort_by_key(|r| r.precedence());
        rules
    }
}

/// Added, changed and removed groups of a VPC that is there now (`old`: its groups before, when
/// it was there).
pub fn diff(out: &mut Vec<Change>, vpc: &str, old: Option<&[SecurityGroup]>, new: &[SecurityGroup]) {
    for group in new {
        let name = format!("{}/{}", vpc, group.name);
        match old.and_then(|o| o.iter().find(|g| g.name == group.name)) {
            // A new VPC's default group comes with it.
            None if old.is_none() && group.is_default() => {}
            None => out.push(Change::Add { kind: "security group", name: format!("{name} ({} rules)", group.rules.len()) }),
            Some(before) => {
                let was: std::collections::BTreeSet<_> = before.rules.iter().map(|r| &r.id).collect();
                let now: std::collections::BTreeSet<_> = group.rules.iter().map(|r| &r.id).collect();
                let (added, removed) = (now.difference(&was).count(), was.difference(&now).count());
                let mut what = Vec::new();
                if added + removed > 0 {
                    what.push(format!("rules +{added} -{removed}"));
                }
                if before.intra_accept != group.intra_accept {
                    what.push(format!("intra_group {}", if group.intra_accept { "accept" } else { "drop" }));
                }
                if !what.is_empty() {
                    out.push(Change::Modify { kind: "security group", name, what: what.join(", ") });
                }
            }
        }
    }
    for group in old.unwrap_or_default() {
        if !new.iter().any(|g| g.name == group.name) {
            out.push(Change::Remove { kind: "security group", name: format!("{}/{}", vpc, group.name) });
        }
    }
}
