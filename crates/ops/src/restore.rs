//! Restoring one source as it was at a point in time: a file (a SQLite database, from a
//! snapshot or rolled forward through its replication stream) into a file, or a directory
//! (an uploads folder) from the newest snapshot at or before the moment into a directory.
//! What the CLI's `restore --source` and the agent's restore to scratch space share.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Result};
use chrono::{DateTime, Utc};
use lifeboat_repo::tree::escape_path;
use lifeboat_repo::{Id, Repository};
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::restore::{restore_tree, RestoreOptions};
use lifeboat_sources::timeline;
use lifeboat_sources::Progress;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::point_in_time::PointInTime;
use crate::timeline::PointKind;

/// `lifeboat restore --source ... --json`, and what a restore to scratch space reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreReport {
    /// The path as backed up.
    pub source: String,
    /// The moment asked for.
    pub at: String,
    pub restore_point: RestoredPoint,
    /// The file (for a file source) or directory (for a directory source) written.
    pub target: PathBuf,
    pub bytes: u64,
    /// SQLite's `integrity_check` and `foreign_key_check` passed on what was restored.
    pub checked: bool,
    pub seconds: f64,
    /// When a later restore point lies in the same second as the moment asked for: how to
    /// name it instead.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoredPoint {
    pub time: DateTime<Utc>,
    pub kind: PointKind,
    /// The snapshot's id (64 hex digits).
    #[schemars(with = "String")]
    pub snapshot: Id,
    /// The last stream segment rolled forward through.
    pub segment: Option<u64>,
    /// The transaction restored up to (`--at tx:N`).
    pub transaction: Option<u64>,
}

/// Restores what was backed up at `location` as it was at `at`: a file into `into` (a
/// file, or a directory to put it in), a directory into the directory `into`. Nothing
/// existing is replaced unless `force`.
pub fn source(
    repo: &Repository,
    location: &str,
    at: PointInTime,
    into: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    if let Some(url) = DatabaseUrl::parse(location) {
        bail!(
            "{} is a database server: restore one of its dumps with `lifeboat restore SNAPSHOT --into URL`",
            url?.redacted()
        );
    }
    ensure!(
        matches!(
            at,
            PointInTime::Latest | PointInTime::At(_) | PointInTime::Transaction(_)
        ),
        "a file or directory restores to latest, a time or tx:N, not {at}"
    );
    let source = timeline::source_path(location)?;
    let now = Utc::now();
    let instant = at.instant(now);
    let started = Instant::now();
    let index = repo.load_index()?;
    let points = timeline::restore_points(repo, &index, &source)?;
    if points.is_empty() {
        if let Some(report) = directory(repo, &index, &source, &at, into, force, progress)? {
            return Ok(report);
        }
    }
    let transaction = match at {
        PointInTime::Transaction(number) => Some(number),
        _ => None,
    };
    let point = match transaction {
        Some(number) => timeline::choose_transaction(&points, number, &source)?,
        None => timeline::choose(&points, instant, &source)?,
    };
    let file = file_target(into, &point.node.name, force)?;
    match transaction {
        Some(number) => {
            timeline::restore_transaction(repo, &index, &points, point, number, &file, progress)?
        }
        None => timeline::restore_point(repo, &index, &points, point, &file, progress)?,
    }
    Ok(RestoreReport {
        source: source.display().to_string(),
        at: match transaction {
            Some(_) => at.to_string(),
            None => timeline::show_time(instant),
        },
        restore_point: RestoredPoint {
            time: point.time,
            kind: crate::timeline::kind_of(point),
            snapshot: point.snapshot,
            segment: point.segment.as_ref().map(|s| s.seq),
            transaction,
        },
        target: file,
        bytes: point.node.size,
        checked: point.node.sqlite,
        seconds: started.elapsed().as_secs_f64(),
        note: match transaction {
            Some(_) => None,
            None => timeline::later_in_same_second(&points, point, instant),
        },
    })
}

/// A directory source: the newest snapshot at or before `at` that holds it, restored
/// into the directory `into`; `None` when no snapshot holds it.
fn directory(
    repo: &Repository,
    index: &lifeboat_repo::index::MasterIndex,
    source: &Path,
    at: &PointInTime,
    into: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<Option<RestoreReport>> {
    let wanted = source.display().to_string();
    let holding = crate::timeline::snapshots_of_directory(repo, source)?;
    if holding.is_empty() {
        return Ok(None);
    }
    ensure!(
        !matches!(at, PointInTime::Transaction(_)),
        "{wanted} is a directory: it has snapshots, not transactions; give a time"
    );
    let instant = at.instant(Utc::now());
    let Some(chosen) = holding
        .iter()
        .rev()
        .find(|s| timeline::at_or_before(s.snapshot.time, instant))
    else {
        bail!(
            "{} is before the first snapshot of {wanted}, at {}",
            timeline::show_time(instant),
            timeline::show_time(holding[0].snapshot.time)
        );
    };
    let occupied = std::fs::read_dir(into).is_ok_and(|mut d| d.next().is_some());
    ensure!(
        force || !occupied,
        "{} is not empty; restore into a new directory or add --force to restore over it",
        escape_path(into)
    );
    let root = source
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let started = Instant::now();
    let stats = restore_tree(
        repo,
        index,
        chosen.snapshot.tree,
        into,
        &RestoreOptions {
            include: vec![root],
        },
        progress,
    )?;
    Ok(Some(RestoreReport {
        source: wanted,
        at: timeline::show_time(instant),
        restore_point: RestoredPoint {
            time: chosen.snapshot.time,
            kind: PointKind::Snapshot,
            snapshot: chosen.id,
            segment: None,
            transaction: None,
        },
        target: into.to_path_buf(),
        bytes: stats.bytes,
        checked: stats.databases > 0,
        seconds: started.elapsed().as_secs_f64(),
        note: None,
    }))
}

/// The file to restore one stream or database into: `target`, or `target/name` when it
/// is a directory; an existing file is replaced only with `force`. `name` comes from the
/// repository, so it must be one plain path component (the tree rules): an absolute name
/// or `..` would leave the target.
pub fn file_target(target: &Path, name: &str, force: bool) -> Result<PathBuf> {
    let file = if target.is_dir() {
        if let Err(problem) = lifeboat_repo::tree::check_name(name.as_bytes()) {
            bail!(
                "refusing to restore into {}: {problem}",
                escape_path(target)
            );
        }
        target.join(name)
    } else {
        target.to_path_buf()
    };
    // `symlink_metadata`: a symlink there counts as existing (it is replaced, not followed).
    ensure!(
        force || std::fs::symlink_metadata(&file).is_err(),
        "{} already exists; restore elsewhere or add --force to replace it",
        escape_path(&file)
    );
    Ok(file)
}
