//! AccessKey pairs: what signs a request on the TCP listener (`api::rpc`). The local admin
//! makes them over the Unix socket (`vpc create-access-key --account NAME`); each names the
//! account it acts for. Kept in `<state dir>/access-keys.json`, readable by root alone (the
//! secret must be kept whole: HMAC checks need it).

use std::{collections::BTreeMap, path::Path};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The file beside the state database.
pub const FILE: &str = "access-keys.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub account: String,
    pub secret: String,
    /// Seconds since the epoch.
    pub created: u64,
}

/// Every key, by AccessKeyId.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeys {
    pub keys: BTreeMap<String, AccessKey>,
}

impl AccessKeys {
    /// The keys in `state_dir` (none yet: empty).
    pub fn read(state_dir: &Path) -> anyhow::Result<AccessKeys> {
        let path = state_dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AccessKeys::default()),
            Err(e) => Err(anyhow::Error::from(e).context(format!("reading {}", path.display()))),
        }
    }

    /// Write them whole (a new file renamed over the old: never half written), mode 0600.
    pub fn write(&self, state_dir: &Path) -> anyhow::Result<()> {
        use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
        let path = state_dir.join(FILE);
        let fresh = state_dir.join(format!("{FILE}.new"));
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&fresh)?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        std::fs::rename(&fresh, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// A new pair for `account`: (AccessKeyId, secret).
    pub fn create(&mut self, account: &str) -> (String, String) {
        let id = format!("LTAI{}", random_text(20));
        let secret = random_text(30);
        let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.keys.insert(id.clone(), AccessKey { account: account.to_string(), secret: secret.clone(), created });
        (id, secret)
    }
}

/// Fill `buf` from the kernel's random source (what secrets are made of).
pub fn kernel_random(buf: &mut [u8]) {
    std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, buf)).expect("reading /dev/urandom");
}

/// `n` characters of [0-9A-Za-z] from the kernel's random source.
fn random_text(n: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    // 62 does not divide 256: only the first 248 values are taken, the rest drawn again.
    let mut out = String::with_capacity(n);
    let mut bytes = [0u8; 64];
    while out.len() < n {
        kernel_random(&mut bytes);
        out.extend(bytes.iter().filter(|b| **b < 248).map(|b| ALPHABET[usize::from(b % 62)] as char).take(n - out.len()));
    }
    out
}
