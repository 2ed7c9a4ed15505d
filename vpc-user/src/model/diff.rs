//! What changes between two topologies, resource by resource (for `apply` output and --dry-run).
//! Each kind says how its changes read (its file of `kinds`); here is the order they are reported
//! in: what new VPCs hold is added before it is used, what goes is removed after what uses it.

use super::{
    Topology,
    kinds::{self, cen, eni, flow_log, gateway, multicast, route_table, security_group, vswitch},
};
// Kept at its old path for callers that import it from here.
pub use super::change::Change;

/// Changes that turn `old` into `new`: every change an apply makes is one of them.
pub fn diff(old: &Topology, new: &Topology) -> Vec<Change> {
    let mut out = Vec::new();
    for vpc in &new.vpcs {
        let old_vpc = old.vpc(&vpc.name);
        kinds::vpc::diff_added_or_resized(&mut out, old_vpc, vpc);
        vswitch::diff_added_or_changed(&mut out, &vpc.name, old_vpc.map(|o| o.vswitches.as_slice()), &vpc.vswitches);
    }
    for vpc in &new.vpcs {
        let old_vpc = old.vpc(&vpc.name);
        gateway::diff_added_or_changed(&mut out, &vpc.name, old_vpc.map(|o| o.gateways.as_slice()), &vpc.gateways);
        kinds::vpc::diff_fields(&mut out, old_vpc, vpc);
        multicast::diff(&mut out, &vpc.name, old_vpc.map(|o| o.multicast_groups.as_slice()), &vpc.multicast_groups);
        route_table::diff_added_or_changed(&mut out, &vpc.name, old_vpc.map(|o| o.route_tables.as_slice()), &vpc.route_tables);
    }
    for vpc in &new.vpcs {
        let old_vpc = old.vpc(&vpc.name);
        security_group::diff(&mut out, &vpc.name, old_vpc.map(|o| o.security_groups.as_slice()), &vpc.security_groups);
    }
    cen::diff_added_or_changed(&mut out, &old.cens, &new.cens);
    // Built once: a look-up per ENI of the other topology would scan all of its ENIs.
    let (old_enis, new_enis) = (old.enis_by_name(), new.enis_by_name());
    for (vpc, _, e) in new.enis() {
        eni::diff_added_or_changed(&mut out, old_enis.get(&e.name).map(|(v, _, o)| (v.name.as_str(), o)), &vpc.name, e);
    }
    for (_, _, e) in old.enis() {
        if new_enis.get(&e.name).is_none() {
            eni::removed(&mut out, e);
        }
    }
    cen::diff_removed(&mut out, &old.cens, &new.cens);
    flow_log::diff(&mut out, &old.flow_logs, &new.flow_logs);
    for vpc in &old.vpcs {
        let new_vpc = new.vpc(&vpc.name);
        if new_vpc.is_none() {
            multicast::removed_with_vpc(&mut out, &vpc.name, &vpc.multicast_groups);
        }
        route_table::diff_removed(&mut out, &vpc.name, &vpc.route_tables, new_vpc.map(|n| n.route_tables.as_slice()));
        gateway::diff_removed(&mut out, &vpc.name, &vpc.gateways, new_vpc.map(|n| n.gateways.as_slice()));
        vswitch::diff_removed(&mut out, &vpc.name, &vpc.vswitches, new_vpc.map(|n| n.vswitches.as_slice()));
        if new_vpc.is_none() {
            kinds::vpc::removed(&mut out, vpc);
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
