//! `vpc monitor`: the data path's decisions as they happen. Follows the agent's stream, or reads
//! the kernel's ring itself when no agent runs.

use std::{
    io::Write as _,
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::Format;
use crate::{
    agent::{Agent, HostOptions},
    api::{client, server::MonitorRequest},
    monitor::{Event, Filter, Names, Page, Stats, event::TYPES},
};

#[derive(clap::Args, Debug)]
pub struct MonitorArgs {
    /// Only events of this ENI (name or ID), at either side.
    #[arg(long)]
    eni: Option<String>,
    /// Only events of this VPC (name).
    #[arg(long)]
    vpc: Option<String>,
    /// Only events of this VSwitch (name).
    #[arg(long)]
    vswitch: Option<String>,
    /// Only these types: drop, open, close, policy, icmp, suppressed (comma-separated).
    #[arg(long = "type", value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(TYPES))]
    types: Vec<String>,
    /// Only drops of this reason (e.g. sg_ingress), or closes of this one.
    #[arg(long)]
    reason: Option<String>,
    /// Only this protocol: tcp, udp, icmp or a number.
    #[arg(long)]
    proto: Option<String>,
    /// Only this TCP or UDP port (source or destination).
    #[arg(long)]
    port: Option<u16>,
    /// Only this address (source or destination).
    #[arg(long)]
    addr: Option<Ipv4Addr>,
    /// First show the last N events the agent kept.
    #[arg(long)]
    last: Option<usize>,
    /// Stop after the events already there (with --last), instead of following.
    #[arg(long)]
    no_follow: bool,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
    /// Events per second by type, suppressed and lost counts, the ring's occupancy.
    #[arg(long)]
    stats: bool,
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

impl MonitorArgs {
    fn filter(&self) -> Filter {
        Filter {
            eni: self.eni.clone(),
            vpc: self.vpc.clone(),
            vswitch: self.vswitch.clone(),
            types: self.types.clone(),
            reason: self.reason.clone(),
            proto: self.proto.clone(),
            port: self.port,
            addr: self.addr,
        }
    }
}

/// Prints events until told to stop.
struct Printer {
    format: Format,
    left: Option<usize>,
    until: Option<Instant>,
    /// The table's header is out.
    headed: bool,
}

impl Printer {
    fn new(format: Format, left: Option<usize>, until: Option<Instant>) -> Printer {
        Printer { format, left, until, headed: false }
    }

    fn print(&mut self, events: &[Event]) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        for event in events {
            if self.left == Some(0) {
                break;
            }
            match self.format {
                Format::Json => writeln!(out, "{}", serde_json::to_string(event)?)?,
                Format::Table => {
                    if !self.headed {
                        writeln!(out, "{HEADER}")?;
                        self.headed = true;
                    }
                    writeln!(out, "{}", line(event))?
                }
            }
            self.left = self.left.map(|n| n - 1);
        }
        out.flush()?;
        Ok(())
    }

    fn done(&self) -> bool {
        self.left == Some(0) || self.until.is_some_and(|t| Instant::now() >= t)
    }

    /// How long the next wait may be.
    fn wait(&self) -> Duration {
        let most = Duration::from_millis(500);
        self.until.map_or(most, |t| t.saturating_duration_since(Instant::now()).min(most))
    }
}

pub fn run(opts: &HostOptions, args: MonitorArgs) -> anyhow::Result<()> {
    let socket = opts.socket();
    let filter = args.filter();
    let mut printer = Printer::new(args.output, args.count, args.timeout.map(|s| Instant::now() + Duration::from_secs(s)));
    if !client::is_running(&socket) {
        return direct(opts, &args, &filter, &mut printer);
    }
    if args.stats {
        let (status, text) = client::request(&socket, "POST", "/monitor/stats", "{}")?;
        anyhow::ensure!(status == 200, "the agent answered {status}: {text}");
        return print_stats(&serde_json::from_str(&text)?, args.output);
    }
    let ask = |request: &MonitorRequest| -> anyhow::Result<Page> {
        let (status, text) = client::request(&socket, "POST", "/monitor", &serde_json::to_string(request)?)?;
        anyhow::ensure!(status == 200, "the agent answered {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    };
    let first = ask(&MonitorRequest { last: Some(args.last.unwrap_or(0)), filter: filter.clone(), ..MonitorRequest::default() })?;
    printer.print(&first.events)?;
    let (mut since, mut stream) = (first.next, first.stream);
    if args.no_follow {
        return Ok(());
    }
    while !printer.done() {
        let wait_ms = printer.wait().as_millis() as u64;
        let request = MonitorRequest { since, wait_ms, stream: Some(stream), filter: filter.clone(), ..MonitorRequest::default() };
        let page = ask(&request)?;
        if page.stream != stream {
            eprintln!("vpc monitor: the agent restarted; following its new stream");
        }
        if page.gap > 0 {
            eprintln!("vpc monitor: {} events were not kept while this client fell behind", page.gap);
        }
        printer.print(&page.events)?;
        (since, stream) = (page.next, page.stream);
    }
    Ok(())
}

/// Print the last `n` events of the agent on `socket` that `filter` keeps, as a table.
pub fn show_last(socket: &std::path::Path, n: usize, filter: &Filter) -> anyhow::Result<()> {
    let request = MonitorRequest { last: Some(n), filter: filter.clone(), ..MonitorRequest::default() };
    let (status, text) = client::request(socket, "POST", "/monitor", &serde_json::to_string(&request)?)?;
    anyhow::ensure!(status == 200, "the agent answered {status}: {text}");
    let page: Page = serde_json::from_str(&text)?;
    Printer::new(Format::Table, None, None).print(&page.events)
}

/// No agent: read the ring here, named from the stored state (what the agent would say).
fn direct(opts: &HostOptions, args: &MonitorArgs, filter: &Filter, printer: &mut Printer) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.stats && args.last.is_none(),
        "--stats and --last need the agent (its stream keeps them); without one, `vpc monitor` shows events as they come"
    );
    let (names, dataplane, ring_bytes) = Agent::with(opts.clone(), |agent| {
        let names = Names::of(agent.topology(), &agent.stored().ids);
        Ok((names, agent.dataplane(), u64::from(agent.opts.limits[vpc_common::maps::Size::EventRing])))
    })?;
    anyhow::ensure!(dataplane.is_up(), "nothing is applied under {} (run `vpc apply` first)", opts.bpffs.display());
    let mut reader = crate::monitor::reader::Reader::open(&dataplane.pins, ring_bytes).context("opening the event ring")?;
    let mut seq = 0;
    while !printer.done() {
        reader.wait(printer.wait());
        let (mut events, _) = reader.read(&names);
        for event in &mut events {
            seq += 1;
            event.seq = seq;
        }
        events.retain(|e| filter.keeps(e));
        printer.print(&events)?;
    }
    Ok(())
}

/// The table's header, over `line`'s columns.
const HEADER: &str = "TIME (UTC)    TYPE       SENDER -> RECEIVER     PACKET                                       WHAT";

/// One event as a line: time, type, who, the packet, what was decided.
pub fn line(e: &Event) -> String {
    let time = {
        let secs = e.time_ms / 1000;
        format!("{:02}:{:02}:{:02}.{:03}", secs / 3600 % 24, secs / 60 % 60, secs % 60, e.time_ms % 1000)
    };
    let who = match (&e.eni, &e.peer_eni) {
        (Some(a), Some(b)) => format!("{a} -> {b}"),
        (Some(a), None) => a.clone(),
        (None, Some(b)) => format!("? -> {b}"),
        (None, None) => "(no ENI)".into(),
    };
    let endpoint = |addr: Option<Ipv4Addr>, port: Option<u16>| match (addr, port) {
        (Some(a), Some(p)) => format!("{a}:{p}"),
        (Some(a), None) => a.to_string(),
        _ => "?".into(),
    };
    let packet = match &e.proto {
        Some(proto) => format!("{proto} {} -> {}", endpoint(e.src, e.sport), endpoint(e.dst, e.dport)),
        None => String::new(),
    };
    let what = match e.kind.as_str() {
        "drop" => {
            let mut s = e.reason.clone().unwrap_or_default();
            if let Some(rule) = &e.rule {
                s += &format!(" by {} ({})", rule, e.direction.as_deref().unwrap_or("?"));
            }
            s
        }
        "open" => format!(
            "rules {} / {}, table {}",
            e.rule.as_deref().unwrap_or("-"),
            e.peer_rule.as_deref().unwrap_or("-"),
            e.route_table.as_deref().unwrap_or("-")
        ),
        "close" => {
            let (p, b) = (e.packets.unwrap_or_default(), e.bytes.unwrap_or_default());
            format!(
                "{}: {}/{} packets, {}/{} bytes, {} s",
                e.reason.as_deref().unwrap_or("?"),
                p[0],
                p[1],
                b[0],
                b[1],
                e.duration_s.unwrap_or(0)
            )
        }
        "policy" => format!(
            "now {} ({} by {})",
            e.verdict.as_deref().unwrap_or("?"),
            e.direction.as_deref().unwrap_or("?"),
            e.rule.as_deref().unwrap_or("?")
        ),
        "icmp" => format!("sent {}", e.reason.as_deref().unwrap_or("?")),
        "suppressed" => format!(
            "{} {} events held back (limiter {}, ring full {})",
            e.limited.unwrap_or(0) + e.ring_full.unwrap_or(0),
            e.suppressed_type.as_deref().unwrap_or("?"),
            e.limited.unwrap_or(0),
            e.ring_full.unwrap_or(0)
        ),
        _ => String::new(),
    };
    format!("{time}  {:<10} {:<22} {:<44} {what}", e.kind, who, packet).trim_end().to_string()
}

fn print_stats(stats: &Stats, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        return super::output::json(stats);
    }
    println!("{:<12} {:>10} {:>10}", "TYPE", "TOTAL", "PER SEC");
    for kind in TYPES {
        let total = stats.totals.get(*kind).copied().unwrap_or(0);
        let rate = stats.per_second.get(*kind).copied().unwrap_or(0.0);
        println!("{kind:<12} {total:>10} {rate:>10.1}");
    }
    println!();
    println!("suppressed by the per-ENI limiter: {}", stats.suppressed_by_limiter);
    println!("lost to a full ring:               {}", stats.lost_ring_full);
    println!("ring: {} of {} bytes waiting at the last read", stats.ring_pending_bytes, stats.ring_bytes);
    Ok(())
}
