//! The input parsers under random and mutated input: topology YAML (a valid document with lines
//! dropped, duplicated, swapped and values replaced by odd tokens) and the parameters of every
//! API operation (random JSON of every type). Nothing panics; every rejection is a clear error
//! with a stable code and a field.

use serde_json::{Map, Value, json};
use vpc::{api, tools::fuzz::Rng};

const VALID: &str = "vpcs:
  - name: prod
    cidr: 10.0.0.0/16
    vswitches:
      - {name: web, cidr: 10.0.1.0/24, zone: a}
      - {name: db, cidr: 10.0.2.0/24, zone: b, route_table: edge}
    gateways: [{name: idc, networks: [172.16.0.0/12], ip: 172.16.0.1}]
    route_tables:
      - name: system
        routes: [{dst: 172.16.0.0/12, next_hop: {type: gateway, gateway: idc}}]
      - name: edge
        routes:
          - {dst: 0.0.0.0/0, next_hop: {type: ecmp, hops: [{eni: n1}, {eni: n2, weight: 50}]}}
          - {dst: 10.9.0.0/16, next_hop: {type: blackhole}}
    security_groups:
      - name: web-sg
        intra_group: accept
        rules:
          - {direction: ingress, policy: accept, protocol: tcp, ports: 80/80, peer: 0.0.0.0/0, priority: 1}
          - {direction: ingress, policy: drop, protocol: all, ports: -1/-1, peer: {group: web-sg}, priority: 5}
    multicast_groups:
      - {group: 239.1.1.1, senders: [w1], members: [n1, n2]}
    enis:
      - {name: w1, vswitch: web, ip: 10.0.1.10, security_groups: [web-sg]}
      - {name: n1, vswitch: web, source_dest_check: false}
      - {name: n2, vswitch: db}
flow_logs:
  - {name: fl, resource: {vpc: prod, vswitch: web}, traffic: all, window: 10m, sink: {file: /tmp/fl.jsonl}}
cens: [{name: c1, vpcs: [prod]}]
";

const TOKENS: &[&str] = &[
    "",
    "-1",
    "0",
    "4294967296",
    "99999999999999999999",
    "1.5",
    "null",
    "~",
    "[]",
    "{}",
    "\"\"",
    "'",
    "a",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "10.0.0.0/33",
    "300.1.1.1",
    "0.0.0.0/0",
    "255.255.255.255/32",
    "224.0.0.1",
    "-1/-1",
    "65535/1",
    "tcp",
    "all",
    "accept",
    "drop",
    "ingress",
    "🙂",
    "\\u0000",
    "{eni: nowhere}",
    "[1, 2",
    "&anchor",
    "*alias",
    "!!binary x",
    "1e309",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.below(4) {
        let i = rng.below(lines.len() as u64) as usize;
        match rng.below(5) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let line = lines[i].clone();
                lines.insert(i, line);
            }
            2 => {
                let j = rng.below(lines.len() as u64) as usize;
                lines.swap(i, j);
            }
            _ => {
                // Replace one value (after a ':' or inside a flow) by an odd token.
                let line = lines[i].clone();
                let cuts: Vec<usize> = line.match_indices([':', ',', '[']).map(|(k, _)| k + 1).collect();
                if let Some(&at) = cuts.get(rng.below(cuts.len().max(1) as u64) as usize) {
                    let end = line[at..].find([',', '}', ']']).map_or(line.len(), |e| at + e);
                    lines[i] = format!("{} {}{}", &line[..at], rng.pick(TOKENS), &line[end..]);
                }
            }
        }
        if lines.is_empty() {
            break;
        }
    }
    lines.join("\n")
}

#[test]
fn mutated_topology_documents_are_refused_clearly_or_accepted() {
    let mut rng = Rng::new(11);
    vpc::cli::parse_topology("valid", VALID).expect("the base document is valid");
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..4500 {
        let text = mutate(&mut rng, VALID);
        let outcome = std::panic::catch_unwind(|| vpc::cli::parse_topology("fuzz", &text));
        match outcome {
            Err(_) => panic!("document {i} panicked the parser:\n{text}"),
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(e)) => {
                let message = format!("{e:#}");
                assert!(message.starts_with("fuzz"), "the error names the file: {message}");
                assert!(message.len() > 12, "a clear message: {message}");
                refused += 1;
            }
        }
    }
    assert!(accepted > 100 && refused > 1000, "{accepted} accepted, {refused} refused");
}

fn random_json(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64 >> rng.below(63)),
        3 => json!(rng.pick(TOKENS)),
        4 => json!(format!("{}-{}", rng.pick(&["vpc", "vsw", "vtb", "eni", "sg", "fl", "mcg", "rte"]), rng.below(1000))),
        5 => Value::Array((0..rng.below(3)).map(|_| random_json(rng, depth + 1)).collect()),
        _ => Value::Object((0..rng.below(3)).map(|k| (format!("k{k}"), random_json(rng, depth + 1))).collect()),
    }
}

#[test]
fn every_operation_refuses_malformed_parameters_clearly() {
    let mut rng = Rng::new(12);
    let ops: Vec<&api::Op> = api::ops::all().collect();
    let mut refused = 0;
    for _ in 0..20_000 {
        let op = *rng.pick(&ops);
        let mut body = Map::new();
        for param in op.params {
            if rng.chance(60) {
                body.insert(param.name.to_string(), random_json(&mut rng, 0));
            }
        }
        if rng.chance(10) {
            body.insert("Unknown".into(), json!(1));
        }
        let body = if rng.chance(3) { random_json(&mut rng, 0) } else { Value::Object(body) };
        match std::panic::catch_unwind(|| api::Params::parse(op, body.clone())) {
            Err(_) => panic!("{} panicked on {body}", op.name),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                assert_eq!(e.status, 400, "{}: {e:?}", op.name);
                assert!(!e.code.is_empty() && e.message.len() > 8, "{}: {e:?}", op.name);
                refused += 1;
            }
        }
    }
    assert!(refused > 5000, "{refused}");
}
