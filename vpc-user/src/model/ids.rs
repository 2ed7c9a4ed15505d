//! Internal numbers the data path keys its maps by. They must stay the same across applies (an
//! unchanged ENI keeps its port, counters and flows), so they are allocated once per resource ID
//! and persisted; a removed resource frees its number and the lowest free one is reused.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

// Kept at its old path for callers that import it from here.
use super::Topology;
pub use super::constants::SYSTEM_TABLE;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    /// VPC ID -> VPC number (>= 1).
    pub vpcs: BTreeMap<String, u32>,
    /// VSwitch ID -> VSwitch number (>= 1).
    pub vswitches: BTreeMap<String, u32>,
    /// Route table ID -> table number (>= 1).
    pub route_tables: BTreeMap<String, u32>,
    /// ENI or gateway ID -> port (>= 0): index into the DEVMAP and the counters.
    pub ports: BTreeMap<String, u32>,
    /// Route entry ID -> group (>= 0) of an ECMP or active/standby route.
    #[serde(default)]
    pub groups: BTreeMap<String, u32>,
    /// Security group ID -> number (>= 1); its rule sets are `2n` (ingress) and `2n + 1` (egress).
    #[serde(default)]
    pub security_groups: BTreeMap<String, u32>,
    /// Security-group rule ID (or `<group ID>#intra` for a group's intra-group rule) -> counter.
    #[serde(default)]
    pub sg_rules: BTreeMap<String, u32>,
    /// Where each rule set lies in the data path's arrays (placed by the agent).
    #[serde(default)]
    pub sg_places: BTreeMap<u16, SgPlace>,
    /// Multicast group ID -> its counter (>= 0).
    #[serde(default)]
    pub mcast_groups: BTreeMap<String, u32>,
    /// `mcast_member(group, ENI)` -> the member's counter (>= 0).
    #[serde(default)]
    pub mcast_members: BTreeMap<String, u32>,
}

impl Ids {
    /// Rule counter -> the rule's ID (what the data path's numbers name).
    pub fn rules_by_counter(&self) -> std::collections::BTreeMap<u32, String> {
        self.sg_rules.iter().map(|(id, n)| (*n, id.clone())).collect()
    }
}

/// The counter key of ENI `eni_id` as a member of group `group_id`.
pub fn mcast_member(group_id: &str, eni_id: &str) -> String {
    format!("{group_id}/{eni_id}")
}

/// The ranges a compiled security-group rule set occupies: trie nodes, bitmap chunks, rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgPlace {
    pub nodes: (u32, u32),
    pub chunks: (u32, u32),
    pub rules: (u32, u32),
}

/// The counter key of a group's intra-group rule.
pub fn intra_rule(group_id: &str) -> String {
    format!("{group_id}#intra")
}

impl Ids {
    /// Give every resource of `topology` a number, keeping the numbers it already has and
    /// dropping those of resources that are gone. Fails when more than `max_ports` ENIs exist.
    pub fn assign(&mut self, topology: &Topology, max_ports: u32) -> Result<(), String> {
        let vpcs: Vec<&str> = topology.vpcs.iter().map(|v| v.id.as_str()).collect();
        let vswitches: Vec<&str> = topology.vpcs.iter().flat_map(|v| v.vswitches.iter().map(|s| s.id.as_str())).collect();
        let tables: Vec<&str> = topology.vpcs.iter().flat_map(|v| v.route_tables.iter().map(|t| t.id.as_str())).collect();
        let ports: Vec<&str> = topology
            .enis()
            .map(|(_, _, e)| e.id.as_str())
            .chain(topology.vpcs.iter().flat_map(|v| v.gateways.iter().map(|g| g.id.as_str())))
            .collect();
        if ports.len() as u64 > u64::from(max_ports) {
            return Err(format!("{} ENIs and gateways exceed the data path's {max_ports} ports", ports.len()));
        }
        let groups: Vec<&str> = topology
            .vpcs
            .iter()
            .flat_map(|v| &v.route_tables)
            .flat_map(|t| &t.routes)
            .filter(|r| matches!(r.next_hop, super::topology::NextHop::Group(_)))
            .map(|r| r.id.as_str())
            .collect();
        reassign(&mut self.vpcs, &vpcs, 1);
        reassign(&mut self.vswitches, &vswitches, 1);
        reassign(&mut self.route_tables, &tables, 1);
        reassign(&mut self.ports, &ports, 0);
        reassign(&mut self.groups, &groups, 0);
        let sgs: Vec<&super::security::SecurityGroup> = topology.vpcs.iter().flat_map(|v| &v.security_groups).collect();
        let sg_ids: Vec<&str> = sgs.iter().map(|g| g.id.as_str()).collect();
        let intra: Vec<String> = sgs.iter().map(|g| intra_rule(&g.id)).collect();
        let rules: Vec<&str> =
            sgs.iter().flat_map(|g| g.rules.iter().map(|r| r.id.as_str())).chain(intra.iter().map(String::as_str)).collect();
        reassign(&mut self.security_groups, &sg_ids, 1);
        reassign(&mut self.sg_rules, &rules, 0);
        let mcast: Vec<&str> = topology.vpcs.iter().flat_map(|v| v.multicast_groups.iter().map(|g| g.id.as_str())).collect();
        let mut members: Vec<String> = topology
            .vpcs
            .iter()
            .flat_map(|v| {
                v.multicast_groups
                    .iter()
                    .flat_map(move |g| g.members.iter().filter_map(move |m| v.eni(m).map(|e| mcast_member(&g.id, &e.id))))
            })
            .collect();
        // A member that leaves and joins again keeps its counter while its group and ENI
        // exist: its statistics go on where they stopped.
        for key in self.mcast_members.keys() {
            let Some((group, eni)) = key.split_once('/') else { continue };
            let both = topology.vpcs.iter().any(|v| v.multicast_groups.iter().any(|g| g.id == group) && v.enis.iter().any(|e| e.id == eni));
            if both && !members.contains(key) {
                members.push(key.clone());
            }
        }
        reassign(&mut self.mcast_groups, &mcast, 0);
        reassign(&mut self.mcast_members, &members.iter().map(String::as_str).collect::<Vec<_>>(), 0);
        let sets: BTreeSet<u16> = self.security_groups.values().flat_map(|&n| [set_of(n, 0), set_of(n, 1)]).collect();
        self.sg_places.retain(|set, _| sets.contains(set));
        Ok(())
    }

    /// The set of security group `id` in direction 0 (ingress) or 1 (egress).
    pub fn sg_set(&self, id: &str, direction: usize) -> u16 {
        set_of(self.security_groups[id], direction)
    }

    /// The counter of security-group rule `key` (a rule ID or `intra_rule(group)`).
    pub fn sg_rule(&self, key: &str) -> u32 {
        self.sg_rules[key]
    }

    /// Give route table `id` a fresh number, used by no table now: its entries are then written
    /// as a new generation beside the old one, and ENIs switch over one atomic update each.
    /// Returns the new number.
    pub fn renumber_table(&mut self, id: &str, avoid: &BTreeSet<u32>) -> u32 {
        let taken: BTreeSet<u32> = self.route_tables.values().copied().chain(avoid.iter().copied()).collect();
        let fresh = (1..).find(|n| !taken.contains(n)).expect("u32 space");
        self.route_tables.insert(id.to_string(), fresh);
        fresh
    }

    pub fn group(&self, route_id: &str) -> u32 {
        self.groups[route_id]
    }

    pub fn vpc(&self, id: &str) -> u32 {
        self.vpcs[id]
    }

    pub fn vswitch(&self, id: &str) -> u32 {
        self.vswitches[id]
    }

    pub fn route_table(&self, id: &str) -> u32 {
        self.route_tables[id]
    }

    pub fn port(&self, eni_id: &str) -> u32 {
        self.ports[eni_id]
    }
}

/// The set number of group number `n` in `direction` (0 ingress, 1 egress).
pub fn set_of(n: u32, direction: usize) -> u16 {
    (n * 2 + direction as u32) as u16
}

/// Keep the numbers of `wanted` IDs already in `ids`, drop the others, number the new ones with
/// the lowest free numbers from `first`.
fn reassign(ids: &mut BTreeMap<String, u32>, wanted: &[&str], first: u32) {
    let wanted_set: BTreeSet<&str> = wanted.iter().copied().collect();
    // Numbers freed now are not handed out again in the same change: a flow cached towards a
    // removed ENI's port must never reach the ENI that would take the number over.
    let freed: BTreeSet<u32> = ids.iter().filter(|(id, _)| !wanted_set.contains(id.as_str())).map(|(_, n)| *n).collect();
    ids.retain(|id, _| wanted_set.contains(id.as_str()));
    let mut taken: BTreeSet<u32> = ids.values().copied().chain(freed).collect();
    let mut next = first;
    for id in wanted {
        if !ids.contains_key(*id) {
            while taken.contains(&next) {
                next += 1;
            }
            ids.insert((*id).to_string(), next);
            taken.insert(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(enis: &[&str]) -> Topology {
        let mut yaml = String::from(
            "vpcs:\n- name: prod\n  id: vpc-prod\n  cidr: 10.0.0.0/16\n  vswitches: [{name: web, cidr: 10.0.1.0/24, zone: z}]\n  enis:\n",
        );
        for (i, e) in enis.iter().enumerate() {
            yaml += &format!("  - {{name: {e}, id: eni-{e}, vswitch: web, ip: 10.0.1.{}}}\n", i + 10);
        }
        Topology::from_yaml(&yaml).unwrap()
    }

    #[test]
    fn numbers_are_stable_and_reused() {
        let mut ids = Ids::default();
        ids.assign(&topo(&["aa", "bb", "cc"]), 16).unwrap();
        assert_eq!((ids.port("eni-aa"), ids.port("eni-bb"), ids.port("eni-cc")), (0, 1, 2));
        assert_eq!(ids.vpc("vpc-prod"), 1);
        ids.assign(&topo(&["aa", "cc"]), 16).unwrap();
        assert_eq!((ids.port("eni-aa"), ids.port("eni-cc")), (0, 2), "survivors keep their ports");
        ids.assign(&topo(&["aa", "cc", "dd"]), 16).unwrap();
        assert_eq!(ids.port("eni-dd"), 1, "lowest free port is reused, in a later change");
        ids.assign(&topo(&["aa", "ee"]), 16).unwrap();
        assert_eq!(ids.port("eni-ee"), 3, "not in the change that freed it");
        assert!(ids.assign(&topo(&["aa", "bb", "cc"]), 2).is_err());
    }
}
