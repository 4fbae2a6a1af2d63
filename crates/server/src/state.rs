//! The server's own files (its state directory, never inside the repository): the token
//! file, the self-signed certificate and its key, and which token created which lock.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ServerError;

/// Creates `dir` (and its parents) if needed; a directory it creates is 0700.
pub fn private_dir(dir: &Path) -> Result<(), ServerError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| ServerError::Io(format!("cannot create {}: {e}", dir.display())))
}

/// Which token created each lock object an `append` or `read` token stored, so that it
/// may delete its own leases (refresh and release) and no one else's: a host that could
/// delete another's lock could make a prune stop waiting for a backup still running.
/// One small file per lock, named by the SHA-256 of the object name, holding the token
/// name; it survives restarts of the server, so a long backup can still release its lock.
#[derive(Debug, Clone)]
pub struct LockOwners {
    dir: PathBuf,
}

impl LockOwners {
    pub fn open(state_dir: &Path) -> Result<LockOwners, ServerError> {
        let dir = state_dir.join("lock-owners");
        private_dir(&dir)?;
        Ok(LockOwners { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(hex::encode(Sha256::digest(name.as_bytes())))
    }

    pub fn record(&self, name: &str, token: &str) -> std::io::Result<()> {
        std::fs::write(self.path(name), token.as_bytes())
    }

    /// The token that created `name`, if one is recorded.
    pub fn owner(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.path(name)).ok()
    }

    pub fn forget(&self, name: &str) {
        let _ = std::fs::remove_file(self.path(name));
    }
}
