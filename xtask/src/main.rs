//! Project tasks: `cargo xtask setup | build | test | demo | bench | fuzz`.
//!
//! `setup` is idempotent and quick on a ready machine: it installs only what is missing (Debian
//! packages, rust-src for the eBPF toolchain, bpf-linker built against the LLVM that toolchain
//! uses) and stops with a clear message when the versions cannot work together.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install and check everything the build and the tests need.
    Setup,
    /// Setup, then `cargo build --release` (target/release/vpc).
    Build,
    /// Setup, then every unit and integration test (needs root: namespaces, veths, XDP).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Setup, build, then run the demo on the built-in topology.
    Demo,
    /// Setup, build, then measure (not part of `test`): writes bench/results.json and
    /// bench/summary.md.
    Bench {
        /// Small counts, one round: checks the bench runs, proves no number.
        #[arg(long)]
        quick: bool,
    },
    /// Setup, build, then a million random and malformed frames through the model and the
    /// loaded program (a smaller fixed-seed run is part of `test`).
    Fuzz {
        #[arg(long, default_value_t = 1_000_000)]
        frames: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Debian packages the build, the tests and the demo use.
const PACKAGES: &[&str] = &[
    // bpf-linker links against LLVM 22
    "llvm-22-dev",
    // the etcd client's gRPC code is generated at build time; the multi-host tests run etcd
    "protobuf-compiler",
    "libprotobuf-dev",
    "etcd-server",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    // labs and tests
    "iproute2",
    "iputils-ping",
    "ethtool",
    "iperf3",
    "bpftool",
    "traceroute",
    "nftables",
    // real servers and clients in the security-group and flow-log tests; tshark decodes IPFIX
    "curl",
    "python3",
    // the OpenAPI test validates the document with openapi-spec-validator in a venv
    "python3-venv",
    "openssl",
    "tshark",
    // promtool checks the metrics; systemd-analyze checks the unit
    "prometheus",
    "systemd",
];

/// The toolchain that builds the eBPF crate (aya-build runs `rustup run <this> cargo build`).
const EBPF_TOOLCHAIN: &str = "nightly";
const BPF_LINKER_VERSION: &str = "0.13";

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => setup(),
        Task::Build => {
            setup()?;
            cargo(&["build", "--release"])
        }
        Task::Test { args } => {
            setup()?;
            test(&args)
        }
        Task::Demo => {
            setup()?;
            cargo(&["build", "--release"])?;
            run(Command::new(target_dir().join("release/vpc")).arg("demo"))
        }
        Task::Fuzz { frames, seed } => {
            setup()?;
            cargo(&["build", "--release"])?;
            run(Command::new(target_dir().join("release/vpc")).args(["fuzz", "--frames", &frames.to_string(), "--seed", &seed.to_string()]))
        }
        Task::Bench { quick } => {
            setup()?;
            install(BENCH_PACKAGES)?;
            cargo(&["build", "--release"])?;
            let mut cmd = Command::new(target_dir().join("release/vpc"));
            cmd.arg("bench").arg("--out").arg(root().join("bench"));
            if quick {
                cmd.arg("--quick");
            }
            run(&mut cmd)
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    run(Command::new(env!("CARGO")).args(args).current_dir(root()))
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    // The CLI tests run the real binary.
    cargo(&["build", "--bin", "vpc"])?;
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["test", "--workspace", "--exclude", "vpc-ebpf"])
        .args(extra)
        // The binary just built, wherever the target directory is (CARGO_TARGET_DIR).
        .env("VPC_BIN", target_dir().join("debug/vpc"))
        .current_dir(root());
    // A killed earlier run's TestRun pins are not this run's; anything else left is blamed.
    clear_dead_testrun_pins();
    run(&mut cmd)?;
    let (stray, pins) = leftovers();
    if !stray.is_empty() || !pins.is_empty() {
        bail!("tests left things behind: namespaces {stray:?}, pins {pins:?}");
    }
    Ok(())
}

/// Test namespaces and pins present now. Tests must clean up after themselves: none may
/// survive them.
fn leftovers() -> (Vec<String>, Vec<String>) {
    let netns = output(Command::new("ip").args(["netns", "list"])).unwrap_or_default();
    let stray = netns.lines().filter(|l| l.starts_with("vt")).map(|l| l.split_whitespace().next().unwrap_or(l).to_string()).collect();
    let pins = std::fs::read_dir("/sys/fs/bpf")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("vpc-t")).collect())
        .unwrap_or_default();
    (stray, pins)
}

/// TestRun pin roots (`vpc-testrun-<pid>-<n>`) of processes that are gone: a killed run's.
fn clear_dead_testrun_pins() {
    let Ok(dir) = std::fs::read_dir("/sys/fs/bpf") else { return };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("vpc-testrun-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn setup() -> anyhow::Result<()> {
    if !is_root() {
        bail!("run as root: the build checks and the tests load XDP programs and create namespaces");
    }
    install_packages()?;
    rust_src()?;
    bpf_linker()?;
    Ok(())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0")
}

/// What only `cargo xtask bench` uses besides: Open vSwitch, the peer users would pick (its
/// userspace datapath with AF_XDP ports: the kernel datapath needs a module).
const BENCH_PACKAGES: &[&str] = &["openvswitch-switch"];

fn install_packages() -> anyhow::Result<()> {
    install(PACKAGES)
}

fn install(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p])).is_none_or(|s| !s.contains("install ok installed")))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("setup: installing {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn rust_src() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args(["component", "list", "--installed", "--toolchain", EBPF_TOOLCHAIN]))
        .with_context(|| format!("the {EBPF_TOOLCHAIN} toolchain is missing: `rustup toolchain install {EBPF_TOOLCHAIN}`"))?;
    if !installed.lines().any(|l| l.starts_with("rust-src")) {
        eprintln!("setup: adding rust-src to {EBPF_TOOLCHAIN}");
        run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", EBPF_TOOLCHAIN]))?;
    }
    Ok(())
}

/// LLVM major version of the eBPF toolchain's rustc.
fn rustc_llvm_major() -> anyhow::Result<u32> {
    let info = output(Command::new("rustup").args(["run", EBPF_TOOLCHAIN, "rustc", "-vV"])).context("rustc -vV")?;
    let version = info.lines().find_map(|l| l.strip_prefix("LLVM version: ")).context("rustc does not report its LLVM")?;
    Ok(version.split('.').next().unwrap_or_default().parse()?)
}

/// LLVM major version bpf-linker was built against (from the libLLVM it links).
fn bpf_linker_llvm_major() -> Option<u32> {
    let path = output(Command::new("which").arg("bpf-linker"))?;
    let libs = output(Command::new("ldd").arg(path.trim()))?;
    let lib = libs.lines().find(|l| l.contains("libLLVM"))?;
    let version = lib.split("libLLVM").nth(1)?.trim_start_matches(['-', '.', 's', 'o']);
    version.split(['.', ' ']).find(|p| !p.is_empty())?.parse().ok()
}

fn bpf_linker() -> anyhow::Result<()> {
    let want = rustc_llvm_major()?;
    if want != 22 {
        bail!(
            "the {EBPF_TOOLCHAIN} rustc uses LLVM {want}, but bpf-linker {BPF_LINKER_VERSION} is built here against LLVM 22 \
             (Debian's llvm-22-dev); their bitcode is incompatible (\"Invalid record\"). Use a toolchain whose \
             `rustc -vV` says LLVM 22 (rustc 1.95 to 1.98), e.g. `rustup default 1.95` and a nightly of the same era."
        );
    }
    let version = output(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    let have = bpf_linker_llvm_major();
    if version.contains(&format!("bpf-linker {BPF_LINKER_VERSION}")) && have == Some(want) {
        return Ok(());
    }
    eprintln!("setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM {want} (found: {} llvm {have:?})", version.trim());
    run(Command::new(env!("CARGO"))
        .args(["install", "bpf-linker", "--force", "--version", &format!("~{BPF_LINKER_VERSION}")])
        .args(["--no-default-features", "--features", &format!("llvm-{want}")])
        .env("LLVM_PREFIX", format!("/usr/lib/llvm-{want}")))?;
    match bpf_linker_llvm_major() {
        Some(v) if v == want => Ok(()),
        other => bail!("bpf-linker was built but links LLVM {other:?}, not {want}: check LLVM_PREFIX=/usr/lib/llvm-{want}"),
    }
}

/// Where cargo puts what it builds (CARGO_TARGET_DIR, else the workspace's `target`).
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), std::path::PathBuf::from)
}
