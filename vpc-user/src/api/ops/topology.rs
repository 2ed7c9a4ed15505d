//! Whole-configuration operations: apply or export a topology document, resync interfaces,
//! tear everything down, and the data path's statistics.

use serde_json::{Value, json};

use super::{DRY_RUN, Kind::Object, Op, Param, R, ok, p};
use crate::{
    agent::Agent,
    api::{
        Params,
        error::{ApiError, code},
    },
    model::spec::TopologySpec,
};

pub static OPS: &[Op] = &[
    Op {
        name: "ApplyTopology",
        summary: "Make the configuration equal to a topology document (the YAML file as JSON); resources are matched by name.",
        params: &[p!("Topology", Object, req, "The document: {\"vpcs\": [...], \"enis\": [...]}."), DRY_RUN],
        returns: &[
            ("Changes", "What was (or would be) added, modified and removed."),
            ("Report", "What changed in the kernel maps and links."),
        ],
        mutates: true,
        run: apply_topology,
    },
    Op {
        name: "ExportTopology",
        summary: "The whole configuration as a topology document, with IDs.",
        params: &[],
        returns: &[
            ("Topology", "The document."),
            ("Ids", "The data path's numbers of every resource (for `vpc trace`)."),
            ("Down", "Hops the health checks found down: [route entry ID, hop index]."),
        ],
        mutates: false,
        run: export_topology,
    },
    Op {
        name: "SyncInterfaces",
        summary: "Re-resolve every ENI's host interface now and update the data path (the agent also does this every second).",
        params: &[],
        returns: &[("Attached", "ENIs and gateways whose interface exists."), ("Detached", "Those without one.")],
        mutates: false,
        run: sync_interfaces,
    },
    Op {
        name: "Teardown",
        summary: "Detach the data path from every interface, remove every pin and delete the whole configuration.",
        params: &[],
        returns: &[],
        mutates: true,
        run: teardown,
    },
    Op {
        name: "DescribeStatistics",
        summary: "Per-ENI packet and byte counters and drops by reason, from the data path.",
        params: &[],
        returns: &[
            (
                "Enis",
                "Per ENI: NetworkInterfaceName, NetworkInterfaceId, VpcName, VSwitchName, PrivateIpAddress, Attached, RxPackets, RxBytes, TxPackets, TxBytes, Connections, ConntrackLimit, ConntrackRefused.",
            ),
            ("Drops", "Per drop reason: Reason, Packets, Meaning."),
            ("Events", "Per event: Event, Count."),
            ("Conntrack", "The connection table: Entries, Capacity, Created, Swept, Refused, Full."),
        ],
        mutates: false,
        run: describe_statistics,
    },
];

fn apply_topology(agent: &mut Agent, p: &Params) -> R<Value> {
    let spec: TopologySpec = p
        .object("Topology")
        .unwrap_or_else(|| serde_json::from_str("null"))
        .map_err(|e| ApiError::bad(crate::model::error::code::YAML_SYNTAX, "Topology", format!("not a topology document: {e}")))?;
    let applied = agent.apply_spec(spec, p.opt_bool("DryRun").unwrap_or(false))?;
    Ok(json!({"Changes": applied.changes.iter().map(ToString::to_string).collect::<Vec<_>>(), "Report": applied.report}))
}

fn export_topology(agent: &mut Agent, _: &Params) -> R<Value> {
    Ok(json!({"Topology": agent.stored().doc, "Ids": agent.stored().ids, "Down": agent.binding().down}))
}

fn describe_statistics(agent: &mut Agent, _: &Params) -> R<Value> {
    let stats = agent.stats().map_err(|e| ApiError::new(503, code::UNAVAILABLE, format!("{e:#}")))?;
    serde_json::to_value(stats).map_err(|e| ApiError::internal(e.into()))
}

fn sync_interfaces(agent: &mut Agent, _: &Params) -> R<Value> {
    agent.reconcile().map_err(ApiError::internal)?;
    let attached = agent.binding().ifindex.len();
    let topology = agent.topology();
    let total = topology.enis().count() + topology.vpcs.iter().map(|v| v.gateways.len()).sum::<usize>();
    Ok(json!({"Attached": attached, "Detached": total - attached}))
}

fn teardown(agent: &mut Agent, _: &Params) -> R<Value> {
    agent.down().map_err(ApiError::internal)?;
    ok()
}
