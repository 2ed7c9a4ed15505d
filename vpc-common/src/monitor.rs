//! Live monitoring: what the data path decides, as typed events on a BPF ring buffer
//! (`EVENTS`). Only first packets, drops, ICMP errors sent and verdicts an epoch change flipped
//! make events: an established packet makes none, so monitoring costs the fast path nothing.
//! Each (port, kind) has a token bucket per CPU (`MON_BUDGET`, a `RateLimit`): a flood from one guest spends
//! its own budget only. What the limiter or a full ring suppresses is counted per port and kind
//! (`MON_SUPPRESSED`), and the agent reports it in the stream: nothing is lost without a count.
//! Connections closing are seen by the agent's sweeper, which makes those events itself.

/// `MonEvent::kind`.
pub mod kind {
    /// The data path dropped a frame (`reason`: a `DropReason`).
    pub const DROP: u8 = 0;
    /// A new connection was recorded (both sides' verdicts, the route chosen).
    pub const OPEN: u8 = 1;
    /// An epoch change flipped an established connection's verdict at one side.
    pub const POLICY: u8 = 2;
    /// The data path answered with an ICMP error (`reason`: type << 8 | code).
    pub const ICMP: u8 = 3;
    /// Kinds the kernel makes (the size of a port's row in `MON_BUDGET` and `MON_SUPPRESSED`).
    pub const KERNEL_KINDS: u32 = 4;
}

/// `MonEvent::port` of a frame from an interface that is no ENI.
pub const NO_PORT: u32 = u32::MAX;

/// Events a (port, kind) may make per second on one CPU, and the bucket's depth.
pub const EVENTS_PER_SECOND: u64 = 100;
pub const EVENT_BURST: u64 = 200;

/// One data-path event (56 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MonEvent {
    /// `bpf_ktime_get_ns` when it was made.
    pub ktime: u64,
    pub kind: u8,
    /// `sg::direction` of the side that decided (a drop by security groups, a re-judged verdict).
    pub direction: u8,
    /// The IP protocol (0 for a frame without an IPv4 header).
    pub proto: u8,
    /// POLICY: the verdict is now "accept". OPEN: the connection goes to the host stack.
    pub flags: u8,
    /// DROP: the `DropReason`; ICMP: type << 8 | code.
    pub reason: u32,
    /// The sender's port (`NO_PORT`: not an ENI); POLICY: the side re-judged.
    pub port: u32,
    /// The receiver's port, when known (a drop at ingress, a connection's next hop).
    pub peer_port: u32,
    /// Packet order.
    pub saddr: u32,
    pub daddr: u32,
    /// Host order (0 without ports).
    pub sport: u16,
    pub dport: u16,
    /// The deciding rule's counter (`ct::NO_RULE`: no rule accepted); OPEN: the sender's.
    pub rule: u32,
    /// OPEN: the receiver's deciding rule.
    pub peer_rule: u32,
    /// OPEN: the sender's route table (its number).
    pub table: u32,
    /// Every byte a field: the kernel copies the whole struct into a ring users read.
    pub _pad: [u32; 2],
}

const _: () = assert!(size_of::<MonEvent>() == 56, "MonEvent has no padding");

/// `MON_SUPPRESSED` value: one (port, kind)'s events not written, per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MonSuppressed {
    /// By the token bucket.
    pub limited: u64,
    /// Because the ring was full.
    pub ring_full: u64,
}

impl MonSuppressed {
    pub fn add(&mut self, other: &MonSuppressed) {
        self.limited += other.limited;
        self.ring_full += other.ring_full;
    }
}

/// The kinds the kernel makes, in slot order.
pub const KERNEL_KINDS: [u8; kind::KERNEL_KINDS as usize] = [kind::DROP, kind::OPEN, kind::POLICY, kind::ICMP];

/// The slot of (port, kind) in `MON_BUDGET` and `MON_SUPPRESSED`: row 0 is frames from no ENI
/// (`NO_PORT`), row `port + 1` the port's.
#[inline(always)]
pub const fn slot(port: u32, kind: u8) -> u32 {
    port.wrapping_add(1).wrapping_mul(kind::KERNEL_KINDS).wrapping_add(kind as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_refills_at_its_rate_up_to_its_burst() {
        let mut bucket = crate::RateLimit::default();
        let second = 1_000_000_000u64;
        let start = 100 * second;
        let taken = (0..1000).filter(|_| bucket.take(start, EVENTS_PER_SECOND, EVENT_BURST)).count() as u64;
        assert_eq!(taken, EVENT_BURST, "a long silence fills the bucket to its burst, no more");
        let later = (0..1000).filter(|_| bucket.take(start + second / 2, EVENTS_PER_SECOND, EVENT_BURST)).count() as u64;
        assert_eq!(later, EVENTS_PER_SECOND / 2, "half a second refills half a second's events");
        assert!(!bucket.take(start + second / 2, EVENTS_PER_SECOND, EVENT_BURST));
        assert!(bucket.take(u64::MAX, EVENTS_PER_SECOND, EVENT_BURST), "no overflow after any silence");
    }

    #[test]
    fn frames_from_no_eni_share_one_row() {
        assert_eq!(slot(3, kind::ICMP), 4 * kind::KERNEL_KINDS + 3);
        assert_eq!(slot(NO_PORT, kind::DROP), 0);
        assert_eq!(slot(NO_PORT, kind::OPEN), 1);
        assert!(slot(4095, kind::ICMP) < crate::maps::decl::MON_BUDGET.default_entries());
    }
}
