//! Security groups: checking rules and the reference semantics of a verdict (the types, as written
//! and as validated, are in `kinds::security_group`).
//!
//! A rule has a direction, a policy, a protocol, a destination port range (tcp/udp only), a peer
//! (a CIDR block, or the members of a group of the same VPC) and a priority 1-100 (1 first). For
//! an ENI the rules of all its groups apply together: the matching rule with the lowest priority
//! decides, drop beating accept at the same priority. Members of a group reach each other by the
//! group's intra-group policy (accept unless set to drop), an implicit ingress rule after every
//! explicit one. No rule matched: ingress drops, egress accepts.

use ipnet::Ipv4Net;

use super::{
    error::{Problems, code},
    names,
    spec::{PeerSpec, SecurityGroupSpec, SgRuleSpec},
};

// Kept at their old paths for callers that import them from here.
pub use super::constants::DEFAULT_GROUP;
pub use super::kinds::security_group::{Direction, Peer, Protocol, SecurityGroup, SgRule};
/// Groups an ENI may belong to.
pub const MAX_GROUPS_PER_ENI: usize = vpc_common::sg::MAX_ENI_GROUPS;
/// Rules a group may hold, whatever the quota: what the data path's bitmaps have room for
/// (one more bit is the intra-group rule).
pub const MAX_RULES_PER_GROUP: usize = 10_000;

/// The rules a VPC's default group gets when it is created for an ENI listed without groups:
/// SSH, RDP and ICMP from anywhere, at the lowest priority, as the cloud's default group.
pub fn default_group() -> SecurityGroupSpec {
    let rule = |protocol: &str, ports: &str| SgRuleSpec {
        id: None,
        direction: "ingress".into(),
        policy: Some("accept".into()),
        protocol: protocol.into(),
        ports: Some(ports.into()),
        peer: PeerSpec::Cidr("0.0.0.0/0".into()),
        priority: Some(100),
        description: None,
    };
    SecurityGroupSpec {
        id: None,
        name: DEFAULT_GROUP.into(),
        description: Some("The VPC's default security group".into()),
        intra_group: None,
        rules: vec![rule("tcp", "22/22"), rule("tcp", "3389/3389"), rule("icmp", "-1/-1")],
    }
}

/// A rule's identity for keeping its ID across applies: everything but ID and description.
pub fn rule_key(rule: &SgRuleSpec) -> String {
    let peer = match &rule.peer {
        PeerSpec::Cidr(c) => c.clone(),
        PeerSpec::Group { group } => format!("group:{group}"),
    };
    format!(
        "{}|{}|{}|{}|{}|{}",
        rule.direction,
        rule.policy.as_deref().unwrap_or("accept"),
        rule.protocol,
        rule.ports.as_deref().unwrap_or("-1/-1"),
        peer,
        rule.priority.unwrap_or(1)
    )
}

/// Validate the groups of a VPC (`at` is the VPC's field path).
pub fn groups(at: &str, specs: &[SecurityGroupSpec], max_groups: u32, max_rules: u32, problems: &mut Problems) -> Vec<SecurityGroup> {
    let names: Vec<&str> = specs.iter().map(|g| g.name.as_str()).collect();
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    if specs.len() > max_groups as usize {
        problems.add(
            code::QUOTA_SG,
            format!("{at}.security_groups"),
            format!("{} security groups exceed the quota of {max_groups} per VPC", specs.len()),
        );
    }
    for (i, spec) in specs.iter().enumerate() {
        let at = format!("{at}.security_groups[{i}]");
        if let Err(message) = names::check_name(&spec.name) {
            problems.add(code::NAME_MALFORMED, format!("{at}.name"), message);
        }
        if !seen.insert(spec.name.as_str()) {
            problems.add(code::NAME_DUPLICATE, format!("{at}.name"), format!("security group name '{}' is used twice", spec.name));
        }
        if let Some(text) = &spec.description
            && let Err(message) = names::check_description(text)
        {
            problems.add(code::DESCRIPTION_MALFORMED, format!("{at}.description"), message);
        }
        let intra_accept = match spec.intra_group.as_deref() {
            None | Some("accept") => true,
            Some("drop") => false,
            Some(other) => {
                problems.add(code::SG_INTRA_POLICY, format!("{at}.intra_group"), format!("intra_group is accept or drop, not '{other}'"));
                true
            }
        };
        check_rule_count(&at, spec.rules.len(), max_rules, problems);
        let mut rules: Vec<SgRule> = Vec::new();
        let mut keys = std::collections::HashSet::new();
        for (j, rule_spec) in spec.rules.iter().enumerate() {
            let at = format!("{at}.rules[{j}]");
            let Some(rule) = rule(&at, rule_spec, &names, problems) else { continue };
            if !keys.insert(rule_key(rule_spec)) {
                problems.add(code::SG_RULE_DUPLICATE, at, "the group already has this rule");
                continue;
            }
            rules.push(rule);
        }
        out.push(SecurityGroup {
            id: spec.id.clone().unwrap_or_default(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            intra_accept,
            rules,
        });
    }
    out
}

fn check_rule_count(at: &str, count: usize, max_rules: u32, problems: &mut Problems) {
    let limit = (max_rules as usize).min(MAX_RULES_PER_GROUP);
    if count > limit {
        problems.add(code::QUOTA_SG_RULE, format!("{at}.rules"), format!("{count} rules exceed the limit of {limit} per security group"));
    }
}

/// Rule `rule`, not yet in group `j` of VPC `i` (`vpc`, valid), checked by the same rules and
/// giving the same problems as validating the VPC with it appended would: only the rule and
/// the group's quota can break. The caller makes sure no rule of the group has its key.
pub fn validate_appended_rule(
    (i, j): (usize, usize),
    vpc: &super::spec::VpcSpec,
    rule_spec: &SgRuleSpec,
    max_rules: u32,
) -> Result<SgRule, super::error::Invalid> {
    let mut problems = Problems::default();
    let at = format!("vpcs[{i}].security_groups[{j}]");
    let count = vpc.security_groups[j].rules.len();
    check_rule_count(&at, count + 1, max_rules, &mut problems);
    let names: Vec<&str> = vpc.security_groups.iter().map(|g| g.name.as_str()).collect();
    let checked = rule(&format!("{at}.rules[{count}]"), rule_spec, &names, &mut problems);
    problems.finish(())?;
    Ok(checked.expect("no problems: the rule validated"))
}

/// Parse `start/end`: `-1/-1` for all, else 1 <= start <= end <= 65535.
pub fn parse_ports(text: &str) -> Result<Option<(u16, u16)>, String> {
    let bad = || format!("'{text}' is not a port range like 80/80, 1024/65535 or -1/-1");
    let (lo, hi) = text.split_once('/').ok_or_else(bad)?;
    if lo.trim() == "-1" && hi.trim() == "-1" {
        return Ok(None);
    }
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || lo > hi {
        return Err(bad());
    }
    Ok(Some((lo, hi)))
}

fn rule(at: &str, spec: &SgRuleSpec, groups: &[&str], problems: &mut Problems) -> Option<SgRule> {
    let direction = match spec.direction.as_str() {
        "ingress" => Some(Direction::Ingress),
        "egress" => Some(Direction::Egress),
        other => {
            problems.add(code::SG_DIRECTION, format!("{at}.direction"), format!("direction is ingress or egress, not '{other}'"));
            None
        }
    };
    let accept = match spec.policy.as_deref() {
        None | Some("accept") => Some(true),
        Some("drop") => Some(false),
        Some(other) => {
            problems.add(code::SG_POLICY, format!("{at}.policy"), format!("policy is accept or drop, not '{other}'"));
            None
        }
    };
    let protocol = match spec.protocol.to_ascii_lowercase().as_str() {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        "icmp" => Some(Protocol::Icmp),
        "gre" => Some(Protocol::Gre),
        "all" => Some(Protocol::All),
        other => {
            problems.add(code::SG_PROTOCOL, format!("{at}.protocol"), format!("protocol is tcp, udp, icmp, gre or all, not '{other}'"));
            None
        }
    };
    let ports = match parse_ports(spec.ports.as_deref().unwrap_or("-1/-1")) {
        Ok(Some(range)) if protocol.is_some_and(|p| !p.has_ports()) => {
            let _ = range;
            problems.add(
                code::SG_PORT_RANGE,
                format!("{at}.ports"),
                format!("{} rules apply to all ports: the range must be -1/-1", spec.protocol),
            );
            None
        }
        Ok(ports) => Some(ports),
        Err(message) => {
            problems.add(code::SG_PORT_RANGE, format!("{at}.ports"), message);
            None
        }
    };
    let peer = match &spec.peer {
        PeerSpec::Cidr(text) => {
            let text = if text.contains('/') { text.clone() } else { format!("{text}/32") };
            match text.parse::<Ipv4Net>() {
                Ok(net) if net.trunc() == net => Some(Peer::Cidr(net)),
                Ok(net) => {
                    problems.add(code::SG_PEER, format!("{at}.peer"), format!("'{text}' has host bits set; did you mean {}?", net.trunc()));
                    None
                }
                Err(_) => {
                    problems.add(code::SG_PEER, format!("{at}.peer"), format!("'{text}' is not an IPv4 CIDR block or {{group: NAME}}"));
                    None
                }
            }
        }
        PeerSpec::Group { group } if groups.contains(&group.as_str()) => Some(Peer::Group(group.clone())),
        PeerSpec::Group { group } => {
            problems.add(code::SG_NOT_FOUND, format!("{at}.peer.group"), format!("the VPC has no security group '{group}'"));
            None
        }
    };
    let priority = match spec.priority.unwrap_or(1) {
        p @ 1..=100 => Some(p as u8),
        other => {
            problems.add(code::SG_PRIORITY, format!("{at}.priority"), format!("priority is 1 to 100, not {other}"));
            None
        }
    };
    if let Some(text) = &spec.description
        && let Err(message) = names::check_description(text)
    {
        problems.add(code::DESCRIPTION_MALFORMED, format!("{at}.description"), message);
    }
    Some(SgRule {
        id: spec.id.clone().unwrap_or_default(),
        direction: direction?,
        accept: accept?,
        protocol: protocol?,
        ports: ports?,
        peer: peer?,
        priority: priority?,
        description: spec.description.clone(),
    })
}

/// Check an ENI's group list against the VPC's groups (after normalization gave it at least one).
pub fn check_membership(at: &str, listed: &[String], groups: &[SecurityGroup], problems: &mut Problems) {
    if listed.is_empty() || listed.len() > MAX_GROUPS_PER_ENI {
        problems.add(
            code::SG_COUNT,
            format!("{at}.security_groups"),
            format!("an ENI belongs to 1 to {MAX_GROUPS_PER_ENI} security groups, not {}", listed.len()),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for (k, name) in listed.iter().enumerate() {
        if !groups.iter().any(|g| &g.name == name) {
            problems.add(code::SG_NOT_FOUND, format!("{at}.security_groups[{k}]"), format!("the VPC has no security group '{name}'"));
        }
        if !seen.insert(name) {
            problems.add(code::SG_COUNT, format!("{at}.security_groups[{k}]"), format!("security group '{name}' is listed twice"));
        }
    }
}

/// Which rule decided, by its precedence and counter, as the data path counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub accept: bool,
    /// The deciding rule's counter; none for the default verdict.
    pub rule: Option<u32>,
}

/// One candidate rule of a group's set in the data path's order: explicit rules by precedence,
/// then the intra-group rule (ingress only).
pub struct Candidate<'a> {
    pub precedence: u16,
    pub accept: bool,
    /// The rule, or none for the intra-group rule.
    pub rule: Option<&'a SgRule>,
}

/// The set of `group` in `direction`, in order.
pub fn candidates(group: &SecurityGroup, direction: Direction) -> Vec<Candidate<'_>> {
    let mut out: Vec<Candidate<'_>> =
        group.ordered(direction).into_iter().map(|r| Candidate { precedence: r.precedence(), accept: r.accept, rule: Some(r) }).collect();
    if direction == Direction::Ingress {
        let policy = if group.intra_accept { vpc_common::sg::policy::ACCEPT } else { vpc_common::sg::policy::DROP };
        out.push(Candidate {
            precedence: vpc_common::sg::precedence(vpc_common::sg::INTRA_GROUP_PRIORITY, policy),
            accept: group.intra_accept,
            rule: None,
        });
    }
    out
}
