//! AccessKey pairs for the signed API on TCP (`api::access_keys`): made, listed and deleted by
//! the local admin, on the Unix socket only (`api::rpc` refuses these operations).

use serde_json::{Value, json};

use super::{Kind, Op, Param, R, p};
use crate::{
    agent::Agent,
    api::{Params, access_keys::AccessKeys, error::ApiError},
};

pub static OPS: &[Op] = &[
    Op {
        name: "CreateAccessKey",
        summary: "Make an AccessKey pair for an account (made on first use) to sign requests to the TCP listener with. The secret is shown only here.",
        params: &[p!("Account", Kind::String, req, "The account the key acts for: 1-64 letters, digits, '-' or '_'.")],
        returns: &[
            ("AccessKeyId", "The key's ID."),
            ("AccessKeySecret", "Its secret: shown once, kept readable by root alone."),
            ("Account", "The account."),
        ],
        mutates: true,
        run: create,
    },
    Op {
        name: "DescribeAccessKeys",
        summary: "The AccessKeys, without their secrets.",
        params: &[p!("Account", Kind::String, opt, "Only this account's.")],
        returns: &[("AccessKeys", "AccessKeyId, Account, CreateTime.")],
        mutates: false,
        run: describe,
    },
    Op {
        name: "DeleteAccessKey",
        summary: "Delete an AccessKey: requests signed with it are refused from now on.",
        params: &[p!("AccessKeyId", Kind::String, req, "The key.")],
        returns: &[],
        mutates: true,
        run: delete,
    },
];

fn keys(agent: &Agent) -> R<AccessKeys> {
    AccessKeys::read(&agent.opts.state_dir).map_err(ApiError::internal)
}

fn create(agent: &mut Agent, p: &Params) -> R<Value> {
    let account = p.str("Account");
    let valid = (1..=64).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(ApiError::bad("InvalidParameter", "Account", format!("account {account:?}: 1-64 letters, digits, '-' or '_'")));
    }
    let mut all = keys(agent)?;
    let (id, secret) = all.create(account);
    all.write(&agent.opts.state_dir).map_err(ApiError::internal)?;
    Ok(json!({"AccessKeyId": id, "AccessKeySecret": secret, "Account": account}))
}

fn describe(agent: &mut Agent, p: &Params) -> R<Value> {
    let listed: Vec<Value> = keys(agent)?
        .keys
        .iter()
        .filter(|(_, k)| p.opt_str("Account").is_none_or(|a| a == k.account))
        .map(|(id, k)| json!({"AccessKeyId": id, "Account": k.account, "CreateTime": k.created}))
        .collect();
    Ok(json!({"AccessKeys": listed}))
}

fn delete(agent: &mut Agent, p: &Params) -> R<Value> {
    let mut all = keys(agent)?;
    let id = p.str("AccessKeyId");
    if all.keys.remove(id).is_none() {
        return Err(ApiError::new(404, "InvalidAccessKeyId.NotFound", format!("no AccessKey {id}")));
    }
    all.write(&agent.opts.state_dir).map_err(ApiError::internal)?;
    Ok(json!({}))
}
