//! The incremental path against the reference: on random topologies and random edit sequences,
//! every edit it decides leaves the same document, topology, numbers and map entries as
//! validating and compiling the whole edited document, and refuses with the same problems.

use super::*;
use crate::{
    compile::compile,
    model::{ids::Ids, normalize::normalize, spec::HopSpec},
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

/// Route entries per table in these tests: small, so edits meet the quota.
const ENTRY_QUOTA: u32 = 6;

fn quotas() -> Quotas {
    Quotas { route_entries_per_table: ENTRY_QUOTA, ..Quotas::unlimited() }
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
        yaml += &format!(
            "  - name: v{v}
    cidr: 172.{}.0.0/16
    vswitches:
      - {{name: s{v}a, cidr: 172.{}.1.0/24, zone: a}}
      - {{name: s{v}b, cidr: 172.{}.2.0/24, zone: a, route_table: custom}}
    enis:
      - {{name: e{v}a, vswitch: s{v}a, ip: 172.{}.1.10}}
      - {{name: e{v}b, vswitch: s{v}b, ip: 172.{}.2.10}}
{gateway}    route_tables:
      - {{name: system, routes: [{}]}}
      - {{name: custom}}
",
            16 + v,
            16 + v,
            16 + v,
            16 + v,
            16 + v,
            routes.join(", ")
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
    compile::sg::place_sets(&mut entries, &now.entries.sg.sets, &mut binding.ids, crate::dataplane::Limits::default().sg_capacity())
        .expect("room for the groups");
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

#[test]
fn incremental_edits_equal_the_full_transaction() {
    let (mut decided, mut refused, mut fell_back) = (0, 0, 0);
    for seed in 1..=40u64 {
        let mut rng = Rng::new(seed);
        let mut now = start(&mut rng);
        for step in 0..60 {
            let edit = edit(&mut rng, &now.doc);
            let mut edited = now.doc.clone();
            edit.apply(&mut edited);
            let reference = full(&now, edited);
            let state = State { doc: &now.doc, topology: &now.topology, binding: &now.binding, entries: &now.entries };
            let at = format!("seed {seed}, edit {step}: {edit:?}");
            match plan(&state, &quotas(), edit) {
                Err(_) => {
                    fell_back += 1;
                    if let Ok(next) = reference {
                        now = next;
                    }
                }
                Ok(Err(invalid)) => {
                    refused += 1;
                    assert_eq!(Err(invalid), reference.map(|_| ()), "{at}: the same refusal");
                }
                Ok(Ok(planned)) => {
                    decided += 1;
                    let reference = reference.unwrap_or_else(|e| panic!("{at}: the full path refuses it: {e}"));
                    let diffed = crate::model::diff::diff(&now.topology, &reference.topology);
                    assert_eq!(vec![planned.change.clone()], diffed, "{at}: the change reported");
                    assert_eq!(now.binding.ids, reference.binding.ids, "{at}: no number changes");
                    let mut next = now.clone();
                    planned.apply_to(&mut next.doc, &mut next.topology, &mut next.entries);
                    assert_eq!(next.doc, reference.doc, "{at}: the document");
                    assert_eq!(next.topology, reference.topology, "{at}: the topology");
                    assert_eq!(next.entries, reference.entries, "{at}: the map entries");
                    now = next;
                }
            }
        }
    }
    // At least 1,000 edits compared with the reference, many of each outcome.
    let counts = format!("decided {decided}, refused {refused}, fell back {fell_back}");
    assert!(decided + refused >= 1000 && decided >= 500 && refused >= 200 && fell_back >= 100, "{counts}");
}
