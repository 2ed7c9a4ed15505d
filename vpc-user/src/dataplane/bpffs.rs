//! The pin root must live on a BPF filesystem. Mount one where needed (a fresh machine has
//! /sys/fs/bpf as an empty directory).

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Whether `path` is on a BPF filesystem.
pub fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return false };
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out-pointer.
    unsafe { libc::statfs(c.as_ptr(), &mut stat) == 0 && stat.f_type as i64 == BPF_FS_MAGIC }
}

/// Make `root` a directory on a BPF filesystem: mount bpffs on /sys/fs/bpf when the root is
/// below it, or on the root itself otherwise.
pub fn ensure(root: &Path) -> anyhow::Result<()> {
    // Agents and tests starting at once on a fresh machine would each see no bpffs and mount
    // one on top of the other's (hiding pin roots made in between): check and mount under a
    // host-wide lock.
    let _lock = MountLock::take()?;
    let sys = Path::new("/sys/fs/bpf");
    if root.starts_with(sys) && !is_bpffs(sys) {
        mount(sys)?;
    }
    std::fs::create_dir_all(root).with_context(|| format!("creating pin root {}", root.display()))?;
    if !is_bpffs(root) {
        mount(root)?;
    }
    Ok(())
}

/// An exclusive `flock` on a file in /run, released on drop.
struct MountLock {
    _file: std::fs::File,
}

impl MountLock {
    fn take() -> anyhow::Result<MountLock> {
        use std::os::fd::AsRawFd as _;
        let path = Path::new("/run/vpc-bpffs.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: a valid descriptor; blocks until the lock is ours.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!("locking {}: {}", path.display(), std::io::Error::last_os_error());
        }
        Ok(MountLock { _file: file })
    }
}

fn mount(at: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(at).with_context(|| format!("creating {}", at.display()))?;
    let target = CString::new(at.as_os_str().as_bytes())?;
    let fstype = CString::new("bpf")?;
    // SAFETY: valid C strings; no data argument.
    let rc = unsafe { libc::mount(fstype.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        bail!("mounting a BPF filesystem on {}: {} (are you root?)", at.display(), std::io::Error::last_os_error());
    }
    Ok(())
}

/// The directories under the pin root.
#[derive(Debug, Clone)]
pub struct PinDirs {
    pub root: PathBuf,
}

impl PinDirs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        PinDirs { root: root.into() }
    }
    /// Maps, pinned by name.
    pub fn maps(&self) -> PathBuf {
        self.root.join("maps")
    }
    /// One XDP link per attached interface, named by ifindex.
    pub fn links(&self) -> PathBuf {
        self.root.join("links")
    }
    pub fn link(&self, ifindex: u32) -> PathBuf {
        self.links().join(format!("xdp_{ifindex}"))
    }
    /// The multicast TC link of an interface.
    pub fn tc_link(&self, ifindex: u32) -> PathBuf {
        self.links().join(format!("tc_{ifindex}"))
    }
    /// The VLAN gates, one per veth (`vlan_gate`).
    pub fn gates(&self) -> PathBuf {
        self.root.join("gates")
    }
    pub fn gate(&self, ifindex: u32) -> PathBuf {
        self.gates().join(format!("vlan_{ifindex}"))
    }
    /// The program currently attached, for inspection and TestRun against the live maps.
    pub fn program(&self) -> PathBuf {
        self.root.join("prog")
    }
    pub fn map(&self, name: &str) -> PathBuf {
        self.maps().join(name)
    }
    /// Whether something is applied under this pin root.
    pub fn is_up(&self) -> bool {
        self.map(vpc_common::maps::ENIS).exists()
    }
}
