//! The state directory and its lock: one writer at a time (the daemon for its lifetime, or a
//! CLI command running without a daemon for the length of the command).

use std::{
    fs,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

pub struct StateLock {
    pub dir: PathBuf,
    _file: fs::File,
}

impl StateLock {
    /// Take the lock on `dir` (creating it), waiting while another writer holds it.
    pub fn take(dir: &Path) -> anyhow::Result<StateLock> {
        fs::create_dir_all(dir).with_context(|| format!("creating state directory {}", dir.display()))?;
        let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!("locking {}: {}", dir.display(), std::io::Error::last_os_error());
        }
        Ok(StateLock { dir: dir.to_path_buf(), _file: file })
    }

    pub fn database(&self) -> PathBuf {
        self.dir.join("vpc.redb")
    }

    /// The last good state (`backup`).
    pub fn backup(&self) -> PathBuf {
        backup_of(&self.dir)
    }

}

/// The backup of the state kept in `dir`.
pub fn backup_of(dir: &Path) -> PathBuf {
    dir.join("vpc.backup.json")
}
