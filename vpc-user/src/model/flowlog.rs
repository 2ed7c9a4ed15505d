//! Flow logs: the types, their limits and the window parser are in `kinds::flow_log`; they stay at
//! this path for callers. Validated in `validate::flow_log`.

pub use super::kinds::flow_log::{DEFAULT_WINDOW_S, FlowLog, MAX_WINDOW_S, MIN_WINDOW_S, Resource, Sink, Traffic, parse_window};
