//! Flow-log counting in the data path. Every packet of a port with a flow log is counted once,
//! exactly, in `FLOW_LOG` under (sender's port and action, receiver's port and action, 5-tuple,
//! tick): one update per packet whichever of its two sides are captured, in a per-CPU hash, so
//! counting needs no atomics. Each captured side is a record (`FlPairKey::sides`: port,
//! direction, 5-tuple, security-group action). The agent advances the tick (`CONFIG` slot
//! [`CONFIG_FLOWLOG_TICK`]) every second and drains the entries of past ticks; the kernel only
//! ever adds to the current tick's. When the table is full the packet is counted in
//! `FLOW_LOG_LOST` for its captured ports instead: lost records are reported (SKIPDATA), never
//! silent. No ring buffer and no per-packet event: the table is the only channel.

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

/// One side's record of a packet (what `FlPairKey::sides` gives). Ports are 0 for protocols without ports (and for non-first fragments).
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
    /// The counter of the rule that decided the verdict (`ct::NO_RULE`: none did).
    pub rule: u32,
}

/// `FlPairKey`'s port of a side no flow log captures.
pub const NO_SIDE: u32 = u32::MAX;

/// Key of `FLOW_LOG`: a packet's two sides in one key, so a packet between two captured ENIs
/// costs one update, not two. A side is present when its port is not [`NO_SIDE`]. Ports are 0
/// for protocols without ports (and for non-first fragments).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FlPairKey {
    /// The sender's port (its direction OUT) and its security groups' `action`.
    pub sent_port: u32,
    /// The receiver's port (its direction IN) and its security groups' `action`.
    pub received_port: u32,
    /// Packet order.
    pub saddr: u32,
    pub daddr: u32,
    /// Host order.
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub sent_action: u8,
    pub received_action: u8,
    pub _pad: u8,
    /// The tick the packets were counted in.
    pub tick: u32,
    /// The counters of the rules that decided each side's verdict (`ct::NO_RULE`: none did).
    pub sent_rule: u32,
    pub received_rule: u32,
}

impl FlPairKey {
    /// The records the key's counts belong to: one per present side, each counted the same.
    pub fn sides(&self) -> [Option<FlKey>; 2] {
        let side = |port: u32, direction: u8, action: u8, rule: u32| {
            (port != NO_SIDE).then_some(FlKey {
                port,
                saddr: self.saddr,
                daddr: self.daddr,
                sport: self.sport,
                dport: self.dport,
                proto: self.proto,
                direction,
                action,
                _pad: 0,
                tick: self.tick,
                rule,
            })
        };
        [
            side(self.sent_port, direction::OUT, self.sent_action, self.sent_rule),
            side(self.received_port, direction::IN, self.received_action, self.received_rule),
        ]
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sent_port: u32, received_port: u32) -> FlPairKey {
        FlPairKey {
            sent_port,
            received_port,
            saddr: 1,
            daddr: 2,
            sport: 3,
            dport: 4,
            proto: 17,
            sent_action: action::ACCEPT,
            received_action: action::REJECT,
            _pad: 0,
            tick: 9,
            sent_rule: 11,
            received_rule: 12,
        }
    }

    #[test]
    fn a_pair_key_is_one_record_per_captured_side() {
        let [sent, received] = key(5, 7).sides();
        let sent = sent.expect("the sender's side");
        let received = received.expect("the receiver's side");
        assert_eq!((sent.port, sent.direction, sent.action, sent.tick), (5, direction::OUT, action::ACCEPT, 9));
        assert_eq!((received.port, received.direction, received.action), (7, direction::IN, action::REJECT));
        assert_eq!((sent.rule, received.rule), (11, 12));
        assert_eq!((sent.saddr, sent.daddr, sent.sport, sent.dport, sent.proto), (1, 2, 3, 4, 17));
        assert_eq!(key(NO_SIDE, 7).sides()[0], None);
        assert_eq!(key(5, NO_SIDE).sides()[1], None);
        assert_eq!(key(NO_SIDE, NO_SIDE).sides(), [None, None]);
    }
}
