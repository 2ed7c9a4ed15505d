//! XDP links on ENI interfaces, pinned so forwarding outlives the agent. A re-apply swaps the
//! program under an existing link atomically (bpf_link_update): no frame sees "no program".

use std::collections::BTreeSet;

use anyhow::Context as _;
use aya::programs::{
    SchedClassifier, TcAttachType, Xdp, XdpMode,
    links::{FdLink, LinkOrder, PinnedLink},
    tc::{SchedClassifierLink, TcAttachOptions},
    xdp::XdpLink,
};

use super::bpffs::PinDirs;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachChanges {
    /// Interfaces that got the program for the first time.
    pub attached: usize,
    /// Interfaces whose program was replaced in place.
    pub replaced: usize,
    /// Interfaces no ENI uses any more.
    pub detached: usize,
}

/// Attach `prog` to interface `ifindex`, replacing the program of an existing link.
pub fn attach(prog: &mut Xdp, pins: &PinDirs, ifindex: u32, changes: &mut AttachChanges) -> anyhow::Result<()> {
    std::fs::create_dir_all(pins.links())?;
    let path = pins.link(ifindex);
    if path.exists() {
        if replace(prog, &path).is_ok() {
            changes.replaced += 1;
            return Ok(());
        }
        // The interface behind the old link is gone (defunct link): start over.
        std::fs::remove_file(&path).with_context(|| format!("removing stale link {}", path.display()))?;
    }
    let id = prog
        .attach_to_if_index(ifindex, XdpMode::Driver)
        .or_else(|_| prog.attach_to_if_index(ifindex, XdpMode::Default))
        .with_context(|| format!("attaching XDP to ifindex {ifindex} (is another XDP program attached?)"))?;
    let link = FdLink::try_from(prog.take_link(id)?).context("XDP attach did not create a bpf_link")?;
    link.pin(&path).with_context(|| format!("pinning {}", path.display()))?;
    changes.attached += 1;
    Ok(())
}

fn replace(prog: &mut Xdp, path: &std::path::Path) -> anyhow::Result<()> {
    let link = XdpLink::try_from(FdLink::from(PinnedLink::from_pin(path)?))?;
    let id = prog.attach_to_link(link)?;
    // Dropping our handle closes the fd only; the pin keeps the link and the program attached.
    drop(prog.take_link(id)?);
    Ok(())
}

/// Attach the multicast TC program (TCX ingress) to every interface in `ifindexes`, replacing
/// the program of existing links.
pub fn attach_tc_all(prog: &mut SchedClassifier, pins: &PinDirs, ifindexes: &BTreeSet<u32>) -> anyhow::Result<()> {
    std::fs::create_dir_all(pins.links())?;
    for &ifindex in ifindexes {
        let path = pins.tc_link(ifindex);
        if path.exists() {
            let replaced = (|| -> anyhow::Result<()> {
                let link = SchedClassifierLink::try_from(FdLink::from(PinnedLink::from_pin(&path)?))?;
                let id = prog.attach_to_link(link)?;
                drop(prog.take_link(id)?);
                Ok(())
            })();
            if replaced.is_ok() {
                continue;
            }
            std::fs::remove_file(&path).with_context(|| format!("removing stale link {}", path.display()))?;
        }
        let name = super::ifname(ifindex);
        let id = prog
            .attach_with_options(&name, TcAttachType::Ingress, TcAttachOptions::TcxOrder(LinkOrder::default()))
            .with_context(|| format!("attaching the multicast TC program to {name}"))?;
        let link = FdLink::try_from(prog.take_link(id)?).context("TCX attach did not create a bpf_link")?;
        link.pin(&path).with_context(|| format!("pinning {}", path.display()))?;
    }
    Ok(())
}

/// Remove the links of interfaces not in `keep`; their program detaches when the pin goes.
pub fn detach_others(pins: &PinDirs, keep: &BTreeSet<u32>, changes: &mut AttachChanges) -> anyhow::Result<()> {
    for ifindex in pinned_links(pins)? {
        if !keep.contains(&ifindex) {
            std::fs::remove_file(pins.link(ifindex))?;
            let _ = std::fs::remove_file(pins.tc_link(ifindex));
            let _ = std::fs::remove_file(pins.gate(ifindex));
            changes.detached += 1;
        }
    }
    Ok(())
}

/// ifindexes with a pinned link.
pub fn pinned_links(pins: &PinDirs) -> anyhow::Result<Vec<u32>> {
    let Ok(dir) = std::fs::read_dir(pins.links()) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for entry in dir {
        let name = entry?.file_name();
        if let Some(ifindex) = name.to_str().and_then(|n| n.strip_prefix("xdp_")).and_then(|n| n.parse().ok()) {
            out.push(ifindex);
        }
    }
    Ok(out)
}
