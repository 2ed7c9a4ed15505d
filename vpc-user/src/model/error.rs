//! Validation problems: a stable code (as in the cloud API's error codes), the field path and a
//! message that names the rule. Validation reports every problem, not just the first.

use std::fmt;

use serde::Serialize;

/// Stable error codes. Tests and API clients match on these strings; never rename one.
pub mod code {
    pub const NAME_MALFORMED: &str = "InvalidName.Malformed";
    pub const NAME_DUPLICATE: &str = "InvalidName.Duplicate";
    pub const DESCRIPTION_MALFORMED: &str = "InvalidDescription.Malformed";
    pub const CIDR_MALFORMED: &str = "InvalidCidrBlock.Malformed";
    pub const VPC_CIDR_NOT_PRIVATE: &str = "InvalidVpcCidr.NotPrivate";
    pub const VSWITCH_CIDR_NOT_IN_VPC: &str = "InvalidVSwitchCidr.NotInVpc";
    pub const VSWITCH_CIDR_MASK: &str = "InvalidVSwitchCidr.Mask";
    pub const VSWITCH_CIDR_OVERLAP: &str = "InvalidVSwitchCidr.Overlapped";
    pub const ZONE_MISSING: &str = "InvalidZone.Missing";
    pub const VSWITCH_NOT_FOUND: &str = "InvalidVSwitch.NotFound";
    pub const IP_MALFORMED: &str = "InvalidIpAddress.Malformed";
    pub const IP_NOT_IN_VSWITCH: &str = "InvalidIpAddress.NotInVSwitch";
    pub const IP_RESERVED: &str = "InvalidIpAddress.Reserved";
    pub const IP_IN_USE: &str = "InvalidIpAddress.InUse";
    pub const MAC_MALFORMED: &str = "InvalidMacAddress.Malformed";
    pub const MAC_DUPLICATE: &str = "InvalidMacAddress.Duplicate";
    pub const INTERFACE_MALFORMED: &str = "InvalidInterface.Malformed";
    pub const INTERFACE_DUPLICATE: &str = "InvalidInterface.Duplicate";
    pub const YAML_SYNTAX: &str = "InvalidTopology.Syntax";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: &'static str,
    /// Path of the offending field, e.g. `vpcs[0].vswitches[1].cidr`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} [{}]", self.field, self.message, self.code)
    }
}

/// One or more validation problems; nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid(pub Vec<Problem>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl Invalid {
    pub fn codes(&self) -> Vec<&'static str> {
        self.0.iter().map(|p| p.code).collect()
    }
}

/// Collects problems while walking a document.
#[derive(Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn add(&mut self, code: &'static str, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem { code, field: field.into(), message: message.into() });
    }

    pub fn finish<T>(self, value: T) -> Result<T, Invalid> {
        if self.0.is_empty() { Ok(value) } else { Err(Invalid(self.0)) }
    }
}
