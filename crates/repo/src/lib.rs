//! The Lifeboat repository: an encrypted, deduplicated, crash-safe store of restore points.
//!
//! This crate knows nothing of databases or filesystems beyond what a tree records: its
//! callers hand it streams and trees, it hands back ids. See `docs/FORMAT.md` for the
//! on-disk format and `ARCHITECTURE.md` for the invariants.

pub mod check;
pub mod chunker;
pub mod config;
pub mod copy;
pub mod crypto;
pub mod error;
pub mod fault;
mod housekeeping;
pub mod id;
pub mod index;
pub mod keys;
mod labelled;
pub mod lock;
pub mod mysql_binlog;
pub mod pack;
pub mod pagemap;
pub mod pg_wal;
pub mod prune;
pub mod reachable;
pub mod repair;
pub mod repository;
pub mod retention;
pub mod segment;
pub mod session;
pub mod snapshot;
pub mod snapshot_filter;
pub mod tree;

pub use error::{RepoError, Result};
pub use id::Id;
pub use repository::Repository;

/// This machine's host name, as recorded in snapshots, keys and locks.
pub fn hostname() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}
