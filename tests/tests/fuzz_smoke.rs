//! A fixed-seed fuzz run (the full one is `cargo xtask fuzz`): random topologies, random and
//! malformed frames, the model and the loaded program agree on every frame.

#[test]
fn fixed_seed_fuzz_run_agrees() {
    let report = vpc::tools::fuzz::run(12_000, 4_000, 2026).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("{report:?}");
    assert_eq!(report.frames, 12_000);
    // Rich enough: many outcomes occur, malformed ones and a hostile guest's included.
    for outcome in [
        "delivered",
        "malformed",
        "sg_ingress",
        "ttl_exceeded",
        "mcast_unknown_group",
        "spoofed_mac",
        "conntrack_limit",
        "frag_no_first",
        "frag_overlap",
        "frag_tiny",
        "icmp_invalid",
        "vlan_tagged",
    ] {
        assert!(report.outcomes.get(outcome).copied().unwrap_or(0) > 0, "no {outcome}: {:?}", report.outcomes);
    }
}

#[test]
fn fixed_seed_fuzz_across_hosts_agrees() {
    let report = vpc::tools::fuzz::run_hosts(6_000, 2_000, 2026).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("{report:?}");
    assert_eq!(report.frames, 6_000);
    // Frames crossed hosts, arrived, and corrupted ones were refused for what was wrong.
    for outcome in ["overlay delivered", "overlay bad_geneve", "overlay tunnel_spoofed", "overlay unknown_vni", "overlay spoofed_ip"] {
        assert!(report.outcomes.get(outcome).copied().unwrap_or(0) > 0, "no {outcome}: {:?}", report.outcomes);
    }
}
