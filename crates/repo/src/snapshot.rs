//! Snapshot manifests: one restore point each, stored sealed at `snapshots/<id>`.

use serde::{Deserialize, Serialize};

use crate::id::Id;

/// The version of the snapshot manifest this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SnapshotSource {
    /// Files and directories; the root tree holds one entry per backed-up path.
    Files,
    /// The standard output of a command, stored as one file named `name` in the root tree.
    Command { command: String, name: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    pub files: u64,
    pub dirs: u64,
    /// Bytes of file content in the snapshot.
    pub total_bytes: u64,
    /// Bytes of blobs (file content and trees) that were new to the repository, before
    /// compression.
    pub new_bytes: u64,
    /// Bytes this snapshot's session added to storage (packs, after compression and
    /// encryption).
    pub stored_bytes: u64,
    pub new_blobs: u64,
    pub duration_ms: u64,
    /// Pages of SQLite databases in the snapshot, and how many of them were stored anew
    /// (the rest were unchanged since the parent snapshot).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub database_pages: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub changed_pages: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub time: chrono::DateTime<chrono::Utc>,
    pub host: String,
    pub username: String,
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub pinned: bool,
    pub source: SnapshotSource,
    pub tree: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    pub summary: SnapshotSummary,
}

/// A snapshot with the id it is stored under.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub id: Id,
    pub snapshot: Snapshot,
}

pub fn snapshot_name(id: &Id) -> String {
    format!("snapshots/{id}")
}
