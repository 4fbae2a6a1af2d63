//! The token file: who may use the server, and in which role. Only SHA-256 hashes of the
//! tokens are stored; a token is 32 random bytes (so a plain hash is as good as a slow
//! one: there is nothing to guess), shown once when it is added. The file is written
//! 0600 through a temporary file and a rename, and read again on every request, so a
//! token removed is refused at once, without a restart.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::roles::Role;
use crate::ServerError;

/// Tokens start with this, so a leaked one is recognisable (secret scanners, logs).
const PREFIX: &str = "lbt_";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the whole token text.
    pub sha256: String,
    pub created: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Token names appear in logs and refusals: short and plain.
fn check_name(name: &str) -> Result<(), ServerError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ServerError::Usage(format!(
            "token name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> ServerError {
    ServerError::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// The tokens in `path`; a missing file holds none.
pub fn load(path: &Path) -> Result<Vec<TokenEntry>, ServerError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(path, "read", e)),
    };
    let file: TokenFile = serde_json::from_slice(&text).map_err(|e| {
        ServerError::Io(format!("the token file {} is damaged: {e}", path.display()))
    })?;
    Ok(file.tokens)
}

fn save(path: &Path, tokens: Vec<TokenEntry>) -> Result<(), ServerError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::state::private_dir(dir)?;
    let temp: PathBuf = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("tokens"),
        std::process::id()
    ));
    let json = serde_json::to_vec_pretty(&TokenFile { tokens }).expect("tokens serialize");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut f| {
            // The mode given at creation is masked by the umask and ignored for a file
            // that existed: set it explicitly before anything is written.
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(&json)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(path, "write", e));
    }
    Ok(())
}

/// Adds a token and returns its text: the only time it is ever shown.
pub fn add(path: &Path, name: &str, role: Role) -> Result<String, ServerError> {
    check_name(name)?;
    let mut tokens = load(path)?;
    if tokens.iter().any(|t| t.name == name) {
        return Err(ServerError::Usage(format!(
            "a token named {name:?} exists; remove it first or choose another name"
        )));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| ServerError::Io(format!("no randomness for a token: {e}")))?;
    let token = format!("{PREFIX}{}", hex::encode(secret));
    tokens.push(TokenEntry {
        name: name.to_string(),
        role,
        sha256: hash(&token),
        created: chrono::Utc::now(),
    });
    save(path, tokens)?;
    Ok(token)
}

/// Removes the token `name`; `false` when there was none.
pub fn remove(path: &Path, name: &str) -> Result<bool, ServerError> {
    let mut tokens = load(path)?;
    let before = tokens.len();
    tokens.retain(|t| t.name != name);
    if tokens.len() == before {
        return Ok(false);
    }
    save(path, tokens)?;
    Ok(true)
}

/// The entry whose hash matches `presented`. Every entry is compared, in constant time,
/// so the answer's timing says nothing about which hash bytes matched.
pub fn authenticate<'a>(tokens: &'a [TokenEntry], presented: &str) -> Option<&'a TokenEntry> {
    let digest = hash(presented.trim());
    let mut found = None;
    for entry in tokens {
        if constant_time_eq(entry.sha256.as_bytes(), digest.as_bytes()) {
            found = Some(entry);
        }
    }
    found
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/tokens.json");
        let app = add(&path, "app1", Role::Append).unwrap();
        let admin = add(&path, "ops", Role::Admin).unwrap();
        assert!(app.starts_with(PREFIX) && app.len() == PREFIX.len() + 64);
        assert_ne!(app, admin);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&app[PREFIX.len()..]) && !text.contains(&admin[4..]));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let tokens = load(&path).unwrap();
        let found = authenticate(&tokens, &app).unwrap();
        assert_eq!((found.name.as_str(), found.role), ("app1", Role::Append));
        assert_eq!(authenticate(&tokens, &admin).unwrap().role, Role::Admin);
        assert!(authenticate(&tokens, "lbt_00").is_none());
        assert!(authenticate(&tokens, "").is_none());

        assert!(add(&path, "app1", Role::Read).is_err());
        assert!(add(&path, "bad name", Role::Read).is_err());
        assert!(add(&path, "", Role::Read).is_err());
        assert!(remove(&path, "app1").unwrap());
        assert!(!remove(&path, "app1").unwrap());
        assert!(authenticate(&load(&path).unwrap(), &app).is_none());
        assert!(load(&dir.path().join("none.json")).unwrap().is_empty());
    }
}
