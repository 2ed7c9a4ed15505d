//! What keeps a resource from being deleted: the resources that still depend on it. Each check
//! returns the first reason it finds, in the order the API has always reported them; the API turns
//! a reason into its error code and message.

use super::{
    security::DEFAULT_GROUP,
    spec::{CenSpec, NextHopSpec, PeerSpec, TopologySpec, VpcSpec},
};

/// Why a VPC cannot be deleted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VpcInUse {
    /// It still has this many VSwitches.
    VSwitches(usize),
    /// It is a member of the CEN of this name.
    CenMember(String),
    /// Its security groups other than the default one, by name.
    SecurityGroups(Vec<String>),
    /// Route entries, of any VPC, whose next hop is this VPC.
    RoutesToIt(Vec<RouteEntryRef>),
}

/// A custom route entry named by where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntryRef {
    /// The name of the VPC the entry is in.
    pub vpc: String,
    /// The entry's destination as written.
    pub destination: String,
}

/// A VSwitch that still has ENIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VSwitchInUse {
    pub enis: usize,
}

/// A route table VSwitches are associated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTableInUse {
    /// The associated VSwitches, by ID.
    pub vswitch_ids: Vec<String>,
}

/// An ENI or gateway that route entries use as (one of) their next hop(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHopInUse {
    /// The entries' destinations.
    pub destinations: Vec<String>,
}

/// A CEN that still has member VPCs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CenInUse {
    /// The members, by name.
    pub vpcs: Vec<String>,
}

/// Why a security group cannot be deleted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityGroupInUse {
    /// These ENIs (by name) are in it.
    Members(Vec<String>),
    /// Rules of these other groups (by name) name it as their peer.
    NamedByRules(Vec<String>),
}

/// What keeps VPC `vpc` of `doc` from being deleted.
pub fn vpc_in_use(doc: &TopologySpec, vpc: &VpcSpec) -> Option<VpcInUse> {
    if !vpc.vswitches.is_empty() {
        return Some(VpcInUse::VSwitches(vpc.vswitches.len()));
    }
    if let Some(cen) = doc.cens.iter().find(|c| c.vpcs.contains(&vpc.name)) {
        return Some(VpcInUse::CenMember(cen.name.clone()));
    }
    // Its own security groups are the user's resources, not the VPC's parts: never deleted
    // behind their back (the default group goes with the VPC).
    let custom: Vec<String> = vpc.security_groups.iter().map(|g| g.name.clone()).filter(|n| n != DEFAULT_GROUP).collect();
    if !custom.is_empty() {
        return Some(VpcInUse::SecurityGroups(custom));
    }
    let routes: Vec<RouteEntryRef> = doc
        .vpcs
        .iter()
        .flat_map(|v| v.route_tables.iter().flat_map(|t| &t.routes).map(move |r| (v, r)))
        .filter(|(_, r)| matches!(&r.next_hop, NextHopSpec::Vpc { vpc: peer } if *peer == vpc.name))
        .map(|(v, r)| RouteEntryRef { vpc: v.name.clone(), destination: r.dst.clone() })
        .collect();
    (!routes.is_empty()).then_some(VpcInUse::RoutesToIt(routes))
}

/// What keeps VSwitch `vswitch` (a name) of `vpc` from being deleted.
pub fn vswitch_in_use(vpc: &VpcSpec, vswitch: &str) -> Option<VSwitchInUse> {
    let enis = vpc.enis.iter().filter(|e| e.vswitch == vswitch).count();
    (enis > 0).then_some(VSwitchInUse { enis })
}

/// What keeps route table `table` (a name) of `vpc` from being deleted. VSwitches without an ID
/// yet do not count: the API only sees documents whose resources all have one.
pub fn route_table_in_use(vpc: &VpcSpec, table: &str) -> Option<RouteTableInUse> {
    let vswitch_ids: Vec<String> =
        vpc.vswitches.iter().filter(|s| s.route_table.as_deref() == Some(table)).filter_map(|s| s.id.clone()).collect();
    (!vswitch_ids.is_empty()).then_some(RouteTableInUse { vswitch_ids })
}

/// What keeps the ENI or gateway `name` of `vpc` from being deleted: route entries that send
/// traffic to it, alone or as a hop of a group.
pub fn next_hop_in_use(vpc: &VpcSpec, name: &str) -> Option<NextHopInUse> {
    let destinations: Vec<String> = vpc
        .route_tables
        .iter()
        .flat_map(|t| &t.routes)
        .filter(|r| match &r.next_hop {
            NextHopSpec::Eni { eni } => eni == name,
            NextHopSpec::Gateway { gateway } => gateway == name,
            NextHopSpec::Ecmp { hops } | NextHopSpec::ActiveStandby { hops, .. } => {
                hops.iter().any(|h| h.eni.as_deref() == Some(name) || h.gateway.as_deref() == Some(name))
            }
            _ => false,
        })
        .map(|r| r.dst.clone())
        .collect();
    (!destinations.is_empty()).then_some(NextHopInUse { destinations })
}

/// What keeps `cen` from being deleted.
pub fn cen_in_use(cen: &CenSpec) -> Option<CenInUse> {
    (!cen.vpcs.is_empty()).then(|| CenInUse { vpcs: cen.vpcs.clone() })
}

/// What keeps security group `group` (a name) of `vpc` from being deleted.
pub fn security_group_in_use(vpc: &VpcSpec, group: &str) -> Option<SecurityGroupInUse> {
    let members: Vec<String> = vpc.enis.iter().filter(|e| e.security_groups.iter().any(|g| g == group)).map(|e| e.name.clone()).collect();
    if !members.is_empty() {
        return Some(SecurityGroupInUse::Members(members));
    }
    let named_as_peer = PeerSpec::Group { group: group.to_string() };
    let naming: Vec<String> = vpc
        .security_groups
        .iter()
        .filter(|g| g.name != group && g.rules.iter().any(|r| r.peer == named_as_peer))
        .map(|g| g.name.clone())
        .collect();
    (!naming.is_empty()).then_some(SecurityGroupInUse::NamedByRules(naming))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::{EniSpec, HopSpec, RouteSpec, RouteTableSpec, SecurityGroupSpec, SgRuleSpec, VSwitchSpec};

    fn route(dst: &str, next_hop: NextHopSpec) -> RouteSpec {
        RouteSpec { id: None, dst: dst.into(), next_hop, name: None, description: None }
    }

    fn vpc(name: &str) -> VpcSpec {
        VpcSpec { name: name.into(), cidr: "10.0.0.0/16".into(), ..Default::default() }
    }

    #[test]
    fn a_vpc_is_kept_by_its_vswitches_first_then_its_cen_its_groups_and_routes_to_it() {
        let mut a = vpc("a");
        a.vswitches.push(VSwitchSpec { name: "s".into(), cidr: "10.0.0.0/24".into(), zone: "z".into(), ..Default::default() });
        a.security_groups.push(SecurityGroupSpec { name: DEFAULT_GROUP.into(), ..Default::default() });
        a.security_groups.push(SecurityGroupSpec { name: "web".into(), ..Default::default() });
        let mut b = vpc("b");
        b.route_tables.push(RouteTableSpec {
            name: "t".into(),
            routes: vec![route("10.0.0.0/16", NextHopSpec::Vpc { vpc: "a".into() })],
            ..Default::default()
        });
        let mut doc = TopologySpec { vpcs: vec![a, b], ..Default::default() };
        doc.cens.push(CenSpec { name: "c".into(), vpcs: vec!["a".into()], ..Default::default() });

        assert_eq!(vpc_in_use(&doc, &doc.vpcs[0]), Some(VpcInUse::VSwitches(1)));
        doc.vpcs[0].vswitches.clear();
        assert_eq!(vpc_in_use(&doc, &doc.vpcs[0]), Some(VpcInUse::CenMember("c".into())));
        doc.cens.clear();
        assert_eq!(vpc_in_use(&doc, &doc.vpcs[0]), Some(VpcInUse::SecurityGroups(vec!["web".into()])));
        doc.vpcs[0].security_groups.retain(|g| g.name == DEFAULT_GROUP);
        let to_a = RouteEntryRef { vpc: "b".into(), destination: "10.0.0.0/16".into() };
        assert_eq!(vpc_in_use(&doc, &doc.vpcs[0]), Some(VpcInUse::RoutesToIt(vec![to_a])));
        doc.vpcs[1].route_tables.clear();
        assert_eq!(vpc_in_use(&doc, &doc.vpcs[0]), None);
    }

    #[test]
    fn an_eni_or_gateway_is_kept_by_routes_through_it_alone_or_in_a_group() {
        let mut v = vpc("v");
        let hops =
            vec![HopSpec { eni: Some("n1".into()), ..Default::default() }, HopSpec { gateway: Some("gw".into()), ..Default::default() }];
        v.route_tables.push(RouteTableSpec {
            name: "t".into(),
            routes: vec![
                route("0.0.0.0/0", NextHopSpec::Eni { eni: "n1".into() }),
                route("10.9.0.0/16", NextHopSpec::Ecmp { hops }),
                route("10.8.0.0/16", NextHopSpec::Blackhole),
            ],
            ..Default::default()
        });
        assert_eq!(next_hop_in_use(&v, "n1"), Some(NextHopInUse { destinations: vec!["0.0.0.0/0".into(), "10.9.0.0/16".into()] }));
        assert_eq!(next_hop_in_use(&v, "gw"), Some(NextHopInUse { destinations: vec!["10.9.0.0/16".into()] }));
        assert_eq!(next_hop_in_use(&v, "n2"), None);
    }

    #[test]
    fn vswitches_route_tables_and_cens_are_kept_by_what_they_hold() {
        let mut v = vpc("v");
        v.vswitches.push(VSwitchSpec { id: Some("vsw-1".into()), name: "s".into(), route_table: Some("t".into()), ..Default::default() });
        v.enis.push(EniSpec { name: "n1".into(), vswitch: "s".into(), ..Default::default() });
        assert_eq!(vswitch_in_use(&v, "s"), Some(VSwitchInUse { enis: 1 }));
        assert_eq!(vswitch_in_use(&v, "other"), None);
        assert_eq!(route_table_in_use(&v, "t"), Some(RouteTableInUse { vswitch_ids: vec!["vsw-1".into()] }));
        assert_eq!(route_table_in_use(&v, "u"), None);
        let cen = CenSpec { name: "c".into(), vpcs: vec!["v".into()], ..Default::default() };
        assert_eq!(cen_in_use(&cen), Some(CenInUse { vpcs: vec!["v".into()] }));
        assert_eq!(cen_in_use(&CenSpec::default()), None);
    }

    #[test]
    fn a_security_group_is_kept_by_its_members_first_then_rules_naming_it() {
        let mut v = vpc("v");
        v.enis.push(EniSpec { name: "n1".into(), vswitch: "s".into(), security_groups: vec!["web".into()], ..Default::default() });
        let naming_web = SgRuleSpec {
            id: None,
            direction: "ingress".into(),
            policy: None,
            protocol: "all".into(),
            ports: None,
            peer: PeerSpec::Group { group: "web".into() },
            priority: None,
            description: None,
        };
        v.security_groups.push(SecurityGroupSpec { name: "web".into(), rules: vec![naming_web.clone()], ..Default::default() });
        v.security_groups.push(SecurityGroupSpec { name: "db".into(), rules: vec![naming_web], ..Default::default() });
        assert_eq!(security_group_in_use(&v, "web"), Some(SecurityGroupInUse::Members(vec!["n1".into()])));
        v.enis.clear();
        assert_eq!(security_group_in_use(&v, "web"), Some(SecurityGroupInUse::NamedByRules(vec!["db".into()])));
        assert_eq!(security_group_in_use(&v, "db"), None);
    }
}
