//! `vpc demo`: the product end to end on a built-in topology. Build the lab, send real traffic
//! (TCP whoami between every pair of guests, ping, a bulk TCP transfer, a spoofing guest),
//! print who reached whom with the counters and drops, tear everything down.

use std::{
    collections::BTreeSet,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::{Format, output, parse_topology, read_topology};
use crate::{
    api::Conn,
    model::Topology,
    naming::Naming,
    netns,
    tools::lab::{self, probe},
};

pub const DEMO_TOPOLOGY: &str = include_str!("../../topologies/demo.yaml");
const WHOAMI_PORT: u16 = 7777;

/// The demo keeps off a real deployment's pins, state and names unless told otherwise.
pub fn host_args(host: &super::HostArgs) -> super::HostArgs {
    let mut demo = host.clone();
    let defaults = crate::agent::HostOptions::default();
    if demo.bpffs == defaults.bpffs {
        demo.bpffs = "/sys/fs/bpf/vpc-demo".into();
    }
    if demo.state_dir == defaults.state_dir {
        demo.state_dir = "/run/vpc-demo".into();
    }
    if demo.prefix.is_empty() {
        demo.prefix = "demo-".into();
    }
    demo
}

pub fn run(host: &super::HostArgs, file: Option<&Path>, keep: bool) -> anyhow::Result<()> {
    let opts = host.options()?;
    let spec = match file {
        Some(path) => read_topology(path)?,
        None => parse_topology("built-in demo topology", DEMO_TOPOLOGY)?,
    };
    // A previous demo that was interrupted may have left its lab behind.
    lab::down(&Conn::to(&opts), &opts.naming, Some(&spec))?;
    lab::agent::stop(&opts)?;
    println!("== lab up: an agent, one network namespace per ENI, XDP on the host side of each veth");
    let conn = lab::agent::ensure(&opts, &std::env::current_exe()?, &host.to_args())?;
    let result = lab::up(&conn, &opts.naming, &spec).and_then(|applied| {
        output::applied(&applied, false, Format::Table)?;
        traffic(&conn, &opts.naming, &lab::configured(&conn)?)
    });
    if keep {
        println!("\n(lab left up: `vpc lab exec ENI -- CMD`, `vpc stats`, `vpc lab down`, with the same --prefix/--state-dir/--bpffs)");
    } else {
        lab::down(&conn, &opts.naming, Some(&spec))?;
        lab::agent::stop(&opts)?;
        println!("\n== lab down: agent stopped; namespaces, veths and pins removed");
    }
    result
}

fn traffic(conn: &Conn, naming: &Naming, topology: &Topology) -> anyhow::Result<()> {
    let ns = |eni: &str| naming.netns(eni);
    let enis: Vec<_> = topology.enis().map(|(vpc, _, eni)| (vpc.name.clone(), eni.name.clone(), eni.ip)).collect();
    let _servers: Vec<probe::Whoami> =
        enis.iter().map(|(_, eni, _)| probe::Whoami::start(&ns(eni), eni, WHOAMI_PORT)).collect::<anyhow::Result<_>>()?;

    println!("\n== who reached whom (TCP to port {WHOAMI_PORT}; each guest answers with its ENI name)");
    let targets: Vec<Ipv4Addr> = enis.iter().map(|(_, _, ip)| *ip).collect::<BTreeSet<_>>().into_iter().collect();
    print!("{:<14}", "from \\ to");
    for t in &targets {
        print!("{:>15}", t.to_string());
    }
    println!();
    for (vpc, eni, ip) in &enis {
        let cells: Vec<_> = targets
            .iter()
            .map(|t| {
                let (from, t) = (ns(eni), *t);
                std::thread::spawn(move || probe::whoami(&from, t, WHOAMI_PORT, Duration::from_millis(700)))
            })
            .collect();
        print!("{:<14}", format!("{eni} ({vpc})"));
        for (t, cell) in targets.iter().zip(cells) {
            let text = match cell.join() {
                _ if t == ip => "(self)".to_string(),
                Ok(Ok(name)) => name,
                _ => "-".to_string(),
            };
            print!("{text:>15}");
        }
        println!();
    }
    println!(
        "('-' = no answer: another VPC's address space, a security group's refusal (db1 may not open connections to web-sg), or no ENI there)"
    );

    if let [(_, a, a_ip), (_, b, b_ip), ..] = enis.as_slice() {
        println!("\n== ping {a} -> {b} ({b_ip}): {}", if probe::ping(&ns(a), *b_ip, 3) { "3/3 answered" } else { "FAILED" });
        let (mbytes, secs) = bulk(&ns(a), &ns(b), *b_ip)?;
        println!("== TCP bulk {a} -> {b}: {mbytes} MB in {secs:.2} s = {:.2} Gbit/s", f64::from(mbytes) * 8.0 / 1000.0 / secs);
        let spoofed = Ipv4Addr::from(u32::from(*a_ip) + 77);
        lab::ip(&["-n", &ns(a), "addr", "add", &format!("{spoofed}/32"), "dev", "eth0"])?;
        let answered = std::process::Command::new("ip")
            .args(["netns", "exec", &ns(a), "ping", "-q", "-c", "3", "-i", "0.2", "-W", "1", "-I", &spoofed.to_string(), &b_ip.to_string()])
            .output()
            .is_ok_and(|o| o.status.success());
        lab::ip(&["-n", &ns(a), "addr", "del", &format!("{spoofed}/32"), "dev", "eth0"])?;
        println!(
            "== {a} pings {b} from an address it does not own ({spoofed}): {}",
            if answered { "ANSWERED (anti-spoof failed!)" } else { "dropped by anti-spoof" }
        );
    }

    println!("\n== counters (vpc stats)");
    let stats = conn.call("DescribeStatistics", serde_json::json!({}))?;
    output::stats(&serde_json::from_value(stats)?, Format::Table, false)?;
    println!("\n== security-group rules and what they decided (vpc get security-groups --stats)");
    super::get::run(conn, super::get::Kind::SecurityGroups, None, true, Format::Table)?;
    if let Conn::Remote(socket) = conn {
        println!("\n== why packets died: the last drops the data path reported (vpc monitor --last 10 --type drop)");
        let drops = crate::monitor::Filter { types: vec!["drop".into()], ..Default::default() };
        super::monitor::show_last(socket, 10, &drops)?;
    }
    Ok(())
}

/// Send 64 MB over TCP from namespace `from` to a sink in `to`; (megabytes, seconds).
fn bulk(from: &str, to: &str, addr: Ipv4Addr) -> anyhow::Result<(u32, f64)> {
    const MB: u32 = 64;
    let listener = netns::in_netns(&netns::path(to), || Ok(TcpListener::bind(("0.0.0.0", 7778))?))?;
    let sink = std::thread::spawn(move || -> anyhow::Result<u64> {
        let (mut conn, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let secs = netns::in_netns(&netns::path(from), move || {
        let mut conn = TcpStream::connect_timeout(&(addr, 7778).into(), Duration::from_secs(2)).context("connecting")?;
        let chunk = vec![0x5au8; 1 << 16];
        let start = Instant::now();
        for _ in 0..(MB * 16) {
            conn.write_all(&chunk)?;
        }
        drop(conn);
        Ok(start.elapsed().as_secs_f64())
    })?;
    let received = sink.join().map_err(|_| anyhow::anyhow!("sink panicked"))??;
    anyhow::ensure!(received == u64::from(MB) << 20, "sent {MB} MB, received {received} bytes");
    Ok((MB, secs))
}
