//! Flow-log counting in the data path. Every packet of a port with a flow log is counted once,
//! exactly, in `FLOW_LOG` under (port, direction, 5-tuple, security-group action, tick): a
//! per-CPU hash, so counting needs no atomics. The agent advances the tick (`CONFIG` slot
//! [`CONFIG_FLOWLOG_TICK`]) every second and drains the entries of past ticks; the kernel only
//! ever adds to the current tick's. When the table is full the packet is counted in
//! `FLOW_LOG_LOST` for its port instead: lost records are reported (SKIPDATA), never silent.
//! No ring buffer and no per-packet event: the table is the only channel.

/// `PortGroups::flags`: the port's packets are counted for flow logs.
pub const PORT_FLOW_LOG: u32 = 1;

/// Slot of the flow-log tick in `CONFIG`.
pub const CONFIG_FLOWLOG_TICK: u32 = 1;

pub mod direction {
    /// Traffic to the ENI.
    pub const IN: u8 = 0;
    /// Traffic from the ENI.
    pub const OUT: u8 = 1;
}

pub mod action {
    /// The security groups dropped it.
    pub const REJECT: u8 = 0;
    pub const ACCEPT: u8 = 1;
}

/// Key of `FLOW_LOG`. Ports are 0 for protocols without ports (and for non-first fragments).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FlKey {
    pub port: u32,
    /// Packet order.
    pub saddr: u32,
    pub daddr: u32,
    /// Host order.
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub direction: u8,
    pub action: u8,
    pub _pad: u8,
    /// The tick the packets were counted in.
    pub tick: u32,
}

/// Packets and IP bytes (total length), per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlCounters {
    pub packets: u64,
    pub bytes: u64,
}

impl FlCounters {
    pub fn add(&mut self, other: &FlCounters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
    }
}
