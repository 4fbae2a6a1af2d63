//! Who may read a repository on local disk: its owner only. Files are created 0600 and
//! directories 0700 whatever the umask (a key file is all an attacker needs for an
//! offline guess at the passphrase, and restic does the same), unless the administrator
//! shares the repository with a group on purpose: when the repository's root directory
//! is setgid or group-writable (e.g. `chgrp lifeboat repo && chmod 2770 repo`, so that
//! PostgreSQL's `archive_command`, running as `postgres`, can add WAL), new directories
//! get the root's group bits and new files its group read and write bits. Others never
//! get any.
//!
//! OpenDAL's filesystem service creates files and directories with the process's umask
//! and has no option for modes, so directories are created here before it writes, and
//! each file is chmodded once in place. Its parent directory is already private, so
//! nobody else can open the file in between.

use std::fs::{DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Modes {
    pub dir: u32,
    pub file: u32,
}

const SETGID: u32 = 0o2000;

impl Modes {
    /// The modes for a repository whose root directory has `root_mode`.
    pub fn for_root_mode(root_mode: u32) -> Modes {
        let shared = root_mode & SETGID != 0 || root_mode & 0o020 != 0;
        let group = if shared { root_mode & 0o070 } else { 0 };
        Modes {
            // Setting a mode without setgid would clear the bit a new directory inherits,
            // and files below it would then get their creator's group.
            dir: 0o700 | group | (root_mode & SETGID),
            file: 0o600 | (group & 0o060),
        }
    }

    /// Creates `root` if it is missing (private, or as its parents' umask says for the
    /// parents), and its temporary directory `tmp`; returns the modes for what goes in.
    pub fn prepare(root: &Path, tmp: &Path) -> io::Result<Modes> {
        if !root.exists() {
            if let Some(parent) = root.parent() {
                std::fs::create_dir_all(parent)?;
            }
            create_dir(root, 0o700)?;
        }
        let modes = Modes::for_root_mode(std::fs::metadata(root)?.mode());
        if !tmp.exists() {
            create_dir(tmp, modes.dir)?;
        }
        Ok(modes)
    }

    /// Creates the missing directories between `root` and object `name`.
    pub fn make_parents(&self, root: &Path, name: &str) -> io::Result<()> {
        let Some((dirs, _)) = name.trim_start_matches('/').rsplit_once('/') else {
            return Ok(());
        };
        if root.join(dirs).is_dir() {
            return Ok(());
        }
        let mut path = root.to_path_buf();
        for part in dirs.split('/').filter(|p| !p.is_empty()) {
            path.push(part);
            create_dir(&path, self.dir)?;
        }
        Ok(())
    }

    /// Gives a file just written its mode.
    pub fn set_file(&self, path: &Path) -> io::Result<()> {
        std::fs::set_permissions(path, Permissions::from_mode(self.file))
    }
}

/// Creates `path` with exactly `mode` (the umask would take group bits away from a shared
/// repository); one that exists already (another writer was first) is left as it is.
fn create_dir(path: &Path, mode: u32) -> io::Result<()> {
    match DirBuilder::new().mode(mode).create(path) {
        Ok(()) => std::fs::set_permissions(path, Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_unless_the_root_is_shared_on_purpose() {
        let private = Modes {
            dir: 0o700,
            file: 0o600,
        };
        // A plain `mkdir` under umask 022 shares nothing.
        assert_eq!(Modes::for_root_mode(0o40755), private);
        assert_eq!(Modes::for_root_mode(0o40700), private);
        assert_eq!(
            Modes::for_root_mode(0o42770),
            Modes {
                dir: 0o2770,
                file: 0o660
            }
        );
        assert_eq!(
            Modes::for_root_mode(0o42750),
            Modes {
                dir: 0o2750,
                file: 0o640
            }
        );
        assert_eq!(
            Modes::for_root_mode(0o40777),
            Modes {
                dir: 0o770,
                file: 0o660
            }
        );
    }
}
