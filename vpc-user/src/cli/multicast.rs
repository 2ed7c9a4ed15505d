//! `vpc multicast`: the guide's `multis_admin` (add, delete, clear, show, list, stats) and
//! `multic_admin` (join, quit) as subcommands over the multicast API. ENIs are named by name,
//! ID or address; a group by its address (with `--vpc` when several VPCs use it).

use clap::Subcommand;
use serde_json::{json, Value};

use super::{api_error, output, Format};
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
    },
    /// Delete a group.
    Delete {
        group: String,
        #[arg(long)]
        vpc: Option<String>,
    },
    /// Delete every group (of one VPC with --vpc).
    Clear {
        #[arg(long)]
        vpc: Option<String>,
    },
    /// A group's senders and members.
    Show {
        group: String,
        #[arg(long)]
        vpc: Option<String>,
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
    },
    /// Take an ENI out of a group (`multic_admin` quit).
    Quit {
        group: String,
        eni: String,
        #[arg(long)]
        vpc: Option<String>,
        #[arg(long)]
        sender: bool,
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
        Command::Add { group, vpc, senders, members } => {
            let vpc_id = vpc_id(conn, &vpc)?;
            let out = call(
                "CreateMulticastGroup",
                json!({"VpcId": vpc_id, "GroupAddress": group, "SenderIds": senders.join(","), "MemberIds": members.join(",")}),
            )?;
            println!("{}", out["GroupId"].as_str().unwrap_or_default());
        }
        Command::Delete { group, vpc } => {
            call("DeleteMulticastGroup", json!({"GroupId": group_id(conn, &group, vpc.as_deref())?}))?;
        }
        Command::Clear { vpc } => {
            let vpc_id = vpc.map(|v| vpc_id(conn, &v)).transpose()?;
            for g in groups(conn)?.iter().filter(|g| vpc_id.as_ref().is_none_or(|id| g["VpcId"] == *id)) {
                call("DeleteMulticastGroup", json!({"GroupId": g["GroupId"]}))?;
            }
        }
        Command::Show { group, vpc } => {
            let id = group_id(conn, &group, vpc.as_deref())?;
            let g = call("DescribeMulticastGroups", json!({"GroupId": id}))?;
            println!("{}", serde_json::to_string_pretty(&g["Groups"][0])?);
        }
        Command::List { output } => {
            let rows = groups(conn)?;
            if output == Format::Json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                output::table(&rows, &[("ID", "GroupId"), ("GROUP", "GroupAddress"), ("VPC", "VpcId"), ("SENDERS", "Senders"), ("MEMBERS", "Members")]);
            }
        }
        Command::Stats { group, vpc, output } => {
            let body = match group {
                Some(g) => json!({"GroupId": group_id(conn, &g, vpc.as_deref())?}),
                None => json!({}),
            };
            let stats = call("DescribeMulticastGroupStatistics", body)?;
            if output == Format::Json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
                return Ok(());
            }
            let mut rows = Vec::new();
            for g in stats["Groups"].as_array().into_iter().flatten() {
                rows.push(json!({"Group": g["GroupAddress"], "VPC": g["VpcName"], "Who": "(sent)", "Packets": g["Packets"], "Bytes": g["Bytes"], "Refused": g["Refused"]}));
                for m in g["Members"].as_array().into_iter().flatten() {
                    rows.push(json!({"Group": g["GroupAddress"], "VPC": g["VpcName"], "Who": m["Member"], "Packets": m["Packets"], "Bytes": m["Bytes"], "Refused": m["Refused"]}));
                }
            }
            output::table(&rows, &[("GROUP", "Group"), ("VPC", "VPC"), ("MEMBER", "Who"), ("PACKETS", "Packets"), ("BYTES", "Bytes"), ("REFUSED", "Refused")]);
        }
        Command::Join { group, eni, vpc, sender } => {
            let role = if sender { "Sender" } else { "Member" };
            call("JoinMulticastGroup", json!({"GroupId": group_id(conn, &group, vpc.as_deref())?, "NetworkInterfaceId": eni, "Role": role}))?;
        }
        Command::Quit { group, eni, vpc, sender } => {
            let role = if sender { "Sender" } else { "Member" };
            call("LeaveMulticastGroup", json!({"GroupId": group_id(conn, &group, vpc.as_deref())?, "NetworkInterfaceId": eni, "Role": role}))?;
        }
    }
    Ok(())
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
