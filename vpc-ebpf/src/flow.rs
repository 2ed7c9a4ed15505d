//! The flow cache: a flow's decision is taken once per configuration epoch and reused, so an
//! established flow costs one hash lookup whatever the number of routes.

use vpc_common::{event, flow::verdict, DropReason, FlowEntry, FlowKey, Port, CONFIG_EPOCH};

use crate::{
    maps::{CONFIG, FLOWS},
    route::Decision,
    stats,
};

/// The current configuration epoch.
#[inline(always)]
pub fn epoch() -> u64 {
    CONFIG.get(CONFIG_EPOCH).copied().unwrap_or(0)
}

/// The cached decision for `key`, or `decide()`'s, which is then cached.
#[inline(always)]
pub fn decision(key: &FlowKey, decide: impl FnOnce() -> Result<Decision, DropReason>) -> Result<Decision, DropReason> {
    let epoch = epoch();
    if let Some(entry) = FLOWS.get_ptr(key) {
        // SAFETY: copied out at once; an LRU element may be recycled by another CPU.
        let entry = unsafe { *entry };
        if entry.epoch == epoch {
            stats::event(event::FLOW_CACHE_HIT);
            return match entry.verdict {
                verdict::DELIVER => Ok(Decision::Deliver(entry.port)),
                verdict::HOST => Ok(Decision::ToHost),
                _ => Err(DropReason::from_u32(entry.reason).unwrap_or(DropReason::NoRoute)),
            };
        }
    }
    stats::event(event::FLOW_CACHE_MISS);
    let decided = decide();
    let entry = match decided {
        Ok(Decision::Deliver(port)) => FlowEntry { epoch, verdict: verdict::DELIVER, reason: 0, port, _pad: 0 },
        Ok(Decision::ToHost) => FlowEntry { epoch, verdict: verdict::HOST, reason: 0, port: Port::default(), _pad: 0 },
        Err(reason) => FlowEntry { epoch, verdict: verdict::DROP, reason: reason as u32, port: Port::default(), _pad: 0 },
    };
    let _ = FLOWS.insert(key, &entry, 0);
    decided
}
