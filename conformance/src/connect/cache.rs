//! The token cache: one JSON file per server, keyed by the MCP URL, in the user's cache
//! directory (`~/.cache/mcp-auth-conformance/connect` on Linux, the platform's equivalent
//! elsewhere). Files are written with mode 0600 on Unix, through a temporary file and a rename,
//! so a token is never readable by other users, not even for a moment.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// What `connect` keeps about one server between runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The MCP endpoint the tokens are for (the cache key).
    pub mcp_url: String,
    /// The RFC 8707 resource the tokens were asked for, when the server has PRM.
    pub resource: Option<String>,
    pub issuer: String,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Seconds since the Unix epoch; `None` when the server gave no `expires_in`.
    pub expires_at: Option<u64>,
    pub scope: Option<String>,
}

/// Tokens this close to their expiry are refreshed before use, so a request does not race it.
const EXPIRY_MARGIN_SECS: u64 = 30;

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Entry {
    pub fn expired(&self) -> bool {
        self.expires_at
            .is_some_and(|at| at <= now_secs() + EXPIRY_MARGIN_SECS)
    }

    /// Seconds left, negative once expired.
    pub fn expires_in(&self) -> Option<i64> {
        self.expires_at.map(|at| at as i64 - now_secs() as i64)
    }
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    /// `--cache-dir` when given, else the user's cache directory.
    pub fn new(dir: Option<PathBuf>) -> anyhow::Result<Cache> {
        let dir = match dir {
            Some(dir) => dir,
            None => directories::ProjectDirs::from("", "", "mcp-auth-conformance")
                .context("no home directory to keep the token cache in; pass --cache-dir")?
                .cache_dir()
                .join("connect"),
        };
        Ok(Cache { dir })
    }

    /// The file for one MCP URL: a digest, so any URL makes a safe file name.
    pub fn path(&self, mcp_url: &str) -> PathBuf {
        let digest = Sha256::digest(mcp_url.as_bytes());
        let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.json"))
    }

    pub fn load(&self, mcp_url: &str) -> anyhow::Result<Option<Entry>> {
        let path = self.path(mcp_url);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let entry: Entry = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a token cache entry", path.display()))?;
        // A digest collision or a hand-copied file must not hand one server another's tokens.
        Ok((entry.mcp_url == mcp_url).then_some(entry))
    }

    pub fn store(&self, entry: &Entry) -> anyhow::Result<PathBuf> {
        create_private_dir(&self.dir)?;
        let path = self.path(&entry.mcp_url);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        write_private(&tmp, serde_json::to_string_pretty(entry)?.as_bytes())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Forgets a server's tokens; `true` when there were some.
    pub fn remove(&self, mcp_url: &str) -> anyhow::Result<bool> {
        match std::fs::remove_file(self.path(mcp_url)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // The user's profile directory is private to the user on Windows.
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str) -> Entry {
        Entry {
            mcp_url: url.into(),
            resource: Some(url.into()),
            issuer: "http://127.0.0.1:1".into(),
            token_endpoint: "http://127.0.0.1:1/token".into(),
            revocation_endpoint: None,
            client_id: "c".into(),
            client_secret: None,
            access_token: "at".into(),
            refresh_token: Some("rt".into()),
            expires_at: Some(now_secs() + 3600),
            scope: Some("user".into()),
        }
    }

    #[test]
    fn entries_are_kept_per_server_and_forgotten() {
        let dir = std::env::temp_dir().join(format!("connect-cache-{}", std::process::id()));
        let cache = Cache::new(Some(dir.clone())).unwrap();
        let a = entry("http://127.0.0.1:1/mcp");
        let b = entry("http://127.0.0.1:2/mcp");
        cache.store(&a).unwrap();
        let path = cache.store(&b).unwrap();
        assert_eq!(cache.load(&a.mcp_url).unwrap(), Some(a.clone()));
        assert_eq!(cache.load(&b.mcp_url).unwrap(), Some(b.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(cache.remove(&a.mcp_url).unwrap());
        assert!(!cache.remove(&a.mcp_url).unwrap());
        assert_eq!(cache.load(&a.mcp_url).unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_token_near_its_expiry_counts_as_expired() {
        let mut e = entry("x");
        assert!(!e.expired());
        e.expires_at = Some(now_secs() + 5);
        assert!(e.expired());
        e.expires_at = None;
        assert!(!e.expired());
    }
}
