//! The LogStore: JSON lines, one record per line, rotated by size and by age. A rotated file is
//! renamed `<path>.<unix milliseconds>`; the oldest beyond `keep` are deleted.

use std::{
    fs::{File, OpenOptions},
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use anyhow::Context as _;

use super::{Record, RecordSink};

#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    pub max_bytes: u64,
    pub max_age: Duration,
    /// Rotated files kept.
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation { max_bytes: 64 << 20, max_age: Duration::from_secs(24 * 3600), keep: 5 }
    }
}

pub struct JsonLines {
    path: PathBuf,
    file: File,
    written: u64,
    opened: SystemTime,
    rotation: Rotation,
}

impl JsonLines {
    /// `open` a file that must lie in `root`, also once every symlink on the way is resolved
    /// (checked before any directory is made, and again after).
    pub fn open_in(root: &Path, path: &Path, rotation: Rotation) -> anyhow::Result<JsonLines> {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let real_root = root.canonicalize()?;
        let dir = path.parent().with_context(|| format!("{} has no directory", path.display()))?;
        let inside = |at: &Path| -> anyhow::Result<()> {
            let real = at.canonicalize()?;
            anyhow::ensure!(
                real.starts_with(&real_root),
                "{} resolves to {}, outside the flow-log directory {}: not written",
                at.display(),
                real.display(),
                real_root.display()
            );
            Ok(())
        };
        let existing = dir.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"));
        inside(existing)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        inside(dir)?;
        JsonLines::open(path, rotation)
    }

    pub fn open(path: &Path, rotation: Rotation) -> anyhow::Result<JsonLines> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // Never through a symlink (a sink path is not a way to append to another file as root),
        // only to a regular file, and new files readable by the owner's group only.
        use std::os::unix::fs::OpenOptionsExt;
        let file =
            OpenOptions::new().create(true).append(true).mode(0o640).custom_flags(libc::O_NOFOLLOW).open(path).with_context(|| {
                format!("opening {} (a flow log writes only to a regular file, never through a symlink)", path.display())
            })?;
        let meta = file.metadata()?;
        anyhow::ensure!(meta.file_type().is_file(), "{} is not a regular file", path.display());
        let opened = meta.created().or_else(|_| meta.modified()).unwrap_or_else(|_| SystemTime::now());
        Ok(JsonLines { path: path.to_path_buf(), written: meta.len(), file, opened, rotation })
    }

    fn rotate(&mut self) -> anyhow::Result<()> {
        // Milliseconds, made unique: a rotated file is never overwritten.
        let mut stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let rotated = loop {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{stamp}"));
            let candidate = PathBuf::from(name);
            if !candidate.exists() {
                break candidate;
            }
            stamp += 1;
        };
        std::fs::rename(&self.path, &rotated)?;
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(dir) = self.path.parent() {
            let mut old: Vec<PathBuf> = std::fs::read_dir(dir)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().is_some_and(|n| n.to_string_lossy().strip_prefix(&name).is_some_and(|rest| rest.starts_with('.')))
                })
                .collect();
            old.sort();
            while old.len() > self.rotation.keep {
                let _ = std::fs::remove_file(old.remove(0));
            }
        }
        *self = JsonLines::open(&self.path, self.rotation)?;
        self.opened = SystemTime::now();
        Ok(())
    }
}

impl RecordSink for JsonLines {
    fn write(&mut self, records: &[Record]) -> anyhow::Result<()> {
        let age = self.opened.elapsed().unwrap_or_default();
        if self.written > 0 && (self.written >= self.rotation.max_bytes || age >= self.rotation.max_age) {
            self.rotate()?;
        }
        let mut text = Vec::new();
        for record in records {
            serde_json::to_writer(&mut text, record)?;
            text.push(b'\n');
        }
        self.file.write_all(&text)?;
        self.file.flush()?;
        self.written += text.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_is_never_a_symlink_and_new_files_are_not_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("vpc-fl-safe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rotation = Rotation { max_bytes: 1 << 20, max_age: Duration::from_secs(3600), keep: 2 };
        let target = dir.join("precious");
        std::fs::write(&target, b"keep me").unwrap();
        let link = dir.join("fl.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = JsonLines::open(&link, rotation).err().expect("a symlinked sink is refused");
        assert!(format!("{err:#}").contains("symlink"), "{err:#}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        let err = JsonLines::open(&dir, rotation).err().expect("a directory is no sink");
        assert!(!format!("{err:#}").is_empty());
        let fresh = dir.join("new.jsonl");
        JsonLines::open(&fresh, rotation).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o137, 0, "owner rw, group r at most: {mode:o}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_sink_stays_inside_its_directory_through_symlinked_directories() {
        let base = std::env::temp_dir().join(format!("vpc-fl-root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (root, outside) = (base.join("flowlogs"), base.join("etc"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
        let rotation = Rotation { max_bytes: 1 << 20, max_age: Duration::from_secs(3600), keep: 2 };
        for path in [root.join("escape/fl.jsonl"), root.join("escape/new/dir/fl.jsonl")] {
            let err = JsonLines::open_in(&root, &path, rotation).err().expect("a sink through a symlink out of the directory is refused");
            assert!(format!("{err:#}").contains("outside the flow-log directory"), "{err:#}");
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "nothing made outside, not even a directory");
        JsonLines::open_in(&root, &root.join("a/b/fl.jsonl"), rotation).expect("a file in a new subdirectory is fine");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn files_rotate_by_size_and_keep_a_bounded_history() {
        let dir = std::env::temp_dir().join(format!("vpc-fl-rot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("fl.jsonl");
        let rotation = Rotation { max_bytes: 300, max_age: Duration::from_secs(3600), keep: 2 };
        let mut sink = JsonLines::open(&path, rotation).unwrap();
        let eni = super::super::EniInfo {
            eni_id: "eni-a".into(),
            eni_name: "a".into(),
            vswitch_id: "vsw-a".into(),
            vpc_id: "vpc-a".into(),
            port: 1,
            ifindex: 0,
        };
        let record = Record::empty(&eni, "acct", 0, 10, "NODATA");
        let mut lines = 0;
        for _ in 0..12 {
            sink.write(std::slice::from_ref(&record)).unwrap();
            lines += 1;
        }
        let files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
        assert!(files.len() >= 2 && files.len() <= 3, "the live file and at most 2 rotated: {files:?}");
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.len() <= 300 + 300, "rotated by size");
        for line in current.lines() {
            let back: Record = serde_json::from_str(line).unwrap();
            assert_eq!(back, record);
        }
        assert!(lines > 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
