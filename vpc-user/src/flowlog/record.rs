//! A flow-log record with exactly the guide's fields (and, for SKIPDATA, how much was skipped).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Record format version.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    #[serde(rename = "vswitch-id")]
    pub vswitch_id: String,
    /// The instance the ENI is bound to: in this data plane, the guest named by the ENI.
    #[serde(rename = "vm-id")]
    pub vm_id: String,
    #[serde(rename = "vpc-id")]
    pub vpc_id: String,
    #[serde(rename = "account-id")]
    pub account_id: String,
    #[serde(rename = "eni-id")]
    pub eni_id: String,
    pub srcaddr: Option<Ipv4Addr>,
    pub srcport: Option<u16>,
    pub dstaddr: Option<Ipv4Addr>,
    pub dstport: Option<u16>,
    /// IANA protocol number.
    pub protocol: Option<u8>,
    /// `in`: to the ENI; `out`: from it.
    pub direction: Option<String>,
    pub packets: Option<u64>,
    /// IP bytes (total length).
    pub bytes: Option<u64>,
    /// The capture window, Unix seconds.
    pub start: u64,
    pub end: u64,
    /// OK, NODATA or SKIPDATA.
    #[serde(rename = "log-status")]
    pub log_status: String,
    /// ACCEPT or REJECT (the security groups' verdict).
    pub action: Option<String>,
    /// SKIPDATA: packets and bytes the data path counted but could not keep apart (a full
    /// table), and why.
    #[serde(rename = "skipped-packets", skip_serializing_if = "Option::is_none", default)]
    pub skipped_packets: Option<u64>,
    #[serde(rename = "skipped-bytes", skip_serializing_if = "Option::is_none", default)]
    pub skipped_bytes: Option<u64>,
    #[serde(rename = "skipped-reason", skip_serializing_if = "Option::is_none", default)]
    pub skipped_reason: Option<String>,
    /// The security-group rule whose verdict this was (not a guide field): for REJECT, the drop
    /// rule that matched; absent when no rule decided (ingress with no rule accepting, egress
    /// with none matching) or for a related ICMP error.
    #[serde(rename = "rule-id", skip_serializing_if = "Option::is_none", default)]
    pub rule_id: Option<String>,
    /// The ENI's host interface index (IPFIX ingress/egressInterface; not a guide field).
    #[serde(skip)]
    pub ifindex: u32,
}

/// Who a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EniInfo {
    pub eni_id: String,
    pub eni_name: String,
    pub vswitch_id: String,
    pub vpc_id: String,
    /// The ENI's port in the data path.
    pub port: u32,
    /// Its host interface (0 while it has none).
    pub ifindex: u32,
}

impl Record {
    /// A record with the ENI's fields and the window, nothing else.
    pub fn empty(eni: &EniInfo, account: &str, start: u64, end: u64, log_status: &str) -> Record {
        Record {
            version: VERSION,
            vswitch_id: eni.vswitch_id.clone(),
            vm_id: eni.eni_name.clone(),
            vpc_id: eni.vpc_id.clone(),
            account_id: account.to_string(),
            eni_id: eni.eni_id.clone(),
            srcaddr: None,
            srcport: None,
            dstaddr: None,
            dstport: None,
            protocol: None,
            direction: None,
            packets: None,
            bytes: None,
            start,
            end,
            log_status: log_status.into(),
            action: None,
            skipped_packets: None,
            skipped_bytes: None,
            skipped_reason: None,
            rule_id: None,
            ifindex: eni.ifindex,
        }
    }
}
