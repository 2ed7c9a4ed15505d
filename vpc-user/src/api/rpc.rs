//! The guide's own API on TCP (`vpc daemon --listen ADDR:PORT`), as the official SDKs speak it:
//! `POST /` with every parameter in the query, the action and version in `x-acs-action` /
//! `x-acs-version` (ACS3 signatures) or in `Action` / `Version` (v1), each request signed with
//! an AccessKey (`api::access_keys`) and checked (`api::signature`), a timestamp within 15
//! minutes and a nonce never seen in that window. Answers are the same operations' (one table:
//! `api::ops`), with a `RequestId`; refusals are the API's `{RequestId, HostId, Code, Message,
//! Recommend}`. Only the API's operations, under their product's version, are served here;
//! the admin's (AccessKeys, whole topologies, statistics) stay on the Unix socket.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{
    access_keys::AccessKeys,
    error::ApiError,
    op::Kind,
    signature::{self, Refused, Request, Signed},
};
use crate::{agent::Agent, metrics::ApiCounters};

/// How far a request's timestamp may be from this host's clock.
const WINDOW_SECS: i64 = 15 * 60;

/// The API's products and their versions, with the operations each serves.
const PRODUCTS: &[(&str, &[&str])] = &[
    (
        "2016-04-28",
        &[
            "CreateVpc",
            "CreateDefaultVpc",
            "DeleteVpc",
            "DescribeVpcs",
            "ModifyVpcAttribute",
            "CreateVSwitch",
            "CreateDefaultVSwitch",
            "DeleteVSwitch",
            "DescribeVSwitches",
            "ModifyVSwitchAttribute",
            "CreateRouteTable",
            "DeleteRouteTable",
            "ModifyRouteTableAttributes",
            "AssociateRouteTable",
            "UnassociateRouteTable",
            "DescribeRouteTableList",
            "CreateRouteEntry",
            "DeleteRouteEntry",
            "DescribeRouteEntryList",
            "CreateFlowLog",
            "DeleteFlowLog",
            "DescribeFlowLogs",
            "ActiveFlowLog",
            "DeactiveFlowLog",
            "ModifyFlowLogAttribute",
        ],
    ),
    (
        "2014-05-26",
        &[
            "CreateSecurityGroup",
            "DeleteSecurityGroup",
            "ModifySecurityGroupAttribute",
            "ModifySecurityGroupPolicy",
            "AuthorizeSecurityGroup",
            "AuthorizeSecurityGroupEgress",
            "RevokeSecurityGroup",
            "RevokeSecurityGroupEgress",
            "DescribeSecurityGroups",
            "DescribeSecurityGroupAttribute",
            "JoinSecurityGroup",
            "LeaveSecurityGroup",
            "CreateNetworkInterface",
            "DeleteNetworkInterface",
            "DescribeNetworkInterfaces",
        ],
    ),
    ("2017-09-12", &["CreateCen", "DeleteCen", "AttachCenChildInstance", "DetachCenChildInstance", "DescribeCens"]),
];

/// Parameters every request may carry that no operation reads (signing, the region, paging
/// the operations do not page, idempotence tokens), unless the operation names them.
const COMMON: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "Timestamp",
    "SignatureNonce",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureType",
    "AccessKeyId",
    "Signature",
    "RegionId",
    "PageNumber",
    "PageSize",
    "ClientToken",
    "MaxResult",
    "MaxResults",
    "NextToken",
    "OwnerId",
    "OwnerAccount",
    "ResourceOwnerId",
    "ResourceOwnerAccount",
];

/// List fields the API nests under an item name (`Vpcs: {Vpc: [...]}`): the Tea SDKs' models
/// read only that form (a flat list leaves them empty).
const NESTED: &[(&str, &str)] = &[
    ("Vpcs", "Vpc"),
    ("VSwitches", "VSwitch"),
    ("VSwitchIds", "VSwitchId"),
    ("RouterTableIds", "RouterTableIds"),
    ("RouterTableList", "RouterTableListType"),
    ("RouteEntrys", "RouteEntry"),
    ("NextHops", "NextHop"),
    ("SecurityGroups", "SecurityGroup"),
    ("Permissions", "Permission"),
    ("NetworkInterfaceSets", "NetworkInterfaceSet"),
    ("SecurityGroupIds", "SecurityGroupId"),
    ("FlowLogs", "FlowLog"),
    ("Cens", "Cen"),
];

/// Our field names where the API's differ.
const RENAMED: &[(&str, &str)] = &[("RouteTableIds", "RouterTableIds")];

/// Values the API spells otherwise, by field: ECS names protocols in upper case and policies
/// capitalized (we take either form in requests).
fn api_value(field: &str, value: Value) -> Value {
    match (field, value.as_str()) {
        ("IpProtocol", Some(p)) => Value::from(p.to_ascii_uppercase()),
        ("Policy", Some("accept")) => Value::from("Accept"),
        ("Policy", Some("drop")) => Value::from("Drop"),
        _ => value,
    }
}

/// The listings the API pages with `PageNumber` / `PageSize` (default 1 and 10, at most 50),
/// and the list each pages.
const PAGED: &[(&str, &str)] = &[
    ("DescribeVpcs", "Vpcs"),
    ("DescribeVSwitches", "VSwitches"),
    ("DescribeRouteTableList", "RouterTableList"),
    ("DescribeSecurityGroups", "SecurityGroups"),
    ("DescribeNetworkInterfaces", "NetworkInterfaceSets"),
    ("DescribeFlowLogs", "FlowLogs"),
    ("DescribeCens", "Cens"),
];

/// The listings the API pages with a token instead (or besides): the operation, its list, the
/// name of its page-size parameter, its default and its largest.
const TOKENED: &[(&str, &str, &str, usize, usize)] = &[
    ("DescribeRouteEntryList", "RouteEntrys", "MaxResult", 10, 100),
    ("DescribeNetworkInterfaces", "NetworkInterfaceSets", "MaxResults", 10, 500),
];

/// Which part of a listing a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    /// `PageNumber` (from 1) of `PageSize`.
    Numbered { number: usize, size: usize },
    /// `max` items from `offset` (its `NextToken`).
    Token { offset: usize, max: usize },
}

#[derive(Clone)]
struct Shared {
    agent: Arc<Mutex<Agent>>,
    api: Arc<ApiCounters>,
    state_dir: std::path::PathBuf,
    /// Nonces seen, with the time (epoch seconds) they may be forgotten.
    nonces: Arc<Mutex<HashMap<String, i64>>>,
}

/// The router of the TCP listener.
pub fn router(agent: Arc<Mutex<Agent>>, api: Arc<ApiCounters>) -> anyhow::Result<Router> {
    let state_dir = agent.lock().map_err(|_| anyhow::anyhow!("the agent is poisoned"))?.opts.state_dir.clone();
    let shared = Shared { agent, api, state_dir, nonces: Arc::default() };
    Ok(Router::new().fallback(handle).with_state(shared))
}

/// A refusal in the API's form.
struct Refusal(ApiError);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({
            "RequestId": request_id(),
            "HostId": "vpc",
            "Code": self.0.code,
            "Message": self.0.message,
            "Recommend": "",
        });
        (status, axum::Json(body)).into_response()
    }
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let target = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let headers: Vec<(String, String)> =
        headers.iter().filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))).collect();
    let req = Request::new(method.as_str(), &target, headers, body.to_vec());
    let action = req.header("x-acs-action").or(req.param("Action")).unwrap_or_default().to_string();
    let mut page = None;
    let result = match admit(&shared, &req) {
        Ok((op, body, asked)) => {
            page = asked.map(|asked| (op, asked));
            let agent = shared.agent.clone();
            tokio::task::spawn_blocking(move || match agent.lock() {
                Ok(mut agent) => super::dispatch(&mut agent, op, body.to_string()),
                Err(_) => Err(ApiError::new(500, super::error::code::INTERNAL, "the agent is poisoned by an earlier panic")),
            })
            .await
            .unwrap_or_else(|e| Err(ApiError::new(500, super::error::code::INTERNAL, format!("request panicked: {e}"))))
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) if req.param("DryRun").is_some_and(|d| d.eq_ignore_ascii_case("true")) => {
            // What the API answers a dry run that would succeed: an error, not made-up IDs.
            shared.api.count(&action, "DryRunOperation");
            Refusal(ApiError::new(400, "DryRunOperation", "Request validation has been passed with DryRun flag set.")).into_response()
        }
        Ok(value) => {
            shared.api.count(&action, "OK");
            let mut value = nest(paged(value, page));
            if let Value::Object(map) = &mut value {
                map.insert("RequestId".into(), Value::from(request_id()));
            }
            axum::Json(value).into_response()
        }
        Err(err) => {
            shared.api.count(&action, &err.code);
            Refusal(err).into_response()
        }
    }
}

/// Whether `req` may run, and as which operation with which JSON parameters (and, for a
/// listing the API pages, which page of it).
#[allow(clippy::type_complexity)]
fn admit(shared: &Shared, req: &Request) -> Result<(&'static str, Value, Option<Page>), ApiError> {
    let signed = signature::signed(req).map_err(|e| ApiError::new(400, "IncompleteSignature", e.to_string()))?;
    let keys = AccessKeys::read(&shared.state_dir).map_err(ApiError::internal)?;
    let key = keys.keys.get(signed.key_id()).ok_or_else(|| {
        ApiError::new(404, "InvalidAccessKeyId.NotFound", format!("Specified access key is not found: {}", signed.key_id()))
    })?;
    signature::verify(req, &signed, &key.secret).map_err(|e| match e {
        Refused::Mismatch(_) => ApiError::new(400, "SignatureDoesNotMatch", e.to_string()),
        Refused::Incomplete(_) => ApiError::new(400, "IncompleteSignature", e.to_string()),
    })?;
    fresh(shared, req, &signed)?;
    let action = req.header("x-acs-action").or(req.param("Action")).unwrap_or_default();
    let version = req.header("x-acs-version").or(req.param("Version")).unwrap_or_default();
    let served = PRODUCTS.iter().find(|(v, _)| *v == version).and_then(|(_, ops)| ops.iter().find(|op| **op == action));
    let Some(op) = served.and_then(|name| super::find(name)) else {
        return Err(ApiError::new(404, "InvalidAction.NotFound", format!("Specified api is not found: {action} of version {version:?}")));
    };
    let number = |name: &str, default: usize, max: usize| -> Result<usize, ApiError> {
        match req.param(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| ApiError::bad(super::error::code::INVALID_PARAMETER, name, format!("{name} is 1-{max}: {v:?}"))),
        }
    };
    let tokened = TOKENED.iter().find(|t| t.0 == op.name);
    let numbered = PAGED.iter().any(|(name, _)| *name == op.name);
    let page = match tokened {
        // (A listing paged both ways takes the token's way when asked to.)
        Some(&(_, _, max_name, default, max)) if !numbered || req.param(max_name).is_some() || req.param("NextToken").is_some() => {
            let offset = match req.param("NextToken").filter(|t| !t.is_empty()) {
                None => 0,
                Some(token) => token.strip_prefix('t').and_then(|o| o.parse().ok()).ok_or_else(|| {
                    ApiError::bad(
                        super::error::code::INVALID_PARAMETER,
                        "NextToken",
                        format!("NextToken {token:?} is not one this API gave"),
                    )
                })?,
            };
            Some(Page::Token { offset, max: number(max_name, default, max)? })
        }
        _ if numbered => Some(Page::Numbered { number: number("PageNumber", 1, usize::MAX)?, size: number("PageSize", 10, 50)? }),
        _ => None,
    };
    Ok((op.name, parameters(op, &api_form(op.name, &req.query)?)?, page))
}

/// Parameters the API spells otherwise than the operation's table, in the table's form:
/// CreateRouteEntry's `NextHopList.N.{NextHopType, NextHopId, Weight}` as its `NextHop`
/// (ECMP over the hops; two with weights 100 and 0 active/standby, as the guide has it).
fn api_form(op: &str, query: &[(String, String)]) -> Result<Vec<(String, String)>, ApiError> {
    // CreateNetworkInterface's one group (`SecurityGroupId`) is one of its `SecurityGroupIds`.
    if op == "CreateNetworkInterface" && query.iter().any(|(k, _)| k == "SecurityGroupId") {
        let is_group = |k: &str| k == "SecurityGroupId" || k.starts_with("SecurityGroupIds.");
        let groups: Vec<&str> = query.iter().filter(|(k, _)| is_group(k)).map(|(_, v)| v.as_str()).collect();
        let mut out: Vec<(String, String)> = query.iter().filter(|(k, _)| !is_group(k)).cloned().collect();
        out.push(("SecurityGroupIds".into(), groups.join(",")));
        return Ok(out);
    }
    let is_list = |k: &str| k.starts_with("NextHopList.");
    if op != "CreateRouteEntry" || !query.iter().any(|(k, _)| is_list(k)) {
        return Ok(query.to_vec());
    }
    let bad = |m: String| ApiError::bad(super::error::code::INVALID_PARAMETER, "NextHopList", m);
    let mut hops: std::collections::BTreeMap<usize, Map<String, Value>> = Default::default();
    for (key, value) in query.iter().filter(|(k, _)| is_list(k)) {
        let rest = &key["NextHopList.".len()..];
        let (n, field) = rest.split_once('.').ok_or_else(|| bad(format!("{key}: NextHopList.N.Field")))?;
        let n = n.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| bad(format!("{key}: lists count from 1")))?;
        let hop = hops.entry(n).or_default();
        match field {
            "NextHopType" => {
                let kind = match value.as_str() {
                    "Instance" | "NetworkInterface" => "eni",
                    "VpnGateway" | "RouterInterface" => "gateway",
                    other => {
                        return Err(bad(format!(
                            "{key}: next hop type {other:?} (Instance, NetworkInterface, VpnGateway or RouterInterface)"
                        )));
                    }
                };
                hop.insert("kind".into(), Value::from(kind));
            }
            "NextHopId" => _ = hop.insert("id".into(), Value::from(value.as_str())),
            "Weight" => {
                let weight = value.parse::<u32>().map_err(|_| bad(format!("{key}: not a number: {value:?}")))?;
                hop.insert("weight".into(), Value::from(weight));
            }
            other => return Err(bad(format!("{key}: NextHopList has no field {other}"))),
        }
    }
    let hops: Vec<Value> = hops
        .into_values()
        .map(|mut h| {
            let kind = h.remove("kind").and_then(|k| k.as_str().map(str::to_string)).unwrap_or_else(|| "eni".into());
            let mut hop = Map::new();
            hop.insert(kind, h.remove("id").unwrap_or(Value::Null));
            if let Some(weight) = h.remove("weight") {
                hop.insert("weight".into(), weight);
            }
            Value::Object(hop)
        })
        .collect();
    let weights: Vec<Option<u64>> = hops.iter().map(|h| h["weight"].as_u64()).collect();
    let next_hop = if weights == [Some(100), Some(0)] || weights == [Some(0), Some(100)] {
        json!({"type": "active_standby", "hops": hops})
    } else {
        json!({"type": "ecmp", "hops": hops})
    };
    let mut out: Vec<(String, String)> = query.iter().filter(|(k, _)| !is_list(k)).cloned().collect();
    out.push(("NextHop".into(), next_hop.to_string()));
    Ok(out)
}

/// The part of a listing's list `page` asks for, with `TotalCount`, and `PageNumber` and
/// `PageSize` or the `NextToken` of the rest (none at the end).
fn paged(mut value: Value, page: Option<(&str, Page)>) -> Value {
    let Some((op, page)) = page else { return value };
    let list = PAGED.iter().find(|(name, _)| *name == op).map(|(_, l)| *l).or(TOKENED.iter().find(|t| t.0 == op).map(|t| t.1));
    let Some(Value::Array(items)) = list.and_then(|l| value.get_mut(l)) else { return value };
    let total = items.len();
    let (skip, take) = match page {
        Page::Numbered { number, size } => ((number - 1).saturating_mul(size), size),
        Page::Token { offset, max } => (offset, max),
    };
    let kept: Vec<Value> = items.drain(..).skip(skip).take(take).collect();
    *items = kept;
    value["TotalCount"] = Value::from(total);
    match page {
        Page::Numbered { number, size } => {
            value["PageNumber"] = Value::from(number);
            value["PageSize"] = Value::from(size);
        }
        Page::Token { offset, max } => {
            value["NextToken"] = if offset + max < total { Value::from(format!("t{}", offset + max)) } else { Value::from("") };
        }
    }
    value
}

/// The answer in the API's shape: lists nested under their item names, fields named as the
/// API names them.
fn nest(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let key = RENAMED.iter().find(|(ours, _)| *ours == key).map_or(key, |(_, theirs)| theirs.to_string());
                    let value = api_value(&key, nest(value));
                    match (NESTED.iter().find(|(list, _)| *list == key), value) {
                        (Some((_, item)), Value::Array(items)) => (key, json!({ *item: items })),
                        (_, value) => (key, value),
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(nest).collect()),
        other => other,
    }
}

/// The timestamp within the window and the nonce new in it.
fn fresh(shared: &Shared, req: &Request, signed: &Signed) -> Result<(), ApiError> {
    let (stamp, nonce) = match signed {
        Signed::V3 { .. } => (req.header("x-acs-date"), req.header("x-acs-signature-nonce")),
        Signed::V1 { .. } => (req.param("Timestamp"), req.param("SignatureNonce")),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let Some(at) = stamp.and_then(epoch_seconds) else {
        return Err(ApiError::new(400, "MissingParameter.Timestamp", "the request has no timestamp, or not as YYYY-MM-DDThh:mm:ssZ"));
    };
    if (now - at).abs() > WINDOW_SECS {
        return Err(ApiError::new(
            400,
            "InvalidTimeStamp.Expired",
            format!("the request's timestamp {} is more than 15 minutes from this host's clock", stamp.unwrap_or_default()),
        ));
    }
    let Some(nonce) = nonce.filter(|n| !n.is_empty()) else {
        return Err(ApiError::new(400, "MissingParameter.SignatureNonce", "the request has no signature nonce"));
    };
    let mut seen = shared.nonces.lock().unwrap_or_else(|e| e.into_inner());
    seen.retain(|_, until| *until > now);
    let key = format!("{}:{nonce}", signed.key_id());
    if seen.contains_key(&key) {
        return Err(ApiError::new(400, "SignatureNonceUsed", "the request's signature nonce has been used"));
    }
    seen.insert(key, now + 2 * WINDOW_SECS);
    Ok(())
}

/// `YYYY-MM-DDThh:mm:ssZ` as seconds since the epoch.
fn epoch_seconds(stamp: &str) -> Option<i64> {
    let b = stamp.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let n = |from: usize, to: usize| stamp.get(from..to)?.parse::<i64>().ok();
    let (y, m, d, hh, mm, ss) = (n(0, 4)?, n(5, 7)?, n(8, 10)?, n(11, 13)?, n(14, 16)?, n(17, 19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The query's parameters as the operation's JSON request: typed as its table says; lists
/// (`Name.N` or `Name.N.Field`, counted from 1) as arrays, or for a text parameter joined with
/// commas; common parameters the operation does not name left out.
fn parameters(op: &super::Op, query: &[(String, String)]) -> Result<Value, ApiError> {
    let mut out = Map::new();
    let mut lists: HashMap<&str, Vec<(usize, Option<&str>, &str)>> = HashMap::new();
    for (key, value) in query {
        let (name, rest) = key.split_once('.').map_or((key.as_str(), None), |(n, r)| (n, Some(r)));
        let Some(param) = op.params.iter().find(|p| p.name == name) else {
            if COMMON.contains(&name) {
                continue;
            }
            return Err(ApiError::bad(super::error::code::INVALID_PARAMETER, name, format!("{} takes no parameter {name}", op.name)));
        };
        match rest {
            None => {
                let typed = match param.kind {
                    Kind::String => Value::from(value.as_str()),
                    Kind::Integer => Value::from(value.parse::<i64>().map_err(|_| {
                        ApiError::bad(super::error::code::INVALID_PARAMETER, name, format!("{name} is not an integer: {value:?}"))
                    })?),
                    Kind::Boolean => match value.as_str() {
                        "true" | "True" => Value::from(true),
                        "false" | "False" => Value::from(false),
                        _ => {
                            return Err(ApiError::bad(
                                super::error::code::INVALID_PARAMETER,
                                name,
                                format!("{name} is not true or false: {value:?}"),
                            ));
                        }
                    },
                    Kind::Object => serde_json::from_str(value).unwrap_or_else(|_| Value::from(value.as_str())),
                };
                out.insert(name.to_string(), typed);
            }
            Some(rest) => {
                let (index, field) = rest.split_once('.').map_or((rest, None), |(i, f)| (i, Some(f)));
                let index = index
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i >= 1)
                    .ok_or_else(|| ApiError::bad(super::error::code::INVALID_PARAMETER, name, format!("{key}: lists count from 1")))?;
                lists.entry(param.name).or_default().push((index, field, value.as_str()));
            }
        }
    }
    for (name, mut items) in lists {
        items.sort_by_key(|(i, _, _)| *i);
        let kind = op.params.iter().find(|p| p.name == name).map(|p| p.kind);
        let value = if items.iter().all(|(_, f, _)| f.is_none()) {
            let values: Vec<&str> = items.iter().map(|(_, _, v)| *v).collect();
            if kind == Some(Kind::String) { Value::from(values.join(",")) } else { Value::from(values) }
        } else {
            let mut objects: Vec<(usize, Map<String, Value>)> = Vec::new();
            for (i, field, v) in items {
                if objects.last().is_none_or(|(at, _)| *at != i) {
                    objects.push((i, Map::new()));
                }
                let object = &mut objects.last_mut().expect("pushed above").1;
                object.insert(field.unwrap_or_default().to_string(), Value::from(v));
            }
            Value::from(objects.into_iter().map(|(_, o)| Value::Object(o)).collect::<Vec<_>>())
        };
        out.insert(name.to_string(), value);
    }
    Ok(Value::Object(out))
}

fn request_id() -> String {
    let mut bytes = [0u8; 16];
    super::access_keys::kernel_random(&mut bytes);
    let n = u128::from_ne_bytes(bytes);
    format!(
        "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
        n >> 96,
        (n >> 80) & 0xffff,
        (n >> 64) & 0xffff,
        (n >> 48) & 0xffff,
        n & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_the_epoch_does() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(epoch_seconds("2026-12-02T01:35:45Z"), Some(1_796_175_345));
        assert_eq!(epoch_seconds("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(epoch_seconds("2026-13-02T01:35:45Z"), None);
        assert_eq!(epoch_seconds("2026-12-02 01:35:45"), None);
    }

    #[test]
    fn answers_take_the_apis_shape_and_pages() {
        let answer = json!({"Vpcs": [{"VpcId": "vpc-1", "VSwitchIds": ["vsw-1"], "RouteTableIds": ["vtb-1"]}, {"VpcId": "vpc-2", "VSwitchIds": [], "RouteTableIds": []}], "TotalCount": 2});
        let shaped = nest(paged(answer, Some(("DescribeVpcs", Page::Numbered { number: 2, size: 1 }))));
        assert_eq!(
            shaped,
            json!({"Vpcs": {"Vpc": [{"VpcId": "vpc-2", "VSwitchIds": {"VSwitchId": []}, "RouterTableIds": {"RouterTableIds": []}}]}, "TotalCount": 2, "PageNumber": 2, "PageSize": 1})
        );
        let entries = nest(json!({"RouteEntrys": [{"NextHops": [{"NextHopId": "eni-1"}]}]}));
        assert_eq!(entries, json!({"RouteEntrys": {"RouteEntry": [{"NextHops": {"NextHop": [{"NextHopId": "eni-1"}]}}]}}));
        let rules = nest(json!({"Permissions": [{"IpProtocol": "tcp", "Policy": "drop", "Direction": "ingress"}]}));
        assert_eq!(rules, json!({"Permissions": {"Permission": [{"IpProtocol": "TCP", "Policy": "Drop", "Direction": "ingress"}]}}));
        // Past the last page: an empty list, the total kept.
        let past = paged(json!({"Vpcs": [{"VpcId": "vpc-1"}]}), Some(("DescribeVpcs", Page::Numbered { number: 3, size: 10 })));
        assert_eq!(past, json!({"Vpcs": [], "TotalCount": 1, "PageNumber": 3, "PageSize": 10}));
        // By token: two of three, then the last one and no token.
        let three = json!({"RouteEntrys": [{"RouteEntryId": "a"}, {"RouteEntryId": "b"}, {"RouteEntryId": "c"}]});
        let first = paged(three.clone(), Some(("DescribeRouteEntryList", Page::Token { offset: 0, max: 2 })));
        assert_eq!(first, json!({"RouteEntrys": [{"RouteEntryId": "a"}, {"RouteEntryId": "b"}], "TotalCount": 3, "NextToken": "t2"}));
        let rest = paged(three, Some(("DescribeRouteEntryList", Page::Token { offset: 2, max: 2 })));
        assert_eq!(rest, json!({"RouteEntrys": [{"RouteEntryId": "c"}], "TotalCount": 3, "NextToken": ""}));
    }

    #[test]
    fn a_next_hop_list_is_an_ecmp_or_active_standby_next_hop() {
        let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let next_hop = |query: &[(String, String)]| -> Value {
            let formed = api_form("CreateRouteEntry", query).unwrap();
            serde_json::from_str(&formed.iter().find(|(k, _)| k == "NextHop").unwrap().1).unwrap()
        };
        let ecmp = q(&[
            ("NextHopList.1.NextHopType", "Instance"),
            ("NextHopList.1.NextHopId", "eni-a"),
            ("NextHopList.2.NextHopType", "NetworkInterface"),
            ("NextHopList.2.NextHopId", "eni-b"),
            ("NextHopList.2.Weight", "50"),
        ]);
        assert_eq!(next_hop(&ecmp), json!({"type": "ecmp", "hops": [{"eni": "eni-a"}, {"eni": "eni-b", "weight": 50}]}));
        let standby = q(&[
            ("NextHopList.1.NextHopId", "eni-a"),
            ("NextHopList.1.Weight", "100"),
            ("NextHopList.2.NextHopId", "eni-b"),
            ("NextHopList.2.Weight", "0"),
        ]);
        assert_eq!(next_hop(&standby)["type"], "active_standby");
        assert!(api_form("CreateRouteEntry", &q(&[("NextHopList.1.NextHopType", "Teleporter")])).is_err());
        assert!(api_form("CreateRouteEntry", &q(&[("NextHopList.x.NextHopId", "eni-a")])).is_err());
    }

    #[test]
    fn query_parameters_take_the_operations_types_and_lists() {
        let op = super::super::find("CreateRouteEntry").unwrap();
        let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let body = parameters(
            op,
            &q(&[
                ("RegionId", "cn-hangzhou"),
                ("RouteTableId", "vtb-1"),
                ("DestinationCidrBlock", "0.0.0.0/0"),
                ("NextHopType", "Blackhole"),
            ]),
        )
        .unwrap();
        assert_eq!(body, json!({"RouteTableId": "vtb-1", "DestinationCidrBlock": "0.0.0.0/0", "NextHopType": "Blackhole"}));
        let err = parameters(op, &q(&[("Bogus", "1")])).unwrap_err();
        assert_eq!(err.code, super::super::error::code::INVALID_PARAMETER);
    }
}
