//! The incremental path against the reference: on random topologies and random edit sequences,
//! every edit it decides (route entries, security-group rules) leaves the same document,
//! topology, numbers and map entries as validating and compiling the whole edited document,
//! and refuses with the same problems.

use super::*;
use crate::{
    compile::compile,
    model::{
        ids::Ids,
        normalize::normalize,
        spec::{HopSpec, NextHopSpec, PeerSpec, SgRuleSpec},
    },
    tools::fuzz::Rng,
};

/// The state one edit leads from.
#[derive(Clone)]
struct Now {
    doc: TopologySpec,
    topology: Topology,
    binding: Binding,
    entries: MapEntries,
}

/// Route entries per table and rules per group in these tests: small, so edits meet the quota.
const ENTRY_QUOTA: u32 = 6;
const RULE_QUOTA: u32 = 6;

fn quotas() -> Quotas {
    Quotas { route_entries_per_table: ENTRY_QUOTA, rules_per_security_group: RULE_QUOTA, ..Quotas::unlimited() }
}

fn sg_capacity() -> crate::compile::sg::Capacity {
    crate::dataplane::Limits::default().sg_capacity()
}

/// One to three VPCs, each with two VSwitches (the second on a custom table), two ENIs, maybe
/// a gateway; sometimes a CEN of the first two.
fn topology(rng: &mut Rng) -> TopologySpec {
    let mut yaml = String::from("vpcs:\n");
    let vpcs = 1 + rng.below(3);
    for v in 0..vpcs {
        let gateway =
            if rng.chance(60) { format!("    gateways: [{{name: g{v}, networks: [192.168.{v}.0/24]}}]\n") } else { String::new() };
        let routes: Vec<String> =
            (0..rng.below(4)).map(|k| format!("{{dst: 10.{v}{k}.0.0/16, next_hop: {{type: eni, eni: e{v}a}}}}")).collect();
        let rules: Vec<String> = (0..rng.below(4))
            .map(|k| format!("{{direction: ingress, protocol: tcp, ports: {p}/{p}, peer: 10.{k}.0.0/16}}", p = 80 + k))
            .collect();
        yaml += &format!(
            "  - name: v{v}
    cidr: 172.{}.0.0/16
    vswitches:
      - {{name: s{v}a, cidr: 172.{}.1.0/24, zone: a}}
      - {{name: s{v}b, cidr: 172.{}.2.0/24, zone: a, route_table: custom}}
    enis:
      - {{name: e{v}a, vswitch: s{v}a, ip: 172.{}.1.10, security_groups: [web]}}
      - {{name: e{v}b, vswitch: s{v}b, ip: 172.{}.2.10}}
{gateway}    route_tables:
      - {{name: system, routes: [{}]}}
      - {{name: custom}}
    security_groups:
      - {{name: web, rules: [{}]}}
",
            16 + v,
            16 + v,
            16 + v,
            16 + v,
            16 + v,
            routes.join(", "),
            rules.join(", ")
        );
    }
    if vpcs > 1 && rng.chance(30) {
        yaml += "cens: [{name: c0, vpcs: [v0, v1]}]\n";
    }
    normalize(&TopologySpec::default(), TopologySpec::from_yaml(&yaml).expect("test topology parses"))
}

/// What a full transaction leaves from `doc` (the agent's `commit_document` without the I/O):
/// `Err` with the problems it refuses with.
fn full(now: &Now, doc: TopologySpec) -> Result<Now, Invalid> {
    let doc = normalize(&now.doc, doc);
    let topology = Topology::from_spec(&doc, &quotas())?;
    Topology::check_transition(&now.topology, &topology)?;
    let mut ids = now.binding.ids.clone();
    ids.assign(&topology, 1000).expect("ports enough");
    let mut binding = Binding { ids, ..Default::default() };
    let mut entries = compile(&topology, &binding);
    let flips = super::super::widely_changed_tables(&now.entries, &entries);
    if !flips.is_empty() {
        let avoid = now.entries.routes.keys().chain(entries.routes.keys()).map(|k| k.key.table).collect();
        let mut renumbered = std::collections::BTreeMap::new();
        for number in flips {
            let id = binding.ids.route_tables.iter().find(|(_, n)| **n == number).map(|(id, _)| id.clone()).expect("table numbered");
            renumbered.insert(number, binding.ids.renumber_table(&id, &avoid));
        }
        entries = entries.renumber_tables(&renumbered);
    }
    crate::compile::sg::place_sets(&mut entries, &now.entries.sg.sets, &mut binding.ids, sg_capacity()).expect("room for the groups");
    Ok(Now { doc, topology, binding, entries })
}

fn start(rng: &mut Rng) -> Now {
    let empty = Now {
        doc: TopologySpec::default(),
        topology: Topology { vpcs: Vec::new(), cens: Vec::new(), flow_logs: Vec::new() },
        binding: Binding { ids: Ids::default(), ..Default::default() },
        entries: MapEntries::default(),
    };
    full(&empty, topology(rng)).expect("test topology is valid")
}

/// A random edit of `doc`: mostly ones the incremental path takes, valid or not, and some it
/// leaves to the full path.
fn edit(rng: &mut Rng, doc: &TopologySpec) -> Edit {
    if rng.chance(50) { rule_edit(rng, doc) } else { route_edit(rng, doc) }
}

/// A rule authorized or rules revoked, in any group; valid or not.
fn rule_edit(rng: &mut Rng, doc: &TopologySpec) -> Edit {
    let vpc = rng.below(doc.vpcs.len() as u64) as usize;
    let group = rng.below(doc.vpcs[vpc].security_groups.len() as u64) as usize;
    let rules = &doc.vpcs[vpc].security_groups[group].rules;
    if !rules.is_empty() && rng.chance(35) {
        let mut ids: Vec<String> = rules.iter().filter(|_| rng.chance(40)).filter_map(|r| r.id.clone()).collect();
        if ids.is_empty() || rng.chance(10) {
            ids.push(if rng.chance(70) { rules[0].id.clone().unwrap() } else { "sgr-nobody".into() });
        }
        return Edit::RemoveSgRules { vpc, group, rules: ids };
    }
    let pick = |rng: &mut Rng, options: &[&str]| options[rng.below(options.len() as u64) as usize].to_string();
    let peer = match rng.below(8) {
        0 => PeerSpec::Group { group: "web".into() },
        1 => PeerSpec::Group { group: "nobody".into() },
        2 => PeerSpec::Cidr("10.1.2.3/8".into()),
        3 => PeerSpec::Cidr("somewhere".into()),
        // A small pool, so rules meet their duplicates.
        _ => PeerSpec::Cidr(format!("10.{}.0.0/16", rng.below(6))),
    };
    let rule = SgRuleSpec {
        id: Some(crate::model::normalize::new_id("sgr")),
        direction: pick(rng, &["ingress", "ingress", "egress", "egress", "sideways"]),
        policy: Some(pick(rng, &["accept", "accept", "drop", "maybe"])),
        protocol: pick(rng, &["tcp", "tcp", "udp", "icmp", "all", "sctp"]),
        ports: Some(pick(rng, &["80/80", "81/81", "-1/-1", "1/65535", "443/443", "90/80", "x"])),
        peer,
        priority: Some(pick(rng, &["1", "1", "5", "100", "0", "101"]).parse().unwrap()),
        description: if rng.chance(10) { Some("http://example.com".into()) } else { None },
    };
    Edit::AddSgRule { vpc, group, rule }
}

/// A custom route entry added or removed; valid or not.
fn route_edit(rng: &mut Rng, doc: &TopologySpec) -> Edit {
    let vpc = rng.below(doc.vpcs.len() as u64) as usize;
    let table = rng.below(2) as usize;
    let routes = doc.vpcs[vpc].route_tables[table].routes.len();
    if routes > 0 && rng.chance(40) {
        // Mostly the last entry (incremental), sometimes one before it (a new generation).
        let route = if rng.chance(75) { routes - 1 } else { rng.below(routes as u64) as usize };
        return Edit::RemoveRoute { vpc, table, route };
    }
    let other = rng.below(3);
    let dst = match rng.below(10) {
        // A VSwitch's destination (a system entry's), not canonical, not a CIDR, the cloud
        // services' range.
        0 => format!("172.{}.1.0/24", 16 + vpc),
        1 => "10.200.0.1/16".into(),
        2 => "nowhere".into(),
        3 => crate::model::constants::CLOUD_SERVICES.into(),
        // A small pool, so entries meet their duplicates.
        _ => format!("10.{}.0.0/16", rng.below(12)),
    };
    let next_hop = match rng.below(12) {
        0..=3 => NextHopSpec::Eni { eni: format!("e{vpc}{}", if rng.chance(50) { "a" } else { "b" }) },
        4 => NextHopSpec::Eni { eni: format!("e{other}a") },
        5 | 6 => NextHopSpec::Gateway { gateway: format!("g{}", if rng.chance(80) { vpc as u64 } else { other }) },
        7 | 8 => NextHopSpec::Blackhole,
        9 => NextHopSpec::Vpc { vpc: format!("v{other}") },
        10 => NextHopSpec::Ecmp {
            hops: [format!("e{vpc}a"), format!("e{vpc}b")].map(|eni| HopSpec { eni: Some(eni), ..Default::default() }).into(),
        },
        _ => NextHopSpec::Eni { eni: "nobody".into() },
    };
    let name = match rng.below(8) {
        0 => Some("x".into()),
        1 => Some("entry-one".into()),
        _ => None,
    };
    let description = match rng.below(10) {
        0 => Some("http://example.com".into()),
        1 => Some("to the firewall".into()),
        _ => None,
    };
    let route = RouteSpec { id: Some(crate::model::normalize::new_id("rte")), dst, next_hop, name, description };
    Edit::AddRoute { vpc, table, route }
}

/// What a follower must not take for one edit: rows of other kinds, an entry not appended at
/// the end, rows gone from two places.
#[test]
fn a_delta_that_is_not_one_edit_goes_to_the_full_path() {
    let mut rng = Rng::new(7);
    let now = start(&mut rng);
    let (table, group) = (&now.doc.vpcs[0].route_tables[0], &now.doc.vpcs[0].security_groups[0]);
    let sample = TopologySpec::from_yaml(
        "vpcs: [{name: v, cidr: 10.0.0.0/16, route_tables: [{name: t, routes: [{dst: 10.9.0.0/16, next_hop: {type: blackhole}}]}], \
         security_groups: [{name: g, rules: [{direction: ingress, protocol: all, peer: 10.0.0.0/8}]}]}]",
    )
    .unwrap();
    let route = RouteSpec { id: Some("vtbe-new".into()), ..sample.vpcs[0].route_tables[0].routes[0].clone() };
    let appended = (table.id.clone().unwrap(), table.routes.len(), route.clone());
    let one = Delta { routes: vec![appended.clone()], ..Default::default() };
    assert!(matches!(edit_of(&now.doc, &one), Some(Edit::AddRoute { vpc: 0, table: 0, .. })));
    assert_eq!(edit_of(&now.doc, &Delta { others: 1, ..one.clone() }), None, "another kind of row beside it");
    let past = Delta { routes: vec![(appended.0.clone(), appended.1 + 1, route)], ..Default::default() };
    assert_eq!(edit_of(&now.doc, &past), None, "not right after the last entry");
    let rule = SgRuleSpec { id: Some("sgr-new".into()), ..sample.vpcs[0].security_groups[0].rules[0].clone() };
    let both = Delta { routes: vec![appended], sg_rules: vec![(group.id.clone().unwrap(), group.rules.len(), rule)], ..Default::default() };
    assert_eq!(edit_of(&now.doc, &both), None, "two edits");
    assert_eq!(edit_of(&now.doc, &Delta { gone: vec!["nothing-by-this-id".into()], ..Default::default() }), None);
}

#[test]
fn incremental_edits_equal_the_full_transaction() {
    // (decided, refused, fell back) for route entries and for rules.
    let (mut routes, mut rules) = ([0; 3], [0; 3]);
    for seed in 1..=40u64 {
        let mut rng = Rng::new(seed);
        let mut now = start(&mut rng);
        for step in 0..80 {
            let edit = edit(&mut rng, &now.doc);
            let counts = if matches!(edit, Edit::AddRoute { .. } | Edit::RemoveRoute { .. }) { &mut routes } else { &mut rules };
            let mut edited = now.doc.clone();
            edit.apply(&mut edited);
            let reference = full(&now, edited);
            let state =
                State { doc: &now.doc, topology: &now.topology, binding: &now.binding, entries: &now.entries, sg_capacity: sg_capacity() };
            let at = format!("seed {seed}, edit {step}: {edit:?}");
            match plan(&state, &quotas(), edit) {
                Err(_) => {
                    counts[2] += 1;
                    if let Ok(next) = reference {
                        now = next;
                    }
                }
                Ok(Err(invalid)) => {
                    counts[1] += 1;
                    assert_eq!(Err(invalid), reference.map(|_| ()), "{at}: the same refusal");
                }
                Ok(Ok(planned)) => {
                    counts[0] += 1;
                    let reference = reference.unwrap_or_else(|e| panic!("{at}: the full path refuses it: {e}"));
                    let diffed = crate::model::diff::diff(&now.topology, &reference.topology);
                    assert_eq!(vec![planned.change.clone()], diffed, "{at}: the change reported");
                    // A follower, from the rows this commit writes, finds the same edit.
                    let mut delta = crate::store::Delta::default();
                    for row in planned.rows(&now.doc) {
                        match row {
                            RowChange::PutRoute { table, pos, route } => delta.routes.push((table.into(), pos, route.clone())),
                            RowChange::PutSgRule { group, pos, rule } => delta.sg_rules.push((group.into(), pos, rule.clone())),
                            RowChange::Remove(id) => delta.gone.push(id.into()),
                            RowChange::Ids(_) => {}
                        }
                    }
                    let found = edit_of(&now.doc, &delta).unwrap_or_else(|| panic!("{at}: no edit found in {delta:?}"));
                    let mut followed = now.doc.clone();
                    found.apply(&mut followed);
                    assert_eq!(followed, reference.doc, "{at}: the follower's edit {found:?}");
                    let mut next = now.clone();
                    planned.apply_to(&mut next.doc, &mut next.topology, &mut next.binding.ids, &mut next.entries);
                    assert_eq!(next.doc, reference.doc, "{at}: the document");
                    assert_eq!(next.topology, reference.topology, "{at}: the topology");
                    assert_eq!(next.binding.ids, reference.binding.ids, "{at}: the numbers");
                    assert_eq!(next.entries, reference.entries, "{at}: the map entries");
                    now = next;
                }
            }
        }
    }
    // At least 1,000 edits compared with the reference, many of each outcome and kind.
    let counts = format!("routes (decided, refused, fell back) {routes:?}, rules {rules:?}");
    let compared = routes[0] + routes[1] + rules[0] + rules[1];
    assert!(compared >= 1000 && routes[0] >= 300 && routes[1] >= 100 && routes[2] >= 50, "{counts}");
    assert!(rules[0] >= 300 && rules[1] >= 100 && rules[2] >= 20, "{counts}");
}
