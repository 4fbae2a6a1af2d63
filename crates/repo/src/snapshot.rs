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
    /// Logical dumps of PostgreSQL or MySQL/MariaDB databases from one server: the root
    /// tree holds one SQL file per database and, where readable, the server's globals.
    Database(DatabaseDump),
    /// A physical base backup of a PostgreSQL cluster: the root tree is its data
    /// directory. Restorable only with the archived WAL from `start_wal` to `end_wal`,
    /// which was in the repository before this snapshot was written.
    PgBase(PgBaseBackup),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgBaseBackup {
    /// The cluster's system identifier: its WAL is archived under `wal/<cluster>/`.
    pub cluster: String,
    /// The server as a URL without password or database.
    pub server: String,
    /// PostgreSQL major version (of the data directory).
    pub version: u32,
    pub timeline: u32,
    /// WAL positions as PostgreSQL prints them (`0/2000028`).
    pub start_lsn: String,
    pub end_lsn: String,
    /// The first and last WAL files the backup needs.
    pub start_wal: String,
    pub end_wal: String,
    pub wal_segment_size: u64,
    /// When the backup ended: the earliest time it can recover to.
    pub finished: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Postgres,
    Mysql,
}

impl Engine {
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MySQL/MariaDB",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseDump {
    pub engine: Engine,
    /// The server as a URL without password or database.
    pub server: String,
    pub server_version: String,
    /// The dump tool and its version, as it reported itself.
    pub tool: String,
    pub databases: Vec<DumpedDatabase>,
    /// The file in the root tree holding roles and other server-wide objects, when the
    /// user could read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globals: Option<String>,
}

/// One database, dumped from one consistent state of its own (each database in a
/// snapshot is consistent in itself, not with the others).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpedDatabase {
    pub name: String,
    /// The file in the root tree holding its dump.
    pub file: String,
    /// Rows per table as they were in the dump, counted while it streamed by: what a
    /// restore (or a drill) must find again.
    pub tables: Vec<TableRows>,
    /// Where the server's binary log stood at the dump's consistent moment (MySQL and
    /// MariaDB with `log_bin`): point-in-time recovery replays the log from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<BinlogPosition>,
}

/// A position in a MySQL/MariaDB server's binary log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPosition {
    pub file: String,
    pub position: u64,
    /// The server's GTID position there (`0-1-42`, one per replication domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    pub name: String,
    pub rows: u64,
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

/// A snapshot as the use case that takes it knows it. [`SnapshotDraft::complete`] (or
/// `FinishedSession::save`) fills in the rest the same way for every kind of backup:
/// the format version, this host unless another is given, the user, what the write
/// session stored and how long the backup took.
#[derive(Debug, Clone)]
pub struct SnapshotDraft {
    /// When the source was read.
    pub time: chrono::DateTime<chrono::Utc>,
    /// The host recorded (default: this machine's name).
    pub host: Option<String>,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    pub pinned: bool,
    pub source: SnapshotSource,
    pub tree: Id,
    pub parent: Option<Id>,
    /// What the source holds (files, dirs, bytes, database pages); the session's part
    /// (new and stored bytes, duration) is filled in.
    pub summary: SnapshotSummary,
    pub warnings: Vec<SnapshotWarning>,
    /// When the backup began.
    pub started: std::time::Instant,
}

impl SnapshotDraft {
    /// The snapshot, with what the write session stored (`stats`).
    pub fn complete(self, stats: &crate::session::SessionStats) -> Snapshot {
        let summary = SnapshotSummary {
            new_blobs: stats.new_blobs,
            new_bytes: stats.new_bytes,
            stored_bytes: stats.stored_bytes,
            duration_ms: self.started.elapsed().as_millis() as u64,
            ..self.summary
        };
        Snapshot {
            version: SNAPSHOT_VERSION,
            time: self.time,
            host: self.host.unwrap_or_else(crate::hostname),
            username: std::env::var("USER").unwrap_or_default(),
            paths: self.paths,
            tags: self.tags,
            pinned: self.pinned,
            source: self.source,
            tree: self.tree,
            parent: self.parent,
            original: None,
            summary,
            warnings: self.warnings,
        }
    }
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
    /// For a copy: the snapshot first taken (in another repository), so copying again
    /// skips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Id>,
    pub summary: SnapshotSummary,
    /// Paths the backup skipped or stored in a lesser form (a file with the SQLite header
    /// that is not a readable database is stored as plain bytes), each with why. Absent
    /// in snapshots without any, and in those written before the field existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<SnapshotWarning>,
}

/// One path a backup could not store as it found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotWarning {
    /// The path as the backup saw it (absolute; not valid UTF-8 is shown lossily).
    pub path: String,
    /// What was wrong and what was done, e.g. "a FIFO; skipped".
    pub problem: String,
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
