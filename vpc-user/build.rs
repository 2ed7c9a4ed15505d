//! Builds the XDP object (crate vpc-ebpf) for the bpf target with aya-build and leaves it in
//! OUT_DIR/vpc-dataplane, where `dataplane::object` embeds it.
//!
//! aya-build forwards every line of the nested cargo build (`Compiling ...`, `Finished ...`) as a
//! `cargo:warning`, so a clean build of this crate would print warnings. This script therefore
//! runs aya-build in a child copy of itself, keeps its cargo directives, and shows the nested
//! build's output only when it failed, or when the eBPF crate itself has warnings.
use std::process::Command;

use anyhow::{Context as _, anyhow};

/// Set in the child copy of this script, which does the actual build.
const CHILD: &str = "VPC_BUILD_EBPF_CHILD";

fn main() -> anyhow::Result<()> {
    if std::env::var_os(CHILD).is_some() {
        return build_ebpf();
    }
    let exe = std::env::current_exe().context("build script path")?;
    let out = Command::new(&exe).env(CHILD, "1").output().with_context(|| format!("running {}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (shown, directives): (Vec<&str>, Vec<&str>) = stdout.lines().partition(|l| l.starts_with("cargo:warning="));
    for line in directives {
        println!("{line}");
    }
    let shown: Vec<&str> = shown.iter().map(|l| &l["cargo:warning=".len()..]).collect();
    if !out.status.success() {
        // Cargo prints a failed build script's stderr: the nested build's errors, as written.
        for line in &shown {
            eprintln!("{line}");
        }
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        return Err(anyhow!("building the eBPF object (vpc-ebpf) failed: {}", out.status));
    }
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    // Success: cargo's progress lines are noise; anything else (a compiler warning in vpc-ebpf)
    // stays a warning.
    if shown.iter().any(|l| !l.trim().is_empty() && !is_progress(l)) {
        for line in shown.iter().filter(|l| !is_progress(l)) {
            println!("cargo:warning={line}");
        }
    }
    Ok(())
}

/// A cargo status line: right-aligned verb, then what it is doing.
fn is_progress(line: &str) -> bool {
    const VERBS: &[&str] = &[
        "Compiling",
        "Finished",
        "Fresh",
        "Blocking",
        "Updating",
        "Downloading",
        "Downloaded",
        "Locking",
        "Adding",
        "Checking",
        "Building",
        "Packaging",
        "Removing",
        "Running",
    ];
    let t = line.trim_start();
    line.len() > t.len() && VERBS.iter().any(|v| t.strip_prefix(v).is_some_and(|rest| rest.starts_with(' ')))
}

fn build_ebpf() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new().no_deps().exec().context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "vpc-ebpf")
        .ok_or_else(|| anyhow!("vpc-ebpf package not found in the workspace"))?;
    let root_dir = ebpf.manifest_path.parent().ok_or_else(|| anyhow!("vpc-ebpf manifest has no directory"))?;
    aya_build::build_ebpf(
        [aya_build::Package { name: ebpf.name.as_str(), root_dir: root_dir.as_str(), ..Default::default() }],
        aya_build::Toolchain::Nightly,
    )
}
