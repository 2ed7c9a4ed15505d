//! Compile security groups into the data path's classifier (see `vpc_common::sg` for why this
//! shape): per group and direction a rule set of
//! - the rules in precedence order (the intra-group rule last, ingress only);
//! - one bitmap per equivalence class of each field: for the peer address, the rules whose peer
//!   contains it; for the destination port (TCP, UDP), the rules whose range contains it; for
//!   packets without ports, the rules for all ports; for the protocol, the rules of it;
//! - 8-bit-stride tries that lead from an address (4 steps at most) or a port (2) to its class.
//!
//! A set is position independent (node entries and bitmap ids count from the set's own bases);
//! `place` decides where in the arrays it goes.

use std::collections::{BTreeMap, HashMap};

use ipnet::Ipv4Net;
use vpc_common::sg::{self, CHUNK_WORDS, LEAF, NODE_FANOUT, SgRule, SgSet, proto_class};

use crate::model::{
    Vpc,
    ids::{Ids, SgPlace, intra_rule},
    security::{Direction, Peer, Protocol, SecurityGroup, candidates},
};

/// One compiled rule set, before placement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SgContent {
    /// Roots, classes and sizes; the bases are zero.
    pub set: SgSet,
    pub nodes: Vec<[u32; NODE_FANOUT]>,
    /// Bitmaps, `set.stride()` words each, padded to whole chunks.
    pub words: Vec<u64>,
    pub rules: Vec<SgRule>,
}

impl SgContent {
    pub fn chunks(&self) -> u32 {
        (self.words.len() as u32).div_ceil(CHUNK_WORDS)
    }

    /// The set descriptor at `place`.
    pub fn placed(&self, place: &SgPlace) -> SgSet {
        SgSet { nodes: place.nodes.0, words: place.chunks.0 * CHUNK_WORDS, rules: place.rules.0, ..self.set }
    }
}

/// What one rule asks of each field.
struct Wants {
    peers: Vec<Ipv4Net>,
    /// The peers are a group's members (a group rule or the intra-group rule).
    group: bool,
    ports: Option<(u16, u16)>,
    protocol: Protocol,
}

/// A set of rules as a bitmap over their indexes.
type Bits = Vec<u64>;

fn set_bit(bits: &mut Bits, i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

struct Builder {
    rule_words: usize,
    summary_words: usize,
    /// Bitmaps with summaries, deduplicated.
    bitmaps: Vec<Vec<u64>>,
    known: HashMap<Bits, u32>,
    nodes: Vec<[u32; NODE_FANOUT]>,
}

impl Builder {
    fn empty(&self) -> Bits {
        vec![0; self.rule_words]
    }

    /// The bitmap id of `bits`, adding it when new.
    fn bitmap(&mut self, bits: &Bits) -> u32 {
        if let Some(&id) = self.known.get(bits) {
            return id;
        }
        let mut words = vec![0u64; self.summary_words];
        for (w, word) in bits.iter().enumerate() {
            if *word != 0 {
                words[w / 64] |= 1 << (w % 64);
            }
        }
        words.extend_from_slice(bits);
        let id = self.bitmaps.len() as u32;
        self.bitmaps.push(words);
        self.known.insert(bits.clone(), id);
        id
    }

    fn leaf(&mut self, bits: &Bits) -> u32 {
        LEAF | self.bitmap(bits)
    }

    /// The trie entry for the address range `range`: `inside` are (prefix, rule) strictly inside
    /// it, `covering` the rules whose peer contains the whole range.
    fn addr_entry(&mut self, range: Ipv4Net, inside: Vec<(Ipv4Net, usize)>, covering: &Bits) -> u32 {
        if inside.is_empty() {
            return self.leaf(covering);
        }
        let node = self.nodes.len();
        self.nodes.push([0; NODE_FANOUT]);
        let child_len = range.prefix_len() + 8;
        let shift = 32 - u32::from(child_len);
        let base = u32::from(range.network());
        // Prefixes covering whole children, and those deeper down, by child.
        let mut covers: Vec<(usize, usize, usize)> = Vec::new();
        let mut deeper: BTreeMap<usize, Vec<(Ipv4Net, usize)>> = BTreeMap::new();
        for (net, rule) in inside {
            let first = ((u32::from(net.network()) - base) >> shift) as usize;
            if net.prefix_len() <= child_len {
                let count = 1usize << (child_len - net.prefix_len());
                covers.push((first, first + count - 1, rule));
            } else {
                deeper.entry(first).or_default().push((net, rule));
            }
        }
        let plain = self.leaf(covering);
        let mut entries = [plain; NODE_FANOUT];
        let touched: std::collections::BTreeSet<usize> =
            covers.iter().flat_map(|&(lo, hi, _)| lo..=hi).chain(deeper.keys().copied()).collect();
        for child in touched {
            let mut bits = covering.clone();
            for &(lo, hi, rule) in &covers {
                if (lo..=hi).contains(&child) {
                    set_bit(&mut bits, rule);
                }
            }
            let child_range = Ipv4Net::new((base + ((child as u32) << shift)).into(), child_len).expect("prefix length <= 32");
            entries[child] = self.addr_entry(child_range, deeper.remove(&child).unwrap_or_default(), &bits);
        }
        self.nodes[node] = entries;
        node as u32
    }

    /// The trie entry for ports: 256 children by the high byte, each with 256 ports.
    fn port_entry(&mut self, ranges: &[((u16, u16), usize)], covering: &Bits) -> u32 {
        if ranges.is_empty() {
            return self.leaf(covering);
        }
        let node = self.nodes.len();
        self.nodes.push([0; NODE_FANOUT]);
        let plain = self.leaf(covering);
        let mut entries = [plain; NODE_FANOUT];
        for (high, entry) in entries.iter_mut().enumerate() {
            let (lo, hi) = ((high as u32) << 8, ((high as u32) << 8) | 0xff);
            let mut bits = covering.clone();
            let mut partial = Vec::new();
            for &((a, b), rule) in ranges {
                let (a, b) = (u32::from(a), u32::from(b));
                if a <= lo && hi <= b {
                    set_bit(&mut bits, rule);
                } else if a <= hi && lo <= b {
                    partial.push((a, b, rule));
                }
            }
            if partial.is_empty() {
                *entry = if bits == *covering { plain } else { self.leaf(&bits) };
                continue;
            }
            let child = self.nodes.len();
            self.nodes.push([0; NODE_FANOUT]);
            let mut leaves = [0u32; NODE_FANOUT];
            for (low, leaf) in leaves.iter_mut().enumerate() {
                let port = lo | low as u32;
                let mut port_bits = bits.clone();
                for &(a, b, rule) in &partial {
                    if a <= port && port <= b {
                        set_bit(&mut port_bits, rule);
                    }
                }
                *leaf = self.leaf(&port_bits);
            }
            self.nodes[child] = leaves;
            *entry = child as u32;
        }
        self.nodes[node] = entries;
        node as u32
    }
}

/// Compile the rule set of `group` (of `vpc`) in `direction`.
pub fn compile_set(vpc: &Vpc, group: &SecurityGroup, direction: Direction, ids: &Ids) -> SgContent {
    let order = candidates(group, direction);
    let members = |name: &str| -> Vec<Ipv4Net> { vpc.members(name).into_iter().map(|a| Ipv4Net::new(a, 32).expect("/32")).collect() };
    let wants: Vec<Wants> = order
        .iter()
        .map(|c| match c.rule {
            Some(rule) => Wants {
                peers: match &rule.peer {
                    Peer::Cidr(net) => vec![*net],
                    Peer::Group(name) => members(name),
                },
                group: matches!(rule.peer, Peer::Group(_)),
                ports: rule.ports,
                protocol: rule.protocol,
            },
            None => Wants { peers: members(&group.name), group: true, ports: None, protocol: Protocol::All },
        })
        .collect();
    let rules: Vec<SgRule> = order
        .iter()
        .map(|c| SgRule {
            precedence: c.precedence,
            policy: if c.accept { sg::policy::ACCEPT } else { sg::policy::DROP },
            _pad: 0,
            counter: ids.sg_rule(&c.rule.map(|r| r.id.clone()).unwrap_or_else(|| intra_rule(&group.id))),
        })
        .collect();
    let rule_words = wants.len().div_ceil(64).max(1);
    let summary_words = rule_words.div_ceil(64).max(1);
    let mut b = Builder { rule_words, summary_words, bitmaps: Vec::new(), known: HashMap::new(), nodes: Vec::new() };

    // Peer addresses.
    let mut covering = b.empty();
    let mut inside = Vec::new();
    for (i, w) in wants.iter().enumerate() {
        for net in &w.peers {
            if net.prefix_len() == 0 {
                set_bit(&mut covering, i);
            } else {
                inside.push((*net, i));
            }
        }
    }
    let addr_root = b.addr_entry("0.0.0.0/0".parse().expect("constant"), inside, &covering);

    // Ports: rules for all ports match every port; ranges only their protocol's.
    let mut all_ports = b.empty();
    for (i, w) in wants.iter().enumerate() {
        if w.ports.is_none() {
            set_bit(&mut all_ports, i);
        }
    }
    let ranges = |protocol: Protocol| -> Vec<((u16, u16), usize)> {
        wants.iter().enumerate().filter(|(_, w)| w.protocol == protocol).filter_map(|(i, w)| Some((w.ports?, i))).collect()
    };
    let tcp_root = b.port_entry(&ranges(Protocol::Tcp), &all_ports);
    let udp_root = b.port_entry(&ranges(Protocol::Udp), &all_ports);
    let no_ports = b.bitmap(&all_ports);

    // Protocols: of all rules, and of the rules that do not name a group.
    let mut proto = [0u32; proto_class::COUNT];
    let mut proto_cidr = [0u32; proto_class::COUNT];
    for class in 0..proto_class::COUNT {
        let mut bits = b.empty();
        let mut cidr_bits = b.empty();
        for (i, w) in wants.iter().enumerate() {
            let matches = match w.protocol {
                Protocol::All => true,
                Protocol::Tcp => class == proto_class::TCP,
                Protocol::Udp => class == proto_class::UDP,
                Protocol::Icmp => class == proto_class::ICMP,
                Protocol::Gre => class == proto_class::GRE,
            };
            if matches {
                set_bit(&mut bits, i);
                if !w.group {
                    set_bit(&mut cidr_bits, i);
                }
            }
        }
        proto[class] = b.bitmap(&bits);
        proto_cidr[class] = b.bitmap(&cidr_bits);
    }

    let mut words: Vec<u64> = b.bitmaps.concat();
    words.resize(words.len().div_ceil(CHUNK_WORDS as usize) * CHUNK_WORDS as usize, 0);
    let (node_count, chunk_count) = (b.nodes.len() as u32, (words.len() / CHUNK_WORDS as usize) as u32);
    SgContent {
        set: SgSet {
            addr_root,
            port_root: [tcp_root, udp_root],
            no_ports,
            proto,
            proto_cidr,
            nodes: 0,
            words: 0,
            rules: 0,
            rule_words: rule_words as u32,
            summary_words: summary_words as u32,
            count: rules.len() as u32,
            node_count,
            chunk_count,
        },
        nodes: b.nodes,
        words,
        rules,
    }
}

/// Capacity of the arrays sets are placed in.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    /// Rule sets (`SG_SETS`).
    pub sets: u32,
    pub nodes: u32,
    pub chunks: u32,
    /// Rules of all sets (`SG_RULES`), and rule counters (`SG_RULE_STATS`).
    pub rules: u32,
}

/// Place the sets of `entries` (see `place`) and record the places in `ids`. `before` are the
/// sets the arrays hold now.
pub fn place_sets(
    entries: &mut super::MapEntries,
    before: &BTreeMap<u16, std::sync::Arc<SgContent>>,
    ids: &mut Ids,
    capacity: Capacity,
) -> Result<(), String> {
    if let Some(set) = entries.sg.sets.keys().max()
        && u32::from(*set) >= capacity.sets
    {
        return Err(format!("security group numbers reach {set}: more groups than the data path's {} rule sets", capacity.sets));
    }
    if let Some(counter) = ids.sg_rules.values().max()
        && *counter >= capacity.rules
    {
        return Err(format!("security-group rules exceed the data path's {} rule counters", capacity.rules));
    }
    let places = place(&entries.sg.sets, before, &ids.sg_places, capacity)?;
    ids.sg_places = places.clone();
    entries.sg.places = places;
    Ok(())
}

/// Place every set of `sets`: a set whose content is unchanged (same as in `before`) keeps its
/// place; a changed or new one goes to free space that no set occupies now or before -- the
/// old copy stays intact until every port has switched, so a packet never reads a half-written
/// set. Fails when the arrays are too small.
pub fn place(
    sets: &BTreeMap<u16, std::sync::Arc<SgContent>>,
    before: &BTreeMap<u16, std::sync::Arc<SgContent>>,
    places: &BTreeMap<u16, SgPlace>,
    capacity: Capacity,
) -> Result<BTreeMap<u16, SgPlace>, String> {
    let mut out = BTreeMap::new();
    let mut busy: Vec<SgPlace> = places.values().copied().collect();
    let mut pending = Vec::new();
    for (set, content) in sets {
        match places.get(set) {
            Some(place) if before.get(set) == Some(content) => {
                out.insert(*set, *place);
            }
            _ => pending.push((*set, content)),
        }
    }
    for (set, content) in pending {
        let need = (content.nodes.len() as u32, content.chunks(), content.rules.len() as u32);
        let fit = |used: &mut dyn Iterator<Item = (u32, u32)>, size: u32, cap: u32, what: &str| -> Result<u32, String> {
            let mut taken: Vec<(u32, u32)> = used.filter(|(_, n)| *n > 0).collect();
            taken.sort();
            let mut at = 0;
            for (start, len) in taken {
                if start >= at + size {
                    break;
                }
                at = at.max(start + len);
            }
            if at + size > cap {
                return Err(format!(
                    "security-group {what} do not fit: {size} more needed, {cap} in all (raise the data path's capacity with --map-size)"
                ));
            }
            Ok(at)
        };
        let all: Vec<SgPlace> = busy.iter().chain(out.values()).copied().collect();
        let place = SgPlace {
            nodes: (fit(&mut all.iter().map(|p| p.nodes), need.0, capacity.nodes, "trie nodes")?, need.0),
            chunks: (fit(&mut all.iter().map(|p| p.chunks), need.1, capacity.chunks, "bitmap chunks")?, need.1),
            rules: (fit(&mut all.iter().map(|p| p.rules), need.2, capacity.rules, "rules")?, need.2),
        };
        busy.push(place);
        out.insert(set, place);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, sync::Arc};

    use super::*;
    use crate::model::{Topology, normalize::normalize, spec::TopologySpec, topology::Quotas};

    fn topology(rules: &str) -> (Topology, Ids) {
        let yaml = format!(
            "vpcs:
  - name: v1
    cidr: 10.0.0.0/16
    vswitches: [{{name: s1, cidr: 10.0.1.0/24, zone: a}}]
    security_groups:
      - name: web
        rules: [{rules}]
      - name: admin
    enis:
      - {{name: w1, vswitch: s1, ip: 10.0.1.10, security_groups: [web]}}
      - {{name: w2, vswitch: s1, ip: 10.0.1.11, security_groups: [web]}}
      - {{name: a1, vswitch: s1, ip: 10.0.1.20, security_groups: [admin]}}"
        );
        let doc = normalize(&TopologySpec::default(), TopologySpec::from_yaml(&yaml).unwrap());
        let t = Topology::from_spec(&doc, &Quotas::unlimited()).unwrap();
        let mut ids = Ids::default();
        ids.assign(&t, 64).unwrap();
        (t, ids)
    }

    /// Classify as the data path does: walk the tries, AND the three bitmaps, take the lowest
    /// rule. (policy, counter) of the deciding rule, or none.
    fn classify(set: &SgContent, peer: Ipv4Addr, proto: u8, dport: Option<u16>, vouched: bool) -> Option<(u8, u32)> {
        let s = &set.set;
        let leaf = |mut entry: u32, bytes: &[u8]| -> u32 {
            for b in bytes {
                if entry & LEAF != 0 {
                    break;
                }
                entry = set.nodes[entry as usize][*b as usize];
            }
            assert!(entry & LEAF != 0, "a trie walk ends in a leaf");
            entry & !LEAF
        };
        let bitmap = |id: u32| -> &[u64] {
            let stride = s.stride() as usize;
            &set.words[id as usize * stride + s.summary_words as usize..(id as usize + 1) * stride]
        };
        let addr = bitmap(leaf(s.addr_root, &peer.octets()));
        let class = match proto {
            6 => proto_class::TCP,
            17 => proto_class::UDP,
            1 => proto_class::ICMP,
            47 => proto_class::GRE,
            _ => proto_class::OTHER,
        };
        let ports = match (class, dport) {
            (proto_class::TCP | proto_class::UDP, Some(port)) => bitmap(leaf(s.port_root[class], &port.to_be_bytes())),
            _ => bitmap(s.no_ports),
        };
        let protos = bitmap(if vouched { s.proto[class] } else { s.proto_cidr[class] });
        (0..s.rule_words as usize).find_map(|w| {
            let word = addr[w] & ports[w] & protos[w];
            (word != 0).then(|| {
                let rule = &set.rules[w * 64 + word.trailing_zeros() as usize];
                (rule.policy, rule.counter)
            })
        })
    }

    #[test]
    fn compiled_sets_decide_as_the_rules_say() {
        // Overlapping ranges and peers, every priority order, drop beating accept at a tie, a
        // group peer, and the intra-group rule last.
        let (t, ids) = topology(
            "{direction: ingress, policy: accept, protocol: tcp, ports: 80/90, peer: 0.0.0.0/0, priority: 5},
             {direction: ingress, policy: drop, protocol: tcp, ports: 85/85, peer: 10.0.0.0/8, priority: 5},
             {direction: ingress, policy: accept, protocol: udp, ports: 53/53, peer: 192.168.1.0/24, priority: 1},
             {direction: ingress, policy: drop, protocol: all, ports: -1/-1, peer: 192.168.1.7/32, priority: 2},
             {direction: ingress, policy: accept, protocol: icmp, ports: -1/-1, peer: {group: admin}, priority: 3},
             {direction: ingress, policy: accept, protocol: tcp, ports: 1/65535, peer: 172.16.0.0/12, priority: 100},
             {direction: egress, policy: drop, protocol: tcp, ports: 25/25, peer: 0.0.0.0/0, priority: 1}",
        );
        let vpc = &t.vpcs[0];
        let group = vpc.security_group("web").unwrap();
        let members = |name: &str| vpc.members(name);
        for direction in [Direction::Ingress, Direction::Egress] {
            let set = compile_set(vpc, group, direction, &ids);
            let order = candidates(group, direction);
            let peers = ["10.0.1.11", "10.0.1.20", "10.9.9.9", "192.168.1.7", "192.168.1.8", "172.20.0.1", "8.8.8.8"];
            for peer in peers.map(|p| p.parse::<Ipv4Addr>().unwrap()) {
                for proto in [6u8, 17, 1, 47, 132] {
                    for dport in [None, Some(25), Some(53), Some(80), Some(85), Some(90), Some(91), Some(65535)] {
                        // A packet whose sender forwards for others matches no rule naming a group.
                        for vouched in [true, false] {
                            let members = |name: &str| if vouched { members(name) } else { Vec::new() };
                            let want = order.iter().find(|c| match c.rule {
                                Some(r) => r.matches(proto, dport, peer, &members),
                                None => members(&group.name).contains(&peer),
                            });
                            let want = want.map(|c| {
                                let key = c.rule.map(|r| r.id.clone()).unwrap_or_else(|| intra_rule(&group.id));
                                (if c.accept { sg::policy::ACCEPT } else { sg::policy::DROP }, ids.sg_rule(&key))
                            });
                            let got = classify(&set, peer, proto, dport, vouched);
                            assert_eq!(got, want, "{direction:?} {peer} proto {proto} dport {dport:?} vouched {vouched}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rules_alike_in_their_fields_share_bitmaps() {
        let rules: Vec<String> =
            (1..=100).map(|p| format!("{{direction: ingress, protocol: tcp, ports: 443/443, peer: 10.1.0.0/16, priority: {p}}}")).collect();
        let (t, ids) = topology(&rules.join(", "));
        let set = compile_set(&t.vpcs[0], t.vpcs[0].security_group("web").unwrap(), Direction::Ingress, &ids);
        assert_eq!(set.rules.len(), 101, "100 rules and the intra-group rule");
        assert_eq!(set.set.rule_words, 2);
        // Distinct classes only: everything, nothing, the /16, the members, port 443, protocols.
        let distinct: std::collections::BTreeSet<&[u64]> = set.words.chunks(set.set.stride() as usize).collect();
        assert!(distinct.len() <= 10, "{} distinct bitmaps", distinct.len());
    }

    #[test]
    fn unchanged_sets_keep_their_place_and_changed_ones_move_to_free_space() {
        let content = |n: usize| {
            Arc::new(SgContent {
                set: SgSet::default(),
                nodes: vec![[0; NODE_FANOUT]; n],
                words: vec![0; CHUNK_WORDS as usize * n],
                rules: vec![SgRule::default(); n],
            })
        };
        let capacity = Capacity { sets: 8, nodes: 10, chunks: 10, rules: 10 };
        let sets: BTreeMap<u16, Arc<SgContent>> = [(0, content(2)), (1, content(3))].into();
        let first = place(&sets, &BTreeMap::new(), &BTreeMap::new(), capacity).unwrap();
        assert_eq!(first[&0].nodes, (0, 2));
        assert_eq!(first[&1].nodes, (2, 3));
        // Set 1 grows: it moves past everything in use now, set 0 stays.
        let grown: BTreeMap<u16, Arc<SgContent>> = [(0, content(2)), (1, content(4))].into();
        let second = place(&grown, &sets, &first, capacity).unwrap();
        assert_eq!(second[&0], first[&0]);
        assert_eq!(second[&1].nodes, (5, 4), "not over its old copy, which packets may still read");
        // No room for another copy: a clear error, nothing placed.
        let bigger: BTreeMap<u16, Arc<SgContent>> = [(0, content(2)), (1, content(5))].into();
        let err = place(&bigger, &grown, &second, capacity).unwrap_err();
        assert!(err.contains("do not fit") && err.contains("--map-size"), "{err}");
    }
}
