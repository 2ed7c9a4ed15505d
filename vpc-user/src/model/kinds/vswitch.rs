//! VSwitches: a zone's subnet of a VPC, with its route table. Validated in `validate::vswitch`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::change::Change;

/// What every VSwitch ID starts with.
pub const ID_PREFIX: &str = "vsw";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VSwitchSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub cidr: String,
    pub zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The zone's default VSwitch (a /20 of the default VPC, at most one per zone).
    #[serde(default, skip_serializing_if = "super::is_false")]
    pub default: bool,
    /// The associated route table; the system table when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_table: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VSwitch {
    pub id: String,
    pub name: String,
    pub cidr: Ipv4Net,
    pub zone: String,
    pub description: Option<String>,
    pub is_default: bool,
    /// Name of the associated route table (`system` unless a custom one is bound).
    pub route_table: String,
    /// Third-from-last address of the CIDR.
    pub gateway: Ipv4Addr,
    /// Stable per VSwitch, derived from its ID.
    pub gateway_mac: [u8; 6],
}

/// New VSwitches of VPC `vpc`, and kept ones whose CIDR or zone changed (`old`: the VPC's
/// VSwitches before, when it was there).
pub fn diff_added_or_changed(out: &mut Vec<Change>, vpc: &str, old: Option<&[VSwitch]>, new: &[VSwitch]) {
    for vsw in new {
        let name = format!("{}/{}", vpc, vsw.name);
        match old.and_then(|o| o.iter().find(|s| s.name == vsw.name)) {
            None => out.push(Change::Add { kind: "vswitch", name }),
            Some(o) if o.cidr != vsw.cidr || o.zone != vsw.zone => {
                out.push(Change::Modify { kind: "vswitch", name, what: format!("{} {} -> {} {}", o.cidr, o.zone, vsw.cidr, vsw.zone) })
            }
            Some(_) => {}
        }
    }
}

/// VSwitches of VPC `vpc` that are gone (`new`: the VPC's VSwitches now, when it is still there).
pub fn diff_removed(out: &mut Vec<Change>, vpc: &str, old: &[VSwitch], new: Option<&[VSwitch]>) {
    for vsw in old {
        if new.and_then(|n| n.iter().find(|s| s.name == vsw.name)).is_none() {
            out.push(Change::Remove { kind: "vswitch", name: format!("{}/{}", vpc, vsw.name) });
        }
    }
}
