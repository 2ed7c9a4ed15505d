//! A document as rows, one per resource, keyed by its ID: what both stores write. A row holds
//! the resource without its children, its parent's ID and its position, so a change to one
//! route entry writes one row, not the whole VPC.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap, HashSet},
};

use serde::{Deserialize, Serialize};

use crate::model::spec::{
    CenSpec, EniSpec, FlowLogSpec, GatewaySpec, RouteSpec, RouteTableSpec, SecurityGroupSpec, SgRuleSpec, TopologySpec, VSwitchSpec,
    VpcSpec,
};

/// One row of the resources table (`Cow`: rows are built borrowing the document, read owned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row<'a> {
    /// The parent's ID (empty for VPCs).
    pub parent: Cow<'a, str>,
    /// Position among its siblings, to give documents back in the order they were written.
    pub pos: usize,
    pub body: Body<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body<'a> {
    Vpc(VpcSpec),
    Vswitch(Cow<'a, VSwitchSpec>),
    RouteTable(RouteTableSpec),
    Route(Cow<'a, RouteSpec>),
    Eni(Cow<'a, EniSpec>),
    Gateway(Cow<'a, GatewaySpec>),
    Cen(Cow<'a, CenSpec>),
    FlowLog(Cow<'a, FlowLogSpec>),
    SecurityGroup(SecurityGroupSpec),
    SgRule(Cow<'a, SgRuleSpec>),
}

/// JSON of each row, on several threads when there are many (a first apply of a large table).
pub fn encode_rows(rows: &[(&str, &Row<'_>)]) -> anyhow::Result<Vec<Vec<u8>>> {
    const PER_THREAD: usize = 8192;
    let encode = |chunk: &[(&str, &Row<'_>)]| chunk.iter().map(|(_, row)| serde_json::to_vec(row)).collect::<Result<Vec<_>, _>>();
    if rows.len() <= PER_THREAD {
        return Ok(encode(rows)?);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let chunk = rows.len().div_ceil(threads).max(PER_THREAD);
    std::thread::scope(|scope| {
        let workers: Vec<_> = rows.chunks(chunk).map(|part| scope.spawn(move || encode(part))).collect();
        let mut out = Vec::with_capacity(rows.len());
        for worker in workers {
            out.extend(worker.join().expect("row encoder panicked")?);
        }
        Ok(out)
    })
}

/// The document as rows keyed by resource ID, borrowing from it. Resources without an ID are not
/// stored (the agent only commits normalized documents).
pub fn flatten(doc: &TopologySpec) -> Vec<(&str, Row<'_>)> {
    fn put<'a>(rows: &mut Vec<(&'a str, Row<'a>)>, id: &'a Option<String>, parent: Option<&'a str>, pos: usize, body: Body<'a>) {
        if let Some(id) = id {
            rows.push((id.as_str(), Row { parent: Cow::Borrowed(parent.unwrap_or_default()), pos, body }));
        }
    }
    let mut rows = Vec::new();
    let rows_ = &mut rows;
    let mut put = |id, parent, pos, body| put(rows_, id, parent, pos, body);
    for (i, vpc) in doc.vpcs.iter().enumerate() {
        let bare = VpcSpec {
            vswitches: Vec::new(),
            route_tables: Vec::new(),
            enis: Vec::new(),
            gateways: Vec::new(),
            security_groups: Vec::new(),
            // Groups are small: they live in the VPC's row.
            multicast_groups: vpc.multicast_groups.clone(),
            id: vpc.id.clone(),
            name: vpc.name.clone(),
            cidr: vpc.cidr.clone(),
            description: vpc.description.clone(),
            default: vpc.default,
            conntrack_limit: vpc.conntrack_limit,
        };
        let parent = vpc.id.as_deref();
        put(&vpc.id, None, i, Body::Vpc(bare));
        for (j, s) in vpc.vswitches.iter().enumerate() {
            put(&s.id, parent, j, Body::Vswitch(Cow::Borrowed(s)));
        }
        for (j, t) in vpc.route_tables.iter().enumerate() {
            let bare = RouteTableSpec { id: t.id.clone(), name: t.name.clone(), description: t.description.clone(), routes: Vec::new() };
            put(&t.id, parent, j, Body::RouteTable(bare));
            for (k, r) in t.routes.iter().enumerate() {
                put(&r.id, t.id.as_deref(), k, Body::Route(Cow::Borrowed(r)));
            }
        }
        for (j, e) in vpc.enis.iter().enumerate() {
            put(&e.id, parent, j, Body::Eni(Cow::Borrowed(e)));
        }
        for (j, g) in vpc.gateways.iter().enumerate() {
            put(&g.id, parent, j, Body::Gateway(Cow::Borrowed(g)));
        }
        for (j, g) in vpc.security_groups.iter().enumerate() {
            let bare = SecurityGroupSpec { rules: Vec::new(), ..g.clone() };
            put(&g.id, parent, j, Body::SecurityGroup(bare));
            for (k, r) in g.rules.iter().enumerate() {
                put(&r.id, g.id.as_deref(), k, Body::SgRule(Cow::Borrowed(r)));
            }
        }
    }
    for (i, cen) in doc.cens.iter().enumerate() {
        put(&cen.id, None, i, Body::Cen(Cow::Borrowed(cen)));
    }
    for (i, log) in doc.flow_logs.iter().enumerate() {
        put(&log.id, None, i, Body::FlowLog(Cow::Borrowed(log)));
    }
    rows
}

pub fn unflatten(rows: BTreeMap<String, Row<'static>>) -> TopologySpec {
    let mut sorted: Vec<Row<'static>> = rows.into_values().collect();
    sorted.sort_by(|a, b| (a.pos, &a.parent).cmp(&(b.pos, &b.parent)));
    let mut doc = TopologySpec::default();
    let (mut vswitches, mut tables, mut routes, mut enis, mut gateways) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut groups, mut rules) = (Vec::new(), Vec::new());
    for row in sorted {
        let parent = row.parent.into_owned();
        match row.body {
            Body::Vpc(v) => doc.vpcs.push(v),
            Body::Vswitch(s) => vswitches.push((parent, s.into_owned())),
            Body::RouteTable(t) => tables.push((parent, t)),
            Body::Route(r) => routes.push((parent, r.into_owned())),
            Body::Eni(e) => enis.push((parent, e.into_owned())),
            Body::Gateway(g) => gateways.push((parent, g.into_owned())),
            Body::Cen(c) => doc.cens.push(c.into_owned()),
            Body::FlowLog(f) => doc.flow_logs.push(f.into_owned()),
            Body::SecurityGroup(g) => groups.push((parent, g)),
            Body::SgRule(r) => rules.push((parent, r.into_owned())),
        }
    }
    let mut by_group: std::collections::HashMap<String, Vec<SgRuleSpec>> = std::collections::HashMap::new();
    for (parent, rule) in rules {
        by_group.entry(parent).or_default().push(rule);
    }
    for (_, group) in &mut groups {
        if let Some(rules) = group.id.as_ref().and_then(|id| by_group.remove(id)) {
            group.rules = rules;
        }
    }
    // Route entries by table, in one pass (large tables).
    let mut by_table: std::collections::HashMap<String, Vec<RouteSpec>> = std::collections::HashMap::new();
    for (parent, route) in routes {
        by_table.entry(parent).or_default().push(route);
    }
    for (_, table) in &mut tables {
        if let Some(routes) = table.id.as_ref().and_then(|id| by_table.remove(id)) {
            table.routes = routes;
        }
    }
    for vpc in &mut doc.vpcs {
        let id = vpc.id.clone().unwrap_or_default();
        vpc.vswitches.extend(vswitches.iter().filter(|(p, _)| *p == id).map(|(_, s)| s.clone()));
        vpc.route_tables.extend(tables.iter().filter(|(p, _)| *p == id).map(|(_, t)| t.clone()));
        vpc.enis.extend(enis.iter().filter(|(p, _)| *p == id).map(|(_, e)| e.clone()));
        vpc.gateways.extend(gateways.iter().filter(|(p, _)| *p == id).map(|(_, g)| g.clone()));
        vpc.security_groups.extend(groups.iter().filter(|(p, _)| *p == id).map(|(_, g)| g.clone()));
    }
    doc
}

/// What turns document `old` into `new`: the rows new or changed (in ID order) and the IDs gone.
/// Both stores write exactly these.
pub fn differences<'a>(old: &'a TopologySpec, new: &'a TopologySpec) -> (Vec<(&'a str, Row<'a>)>, Vec<&'a str>) {
    let before: HashMap<&str, Row<'_>> = flatten(old).into_iter().collect();
    let after = flatten(new);
    let kept: HashSet<&str> = after.iter().map(|(id, _)| *id).collect();
    let gone = before.keys().copied().filter(|id| !kept.contains(id)).collect();
    let mut changed: Vec<(&str, Row<'_>)> = after.into_iter().filter(|(id, row)| before.get(id) != Some(row)).collect();
    // Keys in order (redb's B-tree inserts become append-like).
    changed.sort_unstable_by_key(|(id, _)| *id);
    (changed, gone)
}

/// The row a change that names its rows writes, by ID (`None`: it writes no row, or the
/// resource has no ID).
pub fn written<'a>(change: &super::RowChange<'a>) -> Option<(&'a str, Row<'a>)> {
    use super::RowChange;
    match *change {
        RowChange::PutRoute { table, pos, route } => {
            Some((route.id.as_deref()?, Row { parent: Cow::Borrowed(table), pos, body: Body::Route(Cow::Borrowed(route)) }))
        }
        RowChange::PutSgRule { group, pos, rule } => {
            Some((rule.id.as_deref()?, Row { parent: Cow::Borrowed(group), pos, body: Body::SgRule(Cow::Borrowed(rule)) }))
        }
        RowChange::Remove(_) | RowChange::Ids(_) => None,
    }
}
