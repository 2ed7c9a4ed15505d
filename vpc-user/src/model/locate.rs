//! Where the resource with an ID is in a document: one walk over every resource with an ID,
//! one look-up by kind, and an index built once for callers that look up many IDs.
//!
//! Look-ups are by kind and ID, first in document order wins: what a scan of that kind's lists
//! finds, even in a document whose IDs are not yet checked (unique across kinds).

use std::collections::HashMap;

use super::{
    kinds::{cen, eni, flow_log, gateway, multicast, route_entry, route_table, security_group, vpc, vswitch},
    spec::{
        CenSpec, EniSpec, FlowLogSpec, GatewaySpec, McastGroupSpec, RouteSpec, RouteTableSpec, SecurityGroupSpec, SgRuleSpec, TopologySpec,
        VSwitchSpec, VpcSpec,
    },
};

/// The kinds of resource that have an ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Vpc,
    VSwitch,
    RouteTable,
    Route,
    Eni,
    Gateway,
    SecurityGroup,
    SgRule,
    Cen,
    FlowLog,
    McastGroup,
}

/// Where a resource is: its indices in the document's lists, outermost first (a route entry is
/// `Route(vpc, table, entry)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    Vpc(usize),
    VSwitch(usize, usize),
    RouteTable(usize, usize),
    Route(usize, usize, usize),
    Eni(usize, usize),
    Gateway(usize, usize),
    SecurityGroup(usize, usize),
    SgRule(usize, usize, usize),
    Cen(usize),
    FlowLog(usize),
    McastGroup(usize, usize),
}

impl ResourceKind {
    /// What every ID of the kind starts with, before its `-` (each kind's file says).
    pub fn id_prefix(self) -> &'static str {
        match self {
            ResourceKind::Vpc => vpc::ID_PREFIX,
            ResourceKind::VSwitch => vswitch::ID_PREFIX,
            ResourceKind::RouteTable => route_table::ID_PREFIX,
            ResourceKind::Route => route_entry::ID_PREFIX,
            ResourceKind::Eni => eni::ID_PREFIX,
            ResourceKind::Gateway => gateway::ID_PREFIX,
            ResourceKind::SecurityGroup => security_group::ID_PREFIX,
            ResourceKind::SgRule => security_group::RULE_ID_PREFIX,
            ResourceKind::Cen => cen::ID_PREFIX,
            ResourceKind::FlowLog => flow_log::ID_PREFIX,
            ResourceKind::McastGroup => multicast::ID_PREFIX,
        }
    }
}

impl Location {
    pub fn kind(self) -> ResourceKind {
        match self {
            Location::Vpc(..) => ResourceKind::Vpc,
            Location::VSwitch(..) => ResourceKind::VSwitch,
            Location::RouteTable(..) => ResourceKind::RouteTable,
            Location::Route(..) => ResourceKind::Route,
            Location::Eni(..) => ResourceKind::Eni,
            Location::Gateway(..) => ResourceKind::Gateway,
            Location::SecurityGroup(..) => ResourceKind::SecurityGroup,
            Location::SgRule(..) => ResourceKind::SgRule,
            Location::Cen(..) => ResourceKind::Cen,
            Location::FlowLog(..) => ResourceKind::FlowLog,
            Location::McastGroup(..) => ResourceKind::McastGroup,
        }
    }

    /// The resource's field path, as problems name it (`vpcs[0].route_tables[1].routes[2]`).
    pub fn field(self) -> String {
        match self {
            Location::Vpc(i) => format!("vpcs[{i}]"),
            Location::VSwitch(i, j) => format!("vpcs[{i}].vswitches[{j}]"),
            Location::RouteTable(i, j) => format!("vpcs[{i}].route_tables[{j}]"),
            Location::Route(i, j, k) => format!("vpcs[{i}].route_tables[{j}].routes[{k}]"),
            Location::Eni(i, j) => format!("vpcs[{i}].enis[{j}]"),
            Location::Gateway(i, j) => format!("vpcs[{i}].gateways[{j}]"),
            Location::SecurityGroup(i, j) => format!("vpcs[{i}].security_groups[{j}]"),
            Location::SgRule(i, j, k) => format!("vpcs[{i}].security_groups[{j}].rules[{k}]"),
            Location::Cen(i) => format!("cens[{i}]"),
            Location::FlowLog(i) => format!("flow_logs[{i}]"),
            Location::McastGroup(i, j) => format!("vpcs[{i}].multicast_groups[{j}]"),
        }
    }
}

/// Every resource of `doc` with its ID (`None` where normalization has not given one yet), in
/// the order problems about IDs are reported: VPC by VPC (the VPC, its VSwitches, route tables
/// with their entries, ENIs, gateways, multicast groups, security groups with their rules), then
/// flow logs, then CENs.
pub fn each_resource<'a>(doc: &'a TopologySpec, mut visit: impl FnMut(Location, &'a Option<String>)) {
    for (i, vpc) in doc.vpcs.iter().enumerate() {
        visit(Location::Vpc(i), &vpc.id);
        for (j, s) in vpc.vswitches.iter().enumerate() {
            visit(Location::VSwitch(i, j), &s.id);
        }
        for (j, t) in vpc.route_tables.iter().enumerate() {
            visit(Location::RouteTable(i, j), &t.id);
            for (k, r) in t.routes.iter().enumerate() {
                visit(Location::Route(i, j, k), &r.id);
            }
        }
        for (j, e) in vpc.enis.iter().enumerate() {
            visit(Location::Eni(i, j), &e.id);
        }
        for (j, g) in vpc.gateways.iter().enumerate() {
            visit(Location::Gateway(i, j), &g.id);
        }
        for (j, g) in vpc.multicast_groups.iter().enumerate() {
            visit(Location::McastGroup(i, j), &g.id);
        }
        for (j, g) in vpc.security_groups.iter().enumerate() {
            visit(Location::SecurityGroup(i, j), &g.id);
            for (k, r) in g.rules.iter().enumerate() {
                visit(Location::SgRule(i, j, k), &r.id);
            }
        }
    }
    for (i, f) in doc.flow_logs.iter().enumerate() {
        visit(Location::FlowLog(i), &f.id);
    }
    for (i, c) in doc.cens.iter().enumerate() {
        visit(Location::Cen(i), &c.id);
    }
}

/// Where the resource of `kind` with ID `id` is in `doc`: a scan of that kind's lists only (one
/// look-up; `DocIndex` for many).
pub fn locate(doc: &TopologySpec, kind: ResourceKind, id: &str) -> Option<Location> {
    let is = |x: &Option<String>| x.as_deref() == Some(id);
    // The first (VPC, item) of the lists `of` picks out of each VPC whose item has the ID.
    fn in_vpcs<T>(doc: &TopologySpec, of: impl Fn(&VpcSpec) -> &[T], has: impl Fn(&T) -> bool) -> Option<(usize, usize)> {
        doc.vpcs.iter().enumerate().find_map(|(i, v)| of(v).iter().position(&has).map(|j| (i, j)))
    }
    match kind {
        ResourceKind::Vpc => doc.vpcs.iter().position(|v| is(&v.id)).map(Location::Vpc),
        ResourceKind::VSwitch => in_vpcs(doc, |v| &v.vswitches, |s| is(&s.id)).map(|(i, j)| Location::VSwitch(i, j)),
        ResourceKind::RouteTable => in_vpcs(doc, |v| &v.route_tables, |t| is(&t.id)).map(|(i, j)| Location::RouteTable(i, j)),
        ResourceKind::Route => doc.vpcs.iter().enumerate().find_map(|(i, v)| {
            v.route_tables.iter().enumerate().find_map(|(j, t)| t.routes.iter().position(|r| is(&r.id)).map(|k| Location::Route(i, j, k)))
        }),
        ResourceKind::Eni => in_vpcs(doc, |v| &v.enis, |e| is(&e.id)).map(|(i, j)| Location::Eni(i, j)),
        ResourceKind::Gateway => in_vpcs(doc, |v| &v.gateways, |g| is(&g.id)).map(|(i, j)| Location::Gateway(i, j)),
        ResourceKind::SecurityGroup => in_vpcs(doc, |v| &v.security_groups, |g| is(&g.id)).map(|(i, j)| Location::SecurityGroup(i, j)),
        ResourceKind::SgRule => doc.vpcs.iter().enumerate().find_map(|(i, v)| {
            v.security_groups
                .iter()
                .enumerate()
                .find_map(|(j, g)| g.rules.iter().position(|r| is(&r.id)).map(|k| Location::SgRule(i, j, k)))
        }),
        ResourceKind::Cen => doc.cens.iter().position(|c| is(&c.id)).map(Location::Cen),
        ResourceKind::FlowLog => doc.flow_logs.iter().position(|f| is(&f.id)).map(Location::FlowLog),
        ResourceKind::McastGroup => in_vpcs(doc, |v| &v.multicast_groups, |g| is(&g.id)).map(|(i, j)| Location::McastGroup(i, j)),
    }
}

/// Every resource of a document by kind and ID, built once: for callers that look up many IDs,
/// where a scan for each would be quadratic in a large region.
pub struct DocIndex<'a> {
    at: HashMap<(ResourceKind, &'a str), Location>,
}

impl<'a> DocIndex<'a> {
    pub fn new(doc: &'a TopologySpec) -> DocIndex<'a> {
        DocIndex::keeping(doc, |_| true)
    }

    /// The resources of `kinds` only: for a caller that looks up gateways, say, in a document
    /// whose route entries would be most of the index.
    pub fn of_kinds(doc: &'a TopologySpec, kinds: &[ResourceKind]) -> DocIndex<'a> {
        DocIndex::keeping(doc, |kind| kinds.contains(&kind))
    }

    fn keeping(doc: &'a TopologySpec, keep: impl Fn(ResourceKind) -> bool) -> DocIndex<'a> {
        let mut at = HashMap::new();
        each_resource(doc, |location, id| {
            if let Some(id) = id
                && keep(location.kind())
            {
                // The first of a kind and ID wins, as a scan in document order finds it.
                at.entry((location.kind(), id.as_str())).or_insert(location);
            }
        });
        DocIndex { at }
    }

    pub fn locate(&self, kind: ResourceKind, id: &str) -> Option<Location> {
        self.at.get(&(kind, id)).copied()
    }

    /// The indices of the `T` with ID `id`: `(vpc, gateway)` for a gateway, say.
    pub fn find<T: Located>(&self, id: &str) -> Option<T::At> {
        self.locate(T::KIND, id).and_then(T::at)
    }
}

/// The indices of the `T` with ID `id` in `doc`: `(vpc, vswitch)` for a VSwitch, say.
pub fn find<T: Located>(doc: &TopologySpec, id: &str) -> Option<T::At> {
    locate(doc, T::KIND, id).and_then(T::at)
}

/// A document type with an ID: its kind, and its location as plain indices.
pub trait Located {
    const KIND: ResourceKind;
    /// `usize` for a top-level list, `(vpc, index)` within a VPC, `(vpc, parent, index)` below.
    type At: Copy;
    fn at(location: Location) -> Option<Self::At>;
}

macro_rules! located {
    ($spec:ty, $variant:ident, $at:ty, ($($i:ident),+) => $out:expr) => {
        impl Located for $spec {
            const KIND: ResourceKind = ResourceKind::$variant;
            type At = $at;
            fn at(location: Location) -> Option<$at> {
                match location {
                    Location::$variant($($i),+) => Some($out),
                    _ => None,
                }
            }
        }
    };
}

located!(VpcSpec, Vpc, usize, (i) => i);
located!(VSwitchSpec, VSwitch, (usize, usize), (i, j) => (i, j));
located!(RouteTableSpec, RouteTable, (usize, usize), (i, j) => (i, j));
located!(RouteSpec, Route, (usize, usize, usize), (i, j, k) => (i, j, k));
located!(EniSpec, Eni, (usize, usize), (i, j) => (i, j));
located!(GatewaySpec, Gateway, (usize, usize), (i, j) => (i, j));
located!(SecurityGroupSpec, SecurityGroup, (usize, usize), (i, j) => (i, j));
located!(SgRuleSpec, SgRule, (usize, usize, usize), (i, j, k) => (i, j, k));
located!(CenSpec, Cen, usize, (i) => i);
located!(FlowLogSpec, FlowLog, usize, (i) => i);
located!(McastGroupSpec, McastGroup, (usize, usize), (i, j) => (i, j));

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> TopologySpec {
        TopologySpec::from_yaml(
            "vpcs:
  - {id: vpc-a, name: a, cidr: 10.0.0.0/16}
  - id: vpc-b
    name: b
    cidr: 10.1.0.0/16
    vswitches: [{id: vsw-1, name: s, cidr: 10.1.0.0/24, zone: z}]
    route_tables:
      - {id: vtb-1, name: system}
      - {id: vtb-2, name: t, routes: [{id: rte-1, dst: 0.0.0.0/0, next_hop: {type: blackhole}}]}
    security_groups: [{id: sg-1, name: default, rules: [{id: sgr-1, direction: ingress, protocol: all, peer: 0.0.0.0/0}]}]
cens: [{id: cen-1, name: c}]
flow_logs: [{id: fl-1, name: f, resource: {vpc: b}}]
",
        )
        .unwrap()
    }

    #[test]
    fn a_lookup_and_the_index_find_every_resource_where_it_is() {
        let doc = doc();
        let index = DocIndex::new(&doc);
        let mut seen = 0;
        each_resource(&doc, |location, id| {
            let id = id.as_deref().unwrap();
            assert_eq!(locate(&doc, location.kind(), id), Some(location), "{id}");
            assert_eq!(index.locate(location.kind(), id), Some(location), "{id}");
            seen += 1;
        });
        assert_eq!(seen, 10);
        assert_eq!(find::<RouteSpec>(&doc, "rte-1"), Some((1, 1, 0)));
        assert_eq!(index.find::<SgRuleSpec>("sgr-1"), Some((1, 0, 0)));
        assert_eq!(Location::Route(1, 1, 0).field(), "vpcs[1].route_tables[1].routes[0]");
    }

    #[test]
    fn an_id_of_another_kind_is_not_found() {
        let doc = doc();
        assert_eq!(find::<VSwitchSpec>(&doc, "vpc-a"), None);
        assert_eq!(DocIndex::new(&doc).find::<VpcSpec>("vsw-1"), None);
        assert_eq!(find::<CenSpec>(&doc, "cen-2"), None);
        let routes_only = DocIndex::of_kinds(&doc, &[ResourceKind::Route]);
        assert_eq!((routes_only.find::<RouteSpec>("rte-1"), routes_only.find::<VpcSpec>("vpc-b")), (Some((1, 1, 0)), None));
    }
}
