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
    /// Take the lock on `dir` (creating it). Held by a running agent (its record, `agent.json`,
    /// names a live process): an error at once, naming the socket it answers on -- a command
    /// that reached this point was given another socket. Held by another command: wait for it.
    pub fn take(dir: &Path) -> anyhow::Result<StateLock> {
        fs::create_dir_all(dir).with_context(|| format!("creating state directory {}", dir.display()))?;
        let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            if let Some(agent) = AgentRecord::read(dir).filter(AgentRecord::alive) {
                bail!(
                    "the agent (pid {}) holds state directory {} and answers on {}: pass --socket {} (or VPC_SOCKET) to talk to it",
                    agent.pid,
                    dir.display(),
                    agent.socket.display(),
                    agent.socket.display()
                );
            }
            // SAFETY: as above.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                bail!("locking {}: {}", dir.display(), std::io::Error::last_os_error());
            }
        }
        Ok(StateLock { dir: dir.to_path_buf(), _file: file })
    }

    /// Record that the agent daemon runs here and answers on `socket` (removed when it stops).
    pub fn record_agent(&self, socket: &Path) -> anyhow::Result<()> {
        let record = AgentRecord { pid: std::process::id(), socket: socket.to_path_buf() };
        let path = self.dir.join(AGENT_RECORD);
        fs::write(&path, serde_json::to_vec(&record)?).with_context(|| format!("writing {}", path.display()))
    }

    pub fn forget_agent(&self) {
        let _ = fs::remove_file(self.dir.join(AGENT_RECORD));
    }

    pub fn database(&self) -> PathBuf {
        self.dir.join("vpc.redb")
    }

    /// The last good state (`backup`).
    pub fn backup(&self) -> PathBuf {
        backup_of(&self.dir)
    }

}

/// The running agent's record in its state directory.
const AGENT_RECORD: &str = "agent.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct AgentRecord {
    pid: u32,
    socket: PathBuf,
}

impl AgentRecord {
    fn read(dir: &Path) -> Option<AgentRecord> {
        serde_json::from_slice(&fs::read(dir.join(AGENT_RECORD)).ok()?).ok()
    }

    fn alive(&self) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        self.pid != std::process::id() && unsafe { libc::kill(self.pid as i32, 0) } == 0
    }
}

/// The backup of the state kept in `dir`.
fn backup_of(dir: &Path) -> PathBuf {
    dir.join("vpc.backup.json")
}
