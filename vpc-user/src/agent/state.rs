//! What the agent remembers between runs: the applied topology and its numbers. Written
//! atomically (temp file + rename) under an exclusive lock on the state directory.

use std::{
    fs,
    io::Write as _,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::model::{ids::Ids, spec::TopologySpec};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// The topology as last applied.
    pub topology: TopologySpec,
    pub ids: Ids,
}

/// The state directory, locked for the lifetime of this value.
pub struct StateDir {
    path: PathBuf,
    _lock: fs::File,
}

impl StateDir {
    /// Open (creating) `path` and take its lock, waiting for another writer to finish.
    pub fn lock(path: &Path) -> anyhow::Result<StateDir> {
        fs::create_dir_all(path).with_context(|| format!("creating state directory {}", path.display()))?;
        let lock = fs::OpenOptions::new().create(true).truncate(false).write(true).open(path.join("lock"))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!("locking {}: {}", path.display(), std::io::Error::last_os_error());
        }
        Ok(StateDir { path: path.to_path_buf(), _lock: lock })
    }

    fn file(&self) -> PathBuf {
        self.path.join("state.json")
    }

    pub fn load(&self) -> anyhow::Result<State> {
        read(&self.path)
    }

    pub fn save(&self, state: &State) -> anyhow::Result<()> {
        let tmp = self.path.join("state.json.tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(serde_json::to_string_pretty(state)?.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, self.file()).context("replacing state.json")?;
        Ok(())
    }

    /// Forget everything (after `down`).
    pub fn clear(&self) -> anyhow::Result<()> {
        match fs::remove_file(self.file()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Read the state without taking the lock (readers see whole files thanks to rename).
pub fn read(dir: &Path) -> anyhow::Result<State> {
    match fs::read_to_string(dir.join("state.json")) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("parsing {}/state.json", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}/state.json", dir.display())),
    }
}
