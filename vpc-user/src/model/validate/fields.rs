//! Checks every kind shares: names, descriptions, CIDRs, MTUs, connection limits, interface names.

use ipnet::Ipv4Net;

use crate::model::{
    constants::{MAX_CONNTRACK_LIMIT, MAX_MTU, MIN_MTU},
    error::{Problems, code},
    names,
};

pub(super) fn check_name(problems: &mut Problems, field: String, name: &str) {
    if let Err(message) = names::check_name(name) {
        problems.add(code::NAME_MALFORMED, field, message);
    }
}

pub(super) fn check_description(problems: &mut Problems, field: String, text: &Option<String>) {
    if let Some(text) = text
        && let Err(message) = names::check_description(text)
    {
        problems.add(code::DESCRIPTION_MALFORMED, field, message);
    }
}

/// A CIDR in canonical form (no host bits).
pub(super) fn parse_cidr(problems: &mut Problems, field: String, text: &str) -> Option<Ipv4Net> {
    match text.parse::<Ipv4Net>() {
        Ok(net) if net.trunc() == net => Some(net),
        Ok(net) => {
            problems.add(code::CIDR_MALFORMED, field, format!("'{text}' has host bits set; did you mean {}?", net.trunc()));
            None
        }
        Err(_) => {
            problems.add(code::CIDR_MALFORMED, field, format!("'{text}' is not an IPv4 CIDR block like 192.168.0.0/16"));
            None
        }
    }
}

/// The host an ENI or gateway is placed on, if named: a host name.
pub(super) fn check_host(problems: &mut Problems, field: String, host: Option<&String>) {
    if let Some(host) = host
        && !crate::model::binding::is_host_name(host)
    {
        problems.add(
            code::HOST_MALFORMED,
            field,
            format!("'{host}' is not a host name (1-63 lowercase letters, digits and '-', starting with a letter or digit)"),
        );
    }
}

/// An MTU from a file or a call (default when omitted).
pub(super) fn check_mtu(problems: &mut Problems, field: String, mtu: Option<u32>) -> u16 {
    match mtu {
        None => vpc_common::DEFAULT_MTU,
        Some(m) if (MIN_MTU..=MAX_MTU).contains(&m) => m as u16,
        Some(m) => {
            problems.add(code::MTU_MALFORMED, field, format!("MTU {m} is not between {MIN_MTU} and {MAX_MTU}"));
            vpc_common::DEFAULT_MTU
        }
    }
}

/// A connection limit from a file or a call (`None` when omitted).
pub(super) fn check_conntrack_limit(problems: &mut Problems, field: String, limit: Option<u32>) -> Option<u32> {
    match limit {
        Some(l) if !(1..=MAX_CONNTRACK_LIMIT).contains(&l) => {
            problems.add(
                code::CONNTRACK_LIMIT_MALFORMED,
                field,
                format!("connection limit {l} is not between 1 and {MAX_CONNTRACK_LIMIT}"),
            );
            None
        }
        other => other,
    }
}

/// Whether `name` can name a Linux interface: 1-15 characters, no '/', ':' or space.
pub(super) fn is_interface_name(name: &str) -> bool {
    !(name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']))
}
