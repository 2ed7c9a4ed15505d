//! Flow-log operations (the guide's chapter 4). Records are written by the agent daemon; see
//! `crate::flowlog`.

use serde_json::{Value, json};

use super::{DRY_RUN, Kind::Integer, Op, Param, R, S, lookup::find, name_or, ok, p, transact};
use crate::{
    agent::Agent,
    api::{
        Params,
        error::{ApiError, code},
    },
    model::{
        flowlog::{FlowLog, Resource, Sink},
        kinds::flow_log,
        locate,
        normalize::new_id,
        spec::{EniSpec, FlowLogResourceSpec, FlowLogSinkSpec, FlowLogSpec, TopologySpec, VSwitchSpec, VpcSpec},
    },
};

pub static OPS: &[Op] = &[
    Op {
        name: "CreateFlowLog",
        summary: "Capture the traffic of an ENI, of every ENI of a VSwitch or of a VPC (ENIs added later included) as flow-log records (at most 10 flow logs).",
        params: &[
            p!("FlowLogName", S, opt, "2-128 characters, starts with a letter; the ID when omitted."),
            p!("ResourceType", S, req, "NetworkInterface, VSwitch or VPC."),
            p!("ResourceId", S, req, "The ENI, VSwitch or VPC."),
            p!("TrafficType", S, opt, "All (the default), Allow (what security groups accepted) or Drop (what they dropped)."),
            p!("AggregationInterval", Integer, opt, "The capture window in seconds, 1 to 86400 (default 600)."),
            p!(
                "LogFile",
                S,
                opt,
                "Write JSON lines to this absolute path inside the agent's flow-log directory (--flow-log-dir; default: a file per flow log there)."
            ),
            p!("IpfixCollector", S, opt, "Export IPFIX over UDP to this collector (ADDRESS:PORT) instead of a file."),
            p!("Description", S, opt, "2-256 characters."),
            DRY_RUN,
        ],
        returns: &[("FlowLogId", "The new flow log.")],
        mutates: true,
        run: create,
    },
    Op {
        name: "DeleteFlowLog",
        summary: "Delete a flow log; the window in progress is written first.",
        params: &[p!("FlowLogId", S, req, "The flow log."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: delete,
    },
    Op {
        name: "DescribeFlowLogs",
        summary: "List flow logs.",
        params: &[
            p!("FlowLogId", S, opt, "Only this flow log."),
            p!("FlowLogName", S, opt, "Only flow logs with this name."),
            p!("ResourceId", S, opt, "Only flow logs of this resource."),
        ],
        returns: &[
            (
                "FlowLogs",
                "FlowLogId, FlowLogName, Description, ResourceType, ResourceId, TrafficType, AggregationInterval, Status (Active|Inactive), LogFile or IpfixCollector.",
            ),
            ("TotalCount", "Number listed."),
        ],
        mutates: false,
        run: describe,
    },
    Op {
        name: "ActiveFlowLog",
        summary: "Start capturing again.",
        params: &[p!("FlowLogId", S, req, "The flow log."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: activate,
    },
    Op {
        name: "DeactiveFlowLog",
        summary: "Stop capturing (the configuration stays); the window in progress is written.",
        params: &[p!("FlowLogId", S, req, "The flow log."), DRY_RUN],
        returns: &[],
        mutates: true,
        run: deactivate,
    },
    Op {
        name: "ModifyFlowLogAttribute",
        summary: "Change a flow log's name, description or capture window.",
        params: &[
            p!("FlowLogId", S, req, "The flow log."),
            p!("FlowLogName", S, opt, "New name."),
            p!("Description", S, opt, "New description."),
            p!("AggregationInterval", Integer, opt, "New capture window, seconds."),
            DRY_RUN,
        ],
        returns: &[],
        mutates: true,
        run: modify,
    },
];

/// The document's resource for (type, ID).
fn resource(doc: &TopologySpec, kind: &str, id: &str) -> R<FlowLogResourceSpec> {
    let missing = || ApiError::not_found(code::FLOW_LOG_RESOURCE_NOT_FOUND, "ResourceId", id);
    match kind.to_ascii_lowercase().as_str() {
        "vpc" => locate::find::<VpcSpec>(doc, id)
            .map(|i| FlowLogResourceSpec { vpc: Some(doc.vpcs[i].name.clone()), ..Default::default() })
            .ok_or_else(missing),
        "vswitch" => locate::find::<VSwitchSpec>(doc, id)
            .map(|(i, j)| {
                let vpc = &doc.vpcs[i];
                FlowLogResourceSpec { vpc: Some(vpc.name.clone()), vswitch: Some(vpc.vswitches[j].name.clone()), ..Default::default() }
            })
            .ok_or_else(missing),
        "networkinterface" => locate::find::<EniSpec>(doc, id)
            .map(|(i, j)| FlowLogResourceSpec { eni: Some(doc.vpcs[i].enis[j].name.clone()), ..Default::default() })
            .ok_or_else(missing),
        other => Err(ApiError::bad(
            code::INVALID_PARAMETER,
            "ResourceType",
            format!("ResourceType is NetworkInterface, VSwitch or VPC, not '{other}'"),
        )),
    }
}

fn window(p: &Params) -> Option<String> {
    p.value("AggregationInterval").and_then(Value::as_u64).map(|s| format!("{s}s"))
}

fn create(agent: &mut Agent, p: &Params) -> R<Value> {
    let id = new_id(flow_log::ID_PREFIX);
    transact(agent, p, |doc, _| {
        let resource = resource(doc, p.str("ResourceType"), p.str("ResourceId"))?;
        doc.flow_logs.push(FlowLogSpec {
            id: Some(id.clone()),
            name: name_or(p.opt_str("FlowLogName"), &id),
            description: p.opt_str("Description").map(Into::into),
            resource,
            traffic: p.opt_str("TrafficType").map(str::to_ascii_lowercase),
            window: window(p),
            sink: FlowLogSinkSpec { file: p.opt_str("LogFile").map(Into::into), ipfix: p.opt_str("IpfixCollector").map(Into::into) },
            active: None,
        });
        Ok(())
    })?;
    Ok(json!({"FlowLogId": id}))
}

fn delete(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let i = find::<FlowLogSpec>(doc, p.str("FlowLogId"))?;
        doc.flow_logs.remove(i);
        Ok(())
    })?;
    ok()
}

fn set_active(agent: &mut Agent, p: &Params, active: bool) -> R<Value> {
    transact(agent, p, |doc, _| {
        let i = find::<FlowLogSpec>(doc, p.str("FlowLogId"))?;
        doc.flow_logs[i].active = if active { None } else { Some(false) };
        Ok(())
    })?;
    ok()
}

fn activate(agent: &mut Agent, p: &Params) -> R<Value> {
    set_active(agent, p, true)
}

fn deactivate(agent: &mut Agent, p: &Params) -> R<Value> {
    set_active(agent, p, false)
}

fn modify(agent: &mut Agent, p: &Params) -> R<Value> {
    transact(agent, p, |doc, _| {
        let i = find::<FlowLogSpec>(doc, p.str("FlowLogId"))?;
        let log = &mut doc.flow_logs[i];
        if let Some(name) = p.opt_str("FlowLogName") {
            log.name = name.into();
        }
        if let Some(text) = p.opt_str("Description") {
            log.description = Some(text.into());
        }
        if let Some(w) = window(p) {
            log.window = Some(w);
        }
        Ok(())
    })?;
    ok()
}

/// (ResourceType, ResourceId) of a flow log.
fn resource_id(agent: &Agent, log: &FlowLog) -> (&'static str, Option<String>) {
    let t = agent.topology();
    let id = match &log.resource {
        Resource::Eni { eni } => t.eni(eni).map(|(_, _, e)| e.id.clone()),
        Resource::Vswitch { vpc, vswitch } => t.vpc(vpc).and_then(|v| v.vswitch(vswitch)).map(|s| s.id.clone()),
        Resource::Vpc { vpc } => t.vpc(vpc).map(|v| v.id.clone()),
    };
    (log.resource_type(), id)
}

fn describe(agent: &mut Agent, p: &Params) -> R<Value> {
    let list: Vec<Value> = agent
        .topology()
        .flow_logs
        .iter()
        .filter_map(|log| {
            let (kind, rid) = resource_id(agent, log);
            let keep = p.opt_str("FlowLogId").is_none_or(|id| log.id == id)
                && p.opt_str("FlowLogName").is_none_or(|n| log.name == n)
                && p.opt_str("ResourceId").is_none_or(|r| rid.as_deref() == Some(r));
            keep.then(|| {
                let mut v = json!({
                    "FlowLogId": log.id, "FlowLogName": log.name, "Description": log.description, "ResourceType": kind,
                    "ResourceId": rid, "TrafficType": log.traffic.name(), "AggregationInterval": log.window_s,
                    "Status": if log.active { "Active" } else { "Inactive" },
                });
                match &log.sink {
                    Sink::Ipfix(addr) => v["IpfixCollector"] = json!(addr.to_string()),
                    Sink::File(_) => v["LogFile"] = json!(crate::flowlog::file_path(&agent.opts.flow_log_dir(), log)),
                }
                v
            })
        })
        .collect();
    Ok(json!({"FlowLogs": list, "TotalCount": list.len()}))
}
