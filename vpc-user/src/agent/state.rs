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

/// The quotas this state directory's document is judged by: recorded by whoever last ran with
/// `--quota` (the daemon, or an `--offline` change), used by every later agent and offline
/// change, so the two never judge the same document by different quotas.
const QUOTAS_RECORD: &str = "quotas.json";

pub fn recorded_quotas(dir: &Path) -> anyhow::Result<Option<crate::model::topology::Quotas>> {
    let path = dir.join(QUOTAS_RECORD);
    match fs::read(&path) {
        Ok(bytes) => {
            Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("reading the quotas recorded in {}", path.display()))?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn record_quotas(dir: &Path, quotas: &crate::model::topology::Quotas) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating state directory {}", dir.display()))?;
    let path = dir.join(QUOTAS_RECORD);
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(quotas)?).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// The socket the running agent of `dir` answers on, if one runs.
pub fn agent_socket(dir: &Path) -> Option<PathBuf> {
    AgentRecord::read(dir).filter(AgentRecord::alive).map(|a| a.socket)
}

/// The backup of the state kept in `dir`.
fn backup_of(dir: &Path) -> PathBuf {
    dir.join("vpc.backup.json")
}
