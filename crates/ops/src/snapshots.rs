//! The snapshots of a repository as a list: what `GET /api/v1/snapshots` serves (the
//! CLI's `snapshots --json` prints each snapshot whole).

use chrono::{DateTime, Utc};
use lifeboat_repo::snapshot::{SnapshotSource, StoredSnapshot};
use lifeboat_repo::snapshot_filter::SnapshotFilter;
use lifeboat_repo::{Id, Repository};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotEntry {
    /// The snapshot's id, 64 hex digits.
    #[schemars(with = "String")]
    pub id: Id,
    pub time: DateTime<Utc>,
    pub host: String,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    /// Retention never removes it.
    pub pinned: bool,
    pub kind: SnapshotKind,
    pub files: u64,
    /// What the source held.
    pub total_bytes: u64,
    /// What this snapshot added to the repository (after deduplication and compression).
    pub stored_bytes: u64,
    /// Paths it lacks or holds in a lesser form.
    pub warnings: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    Files,
    Command,
    /// Logical dumps of a database server.
    Database,
    /// A PostgreSQL base backup.
    PgBase,
}

/// The snapshots `filter` matches, oldest first.
pub fn list(repo: &Repository, filter: &SnapshotFilter) -> anyhow::Result<Vec<SnapshotEntry>> {
    let mut snapshots: Vec<StoredSnapshot> = repo
        .list_snapshots()?
        .into_iter()
        .filter(|s| filter.matches(&s.snapshot))
        .collect();
    snapshots.sort_by_key(|s| s.snapshot.time);
    Ok(snapshots.iter().map(entry).collect())
}

fn entry(stored: &StoredSnapshot) -> SnapshotEntry {
    let s = &stored.snapshot;
    SnapshotEntry {
        id: stored.id,
        time: s.time,
        host: s.host.clone(),
        paths: s.paths.clone(),
        tags: s.tags.clone(),
        pinned: s.pinned,
        kind: match s.source {
            SnapshotSource::Files => SnapshotKind::Files,
            SnapshotSource::Command { .. } => SnapshotKind::Command,
            SnapshotSource::Database(_) => SnapshotKind::Database,
            SnapshotSource::PgBase(_) => SnapshotKind::PgBase,
        },
        files: s.summary.files,
        total_bytes: s.summary.total_bytes,
        stored_bytes: s.summary.stored_bytes,
        warnings: s.warnings.len(),
    }
}
