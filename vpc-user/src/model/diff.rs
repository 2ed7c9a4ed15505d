//! What changes between two topologies, resource by resource (for `apply` output and --dry-run).

use std::fmt;

use serde::Serialize;

use super::{Topology, addr::format_mac};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Change {
    Add { kind: &'static str, name: String },
    Remove { kind: &'static str, name: String },
    Modify { kind: &'static str, name: String, what: String },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Add { kind, name } => write!(f, "+ {kind} {name}"),
            Change::Remove { kind, name } => write!(f, "- {kind} {name}"),
            Change::Modify { kind, name, what } => write!(f, "~ {kind} {name}: {what}"),
        }
    }
}

/// The top-level fields of two versions of a resource that differ (by their serialized form),
/// but `skip` (fields reported on their own).
fn changed_fields(old: &impl Serialize, new: &impl Serialize, skip: &[&str]) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| !skip.contains(&k.as_str()) && a.get(*k) != b.get(*k)).map(|k| format!("{k} changed")).collect()
}

/// Adds, removes and changes of resources named by `key`, of kind `kind`.
fn by_name<T: Serialize>(out: &mut Vec<Change>, kind: &'static str, old: &[(String, &T)], new: &[(String, &T)]) {
    for (name, now) in new {
        match old.iter().find(|(n, _)| n == name) {
            None => out.push(Change::Add { kind, name: name.clone() }),
            Some((_, before)) => {
                let what = changed_fields(*before, *now, &["id"]);
                if !what.is_empty() {
                    out.push(Change::Modify { kind, name: name.clone(), what: what.join(", ") });
                }
            }
        }
    }
    for (name, _) in old {
        if !new.iter().any(|(n, _)| n == name) {
            out.push(Change::Remove { kind, name: name.clone() });
        }
    }
}

/// Changes that turn `old` into `new`: every change an apply makes is one of them.
pub fn diff(old: &Topology, new: &Topology) -> Vec<Change> {
    let mut out = Vec::new();
    for vpc in &new.vpcs {
        match old.vpc(&vpc.name) {
            None => out.push(Change::Add { kind: "vpc", name: vpc.name.clone() }),
            Some(o) if o.cidr != vpc.cidr => {
                out.push(Change::Modify { kind: "vpc", name: vpc.name.clone(), what: format!("cidr {} -> {}", o.cidr, vpc.cidr) })
            }
            Some(_) => {}
        }
        for vsw in &vpc.vswitches {
            let name = format!("{}/{}", vpc.name, vsw.name);
            match old.vpc(&vpc.name).and_then(|o| o.vswitch(&vsw.name)) {
                None => out.push(Change::Add { kind: "vswitch", name }),
                Some(o) if o.cidr != vsw.cidr || o.zone != vsw.zone => {
                    out.push(Change::Modify { kind: "vswitch", name, what: format!("{} {} -> {} {}", o.cidr, o.zone, vsw.cidr, vsw.zone) })
                }
                Some(_) => {}
            }
        }
    }
    for vpc in &new.vpcs {
        let old_vpc = old.vpc(&vpc.name);
        for gw in &vpc.gateways {
            match old_vpc.and_then(|o| o.gateway(&gw.name)) {
                None => out.push(Change::Add { kind: "gateway", name: format!("{}/{}", vpc.name, gw.name) }),
                Some(before) => {
                    let what = changed_fields(before, gw, &["id"]);
                    if !what.is_empty() {
                        out.push(Change::Modify { kind: "gateway", name: format!("{}/{}", vpc.name, gw.name), what: what.join(", ") });
                    }
                }
            }
        }
        if let Some(before) = old_vpc {
            let what = changed_fields(
                before,
                vpc,
                &["id", "cidr", "vswitches", "gateways", "route_tables", "security_groups", "enis", "multicast_groups"],
            );
            if !what.is_empty() {
                out.push(Change::Modify { kind: "vpc", name: vpc.name.clone(), what: what.join(", ") });
            }
        }
        fn groups(v: Option<&super::Vpc>) -> Vec<(String, &super::multicast::McastGroup)> {
            v.map(|v| v.multicast_groups.iter().map(|g| (format!("{}/{}", v.name, g.group), g)).collect()).unwrap_or_default()
        }
        by_name(&mut out, "multicast group", &groups(old_vpc), &groups(Some(vpc)));
        for table in &vpc.route_tables {
            let name = format!("{}/{}", vpc.name, table.name);
            match old_vpc.and_then(|o| o.route_table(&table.name)) {
                // A new VPC's system table comes with it; say so only when it has entries.
                None if table.is_system && table.routes.is_empty() => {}
                None => out.push(Change::Add { kind: "route table", name: format!("{name} ({} entries)", table.routes.len()) }),
                Some(before) => {
                    let was: std::collections::BTreeMap<_, _> = before.routes.iter().map(|r| (r.dst, &r.next_hop)).collect();
                    let now: std::collections::BTreeMap<_, _> = table.routes.iter().map(|r| (r.dst, &r.next_hop)).collect();
                    let added = now.keys().filter(|d| !was.contains_key(d)).count();
                    let removed = was.keys().filter(|d| !now.contains_key(d)).count();
                    let changed = now.iter().filter(|(d, h)| was.get(d).is_some_and(|w| w != *h)).count();
                    if added + removed + changed > 0 {
                        out.push(Change::Modify { kind: "route table", name, what: format!("entries +{added} -{removed} ~{changed}") });
                    }
                }
            }
        }
    }
    for vpc in &new.vpcs {
        let old_vpc = old.vpc(&vpc.name);
        for group in &vpc.security_groups {
            let name = format!("{}/{}", vpc.name, group.name);
            match old_vpc.and_then(|o| o.security_group(&group.name)) {
                // A new VPC's default group comes with it.
                None if old_vpc.is_none() && group.is_default() => {}
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
        for group in old_vpc.map(|o| o.security_groups.as_slice()).unwrap_or_default() {
            if vpc.security_group(&group.name).is_none() {
                out.push(Change::Remove { kind: "security group", name: format!("{}/{}", vpc.name, group.name) });
            }
        }
    }
    for cen in &new.cens {
        match old.cens.iter().find(|c| c.name == cen.name) {
            None => out.push(Change::Add { kind: "cen", name: cen.name.clone() }),
            Some(o) if o.vpcs != cen.vpcs => out.push(Change::Modify {
                kind: "cen",
                name: cen.name.clone(),
                what: format!("members {} -> {}", o.vpcs.join(","), cen.vpcs.join(",")),
            }),
            Some(_) => {}
        }
    }
    // Built once: a look-up per ENI of the other topology would scan all of its ENIs.
    let (old_enis, new_enis) = (old.enis_by_name(), new.enis_by_name());
    for (vpc, _, eni) in new.enis() {
        match old_enis.get(&eni.name) {
            None => out.push(Change::Add { kind: "eni", name: eni.name.clone() }),
            Some((ovpc, _, o)) => {
                let mut what = Vec::new();
                if ovpc.name != vpc.name || o.vswitch != eni.vswitch {
                    what.push(format!("vswitch {}/{} -> {}/{}", ovpc.name, o.vswitch, vpc.name, eni.vswitch));
                }
                if o.ip != eni.ip {
                    what.push(format!("ip {} -> {}", o.ip, eni.ip));
                }
                if o.mac != eni.mac {
                    what.push(format!("mac {} -> {}", format_mac(&o.mac), format_mac(&eni.mac)));
                }
                if o.interface != eni.interface {
                    what.push(format!("interface {:?} -> {:?}", o.interface, eni.interface));
                }
                if o.security_groups != eni.security_groups {
                    what.push(format!("security groups {} -> {}", o.security_groups.join(","), eni.security_groups.join(",")));
                }
                what.extend(changed_fields(o, eni, &["id", "name", "vswitch", "ip", "mac", "interface", "security_groups"]));
                if !what.is_empty() {
                    out.push(Change::Modify { kind: "eni", name: eni.name.clone(), what: what.join(", ") });
                }
            }
        }
    }
    for (_, _, eni) in old.enis() {
        if new_enis.get(&eni.name).is_none() {
            out.push(Change::Remove { kind: "eni", name: eni.name.clone() });
        }
    }
    for cen in &old.cens {
        if !new.cens.iter().any(|c| c.name == cen.name) {
            out.push(Change::Remove { kind: "cen", name: cen.name.clone() });
        }
    }
    let old_logs: Vec<(String, &super::flowlog::FlowLog)> = old.flow_logs.iter().map(|f| (f.name.clone(), f)).collect();
    let new_logs: Vec<(String, &super::flowlog::FlowLog)> = new.flow_logs.iter().map(|f| (f.name.clone(), f)).collect();
    by_name(&mut out, "flow log", &old_logs, &new_logs);
    for vpc in &old.vpcs {
        if new.vpc(&vpc.name).is_none() {
            for g in &vpc.multicast_groups {
                out.push(Change::Remove { kind: "multicast group", name: format!("{}/{}", vpc.name, g.group) });
            }
        }
        for table in vpc.route_tables.iter().filter(|t| !t.is_system) {
            if new.vpc(&vpc.name).and_then(|n| n.route_table(&table.name)).is_none() {
                out.push(Change::Remove { kind: "route table", name: format!("{}/{}", vpc.name, table.name) });
            }
        }
        for gw in &vpc.gateways {
            if new.vpc(&vpc.name).and_then(|n| n.gateway(&gw.name)).is_none() {
                out.push(Change::Remove { kind: "gateway", name: format!("{}/{}", vpc.name, gw.name) });
            }
        }
        for vsw in &vpc.vswitches {
            if new.vpc(&vpc.name).and_then(|n| n.vswitch(&vsw.name)).is_none() {
                out.push(Change::Remove { kind: "vswitch", name: format!("{}/{}", vpc.name, vsw.name) });
            }
        }
        if new.vpc(&vpc.name).is_none() {
            out.push(Change::Remove { kind: "vpc", name: vpc.name.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_adds_modifies_and_removes() {
        use crate::model::{normalize::normalize, spec::TopologySpec, topology::Quotas};
        let old_doc = normalize(&TopologySpec::default(), TopologySpec::from_yaml(
            "vpcs:\n- name: prod\n  cidr: 10.0.0.0/16\n  vswitches: [{name: web, cidr: 10.0.1.0/24, zone: a}, {name: db, cidr: 10.0.2.0/24, zone: a}]\n  enis: [{name: web1, vswitch: web, ip: 10.0.1.5}, {name: db1, vswitch: db, ip: 10.0.2.5}]\n",
        ).unwrap());
        let new_doc = normalize(&old_doc, TopologySpec::from_yaml(
            "vpcs:\n- name: prod\n  cidr: 10.0.0.0/16\n  vswitches: [{name: web, cidr: 10.0.1.0/24, zone: a}]\n  enis: [{name: web1, vswitch: web, ip: 10.0.1.6}, {name: web2, vswitch: web, ip: 10.0.1.7}]\n",
        ).unwrap());
        let old = Topology::from_spec(&old_doc, &Quotas::default()).unwrap();
        let new = Topology::from_spec(&new_doc, &Quotas::default()).unwrap();
        let changes: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
        assert_eq!(changes, vec!["~ eni web1: ip 10.0.1.5 -> 10.0.1.6", "+ eni web2", "- eni db1", "- vswitch prod/db"]);
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn flow_logs_multicast_groups_and_every_field_show() {
        use crate::model::{normalize::normalize, spec::TopologySpec, topology::Quotas};
        let base = "vpcs:\n- name: prod\n  cidr: 10.0.0.0/16\n  vswitches: [{name: web, cidr: 10.0.1.0/24, zone: a}]\n  enis: [{name: web1, vswitch: web, ip: 10.0.1.5}, {name: web2, vswitch: web, ip: 10.0.1.6}]\n";
        let with = format!(
            "{base}  multicast_groups: [{{group: 239.1.1.1, senders: [web1], members: [web2]}}]\nflow_logs: [{{name: fl, resource: {{vpc: prod}}}}]\n"
        );
        let topology = |old: &TopologySpec, yaml: &str| {
            let doc = normalize(old, TopologySpec::from_yaml(yaml).unwrap());
            (Topology::from_spec(&doc, &Quotas::default()).unwrap(), doc)
        };
        let (plain, plain_doc) = topology(&TopologySpec::default(), base);
        let (full, full_doc) = topology(&plain_doc, &with);
        let show = |a: &Topology, b: &Topology| diff(a, b).iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(show(&plain, &full), vec!["+ multicast group prod/239.1.1.1", "+ flow log fl"]);
        assert_eq!(
            show(&full, &plain),
            vec!["- multicast group prod/239.1.1.1", "- flow log fl"],
            "an apply without them says it removes them"
        );
        let changed = with
            .replace("members: [web2]", "members: [web1, web2]")
            .replace("resource: {vpc: prod}", "resource: {vpc: prod}, window: 60s")
            .replace("ip: 10.0.1.6}", "ip: 10.0.1.6, mtu: 1400}");
        let (edited, _) = topology(&full_doc, &changed);
        assert_eq!(
            show(&full, &edited),
            vec!["~ multicast group prod/239.1.1.1: members changed", "~ eni web2: mtu changed", "~ flow log fl: window_s changed"]
        );
    }
}
