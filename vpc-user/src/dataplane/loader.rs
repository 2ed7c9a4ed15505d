//! Load the XDP object so that it reuses the pinned maps, after retiring any pinned map whose
//! shape no longer matches what this build declares (an upgrade changed a struct or a size).

use std::path::Path;

use anyhow::Context as _;
use aya::{Ebpf, EbpfLoader, maps::MapInfo, programs::Xdp};
use vpc_common::maps::{self as names, MAPS, MapDecl};

use super::{Limits, bpffs::PinDirs, object};

/// Maps an earlier build made with another type but the same key, value and size, so their
/// type is checked too: CONNTRACK was an LRU hash, which evicts (it is a plain hash now), and
/// FRAGS an LRU hash, which let one guest evict another's datagrams.
const TYPE_CHANGED: [&str; 2] = [names::CONNTRACK, names::FRAGS];

/// Whether pinned map `info` has the shape this build declares for `map` with `limits`.
fn fits(info: &MapInfo, map: &MapDecl, limits: &Limits) -> bool {
    info.key_size() == map.key_size
        && info.value_size() == map.value_size
        && info.max_entries() == limits.entries(map)
        && (!TYPE_CHANGED.contains(&map.name) || info.map_type().is_ok_and(|t| t as u32 == map.kind as u32))
}

/// Maps that only mean something together: the connection table and the counts of entries
/// each port holds in it. One retired retires all.
const RETIRED_TOGETHER: [&str; 3] = [names::CONNTRACK, names::CT_OPENED, names::CT_CLOSED];

/// Unpin maps whose shape differs from this build's, so the loader creates fresh ones. Programs
/// still attached keep using the old map until their link is switched to the new program.
pub fn retire_incompatible(pins: &PinDirs, limits: &Limits) -> anyhow::Result<Vec<&'static str>> {
    let mut retired = Vec::new();
    for map in MAPS {
        let path = pins.map(map.name);
        if !path.exists() {
            continue;
        }
        if !MapInfo::from_pin(&path).is_ok_and(|info| fits(&info, map, limits)) {
            std::fs::remove_file(&path).with_context(|| format!("retiring {}", path.display()))?;
            retired.push(map.name);
        }
    }
    if retired.iter().any(|r| RETIRED_TOGETHER.contains(r)) {
        for name in RETIRED_TOGETHER {
            let path = pins.map(name);
            if !retired.contains(&name) && path.exists() {
                std::fs::remove_file(&path).with_context(|| format!("retiring {}", path.display()))?;
                retired.push(name);
            }
        }
    }
    Ok(retired)
}

/// Load the object with its maps opened from (or created at) `pins`, and the XDP program
/// loaded into the kernel (verified, not attached).
pub fn load(pins: &PinDirs, limits: &Limits) -> anyhow::Result<Ebpf> {
    std::fs::create_dir_all(pins.maps())?;
    let mut loader = EbpfLoader::new();
    loader.default_map_pin_directory(pins.maps());
    for map in MAPS {
        loader.map_max_entries(map.name, limits.entries(map));
    }
    let mut ebpf = loader.load(object::bytes()).context("loading the XDP object")?;
    retrying(|| program(&mut ebpf)?.load().map_err(Into::into)).context("the kernel verifier rejected the XDP program")?;
    retrying(|| mcast_program(&mut ebpf)?.load().map_err(Into::into)).context("the kernel verifier rejected the multicast TC program")?;
    Ok(ebpf)
}

/// Run a program load with this thread's signals held back, and again when the kernel gave up
/// with EAGAIN anyway: its verifier stops when a signal is pending for the loading thread (a
/// child process exiting, a timer), which a long verification (~0.2 s) often meets in a busy
/// process. Held-back signals are delivered once the load is done.
pub fn retrying(mut load: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let _held = SignalsHeld::now();
    let mut tries = 0;
    loop {
        match load() {
            Err(e) if tries < 20 && interrupted(&e) => tries += 1,
            other => return other,
        }
    }
}

/// This thread's signals held back until dropped (then the mask it had is restored).
struct SignalsHeld(libc::sigset_t);

impl SignalsHeld {
    fn now() -> SignalsHeld {
        // SAFETY: sigset_t is plain data; sigfillset and pthread_sigmask take valid pointers.
        unsafe {
            let (mut all, mut old): (libc::sigset_t, libc::sigset_t) = (std::mem::zeroed(), std::mem::zeroed());
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            SignalsHeld(old)
        }
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `now`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

fn interrupted(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| match cause.downcast_ref::<aya::programs::ProgramError>() {
        Some(aya::programs::ProgramError::LoadError { io_error, .. }) => io_error.raw_os_error() == Some(libc::EAGAIN),
        _ => cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.raw_os_error() == Some(libc::EAGAIN)),
    })
}

pub fn program(ebpf: &mut Ebpf) -> anyhow::Result<&mut Xdp> {
    let prog = ebpf.program_mut(names::PROG_ENI_INGRESS).context("XDP program missing from the object")?;
    Ok(prog.try_into()?)
}

/// The underlay's program, verified once a host has an underlay (a single host never needs it).
pub fn underlay_program(ebpf: &mut Ebpf) -> anyhow::Result<&mut Xdp> {
    let prog: &mut Xdp = ebpf.program_mut(names::PROG_UNDERLAY_INGRESS).context("underlay program missing from the object")?.try_into()?;
    if prog.fd().is_err() {
        retrying(|| {
            let prog: &mut Xdp = ebpf.program_mut(names::PROG_UNDERLAY_INGRESS).context("underlay program missing")?.try_into()?;
            Ok(prog.load()?)
        })
        .context("the kernel verifier rejected the underlay program")?;
    }
    Ok(ebpf.program_mut(names::PROG_UNDERLAY_INGRESS).context("underlay program missing")?.try_into()?)
}

pub fn mcast_program(ebpf: &mut Ebpf) -> anyhow::Result<&mut aya::programs::SchedClassifier> {
    let prog = ebpf.program_mut(names::PROG_MCAST).context("TC program missing from the object")?;
    Ok(prog.try_into()?)
}

/// Pin `ebpf`'s program at `path`, replacing the previous one.
pub fn pin_program(ebpf: &mut Ebpf, path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    program(ebpf)?.pin(path).with_context(|| format!("pinning the program at {}", path.display()))?;
    Ok(())
}
