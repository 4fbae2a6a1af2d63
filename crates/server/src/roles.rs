//! What each role may do. The rule that matters: an `append` token can never remove or
//! change a stored snapshot, index or pack (or any object but its own lock leases).
//!
//! - `read`: read and list everything (restore, verify, drills), and create the two kinds
//!   of record those write: `drills/` (a drill's result) and `damaged/` (a pack `verify`
//!   proved damaged; it only makes writers store more, FORMAT §10.4). Never overwrite or
//!   delete.
//! - `append`: `read`, plus create new objects of the kinds a backup, `replicate` and
//!   `pg wal-push` write (`data/`, `index/`, `snapshots/`, `locks/`, `streams/`, `wal/`, `binlog/`),
//!   and delete the lock objects this token created (a backup refreshes and releases its
//!   lease by deleting its own lock). No `config`, `keys/` (key changes) or `prune/`
//!   (notices that lead to deletions).
//! - `admin`: everything.
//!
//! "Create" means the name is free. Writing the identical bytes again is accepted (a
//! retried upload whose answer was lost must not fail); different bytes are refused.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Append,
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "read" => Some(Role::Read),
            "append" => Some(Role::Append),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Append => "append",
            Role::Admin => "admin",
        }
    }

    /// What the role is for, for refusals and `token list`.
    pub fn summary(self) -> &'static str {
        match self {
            Role::Read => "reads only (restore, verify, drills)",
            Role::Append => {
                "adds backups but never deletes or changes them; forget, prune and key changes need an admin token"
            }
            Role::Admin => "may do everything",
        }
    }
}

/// The top-level directory of an object name (`config` for `config`).
fn kind(name: &str) -> &str {
    name.split('/').next().unwrap_or("")
}

/// Whether `role` may store `name` when no object of that name exists.
pub fn may_create(role: Role, name: &str) -> bool {
    match role {
        Role::Admin => true,
        Role::Append => matches!(
            kind(name),
            "data"
                | "index"
                | "snapshots"
                | "locks"
                | "streams"
                | "wal"
                | "binlog"
                | "drills"
                | "damaged"
        ),
        Role::Read => matches!(kind(name), "drills" | "damaged"),
    }
}

/// Whether `role` may replace an existing object with different bytes.
pub fn may_overwrite(role: Role) -> bool {
    role == Role::Admin
}

/// Whether `role` may delete `name`; `created_by_caller` says whether the caller's token
/// created that object (tracked for locks only).
pub fn may_delete(role: Role, name: &str, created_by_caller: bool) -> bool {
    match role {
        Role::Admin => true,
        Role::Append => kind(name) == "locks" && created_by_caller,
        Role::Read => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_adds_but_never_removes_or_changes_backups() {
        for name in [
            "data/ab/ab12",
            "index/1",
            "snapshots/1",
            "locks/1",
            "streams/a/b/c",
            "wal/1/000000010000000000000001",
            "damaged/1",
            "drills/1",
        ] {
            assert!(may_create(Role::Append, name), "{name}");
        }
        for name in ["config", "keys/1", "prune/1"] {
            assert!(!may_create(Role::Append, name), "{name}");
        }
        assert!(!may_overwrite(Role::Append));
        for name in [
            "data/ab/ab12",
            "index/1",
            "snapshots/1",
            "streams/a/b/c",
            "wal/1/x",
            "keys/1",
            "config",
            "prune/1",
            "damaged/1",
        ] {
            assert!(!may_delete(Role::Append, name, true), "{name}");
        }
        // Its own leases only: another host's lock (a prune's, a backup's) stays.
        assert!(may_delete(Role::Append, "locks/1", true));
        assert!(!may_delete(Role::Append, "locks/1", false));
    }

    #[test]
    fn read_only_reads_and_records_drills() {
        assert!(!may_create(Role::Read, "data/ab/ab12"));
        assert!(!may_create(Role::Read, "snapshots/1"));
        assert!(!may_create(Role::Read, "locks/1"));
        assert!(may_create(Role::Read, "drills/1"));
        assert!(may_create(Role::Read, "damaged/1"));
        assert!(!may_overwrite(Role::Read));
        assert!(!may_delete(Role::Read, "locks/1", true));
        assert!(!may_delete(Role::Read, "drills/1", true));
    }

    #[test]
    fn admin_does_everything() {
        for name in ["config", "keys/1", "prune/1", "data/ab/1", "snapshots/1"] {
            assert!(may_create(Role::Admin, name));
            assert!(may_delete(Role::Admin, name, false));
        }
        assert!(may_overwrite(Role::Admin));
    }

    #[test]
    fn roles_parse_and_print() {
        for role in [Role::Read, Role::Append, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("Admin"), None);
    }
}
