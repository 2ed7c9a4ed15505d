//! Rules about change rather than state, checked between the stored and the new topology.

use crate::model::{
    error::{Invalid, Problems, code},
    topology::Topology,
};

impl Topology {
    /// Rules about change rather than state: a VPC's or VSwitch's CIDR never changes.
    pub fn check_transition(old: &Topology, new: &Topology) -> Result<(), Invalid> {
        let mut problems = Problems::default();
        for (i, vpc) in new.vpcs.iter().enumerate() {
            let Some(before) = old.vpcs.iter().find(|v| v.id == vpc.id) else { continue };
            if before.cidr != vpc.cidr {
                problems.add(
                    code::CIDR_IMMUTABLE,
                    format!("vpcs[{i}].cidr"),
                    format!("VPC {} has CIDR {}; a VPC's CIDR cannot change (to {})", vpc.id, before.cidr, vpc.cidr),
                );
            }
            for (j, vsw) in vpc.vswitches.iter().enumerate() {
                let Some(b) = before.vswitches.iter().find(|s| s.id == vsw.id) else { continue };
                if b.cidr != vsw.cidr {
                    problems.add(
                        code::CIDR_IMMUTABLE,
                        format!("vpcs[{i}].vswitches[{j}].cidr"),
                        format!("VSwitch {} has CIDR {}; a VSwitch's CIDR cannot change (to {})", vsw.id, b.cidr, vsw.cidr),
                    );
                }
            }
        }
        problems.finish(())
    }
}
