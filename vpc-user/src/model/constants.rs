//! The fixed names, ranges and limits of the guide that several parts of the model share. Nothing
//! here depends on another module: every other model module may use it.

/// Name of the VPC's system route table.
pub const SYSTEM_TABLE: &str = "system";

/// The default VPC's name (a VPC of that name already there makes it `defaultx`, ...).
pub const DEFAULT_VPC_NAME: &str = "default";
/// The default VPC's CIDR (the guide's 172.31.0.0/16).
pub const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";
/// A default VSwitch is a /20 of the default VPC, one per zone.
pub const DEFAULT_VSWITCH_PREFIX: u8 = 20;

/// The name of the VPC's default security group (ENIs listed without groups are in it).
pub const DEFAULT_GROUP: &str = "default";

/// The private ranges a VPC CIDR must equal or lie inside.
pub const PRIVATE_RANGES: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/// The system route entry every table has for the cloud-services range.
pub const CLOUD_SERVICES: &str = "100.64.0.0/10";

/// The widest and narrowest masks a VSwitch may have.
pub const MIN_VSWITCH_PREFIX: u8 = 16;
pub const MAX_VSWITCH_PREFIX: u8 = 29;

/// Addresses at the end of a VSwitch CIDR the system keeps (besides the network address); the
/// first of them is the VSwitch's gateway.
pub const RESERVED_AT_END: u32 = 3;

/// The largest MTU a link may have: an XDP program without multi-buffer support runs on a veth
/// only while every frame fits one page beside the headroom (the kernel refuses to attach it
/// to a veth whose peer has a larger MTU).
pub const MAX_MTU: u32 = 3500;
/// The smallest: what every IPv4 host must take whole (RFC 791).
pub const MIN_MTU: u32 = 576;
/// The largest connection limit of one port.
pub const MAX_CONNTRACK_LIMIT: u32 = 1 << 24;
