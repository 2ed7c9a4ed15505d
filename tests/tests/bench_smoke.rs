//! `vpc bench --quick` runs end to end and writes a complete report. It asserts structure and
//! sanity, never speed: speed is for `cargo xtask bench` to report.

use vpc_tests::vpc_bin;

#[test]
fn quick_bench_writes_results_and_summary() {
    let out = std::env::temp_dir().join(format!("vpc-t-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = std::process::Command::new(vpc_bin()).arg("bench").arg("--quick").arg("--out").arg(&out).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let packet = results["packet"].as_array().unwrap();
    assert_eq!(packet.len(), 18, "three cases for each of two route counts, two rule counts, the flow-log run and the busy table");
    assert_eq!(packet.iter().filter(|p| p["flow_log"] == true).count(), 3);
    // Every round at one occupancy: the flows' entries (two per flow, 500 flows and the one),
    // and in the busy series 2,000 idle ones more.
    for p in packet {
        let idle = p["idle_entries"].as_u64().unwrap();
        assert_eq!(p["entries"].as_u64().unwrap(), 1002 + idle, "{p}");
    }
    assert_eq!(packet.iter().filter(|p| p["idle_entries"] == 2000).count(), 3);
    let rules: Vec<u64> = packet.iter().filter_map(|p| p["sg_rules"].as_u64()).filter(|n| *n > 0).collect();
    assert_eq!(rules, [10, 10, 10, 1000, 1000, 1000], "the security-group series");
    for p in packet {
        let (ns, base) = (p["ns"].as_f64().unwrap(), p["baseline_ns"].as_f64().unwrap());
        assert!(base > 0.0 && ns > base, "the data path costs more than the empty program: {p}");
        let lookup = p["lookup_ns"].as_f64().unwrap();
        assert!(lookup > 0.0, "the lookups alone were measured: {p}");
        // With one flow (cache hot) the data path costs several times its lookups; with many,
        // both are mostly the same cache misses and one quick round cannot order them.
        if p["case"] == "established, one flow" {
            assert!(lookup < ns, "the lookups alone cost less than the whole data path: {p}");
        }
    }
    let control = &results["control"];
    assert_eq!(control["routes"], 2000);
    assert_eq!(control["rules"], 200);
    for key in ["api_apply_s", "api_replace_s", "cli_apply_s", "route_entry_ms", "sg_rule_ms", "sg_revoke_ms", "sg_rule_one_group_ms"] {
        assert!(control[key].as_f64().unwrap() > 0.0, "{key}");
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("## Targets") && summary.contains("first packet"), "{summary}");
    assert!(summary.contains("security-group rules") && summary.contains("flow log overhead"), "{summary}");
    for plot in ["cost-over-routes.svg", "cost-over-rules.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{plot}");
    }
    let verifier = results["verifier"].as_array().unwrap();
    assert!(verifier.len() == 3 && verifier.iter().all(|v| v[1].as_u64().unwrap() > 100), "{verifier:?}");
    let leftovers: Vec<String> = std::fs::read_dir("/sys/fs/bpf")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vpc-bench-"))
        .collect();
    assert!(leftovers.is_empty(), "the bench agent's pins are removed: {leftovers:?}");
    std::fs::remove_dir_all(&out).unwrap();
}
