//! Delivery into veth ENIs, fixed at the guest side of the pair:
//! - A frame XDP-redirected into a veth is dropped silently (only `rx_queue_0_drops` in
//!   `ethtool -S` shows it) unless the receiving peer runs NAPI, which it does when it has GRO
//!   on or an XDP program: we turn GRO on.
//! - A guest with TX checksum offload hands its TCP/UDP packets to the veth with the checksum
//!   left for "hardware"; XDP turns the skb into a bare frame and that promise is lost, so the
//!   receiver drops the segment. We turn TX checksum offload off so guests send full checksums.

use std::{
    ffi::CStr,
    fs,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::PathBuf,
};

use anyhow::{Context as _, bail};

use super::netlink;
use crate::netns::in_netns;

const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GTXCSUM: u32 = 0x16;
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_GGRO: u32 = 0x2b;
const ETHTOOL_SGRO: u32 = 0x2c;

/// Whether `ifname` (in the calling thread's namespace) is a veth.
pub fn is_veth(ifname: &str) -> bool {
    driver(ifname).as_deref() == Some("veth")
}

fn driver(ifname: &str) -> Option<String> {
    let sock = socket().ok()?;
    let mut info = [0u8; 196]; // struct ethtool_drvinfo
    info[..4].copy_from_slice(&ETHTOOL_GDRVINFO.to_ne_bytes());
    ethtool(&sock, ifname, info.as_mut_ptr()).ok()?;
    let name = CStr::from_bytes_until_nul(&info[4..36]).ok()?;
    Some(name.to_string_lossy().into_owned())
}

/// Make sure frames redirected into the veths `host_ifindexes` reach their peers: find each peer
/// (in this namespace or a named one under /run/netns), turn GRO on and TX checksum offload off
/// there. Returns the interfaces whose peer could not be found.
pub fn ensure_delivery(host_ifindexes: &[u32]) -> anyhow::Result<Vec<u32>> {
    if host_ifindexes.is_empty() {
        return Ok(Vec::new());
    }
    // (host ifindex, peer ifindex, the id here of the peer's namespace: none for this one).
    let mut pending: Vec<(u32, u32, Option<i32>)> = Vec::new();
    for &host in host_ifindexes {
        let (peer, nsid) = netlink::peer_of(host)?.with_context(|| format!("ifindex {host} has no peer link"))?;
        pending.push((host, peer, nsid));
    }
    if pending.iter().any(|p| p.2.is_none()) {
        let todo: Vec<(u32, u32)> = pending.iter().filter(|p| p.2.is_none()).map(|p| (p.0, p.1)).collect();
        let done = fix_peers(&todo)?;
        pending.retain(|p| !done.contains(&p.0));
    }
    let mut paths: Vec<PathBuf> = match fs::read_dir("/run/netns") {
        Ok(dir) => dir.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    // Namespaces whose id was read before and is not wanted are looked at last (and asked
    // again then: a name may have been given to a new namespace).
    let mut known = KNOWN_NSIDS.lock().unwrap_or_else(|e| e.into_inner());
    let here = std::fs::metadata("/proc/thread-self/ns/net").map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap_or(0);
    if known.0 != here {
        *known = (here, std::collections::BTreeMap::new());
    }
    let wanted = |known: &std::collections::BTreeMap<PathBuf, i32>, path: &PathBuf| {
        known.get(path).is_none_or(|id| pending.iter().any(|p| p.2 == Some(*id)))
    };
    paths.sort_by_key(|path| !wanted(&known.1, path));
    for path in paths {
        if pending.is_empty() {
            break;
        }
        // Ifindexes repeat across namespaces (two hosts' namespaces number their links alike):
        // a peer is looked for only in the namespace its link names.
        let nsid = match fs::File::open(&path) {
            Ok(file) => {
                use std::os::fd::AsFd as _;
                match netlink::nsid_of(file.as_fd()) {
                    Ok(Some(id)) => id,
                    _ => continue,
                }
            }
            Err(_) => continue,
        };
        known.1.insert(path.clone(), nsid);
        let todo: Vec<(u32, u32)> = pending.iter().filter(|p| p.2 == Some(nsid)).map(|p| (p.0, p.1)).collect();
        if todo.is_empty() {
            continue;
        }
        // A namespace being created or removed by someone else cannot be entered (EINVAL):
        // ours are complete before we look, so skip it.
        let Ok(done) = in_netns(&path, move || fix_peers(&todo)) else { continue };
        pending.retain(|p| !done.contains(&p.0));
    }
    Ok(pending.into_iter().map(|(host, _, _)| host).collect())
}

/// The id (in the namespace of the inode kept with them) of each named namespace read before:
/// a new ENI's peer is then found without asking a thousand guests' namespaces again.
static KNOWN_NSIDS: std::sync::Mutex<(u64, std::collections::BTreeMap<PathBuf, i32>)> =
    std::sync::Mutex::new((0, std::collections::BTreeMap::new()));

/// In the calling thread's namespace: fix each peer that lives here; returns the host
/// ifindexes served.
fn fix_peers(pairs: &[(u32, u32)]) -> anyhow::Result<Vec<u32>> {
    let mut done = Vec::new();
    for &(host, peer) in pairs {
        if fix_peer(peer, host)? {
            done.push(host);
        }
    }
    Ok(done)
}

/// In the calling thread's namespace: if ifindex `peer` exists and links back to `of`, turn its
/// GRO on and TX checksum offload off. Ifindexes are per namespace, so the link-back check is
/// what identifies the peer.
fn fix_peer(peer: u32, of: u32) -> anyhow::Result<bool> {
    if netlink::link_of(peer)? != Some(of) {
        return Ok(false);
    }
    let sock = socket()?;
    let name = ifname(&sock, peer).with_context(|| format!("naming ifindex {peer}"))?;
    set_flag(&sock, &name, ETHTOOL_GGRO, ETHTOOL_SGRO, true).with_context(|| format!("enabling GRO on {name}"))?;
    set_flag(&sock, &name, ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM, false).with_context(|| format!("disabling TX checksum offload on {name}"))?;
    Ok(true)
}

/// Set a legacy ethtool on/off setting when it is not already `on`.
fn set_flag(sock: &OwnedFd, name: &str, get: u32, set: u32, on: bool) -> anyhow::Result<()> {
    let mut value = [get, 0];
    ethtool(sock, name, value.as_mut_ptr().cast())?;
    if (value[1] != 0) != on {
        let mut value = [set, u32::from(on)];
        ethtool(sock, name, value.as_mut_ptr().cast())?;
    }
    Ok(())
}

fn socket() -> anyhow::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        bail!("socket: {}", std::io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifname(sock: &OwnedFd, ifindex: u32) -> Option<String> {
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_ifru.ifru_ifindex = ifindex as i32;
    // SAFETY: SIOCGIFNAME fills ifr_name for the given index.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFNAME, &mut req) } != 0 {
        return None;
    }
    let bytes: Vec<u8> = req.ifr_name.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    String::from_utf8(bytes).ok()
}

fn ethtool(sock: &OwnedFd, ifname: &str, data: *mut u8) -> anyhow::Result<()> {
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(ifname.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_data = data.cast();
    // SAFETY: SIOCETHTOOL with a command buffer the caller sized for the command.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) } != 0 {
        bail!("ethtool ioctl on {ifname}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}
