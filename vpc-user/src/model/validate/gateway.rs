//! A gateway: its networks, the far-side router's address and MAC, an interface name, MTU and
//! connection limit; the VPC side's MAC is derived here.

use std::net::Ipv4Addr;

use super::fields::{check_conntrack_limit, check_description, check_host, check_mtu, check_name, is_interface_name, parse_cidr};
use crate::model::{
    addr,
    error::{Problems, code},
    spec::GatewaySpec,
    topology::Gateway,
};

/// Validate gateway `spec` at field path `at`.
pub(super) fn validate(at: &str, spec: &GatewaySpec, problems: &mut Problems) -> Option<Gateway> {
    check_name(problems, format!("{at}.name"), &spec.name);
    check_description(problems, format!("{at}.description"), &spec.description);
    let mut networks = Vec::new();
    for (i, n) in spec.networks.iter().enumerate() {
        networks.push(parse_cidr(problems, format!("{at}.networks[{i}]"), n)?);
    }
    let ip = match &spec.ip {
        None => None,
        Some(text) => match text.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                problems.add(code::IP_MALFORMED, format!("{at}.ip"), format!("'{text}' is not an IPv4 address"));
                return None;
            }
        },
    };
    let mac = match spec.mac.as_deref().map(addr::parse_mac) {
        Some(Some(mac)) if mac[0] & 1 == 0 && mac != [0; 6] => mac,
        Some(_) => {
            problems.add(
                code::MAC_MALFORMED,
                format!("{at}.mac"),
                format!("'{}' is not a unicast MAC", spec.mac.clone().unwrap_or_default()),
            );
            return None;
        }
        None => addr::derived_mac(0x06, spec.id.as_deref().unwrap_or(&spec.name)),
    };
    if let Some(name) = &spec.interface
        && !is_interface_name(name)
    {
        problems.add(code::INTERFACE_MALFORMED, format!("{at}.interface"), format!("'{name}' is not a Linux interface name"));
    }
    check_host(problems, format!("{at}.host"), spec.host.as_ref());
    let id = spec.id.clone().unwrap_or_default();
    Some(Gateway {
        local_mac: addr::derived_mac(0xee, &format!("{id}/local")),
        id,
        name: spec.name.clone(),
        description: spec.description.clone(),
        networks,
        ip,
        mac,
        interface: spec.interface.clone(),
        mtu: check_mtu(problems, format!("{at}.mtu"), spec.mtu),
        conntrack_limit: check_conntrack_limit(problems, format!("{at}.conntrack_limit"), spec.conntrack_limit).unwrap_or(0),
        host: spec.host.clone(),
    })
}
