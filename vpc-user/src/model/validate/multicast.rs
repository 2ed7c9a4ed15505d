//! Multicast groups of a VPC: a multicast address outside 224.0.0.0/24, defined once, senders and
//! members that are ENIs of the VPC, listed once, within the guide's limits.

use std::{collections::BTreeSet, net::Ipv4Addr};

use crate::model::{
    error::{Problems, code},
    multicast::{MAX_GROUPS_PER_MEMBER, MAX_GROUPS_PER_SENDER, MAX_MEMBERS, McastGroup},
    spec::McastGroupSpec,
    topology::Eni,
};

/// Validate a VPC's groups against its ENIs (`at` is the VPC's field path).
pub(super) fn validate_groups(at: &str, specs: &[McastGroupSpec], enis: &[Eni], problems: &mut Problems) -> Vec<McastGroup> {
    let mut out: Vec<McastGroup> = Vec::new();
    let eni_names: BTreeSet<&str> = enis.iter().map(|e| e.name.as_str()).collect();
    for (i, spec) in specs.iter().enumerate() {
        let at = format!("{at}.multicast_groups[{i}]");
        let group = match spec.group.parse::<Ipv4Addr>() {
            Ok(a) if a.is_multicast() && !(a.octets()[0] == 224 && a.octets()[1] == 0 && a.octets()[2] == 0) => a,
            Ok(a) if a.is_multicast() => {
                problems.add(
                    code::MCAST_GROUP_ADDRESS,
                    format!("{at}.group"),
                    format!("{a} is in 224.0.0.0/24, reserved for local network control"),
                );
                continue;
            }
            _ => {
                problems.add(
                    code::MCAST_GROUP_ADDRESS,
                    format!("{at}.group"),
                    format!("'{}' is not a multicast address (224.0.0.0/4)", spec.group),
                );
                continue;
            }
        };
        if out.iter().any(|g| g.group == group) {
            problems.add(code::MCAST_GROUP_DUPLICATE, format!("{at}.group"), format!("group {group} is defined twice in this VPC"));
            continue;
        }
        for (list, what) in [(&spec.senders, "senders"), (&spec.members, "members")] {
            let mut seen = BTreeSet::new();
            for (k, name) in list.iter().enumerate() {
                if !eni_names.contains(name.as_str()) {
                    problems.add(
                        code::MCAST_ENI_NOT_FOUND,
                        format!("{at}.{what}[{k}]"),
                        format!("the VPC has no ENI '{name}' (a group never reaches another VPC)"),
                    );
                }
                if !seen.insert(name) {
                    problems.add(code::MCAST_GROUP_DUPLICATE, format!("{at}.{what}[{k}]"), format!("ENI '{name}' is listed twice"));
                }
            }
        }
        if spec.members.len() > MAX_MEMBERS {
            problems.add(
                code::MCAST_LIMIT,
                format!("{at}.members"),
                format!("{} members exceed the limit of {MAX_MEMBERS} per group", spec.members.len()),
            );
        }
        out.push(McastGroup {
            id: spec.id.clone().unwrap_or_default(),
            group,
            senders: spec.senders.clone(),
            members: spec.members.clone(),
        });
    }
    for eni in enis {
        let sends = out.iter().filter(|g| g.senders.contains(&eni.name)).count();
        if sends > MAX_GROUPS_PER_SENDER {
            problems.add(
                code::MCAST_LIMIT,
                format!("{at}.multicast_groups"),
                format!("ENI '{}' sends to {sends} groups; the limit is {MAX_GROUPS_PER_SENDER}", eni.name),
            );
        }
        let joined = out.iter().filter(|g| g.members.contains(&eni.name)).count();
        if joined > MAX_GROUPS_PER_MEMBER {
            problems.add(
                code::MCAST_LIMIT,
                format!("{at}.multicast_groups"),
                format!("ENI '{}' is a member of {joined} groups; the limit is {MAX_GROUPS_PER_MEMBER}", eni.name),
            );
        }
    }
    out
}
