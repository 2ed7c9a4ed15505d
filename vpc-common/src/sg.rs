//! Security groups as the data path classifies them: no linear scan over rules.
//!
//! Each group has two rule *sets* (ingress, egress). A set's rules are sorted by precedence
//! (priority, then drop before accept), so "the winning rule" is the first rule matching all
//! fields. The classifier is a bit-vector one (Lakshman & Stiliadis), with an aggregated summary
//! (Baboescu & Varghese): every field value maps to an equivalence *class*, each class carries a
//! bitmap of the rules its values match, and the first set bit of the AND of the peer-address,
//! port and protocol bitmaps is the winner. Field values find their class through fixed-stride
//! tries in array maps (8-bit strides: at most 4 steps for an address, 2 for a port), so the
//! cost of a lookup does not grow with the rule count; the summary (one bit per 64 rules) lets
//! the AND skip empty words, so a set of 10,000 rules costs a few more word reads than a set of
//! 10, not 150 times more. Why not tuple-space search: its cost grows with the number of distinct
//! (prefix length, port range) shapes, which user rule sets have plenty of; why not cross-producting
//! (RFC): memory explodes with overlapping CIDRs and port ranges.
//!
//! Everything of a set is position independent (node entries and bitmap ids are relative to the
//! set's bases), so a changed set is written to free space and switched to by one update of its
//! `SgSet`: a packet sees the old set or the new one, never a mix.

/// Groups an ENI may belong to.
pub const MAX_ENI_GROUPS: usize = 5;
/// Rule words of a set's bitmaps: room for 10,000 rules and the intra-group rule.
pub const MAX_RULE_WORDS: u32 = 157;
/// Summary words (one bit per rule word).
pub const MAX_SUMMARY_WORDS: u32 = 3;
/// u64 words per `SG_WORDS` element.
pub const CHUNK_WORDS: u32 = 64;
/// Entries of a trie node (8-bit stride).
pub const NODE_FANOUT: usize = 256;
/// A trie entry with this bit is a leaf: the rest is a bitmap id; otherwise a child node.
pub const LEAF: u32 = 1 << 31;
/// No set (`PortGroups` slots past `count`).
pub const NO_SET: u16 = 0;

/// Protocol classes of a set (`SgSet::proto`).
pub mod proto_class {
    pub const TCP: usize = 0;
    pub const UDP: usize = 1;
    pub const ICMP: usize = 2;
    pub const GRE: usize = 3;
    pub const OTHER: usize = 4;
    pub const COUNT: usize = 5;

    /// The class of an IP protocol number.
    #[inline(always)]
    pub const fn of(proto: u32) -> usize {
        match proto {
            6 => TCP,
            17 => UDP,
            1 => ICMP,
            47 => GRE,
            _ => OTHER,
        }
    }
}

/// Rule policies (`SgRule::policy`).
pub mod policy {
    pub const DROP: u8 = 0;
    pub const ACCEPT: u8 = 1;
}

/// Directions: index of a port's sets in `PortGroups::sets`.
pub mod direction {
    pub const INGRESS: usize = 0;
    pub const EGRESS: usize = 1;
}

/// Priority of the implicit intra-group rule: after every explicit rule (1-100).
pub const INTRA_GROUP_PRIORITY: u8 = 101;

/// Precedence of a rule: lower wins; drop before accept at the same priority.
#[inline(always)]
pub const fn precedence(priority: u8, policy: u8) -> u16 {
    (priority as u16) * 2 + policy as u16
}

/// A compiled rule set (`SG_SETS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct SgSet {
    /// Trie entry for the peer address (a leaf, or a node relative to `nodes`).
    pub addr_root: u32,
    /// Trie entries for the destination port: TCP, UDP.
    pub port_root: [u32; 2],
    /// Bitmap of the rules that match any port (packets without ports: other protocols, fragments).
    pub no_ports: u32,
    /// Bitmap per protocol class.
    pub proto: [u32; proto_class::COUNT],
    /// The same, of the rules that do not name a group: all that may match a packet whose source
    /// is not vouched for (see [`UNVOUCHED`]).
    pub proto_cidr: [u32; proto_class::COUNT],
    /// First node of the set in `SG_NODES`.
    pub nodes: u32,
    /// First word of the set's bitmaps in `SG_WORDS` (counted in u64 words).
    pub words: u32,
    /// First rule in `SG_RULES`.
    pub rules: u32,
    /// Rule words and summary words of each bitmap (a bitmap is summary then rule words).
    pub rule_words: u32,
    pub summary_words: u32,
    /// Rules in the set.
    pub count: u32,
    /// Trie nodes and bitmap chunks the set occupies (so its copy in the kernel can be read back).
    pub node_count: u32,
    pub chunk_count: u32,
}

impl SgSet {
    /// Words of one bitmap.
    #[inline(always)]
    pub const fn stride(&self) -> u32 {
        self.summary_words + self.rule_words
    }
}

/// One rule as the data path sees it (`SG_RULES`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct SgRule {
    /// [`precedence`].
    pub precedence: u16,
    pub policy: u8,
    pub _pad: u8,
    /// Index in `SG_RULE_STATS`.
    pub counter: u32,
}

/// What the data path needs of a port when it judges a new connection (`PORT_GROUPS`): the sets
/// its packets are classified by (one per group and direction), its connection limit and flags.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct PortGroups {
    /// `sets[direction][i]` for the port's groups, `NO_SET` past `count`.
    pub sets: [[u16; MAX_ENI_GROUPS]; 2],
    /// Number of groups; 0: the port has no security groups: open if a gateway ([`PORT_OPEN`]),
    /// else closed.
    pub count: u32,
    /// `flowlog::PORT_FLOW_LOG`, [`PORT_OPEN`].
    pub flags: u32,
    /// Connection-table entries the port may hold; 0: no limit (a gateway, unless configured).
    pub ct_limit: u32,
}

/// `PortGroups::flags`: a port without groups that every packet passes (a gateway). An ENI's
/// port always has groups; a port without either denies (fail closed).
pub const PORT_OPEN: u32 = 1 << 1;

/// A classification's destination-port argument: it has a port (in the low half) ...
pub const HAS_PORT: u32 = 1 << 16;
/// ... and the packet's source is not vouched for (a sender forwarding for others: a gateway,
/// an ENI without source/destination check using another address). Rules naming a security
/// group match packets sent by the group's members, not packets that merely carry a member's
/// address, so only the rules of `SgSet::proto_cidr` may match.
pub const UNVOUCHED: u32 = 1 << 17;

/// Per-rule hit counters (`SG_RULE_STATS`, per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RuleCounters {
    pub packets: u64,
    pub bytes: u64,
}

impl RuleCounters {
    pub fn add(&mut self, other: &RuleCounters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
    }
}
