//! `vpc multicast`: the guide's `multis_admin` (add, delete, clear, show, list, stats) and
//! `multic_admin` (join, quit) as subcommands over the multicast API. ENIs are named by name,
//! ID or address; a group by its address (with `--vpc` when several VPCs use it). With `-o json`
//! each prints the API's objects; changes that return nothing say `done: ACTION ID` (or `{}`).

use clap::Subcommand;
use serde_json::{Value, json};

use super::{
    Format, api_error, get,
    names::Names,
    output,
    table::{self, Col::*},
};
use crate::api::Conn;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Add a group with the ENIs that may send to it (`multis_admin -A -m GROUP -j IPs`).
    Add {
        group: String,
        #[arg(long)]
        vpc: String,
        /// Sending ENIs (names, IDs or addresses), comma separated.
        #[arg(short = 'j', long, value_delimiter = ',')]
        senders: Vec<String>,
        /// Receiving ENIs, comma separated.
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Delete a group.
    Delete {
        group: String,
        #[arg(long)]
        vpc: Option<String>,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Delete every group (of one VPC with --vpc).
    Clear {
        #[arg(long)]
        vpc: Option<String>,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// A group's senders and members.
    Show {
        group: String,
        #[arg(long)]
        vpc: Option<String>,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Every group.
    List {
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Packets per group and per member (`-P`).
    Stats {
        group: Option<String>,
        #[arg(long)]
        vpc: Option<String>,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Make an ENI a member (`multic_admin` join).
    Join {
        group: String,
        eni: String,
        #[arg(long)]
        vpc: Option<String>,
        /// Join as a sender instead.
        #[arg(long)]
        sender: bool,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Take an ENI out of a group (`multic_admin` quit).
    Quit {
        group: String,
        eni: String,
        #[arg(long)]
        vpc: Option<String>,
        #[arg(long)]
        sender: bool,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
}

impl Command {
    /// Whether the command changes the configuration (and so needs the agent, or --offline).
    pub fn changes(&self) -> bool {
        !matches!(self, Command::Show { .. } | Command::List { .. } | Command::Stats { .. })
    }
}

pub fn run(conn: &Conn, command: Command) -> anyhow::Result<()> {
    let call = |action: &str, body: Value| conn.call(action, body).map_err(|e| api_error(action, e));
    match command {
        Command::Add { group, vpc, senders, members, output } => {
            let vpc_id = vpc_id(conn, &vpc)?;
            let body = json!({"VpcId": vpc_id, "GroupAddress": group, "SenderIds": senders.join(","), "MemberIds": members.join(",")});
            output::result("CreateMulticastGroup", "", &call("CreateMulticastGroup", body)?, output)
        }
        Command::Delete { group, vpc, output } => {
            let id = group_id(conn, &group, vpc.as_deref())?;
            output::result("DeleteMulticastGroup", &id, &call("DeleteMulticastGroup", json!({"GroupId": id}))?, output)
        }
        Command::Clear { vpc, output } => {
            let vpc_id = vpc.map(|v| vpc_id(conn, &v)).transpose()?;
            let mut deleted = Vec::new();
            for g in groups(conn)?.iter().filter(|g| vpc_id.as_ref().is_none_or(|id| g["VpcId"] == *id)) {
                call("DeleteMulticastGroup", json!({"GroupId": g["GroupId"]}))?;
                deleted.push(g["GroupId"].as_str().unwrap_or_default().to_string());
            }
            let subject = if deleted.is_empty() { "(no groups)".to_string() } else { deleted.join(" ") };
            output::result("DeleteMulticastGroup", &subject, &json!({}), output)
        }
        Command::Show { group, vpc, output } => {
            let id = group_id(conn, &group, vpc.as_deref())?;
            let shown = call("DescribeMulticastGroups", json!({"GroupId": id}))?["Groups"].as_array().cloned().unwrap_or_default();
            match (output, shown.first()) {
                (Format::Json, Some(group)) => output::json(group),
                (Format::Json, None) => anyhow::bail!("no multicast group '{group}'"),
                (Format::Table, _) => get::print(conn, get::Kind::MulticastGroups, &shown),
            }
        }
        Command::List { output } => get::run(conn, get::Kind::MulticastGroups, None, false, output),
        Command::Stats { group, vpc, output } => {
            let body = match group {
                Some(g) => json!({"GroupId": group_id(conn, &g, vpc.as_deref())?}),
                None => json!({}),
            };
            let groups = call("DescribeMulticastGroupStatistics", body)?["Groups"].as_array().cloned().unwrap_or_default();
            if output == Format::Json {
                return output::json(&groups);
            }
            let mut rows = Vec::new();
            for g in &groups {
                rows.push(json!({"GroupAddress": g["GroupAddress"], "VpcId": g["VpcId"], "Member": "(sent)", "Packets": g["Packets"], "Bytes": g["Bytes"], "Refused": g["Refused"]}));
                for m in g["Members"].as_array().into_iter().flatten() {
                    let mut row = m.clone();
                    row["GroupAddress"] = g["GroupAddress"].clone();
                    row["VpcId"] = g["VpcId"].clone();
                    rows.push(row);
                }
            }
            let columns = [
                ("GROUP", Key("GroupAddress")),
                ("VPC", Named("VpcId")),
                ("MEMBER", EniNames("Member")),
                ("PACKETS", Key("Packets")),
                ("BYTES", Key("Bytes")),
                ("REFUSED", Key("Refused")),
            ];
            table::print(&rows, &columns, &Names::of(conn)?);
            Ok(())
        }
        Command::Join { group, eni, vpc, sender, output } => {
            membership(conn, "JoinMulticastGroup", &group, &eni, vpc.as_deref(), sender, output)
        }
        Command::Quit { group, eni, vpc, sender, output } => {
            membership(conn, "LeaveMulticastGroup", &group, &eni, vpc.as_deref(), sender, output)
        }
    }
}

/// Join or leave a group as a member or a sender.
fn membership(conn: &Conn, action: &str, group: &str, eni: &str, vpc: Option<&str>, sender: bool, format: Format) -> anyhow::Result<()> {
    let id = group_id(conn, group, vpc)?;
    let body = json!({"GroupId": id, "NetworkInterfaceId": eni, "Role": if sender { "Sender" } else { "Member" }});
    let response = conn.call(action, body).map_err(|e| api_error(action, e))?;
    output::result(action, &format!("{id} {eni}"), &response, format)
}

fn groups(conn: &Conn) -> anyhow::Result<Vec<Value>> {
    let all = conn.call("DescribeMulticastGroups", json!({})).map_err(|e| api_error("DescribeMulticastGroups", e))?;
    Ok(all["Groups"].as_array().cloned().unwrap_or_default())
}

fn vpc_id(conn: &Conn, vpc: &str) -> anyhow::Result<String> {
    let vpcs = conn.call("DescribeVpcs", json!({})).map_err(|e| api_error("DescribeVpcs", e))?;
    vpcs["Vpcs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["VpcId"] == vpc || v["VpcName"] == vpc)
        .and_then(|v| v["VpcId"].as_str().map(str::to_string))
        .ok_or_else(|| anyhow::anyhow!("no VPC '{vpc}'"))
}

/// The group with ID or address `group` (in VPC `vpc`, needed when several VPCs use the address).
fn group_id(conn: &Conn, group: &str, vpc: Option<&str>) -> anyhow::Result<String> {
    let vpc_id = vpc.map(|v| vpc_id(conn, v)).transpose()?;
    let found: Vec<Value> = groups(conn)?
        .into_iter()
        .filter(|g| (g["GroupId"] == group || g["GroupAddress"] == group) && vpc_id.as_ref().is_none_or(|id| g["VpcId"] == *id))
        .collect();
    match found.as_slice() {
        [one] => Ok(one["GroupId"].as_str().unwrap_or_default().to_string()),
        [] => anyhow::bail!("no multicast group '{group}'"),
        _ => anyhow::bail!("several VPCs have group {group}: say which with --vpc"),
    }
}
