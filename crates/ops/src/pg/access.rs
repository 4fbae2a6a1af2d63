//! Whether PostgreSQL's `archive_command` can use a local repository. It runs as the
//! server's operating-system user (usually `postgres`), and repository files are private
//! to their owner (0600, directories 0700): unless the server's user owns the repository,
//! the administrator must share it with a group on purpose. `pg setup` checks that before
//! it changes anything, and says how.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The access one user has through the classic Unix permission bits.
struct User {
    uid: u32,
    gids: Vec<u32>,
}

impl User {
    /// The user owning `data_directory`, with its groups (from `id -G`, which asks the
    /// system's user database, LDAP included). `None` when the server is on another host
    /// or the user cannot be looked up: then only the archiving check itself can tell.
    fn owning(data_directory: &Path) -> Option<User> {
        let uid = std::fs::metadata(data_directory).ok()?.uid();
        let out = std::process::Command::new("id")
            .arg("-G")
            .arg(uid.to_string())
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let gids = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect();
        Some(User { uid, gids })
    }

    /// Whether the user has all of `wanted` (the owner's rwx bits, e.g. 0o7 for rwx) on
    /// a file with `meta`.
    fn may(&self, meta: &std::fs::Metadata, wanted: u32) -> bool {
        let mode = meta.mode();
        let bits = if self.uid == 0 {
            return true;
        } else if self.uid == meta.uid() {
            mode >> 6
        } else if self.gids.contains(&meta.gid()) {
            mode >> 3
        } else {
            mode
        };
        bits & wanted == wanted
    }
}

/// What the server's user cannot do in the repository at `root`, with the fix; `None`
/// when it can do all it needs (read the passphrase file, the config and the keys, write
/// every directory) or when that cannot be known from here.
pub fn problem(data_directory: &str, root: &Path, password_file: Option<&Path>) -> Option<String> {
    let user = User::owning(Path::new(data_directory))?;
    let mut blocked: Vec<PathBuf> = Vec::new();
    if let Some(file) = password_file {
        if std::fs::metadata(file).is_ok_and(|meta| !user.may(&meta, 0o4)) {
            blocked.push(file.to_path_buf());
        }
    }
    // The way there: every directory above the repository must let the user through.
    for ancestor in root.ancestors().skip(1) {
        if std::fs::metadata(ancestor).is_ok_and(|meta| !user.may(&meta, 0o1)) {
            blocked.push(ancestor.to_path_buf());
        }
    }
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        if !user.may(&meta, 0o3) {
            blocked.push(dir.clone());
            continue;
        }
        // Packs, indexes and snapshots are never read by archive_command, so only the
        // config and the keys are looked at; every directory has to take new objects.
        let reads = dir == root || dir.ends_with("keys");
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            } else if reads && entry.metadata().is_ok_and(|meta| !user.may(&meta, 0o4)) {
                blocked.push(path);
            }
        }
    }
    let first = blocked.first()?;
    Some(format!(
        "PostgreSQL runs archive_command as uid {uid}, which cannot {what} {first} ({n} place(s) in all): \
         repository files are private to their owner. Share the repository with a group both users \
         are in (e.g. `groupadd lifeboat; usermod -aG lifeboat postgres; usermod -aG lifeboat $USER`), then \
         `chgrp -R lifeboat {root} && chmod -R g+rwX {root} && find {root} -type d -exec chmod g+s {{}} +`: \
         new files then get the group's read and write bits (Lifeboat honours a setgid or \
         group-writable repository directory)",
        uid = user.uid,
        what = if first.is_file() {
            "read"
        } else if root.starts_with(first) && first != root {
            "enter"
        } else {
            "write"
        },
        first = first.display(),
        n = blocked.len(),
        root = crate::shell_word(&root.display().to_string()),
    ))
}
