//! An ENI: its VSwitch, an address inside it that is not reserved, a unicast MAC, an interface
//! name, MTU and connection limit.

use std::net::Ipv4Addr;

use super::fields::{check_conntrack_limit, check_host, check_mtu, check_name, is_interface_name};
use crate::model::{
    addr,
    error::{Problems, code},
    spec::EniSpec,
    topology::{Eni, VSwitch},
};

/// Validate ENI `spec` of VPC `vpc_name` against its valid `vswitches` (`declared`: every
/// VSwitch the document names, valid or not).
pub(super) fn validate(
    at: &str,
    vpc_name: &str,
    vswitches: &[VSwitch],
    declared: &[&str],
    spec: &EniSpec,
    problems: &mut Problems,
) -> Option<Eni> {
    check_name(problems, format!("{at}.name"), &spec.name);
    let Some(vsw) = vswitches.iter().find(|v| v.name == spec.vswitch) else {
        if !declared.contains(&spec.vswitch.as_str()) {
            problems.add(code::VSWITCH_NOT_FOUND, format!("{at}.vswitch"), format!("VPC '{vpc_name}' has no VSwitch '{}'", spec.vswitch));
        }
        // A declared but invalid VSwitch already has its own problem reported.
        return None;
    };
    let Some(ip_text) = &spec.ip else {
        problems.add(code::IP_NO_FREE, format!("{at}.ip"), format!("VSwitch '{}' ({}) has no free address left", vsw.name, vsw.cidr));
        return None;
    };
    let Ok(ip) = ip_text.parse::<Ipv4Addr>() else {
        problems.add(code::IP_MALFORMED, format!("{at}.ip"), format!("'{ip_text}' is not an IPv4 address"));
        return None;
    };
    if !vsw.cidr.contains(&ip) {
        problems.add(code::IP_NOT_IN_VSWITCH, format!("{at}.ip"), format!("{ip} is not inside VSwitch '{}' ({})", vsw.name, vsw.cidr));
        return None;
    }
    if addr::is_reserved(vsw.cidr, ip) {
        problems.add(
            code::IP_RESERVED,
            format!("{at}.ip"),
            format!("{ip} is reserved in {} (the first address and the last three are the system's)", vsw.cidr),
        );
        return None;
    }
    let mac = match &spec.mac {
        None => addr::derived_mac(0x02, spec.id.as_deref().unwrap_or(&spec.name)),
        Some(text) => match addr::parse_mac(text) {
            Some(mac) if mac[0] & 1 == 0 && mac != [0; 6] => mac,
            _ => {
                problems.add(code::MAC_MALFORMED, format!("{at}.mac"), format!("'{text}' is not a unicast MAC like 02:00:00:00:00:01"));
                return None;
            }
        },
    };
    if let Some(name) = &spec.interface
        && !is_interface_name(name)
    {
        problems.add(
            code::INTERFACE_MALFORMED,
            format!("{at}.interface"),
            format!("'{name}' is not a Linux interface name (1-15 characters, no '/', ':' or space)"),
        );
    }
    check_host(problems, format!("{at}.host"), spec.host.as_ref());
    Some(Eni {
        id: spec.id.clone().unwrap_or_default(),
        name: spec.name.clone(),
        vswitch: spec.vswitch.clone(),
        ip,
        mac,
        interface: spec.interface.clone(),
        source_dest_check: spec.source_dest_check.unwrap_or(true),
        security_groups: spec.security_groups.clone(),
        mtu: check_mtu(problems, format!("{at}.mtu"), spec.mtu),
        // 0 until the VPC's default applies.
        conntrack_limit: check_conntrack_limit(problems, format!("{at}.conntrack_limit"), spec.conntrack_limit).unwrap_or(0),
        host: spec.host.clone(),
    })
}
