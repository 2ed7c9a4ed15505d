//! The last good state, exported after every whole-document change and at most a second after
//! an incremental one (`Agent::flush_backup`): a JSON copy of the stored document and its
//! numbers, beside the database. When the database is damaged the agent refuses to start
//! and says so; `--restore` rebuilds the database from this copy (the damaged file is kept).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::{model::ids::Ids, model::spec::TopologySpec, store::Stored};

#[derive(Serialize, Deserialize)]
struct Backup {
    /// The database's id: a rebuilt database keeps it, so the data path is still its own.
    store_id: u64,
    doc: TopologySpec,
    ids: Ids,
}

/// Write `stored` to `path` atomically (a temporary file renamed over it), readable by its
/// owner only.
pub fn write(path: &Path, store_id: u64, stored: &Stored) -> anyhow::Result<()> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(&Backup { store_id, doc: stored.doc.clone(), ids: stored.ids.clone() })?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(&text).and_then(|_| file.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// The state in the backup at `path`, and the id of the database it came from.
pub fn read(path: &Path) -> anyhow::Result<(u64, Stored)> {
    let text = std::fs::read(path).with_context(|| format!("reading the backup {}", path.display()))?;
    let backup: Backup = serde_json::from_slice(&text).with_context(|| format!("decoding the backup {}", path.display()))?;
    Ok((backup.store_id, Stored { doc: backup.doc, ids: backup.ids }))
}

/// Where a damaged database is moved before it is rebuilt.
pub fn damaged(db: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    db.with_extension(format!("redb.damaged-{stamp}"))
}
