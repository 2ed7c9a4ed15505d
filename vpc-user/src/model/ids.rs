//! Internal numbers the data path keys its maps by. They must stay the same across applies (an
//! unchanged ENI keeps its port, counters and flows), so they are allocated once and persisted;
//! a removed resource frees its number and the lowest free one is reused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Topology;

/// Name of the VPC's system route table.
pub const SYSTEM_TABLE: &str = "system";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    /// VPC name -> VPC id (>= 1).
    pub vpcs: BTreeMap<String, u32>,
    /// "vpc/vswitch" -> VSwitch id (>= 1).
    pub vswitches: BTreeMap<String, u32>,
    /// "vpc/table" -> route table id (>= 1).
    pub route_tables: BTreeMap<String, u32>,
    /// ENI name -> port (>= 0): index into the DEVMAP and the counters.
    pub ports: BTreeMap<String, u32>,
}

impl Ids {
    /// Give every resource of `topology` a number, keeping the numbers it already has and
    /// dropping those of resources that are gone. Fails when more than `max_ports` ENIs exist.
    pub fn assign(&mut self, topology: &Topology, max_ports: u32) -> Result<(), String> {
        let vpcs: Vec<String> = topology.vpcs.iter().map(|v| v.name.clone()).collect();
        let vswitches: Vec<String> =
            topology.vpcs.iter().flat_map(|v| v.vswitches.iter().map(move |s| format!("{}/{}", v.name, s.name))).collect();
        let tables: Vec<String> = topology.vpcs.iter().map(|v| format!("{}/{SYSTEM_TABLE}", v.name)).collect();
        let enis: Vec<String> = topology.enis().map(|(_, _, e)| e.name.clone()).collect();
        if enis.len() as u64 > u64::from(max_ports) {
            return Err(format!("{} ENIs exceed the data path's {max_ports} ports", enis.len()));
        }
        reassign(&mut self.vpcs, &vpcs, 1);
        reassign(&mut self.vswitches, &vswitches, 1);
        reassign(&mut self.route_tables, &tables, 1);
        reassign(&mut self.ports, &enis, 0);
        Ok(())
    }

    pub fn vpc(&self, vpc: &str) -> u32 {
        self.vpcs[vpc]
    }

    pub fn vswitch(&self, vpc: &str, vswitch: &str) -> u32 {
        self.vswitches[&format!("{vpc}/{vswitch}")]
    }

    pub fn route_table(&self, vpc: &str, table: &str) -> u32 {
        self.route_tables[&format!("{vpc}/{table}")]
    }

    pub fn port(&self, eni: &str) -> u32 {
        self.ports[eni]
    }

    /// The ENI on `port`, if any.
    pub fn eni_on_port(&self, port: u32) -> Option<&str> {
        self.ports.iter().find(|(_, p)| **p == port).map(|(n, _)| n.as_str())
    }
}

/// Keep the numbers of `wanted` names already in `ids`, drop the others, number the new ones
/// with the lowest free numbers from `first`.
fn reassign(ids: &mut BTreeMap<String, u32>, wanted: &[String], first: u32) {
    ids.retain(|name, _| wanted.contains(name));
    for name in wanted {
        if !ids.contains_key(name) {
            let taken: std::collections::BTreeSet<u32> = ids.values().copied().collect();
            let free = (first..).find(|n| !taken.contains(n)).expect("u32 space");
            ids.insert(name.clone(), free);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(enis: &[&str]) -> Topology {
        let mut yaml = String::from("vpcs:\n- name: prod\n  cidr: 10.0.0.0/16\n  vswitches: [{name: web, cidr: 10.0.1.0/24, zone: z}]\n  enis:\n");
        for (i, e) in enis.iter().enumerate() {
            yaml += &format!("  - {{name: {e}, vswitch: web, ip: 10.0.1.{}}}\n", i + 10);
        }
        Topology::from_yaml(&yaml).unwrap()
    }

    #[test]
    fn numbers_are_stable_and_reused() {
        let mut ids = Ids::default();
        ids.assign(&topo(&["aa", "bb", "cc"]), 16).unwrap();
        assert_eq!((ids.port("aa"), ids.port("bb"), ids.port("cc")), (0, 1, 2));
        assert_eq!(ids.vpc("prod"), 1);
        assert_eq!(ids.route_table("prod", SYSTEM_TABLE), 1);
        ids.assign(&topo(&["aa", "cc"]), 16).unwrap();
        assert_eq!((ids.port("aa"), ids.port("cc")), (0, 2), "survivors keep their ports");
        ids.assign(&topo(&["aa", "cc", "dd"]), 16).unwrap();
        assert_eq!(ids.port("dd"), 1, "lowest free port is reused");
        assert_eq!(ids.eni_on_port(2), Some("cc"));
        assert!(ids.assign(&topo(&["aa", "bb", "cc"]), 2).is_err());
    }
}
