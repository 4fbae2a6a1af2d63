//! The timeline use case: every restore point of one source, as `lifeboat timeline --json`
//! prints it and the agent's API serves it. For a file (a SQLite database, replicated or
//! not) every snapshot and stream segment, and the spans a restore can reach (a run of
//! segments after a missing one cannot be reached); for a directory (an uploads folder)
//! the snapshots that hold it; for a database server its logical dumps and the windows
//! its base backups and WAL archive cover.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use lifeboat_repo::snapshot::{SnapshotSource, StoredSnapshot};
use lifeboat_repo::{Id, Repository};
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::postgres::recovery::base_backups;
use lifeboat_sources::postgres::wal::archive_reach;
use lifeboat_sources::timeline::{self, RestorePoint};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `lifeboat timeline --json`, and `GET /api/v1/sources/{source}/timeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimelineReport {
    /// The path as backed up, or the server's URL without its password.
    pub source: String,
    pub kind: TimelineKind,
    /// The first and last restorable moment (none without a restore point). For a
    /// PostgreSQL cluster, its base backups' and archive's window.
    pub window: Option<Window>,
    /// Every restore point of a file or directory, oldest first.
    pub restore_points: Vec<TimelinePoint>,
    /// A file's restore points as spans: each snapshot, and each continuous run of one
    /// generation's stream segments (every moment from its first to its last).
    pub spans: Vec<Span>,
    /// A database server's logical dumps, oldest first.
    pub dumps: Vec<Dump>,
    /// A PostgreSQL server's clusters: base backups and how far the WAL archive reaches.
    pub clusters: Vec<Cluster>,
    /// A MySQL/MariaDB server's archived binary log, when it has one.
    pub binlog: Option<BinlogArchive>,
}

/// How far a MySQL/MariaDB server's binlog archive reaches: point-in-time recovery runs
/// from each dump with a binlog position to the last archived commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BinlogArchive {
    pub pieces: usize,
    /// The first archived file.
    pub first_file: String,
    /// Where the unbroken archive ends (`file:byte`).
    pub reaches: String,
    /// The newest archived commit (whole seconds, as the binlog keeps them).
    pub last_commit: Option<DateTime<Utc>>,
    /// The first hole after the unbroken run, when the archive holds later files:
    /// recovery cannot cross it.
    pub gap: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    File,
    Directory,
    DatabaseServer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    Snapshot,
    Segment,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimelinePoint {
    /// To the millisecond, as `restore --at` takes it: this time selects this point.
    pub time: DateTime<Utc>,
    pub kind: PointKind,
    /// The snapshot's id, 64 hex digits (for a segment, its generation's base).
    #[schemars(with = "String")]
    pub snapshot: Id,
    /// The segment's number in its generation.
    pub segment: Option<u64>,
    /// The stream's transactions the segment holds (`restore --at tx:N`).
    pub transactions: Option<Transactions>,
    /// A segment's stored size; a snapshot's, the file's size (a directory's, the
    /// snapshot's total).
    pub bytes: u64,
    /// False after a missing segment of the same generation: roll-forward stops there.
    pub restorable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transactions {
    pub first: u64,
    pub last: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub kind: PointKind,
    /// The snapshot's id (64 hex digits).
    #[schemars(with = "String")]
    pub snapshot: Id,
    /// For a run of segments: its first and last numbers.
    pub segments: Option<SegmentRange>,
    pub transactions: Option<Transactions>,
    /// The run starts after this missing segment: none of its moments can be restored.
    pub after_gap: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentRange {
    pub first: u64,
    pub last: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dump {
    pub time: DateTime<Utc>,
    /// The snapshot's id (64 hex digits).
    #[schemars(with = "String")]
    pub snapshot: Id,
    pub databases: Vec<String>,
    /// A MySQL/MariaDB dump's binlog position (`file:byte`), where a replay starts.
    pub binlog: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// The cluster's system identifier.
    pub cluster: String,
    pub archived_files: usize,
    /// When the oldest base backup finished: the earliest moment recovery reaches.
    pub from: Option<DateTime<Utc>>,
    /// The last WAL file the archive holds without a gap, from any base backup.
    pub to_wal: Option<String>,
    /// The last archived commit (read from the WAL), when one could be read.
    pub to: Option<DateTime<Utc>>,
    pub base_backups: Vec<BaseBackup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BaseBackup {
    /// The snapshot's id (64 hex digits).
    #[schemars(with = "String")]
    pub snapshot: Id,
    pub finished: DateTime<Utc>,
    pub timeline: u32,
    pub start_wal: String,
    pub end_wal: String,
    /// How far the archive reaches from this backup's first WAL file (none: that file is
    /// missing).
    pub wal_reaches: Option<String>,
    /// The first missing WAL file after that reach, when later ones exist.
    pub wal_gap: Option<String>,
}

/// The timeline of what was backed up at `location`: a path, a `sqlite:`/`file:` URL, or
/// a `postgres://`/`mysql://` server.
pub fn of(repo: &Repository, location: &str) -> anyhow::Result<TimelineReport> {
    if let Some(url) = DatabaseUrl::parse(location) {
        return server(repo, &url?);
    }
    let source = timeline::source_path(location)?;
    let index = repo.load_index()?;
    let points = timeline::restore_points(repo, &index, &source)?;
    if points.is_empty() {
        if let Some(report) = directory(repo, &source)? {
            return Ok(report);
        }
    }
    Ok(file(&source, &points))
}

/// The report of a file's restore points.
pub fn file(source: &Path, points: &[RestorePoint]) -> TimelineReport {
    let unreachable = first_missing_segments(points);
    let restore_points: Vec<TimelinePoint> = points
        .iter()
        .map(|p| TimelinePoint {
            time: to_millis(p.time),
            kind: kind_of(p),
            snapshot: p.snapshot,
            segment: p.segment.as_ref().map(|s| s.seq),
            transactions: p.segment.as_ref().and_then(|s| s.transactions).map(range),
            bytes: p.segment.as_ref().map_or(p.node.size, |s| s.stored_bytes),
            restorable: p.segment.as_ref().is_none_or(|s| {
                unreachable
                    .get(s.generation.as_str())
                    .is_none_or(|missing| s.seq < *missing)
            }),
        })
        .collect();
    TimelineReport {
        source: source.display().to_string(),
        kind: TimelineKind::File,
        window: window(
            restore_points
                .iter()
                .filter(|p| p.restorable)
                .map(|p| p.time),
        ),
        spans: spans(points),
        restore_points,
        dumps: Vec::new(),
        clusters: Vec::new(),
        binlog: None,
    }
}

/// The snapshots that hold the directory `source` as one of their roots; `None` when no
/// snapshot does (then it is reported as a file with no restore point).
fn directory(repo: &Repository, source: &Path) -> anyhow::Result<Option<TimelineReport>> {
    let wanted = source.display().to_string();
    let snapshots = snapshots_of_directory(repo, source)?;
    if snapshots.is_empty() {
        return Ok(None);
    }
    let restore_points: Vec<TimelinePoint> = snapshots
        .iter()
        .map(|s| TimelinePoint {
            time: to_millis(s.snapshot.time),
            kind: PointKind::Snapshot,
            snapshot: s.id,
            segment: None,
            transactions: None,
            bytes: s.snapshot.summary.total_bytes,
            restorable: true,
        })
        .collect();
    let spans = restore_points
        .iter()
        .map(|p| Span {
            from: p.time,
            to: p.time,
            kind: PointKind::Snapshot,
            snapshot: p.snapshot,
            segments: None,
            transactions: None,
            after_gap: None,
        })
        .collect();
    Ok(Some(TimelineReport {
        source: wanted,
        kind: TimelineKind::Directory,
        window: window(restore_points.iter().map(|p| p.time)),
        restore_points,
        spans,
        dumps: Vec::new(),
        clusters: Vec::new(),
        binlog: None,
    }))
}

/// The snapshots that hold the directory `source` as one of their roots, oldest first.
pub fn snapshots_of_directory(
    repo: &Repository,
    source: &Path,
) -> anyhow::Result<Vec<StoredSnapshot>> {
    let wanted = source.display().to_string();
    let mut snapshots: Vec<StoredSnapshot> = repo
        .list_snapshots()?
        .into_iter()
        .filter(|s| s.snapshot.source == SnapshotSource::Files)
        .filter(|s| s.snapshot.paths.contains(&wanted))
        .collect();
    snapshots.sort_by_key(|s| s.snapshot.time);
    Ok(snapshots)
}

/// A database server's dumps and, for PostgreSQL, its clusters' recovery windows.
fn server(repo: &Repository, url: &DatabaseUrl) -> anyhow::Result<TimelineReport> {
    let snapshots = repo.list_snapshots()?;
    let server = url.server();
    let database = url.database();
    let dumps: Vec<Dump> = snapshots
        .iter()
        .filter_map(|s| match &s.snapshot.source {
            SnapshotSource::Database(d) if d.server == server => {
                let names: Vec<String> = d.databases.iter().map(|db| db.name.clone()).collect();
                let holds = database
                    .as_deref()
                    .is_none_or(|want| names.iter().any(|n| n == want));
                let binlog = d
                    .databases
                    .iter()
                    .filter(|db| database.as_deref().is_none_or(|want| db.name == want))
                    .find_map(|db| db.binlog.as_ref())
                    .map(|p| format!("{}:{}", p.file, p.position));
                holds.then(|| Dump {
                    time: to_millis(s.snapshot.time),
                    snapshot: s.id,
                    databases: names,
                    binlog,
                })
            }
            _ => None,
        })
        .collect();
    let bases: Vec<_> = base_backups(&snapshots, None)
        .into_iter()
        .filter(|(_, meta)| meta.server == server)
        .collect();
    let mut ids: Vec<&str> = bases.iter().map(|(_, m)| m.cluster.as_str()).collect();
    ids.dedup();
    let mut clusters = Vec::new();
    for cluster in ids {
        let archived = repo.list_wal(cluster)?;
        let mine = || bases.iter().filter(|(_, m)| m.cluster == cluster);
        let base_backups: Vec<BaseBackup> = mine()
            .map(|(snapshot, meta)| {
                let reach = archive_reach(&archived, &meta.start_wal, meta.wal_segment_size);
                BaseBackup {
                    snapshot: snapshot.id,
                    finished: to_millis(meta.finished),
                    timeline: meta.timeline,
                    start_wal: meta.start_wal.clone(),
                    end_wal: meta.end_wal.clone(),
                    wal_reaches: reach.as_ref().map(|r| r.last.clone()),
                    wal_gap: reach.and_then(|r| r.gap),
                }
            })
            .collect();
        // The archive's end as a time: the last archived commit after the newest base
        // backup the archive reaches from (pg_waldump reads it; without it, only names).
        let end = mine().rev().find_map(|(_, meta)| {
            let reach = archive_reach(&archived, &meta.start_wal, meta.wal_segment_size)?;
            match lifeboat_sources::postgres::archive_end::archive_end(repo, meta, &reach) {
                Ok(end) => end,
                Err(e) => {
                    tracing::warn!("cannot read the archive's last commit time: {e}");
                    None
                }
            }
        });
        clusters.push(Cluster {
            cluster: cluster.to_string(),
            archived_files: archived.len(),
            from: base_backups.first().map(|b| b.finished),
            to_wal: base_backups
                .iter()
                .filter_map(|b| b.wal_reaches.clone())
                .max(),
            to: end.map(|e| to_millis(e.last_commit)),
            base_backups,
        });
    }
    let binlog = match url.engine {
        lifeboat_repo::snapshot::Engine::Mysql => binlog_archive(repo, url)?,
        lifeboat_repo::snapshot::Engine::Postgres => None,
    };
    // The archive extends the window only past a dump it can replay from.
    let replayable = dumps.iter().any(|d| d.binlog.is_some());
    let binlog_end = binlog
        .as_ref()
        .filter(|_| replayable)
        .and_then(|b| b.last_commit);
    let moments = dumps
        .iter()
        .map(|d| d.time)
        .chain(clusters.iter().flat_map(|c| c.from.into_iter().chain(c.to)))
        .chain(binlog_end);
    Ok(TimelineReport {
        source: url.redacted(),
        kind: TimelineKind::DatabaseServer,
        window: window(moments),
        restore_points: Vec::new(),
        spans: Vec::new(),
        dumps,
        clusters,
        binlog,
    })
}

fn binlog_archive(repo: &Repository, url: &DatabaseUrl) -> anyhow::Result<Option<BinlogArchive>> {
    let server = lifeboat_sources::mysql::binlog_stream::server_key(repo, url);
    let pieces = repo.list_binlog(&server)?;
    let Some(first) = pieces.first() else {
        return Ok(None);
    };
    let reach = lifeboat_repo::mysql_binlog::binlog_reach(&pieces, &first.file, 0);
    let last_commit = match lifeboat_sources::mysql::pitr::last_archived_commit(repo, &server) {
        Ok(time) => time,
        Err(e) => {
            tracing::warn!("cannot read the binlog archive's last commit: {e}");
            None
        }
    };
    Ok(Some(BinlogArchive {
        pieces: pieces.len(),
        first_file: first.file.clone(),
        reaches: reach.as_ref().and_then(|r| r.files.last()).map_or_else(
            || format!("{}:0", first.file),
            |(f, end)| format!("{f}:{end}"),
        ),
        last_commit,
        gap: reach.and_then(|r| r.gap),
    }))
}

pub(crate) fn kind_of(point: &RestorePoint) -> PointKind {
    match point.segment {
        Some(_) => PointKind::Segment,
        None => PointKind::Snapshot,
    }
}

fn range((first, last): (u64, u64)) -> Transactions {
    Transactions { first, last }
}

fn window(times: impl Iterator<Item = DateTime<Utc>>) -> Option<Window> {
    let (mut from, mut to) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
    for time in times {
        from = Some(from.map_or(time, |f| f.min(time)));
        to = Some(to.map_or(time, |t| t.max(time)));
    }
    Some(Window {
        from: from?,
        to: to?,
    })
}

/// Restore points are named to the millisecond (`timeline::at_or_before`).
fn to_millis(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time)
}

/// Per generation, its first missing segment number (segments run 1, 2, ... n).
fn first_missing_segments(points: &[RestorePoint]) -> BTreeMap<&str, u64> {
    let mut numbers: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for segment in points.iter().filter_map(|p| p.segment.as_ref()) {
        numbers
            .entry(segment.generation.as_str())
            .or_default()
            .push(segment.seq);
    }
    numbers
        .into_iter()
        .filter_map(|(generation, mut seqs)| {
            seqs.sort_unstable();
            seqs.dedup();
            let missing = seqs
                .iter()
                .zip(1u64..)
                .find(|(seq, expected)| **seq != *expected)
                .map(|(_, expected)| expected)?;
            Some((generation, missing))
        })
        .collect()
}

/// Snapshots as they are, and each generation's segments in runs of consecutive
/// numbers, ordered by their first moment.
fn spans(points: &[RestorePoint]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut generations: BTreeMap<&str, Vec<&RestorePoint>> = BTreeMap::new();
    for point in points {
        match &point.segment {
            None => spans.push(Span {
                from: to_millis(point.time),
                to: to_millis(point.time),
                kind: PointKind::Snapshot,
                snapshot: point.snapshot,
                segments: None,
                transactions: None,
                after_gap: None,
            }),
            Some(segment) => generations
                .entry(segment.generation.as_str())
                .or_default()
                .push(point),
        }
    }
    for mut members in generations.into_values() {
        members.sort_by_key(|p| p.segment.as_ref().map(|s| s.seq));
        let mut expected = 1;
        let mut run: Option<Span> = None;
        for point in members {
            let segment = point.segment.as_ref().expect("grouped segments");
            let time = to_millis(point.time);
            let transactions = segment.transactions.map(range);
            match run.as_mut().filter(|_| segment.seq == expected) {
                Some(open) => {
                    open.to = open.to.max(time);
                    if let Some(range) = open.segments.as_mut() {
                        range.last = segment.seq;
                    }
                    open.transactions = match (open.transactions, transactions) {
                        (Some(a), Some(b)) => Some(Transactions {
                            first: a.first,
                            last: b.last,
                        }),
                        (a, b) => a.or(b),
                    };
                }
                None => {
                    spans.extend(run.take());
                    run = Some(Span {
                        from: time,
                        to: time,
                        kind: PointKind::Segment,
                        snapshot: point.snapshot,
                        segments: Some(SegmentRange {
                            first: segment.seq,
                            last: segment.seq,
                        }),
                        transactions,
                        after_gap: (segment.seq != expected).then_some(expected),
                    });
                }
            }
            expected = segment.seq + 1;
        }
        spans.extend(run);
    }
    spans.sort_by_key(|s| s.from);
    spans
}
