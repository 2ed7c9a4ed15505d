//! Network namespaces: run code inside one from a dedicated thread (setns affects only the
//! calling thread, and ifindex / DEVMAP lookups resolve in the calling thread's namespace).

use std::{
    fs,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

/// Where iproute2 keeps named namespaces.
pub fn path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// Run `f` in a new thread that entered the network namespace at `path`.
pub fn in_netns<T: Send + 'static>(path: &Path, f: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
    let file = fs::File::open(path).with_context(|| format!("opening network namespace {}", path.display()))?;
    std::thread::spawn(move || {
        // SAFETY: setns on a netns fd affects only this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns: {}", std::io::Error::last_os_error());
        }
        f()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Run `f` in a new thread inside a fresh, unnamed network namespace that disappears with the
/// thread: nothing to clean up, even if `f` panics.
pub fn in_scratch_netns<T: Send + 'static>(f: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare of the network namespace affects only this thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            bail!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
        }
        f()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
