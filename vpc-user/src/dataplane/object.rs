//! The XDP object built by build.rs, embedded in the binary.

/// ELF bytes of the vpc-ebpf programs. Aligned because aya parses it in place.
pub fn bytes() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vpc-dataplane"))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use aya_obj::{EbpfSectionKind, Object, maps::PinningType};
    use vpc_common::maps::MAPS;

    /// Maps one program instance keeps to itself: never pinned, so never shared by name (the
    /// per-CPU scratch slot and `vpc bench`'s throughput maps).
    const PRIVATE: [&str; 9] = [
        "SCRATCH",
        "BENCH_FRAME",
        "BENCH_COUNT",
        "BENCH_TARGET",
        "BENCH_FLOWS",
        "BENCH_SEQ",
        "BENCH_RING",
        "BENCH_RING_LEN",
        "BENCH_PROGS",
    ];

    /// The object's map definitions by name (its `.data`, `.bss` and `.rodata` are maps to aya too).
    fn defined() -> BTreeMap<String, aya_obj::Map> {
        let object = Object::parse(super::bytes()).expect("the embedded object parses");
        let is_map = |m: &aya_obj::Map| matches!(m.section_kind(), EbpfSectionKind::Maps | EbpfSectionKind::BtfMaps);
        object.maps.into_iter().filter(|(_, m)| is_map(m)).collect()
    }

    /// A map added to the kernel object or to `vpc_common::maps` alone, or declared with another
    /// kind, key, value or size than the object defines, fails here rather than at load time.
    #[test]
    fn the_object_defines_exactly_the_declared_maps() {
        let defined = defined();
        let (pinned, private): (BTreeMap<_, _>, BTreeMap<_, _>) = defined.iter().partition(|(_, m)| m.pinning() == PinningType::ByName);
        let undeclared: Vec<&str> = pinned.keys().map(|n| n.as_str()).filter(|n| MAPS.iter().all(|d| d.name != *n)).collect();
        assert!(undeclared.is_empty(), "the object pins maps vpc_common::maps does not declare: {undeclared:?}");
        let private: BTreeSet<&str> = private.keys().map(|n| n.as_str()).collect();
        assert_eq!(private, BTreeSet::from(PRIVATE), "the maps the object does not pin");
        for decl in MAPS {
            let Some(map) = pinned.get(&decl.name.to_string()) else {
                panic!("{} is declared in vpc_common::maps but the object does not pin it", decl.name);
            };
            let defined = (map.map_type(), map.key_size(), map.value_size(), map.max_entries());
            let declared = (decl.kind as u32, decl.key_size, decl.value_size, decl.default_entries());
            assert_eq!(defined, declared, "{}: (kind, key size, value size, entries) in the object and declared", decl.name);
        }
    }
}
