//! Fill in what a document may leave out, the same way every time: resource IDs (kept from the
//! stored document when a resource of the same name exists), each VPC's system route table,
//! ENI addresses (the next free one) and MACs, the default VPC / VSwitches that zone-placed
//! ENIs need, and the default security group of a VPC whose ENIs are listed without groups.
//! Applying the same file twice yields the same document.

use std::{
    collections::{BTreeSet, HashMap},
    net::Ipv4Addr,
};

use ipnet::Ipv4Net;

// Kept at their old path for callers that import them from here.
pub use super::constants::{DEFAULT_VPC_CIDR, DEFAULT_VPC_NAME};
use super::{
    addr,
    constants::{DEFAULT_GROUP, DEFAULT_VSWITCH_PREFIX, RESERVED_AT_END, SYSTEM_TABLE},
    kinds::{cen, eni, flow_log, gateway, multicast, route_entry, route_table, security_group, vpc, vswitch},
    locate::{DocIndex, ResourceKind, each_resource},
    security,
    spec::{EniSpec, GatewaySpec, RouteTableSpec, TopologySpec, VSwitchSpec, VpcSpec},
};

/// A fresh resource ID: `prefix-` and 20 random lowercase letters and digits, like the cloud's.
/// (A per-thread generator seeded once from the kernel: bulk applies create many IDs.)
pub fn new_id(prefix: &str) -> String {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new({
            let mut seed = [0u8; 8];
            if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
                let _ = std::io::Read::read_exact(&mut f, &mut seed);
            }
            u64::from_ne_bytes(seed) | 1
        });
    }
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    STATE.with(|state| {
        let mut x = state.get();
        let suffix: String = (0..20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[(x % alphabet.len() as u64) as usize] as char
            })
            .collect();
        state.set(x);
        format!("{prefix}-{suffix}")
    })
}

/// Normalize `new` against the stored document `old`.
pub fn normalize(old: &TopologySpec, mut new: TopologySpec) -> TopologySpec {
    place_zonal_enis(&mut new);
    for vpc in &mut new.vpcs {
        ensure_system_table(vpc);
        ensure_default_group(vpc);
    }
    let stored_enis = StoredEnis::of(old);
    assign_ids(old, &stored_enis, &mut new);
    fill_eni_addresses(&stored_enis, &mut new);
    fill_gateway_macs(old, &mut new);
    new
}

/// The stored document's ENIs by name and by ID, built once: normalizing looks up every ENI of
/// the new document, and a scan of the stored ENIs for each is quadratic in a large region.
struct StoredEnis<'a> {
    by_name: HashMap<&'a str, &'a EniSpec>,
    by_id: HashMap<Option<&'a str>, &'a EniSpec>,
}

impl<'a> StoredEnis<'a> {
    fn of(doc: &'a TopologySpec) -> StoredEnis<'a> {
        let mut index = StoredEnis { by_name: HashMap::new(), by_id: HashMap::new() };
        // The first ENI of a name or ID wins, as a scan in document order finds it.
        for eni in doc.vpcs.iter().flat_map(|v| &v.enis) {
            index.by_name.entry(eni.name.as_str()).or_insert(eni);
            index.by_id.entry(eni.id.as_deref()).or_insert(eni);
        }
        index
    }
}

fn ensure_system_table(vpc: &mut VpcSpec) {
    match vpc.route_tables.iter().position(|t| t.name == SYSTEM_TABLE) {
        Some(0) => {}
        Some(i) => {
            let system = vpc.route_tables.remove(i);
            vpc.route_tables.insert(0, system);
        }
        None => vpc.route_tables.insert(0, RouteTableSpec { name: SYSTEM_TABLE.into(), ..Default::default() }),
    }
}

/// ENIs listed without groups are in the VPC's default group, which is created (with the
/// cloud's default rules) when the document does not define it.
fn ensure_default_group(vpc: &mut VpcSpec) {
    for eni in vpc.enis.iter_mut().filter(|e| e.security_groups.is_empty()) {
        eni.security_groups.push(DEFAULT_GROUP.into());
    }
    // Every VPC has its default group, as in the cloud: ENIs can name it before it is used.
    if !vpc.security_groups.iter().any(|g| g.name == DEFAULT_GROUP) {
        vpc.security_groups.insert(0, security::default_group());
    }
}

/// Move top-level ENIs into their zone's default VSwitch, creating the default VPC and
/// VSwitch when missing.
fn place_zonal_enis(doc: &mut TopologySpec) {
    for zonal in std::mem::take(&mut doc.enis) {
        let (vpc, vswitch) = ensure_default_vswitch(doc, &zonal.zone);
        doc.vpcs[vpc].enis.push(EniSpec {
            id: None,
            name: zonal.name,
            vswitch,
            ip: zonal.ip,
            mac: zonal.mac,
            interface: zonal.interface,
            source_dest_check: None,
            security_groups: Vec::new(),
            mtu: None,
            conntrack_limit: None,
            host: None,
        });
    }
}

/// The default VSwitch of `zone` (index of the default VPC, VSwitch name), creating the default
/// VPC and the VSwitch -- on the first free /20 -- when missing.
pub fn ensure_default_vswitch(doc: &mut TopologySpec, zone: &str) -> (usize, String) {
    let vpc_index = match doc.vpcs.iter().position(|v| v.default) {
        Some(i) => i,
        None => {
            let mut name = DEFAULT_VPC_NAME.to_string();
            while doc.vpcs.iter().any(|v| v.name == name) {
                name.push('x');
            }
            doc.vpcs.push(VpcSpec { name, cidr: DEFAULT_VPC_CIDR.into(), default: true, ..Default::default() });
            doc.vpcs.len() - 1
        }
    };
    let vpc = &mut doc.vpcs[vpc_index];
    if let Some(s) = vpc.vswitches.iter().find(|s| s.default && s.zone == zone) {
        return (vpc_index, s.name.clone());
    }
    let name = default_vswitch_name(vpc, zone);
    let cidr = free_default_cidr(vpc).map(|c| c.to_string()).unwrap_or_else(|| format!("no-free-/{DEFAULT_VSWITCH_PREFIX}"));
    vpc.vswitches.push(VSwitchSpec { name: name.clone(), cidr, zone: zone.into(), default: true, ..Default::default() });
    (vpc_index, name)
}

fn default_vswitch_name(vpc: &VpcSpec, zone: &str) -> String {
    let clean: String = zone.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    let mut name = format!("default-{clean}");
    while vpc.vswitches.iter().any(|s| s.name == name) {
        name.push('x');
    }
    name
}

/// The first /20 of the VPC that no VSwitch overlaps.
fn free_default_cidr(vpc: &VpcSpec) -> Option<Ipv4Net> {
    let cidr: Ipv4Net = vpc.cidr.parse().ok()?;
    let taken: Vec<Ipv4Net> = vpc.vswitches.iter().filter_map(|s| s.cidr.parse().ok()).collect();
    cidr.subnets(DEFAULT_VSWITCH_PREFIX).ok()?.find(|candidate| !taken.iter().any(|t| t.contains(candidate) || candidate.contains(t)))
}

fn assign_ids(old: &TopologySpec, stored_enis: &StoredEnis<'_>, new: &mut TopologySpec) {
    // IDs the document already carries, and IDs handed out below: an old ID is reused at most once.
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    each_resource(new, |_, id| taken.extend(id.clone()));
    let mut keep_or_new = |id: &mut Option<String>, old: Option<String>, prefix: &str| {
        if id.is_none() {
            let fresh = old.filter(|o| !taken.contains(o)).unwrap_or_else(|| new_id(prefix));
            taken.insert(fresh.clone());
            *id = Some(fresh);
        }
    };
    for vpc in &mut new.vpcs {
        let old_vpc = old.vpcs.iter().find(|v| v.name == vpc.name);
        keep_or_new(&mut vpc.id, old_vpc.and_then(|v| v.id.clone()), vpc::ID_PREFIX);
        for vsw in &mut vpc.vswitches {
            let found = old_vpc.and_then(|v| v.vswitches.iter().find(|s| s.name == vsw.name)).and_then(|s| s.id.clone());
            keep_or_new(&mut vsw.id, found, vswitch::ID_PREFIX);
        }
        for table in &mut vpc.route_tables {
            let old_table = old_vpc.and_then(|v| v.route_tables.iter().find(|t| t.name == table.name));
            keep_or_new(&mut table.id, old_table.and_then(|t| t.id.clone()), route_table::ID_PREFIX);
            let old_ids: std::collections::HashMap<&str, &str> =
                old_table.map(|t| t.routes.iter().filter_map(|r| Some((r.dst.as_str(), r.id.as_deref()?))).collect()).unwrap_or_default();
            for route in &mut table.routes {
                let found = old_ids.get(route.dst.as_str()).map(|id| id.to_string());
                keep_or_new(&mut route.id, found, route_entry::ID_PREFIX);
            }
        }
        for eni in &mut vpc.enis {
            let found = stored_enis.by_name.get(eni.name.as_str()).and_then(|e| e.id.clone());
            keep_or_new(&mut eni.id, found, eni::ID_PREFIX);
        }
        for gw in &mut vpc.gateways {
            let found = old_vpc.and_then(|v| v.gateways.iter().find(|g| g.name == gw.name)).and_then(|g| g.id.clone());
            keep_or_new(&mut gw.id, found, gateway::ID_PREFIX);
        }
        for group in &mut vpc.multicast_groups {
            let found = old_vpc.and_then(|v| v.multicast_groups.iter().find(|g| g.group == group.group)).and_then(|g| g.id.clone());
            keep_or_new(&mut group.id, found, multicast::ID_PREFIX);
        }
        for group in &mut vpc.security_groups {
            let old_group = old_vpc.and_then(|v| v.security_groups.iter().find(|g| g.name == group.name));
            keep_or_new(&mut group.id, old_group.and_then(|g| g.id.clone()), security_group::ID_PREFIX);
            // A rule keeps its ID while its content (all but the description) stays the same.
            let old_ids: std::collections::HashMap<String, &str> = old_group
                .map(|g| g.rules.iter().filter_map(|r| Some((security::rule_key(r), r.id.as_deref()?))).collect())
                .unwrap_or_default();
            for rule in &mut group.rules {
                let found = old_ids.get(&security::rule_key(rule)).map(|id| id.to_string());
                keep_or_new(&mut rule.id, found, security_group::RULE_ID_PREFIX);
            }
        }
    }
    for cen in &mut new.cens {
        let found = old.cens.iter().find(|c| c.name == cen.name).and_then(|c| c.id.clone());
        keep_or_new(&mut cen.id, found, cen::ID_PREFIX);
    }
    for log in &mut new.flow_logs {
        let found = old.flow_logs.iter().find(|f| f.name == log.name).and_then(|f| f.id.clone());
        keep_or_new(&mut log.id, found, flow_log::ID_PREFIX);
    }
}

/// Gateways without a MAC keep theirs or get one derived from their ID.
fn fill_gateway_macs(old: &TopologySpec, doc: &mut TopologySpec) {
    // Built once: a scan of the stored gateways for each gateway is quadratic in gateways.
    let stored = DocIndex::of_kinds(old, &[ResourceKind::Gateway]);
    for vpc in &mut doc.vpcs {
        for gw in vpc.gateways.iter_mut().filter(|g| g.mac.is_none()) {
            // Every gateway has its ID by now (`assign_ids`).
            let kept =
                gw.id.as_deref().and_then(|id| stored.find::<GatewaySpec>(id)).and_then(|(i, j)| old.vpcs[i].gateways[j].mac.clone());
            gw.mac = Some(kept.unwrap_or_else(|| addr::format_mac(&addr::derived_mac(0x06, gw.id.as_deref().unwrap_or(&gw.name)))));
        }
    }
}

/// ENIs without an address keep the one they had (same VSwitch) or get the lowest free one;
/// ENIs without a MAC keep theirs or get one derived from their ID. Kept addresses are claimed
/// before new ones are handed out, so adding an ENI never takes an existing ENI's address.
fn fill_eni_addresses(stored_enis: &StoredEnis<'_>, doc: &mut TopologySpec) {
    let mut macs: BTreeSet<String> = doc.vpcs.iter().flat_map(|v| &v.enis).filter_map(|e| e.mac.clone()).collect();
    for vpc in &mut doc.vpcs {
        let mut used: BTreeSet<Ipv4Addr> = vpc.enis.iter().filter_map(|e| e.ip.as_deref()?.parse().ok()).collect();
        // First pass: keep previous addresses and MACs.
        for eni in &mut vpc.enis {
            let Some(prev) = stored_enis.by_id.get(&eni.id.as_deref()) else { continue };
            if eni.ip.is_none()
                && prev.vswitch == eni.vswitch
                && let Some(ip) = prev.ip.as_deref().and_then(|t| t.parse::<Ipv4Addr>().ok())
                && used.insert(ip)
            {
                eni.ip = Some(ip.to_string());
            }
            if eni.mac.is_none()
                && let Some(mac) = prev.mac.clone().filter(|m| !macs.contains(m))
            {
                macs.insert(mac.clone());
                eni.mac = Some(mac);
            }
        }
        // Second pass: the lowest free address and a derived MAC for the rest. Addresses are only
        // taken here, so a CIDR's search resumes after the address it last gave (all below are
        // taken) instead of rescanning from its start for every ENI.
        let mut resume: HashMap<Ipv4Net, u32> = HashMap::new();
        for i in 0..vpc.enis.len() {
            if vpc.enis[i].ip.is_none() {
                let cidr: Option<Ipv4Net> = vpc.vswitches.iter().find(|s| s.name == vpc.enis[i].vswitch).and_then(|s| s.cidr.parse().ok());
                if let Some((cidr, ip)) = cidr.and_then(|c| Some((c, next_free_from(c, &used, resume.get(&c).copied().unwrap_or(0))?))) {
                    used.insert(ip);
                    resume.insert(cidr, u32::from(ip) + 1);
                    vpc.enis[i].ip = Some(ip.to_string());
                }
            }
            if vpc.enis[i].mac.is_none() {
                let seed = vpc.enis[i].id.clone().unwrap_or_default();
                let mac = (0u32..)
                    .map(|n| addr::format_mac(&addr::derived_mac(0x02, &format!("{seed}/{n}"))))
                    .find(|m| !macs.contains(m))
                    .expect("some MAC is free");
                macs.insert(mac.clone());
                vpc.enis[i].mac = Some(mac);
            }
        }
    }
}

/// The lowest address of `cidr` an ENI may take that is not in `used`.
pub fn next_free(cidr: Ipv4Net, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    next_free_from(cidr, used, 0)
}

/// `next_free`, searching from address `from` on: every address of `cidr` below it is in `used`.
fn next_free_from(cidr: Ipv4Net, used: &BTreeSet<Ipv4Addr>, from: u32) -> Option<Ipv4Addr> {
    let first = (u32::from(cidr.network()) + 1).max(from);
    let last = u32::from(cidr.broadcast()).checked_sub(RESERVED_AT_END)?;
    (first..=last).map(Ipv4Addr::from).find(|a| !used.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> TopologySpec {
        TopologySpec::from_yaml(yaml).unwrap()
    }

    const FILE: &str = "
vpcs:
  - name: prod
    cidr: 192.168.0.0/16
    vswitches: [{name: web, cidr: 192.168.1.0/29, zone: a}]
    enis:
      - {name: a1, vswitch: web}
      - {name: a2, vswitch: web, ip: 192.168.1.1}
      - {name: a3, vswitch: web}
enis:
  - {name: z1, zone: cn-a}
  - {name: z2, zone: cn-b}
  - {name: z3, zone: cn-a}
";

    #[test]
    fn fills_ids_tables_addresses_and_defaults() {
        let n = normalize(&TopologySpec::default(), doc(FILE));
        let prod = &n.vpcs[0];
        assert!(prod.id.as_deref().unwrap().starts_with("vpc-") && prod.id.as_ref().unwrap().len() == 24);
        assert_eq!(prod.route_tables[0].name, SYSTEM_TABLE);
        assert!(prod.route_tables[0].id.as_deref().unwrap().starts_with("vtb-"));
        let ips: Vec<_> = prod.enis.iter().map(|e| e.ip.clone().unwrap()).collect();
        // /29: .1 taken by a2, usable .1-.4 -> a1 gets .2, a3 gets .3
        assert_eq!(ips, vec!["192.168.1.2", "192.168.1.1", "192.168.1.3"]);
        let default = n.vpcs.iter().find(|v| v.default).unwrap();
        assert_eq!(default.cidr, DEFAULT_VPC_CIDR);
        let zones: Vec<(&str, &str)> = default.vswitches.iter().map(|s| (s.zone.as_str(), s.cidr.as_str())).collect();
        assert_eq!(zones, vec![("cn-a", "172.31.0.0/20"), ("cn-b", "172.31.16.0/20")]);
        let z3 = default.enis.iter().find(|e| e.name == "z3").unwrap();
        assert_eq!((z3.vswitch.as_str(), z3.ip.as_deref()), ("default-cn-a", Some("172.31.0.2")));
        let macs: BTreeSet<_> = n.vpcs.iter().flat_map(|v| &v.enis).map(|e| e.mac.clone().unwrap()).collect();
        assert_eq!(macs.len(), 6, "every ENI has its own MAC");
    }

    #[test]
    fn applying_the_same_file_again_changes_nothing() {
        let first = normalize(&TopologySpec::default(), doc(FILE));
        let second = normalize(&first, doc(FILE));
        assert_eq!(first, second);
        // Growing the file keeps every existing ID, address and MAC.
        let grown = FILE.replace("      - {name: a3, vswitch: web}", "      - {name: a0, vswitch: web}\n      - {name: a3, vswitch: web}");
        let third = normalize(&first, doc(&grown));
        let a3 = |d: &TopologySpec| d.vpcs[0].enis.iter().find(|e| e.name == "a3").cloned().unwrap();
        assert_eq!(a3(&third), a3(&first));
        assert_eq!(third.vpcs[0].enis.iter().find(|e| e.name == "a0").unwrap().ip.as_deref(), Some("192.168.1.4"));
    }

    #[test]
    fn next_free_skips_reserved_and_used() {
        let cidr: Ipv4Net = "10.0.0.0/29".parse().unwrap();
        let mut used = BTreeSet::new();
        for expect in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"] {
            let got = next_free(cidr, &used).unwrap();
            assert_eq!(got.to_string(), expect);
            used.insert(got);
        }
        assert_eq!(next_free(cidr, &used), None, "a /29 has four usable addresses");
    }
}
