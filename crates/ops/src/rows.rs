//! Row-level use cases: `diff` ("what changed since this morning") and `restore-rows`
//! ("bring back the customer deleted an hour ago", without rolling back anyone else's
//! work). SQLite restore points are restored into scratch files. PostgreSQL: with base
//! backups and archived WAL, the server is recovered to the exact moment in a throwaway
//! cluster (writes made after the last dump come back too); otherwise the dump is
//! restored into a scratch database on the source's server. Either is removed after.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use lifeboat_repo::snapshot::Engine;
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::postgres::recovery::RecoveryTarget;
use lifeboat_sources::postgres::{self, Psql};
use lifeboat_sources::rows::{RowsRestore, TableDiff};
use lifeboat_sources::sqlite::rows;
use lifeboat_sources::timeline;
use serde::Serialize;

use crate::drill::cluster::{base_backups_of, recover_cluster, RecoveredCluster};
use crate::drill::{dump_at, ScratchDatabase};
use crate::point_in_time::PointInTime;
use crate::subject::Subject;

/// `lifeboat diff --json`.
#[derive(Debug, Serialize)]
pub struct DiffReport {
    pub source: String,
    /// The two restore points compared.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub tables: Vec<TableDiff>,
}

/// `lifeboat restore-rows --json`.
#[derive(Debug, Serialize)]
pub struct RowsReport {
    pub source: String,
    /// The restore point the rows come from.
    pub restore_point: DateTime<Utc>,
    pub result: RowsRestore,
}

/// Which rows `restore-rows` puts back.
pub struct RowsWanted<'a> {
    /// The moment they are taken from.
    pub at: &'a str,
    pub table: &'a str,
    /// An SQL condition choosing the rows.
    pub condition: &'a str,
    /// Write them (else say what would be written).
    pub apply: bool,
    /// Also the rows an ON DELETE CASCADE removed with them.
    pub with_children: bool,
}

/// What changed in `subject` from `from` to `to` (one table, or all).
pub fn diff(
    subject: &Subject,
    from: &str,
    to: &str,
    table: Option<&str>,
    lifeboat_command: &dyn Fn(&str) -> Result<String>,
) -> Result<DiffReport> {
    let (from, to, tables) = match DatabaseUrl::parse(&subject.location) {
        Some(url) => {
            let url = url?;
            let (from, old) = postgres_at(lifeboat_command, subject, &url, from, "diff")?;
            let (to, new) = postgres_at(lifeboat_command, subject, &url, to, "diff")?;
            let tables = postgres::rows::diff(old.side(), new.side(), table)?;
            (from, to, tables)
        }
        None => {
            let dir = scratch()?;
            let (old, new): (PathBuf, PathBuf) =
                (dir.path().join("from.db"), dir.path().join("to.db"));
            let from = restore_at(subject, from, &old)?;
            let to = restore_at(subject, to, &new)?;
            (from, to, rows::diff(&old, &new, table)?)
        }
    };
    Ok(DiffReport {
        source: subject.name.clone(),
        from,
        to,
        tables,
    })
}

/// Puts back the rows `wanted` chooses as they were at `wanted.at` into the live
/// database (or, without `apply`, says what it would).
pub fn restore_rows(
    subject: &Subject,
    wanted: &RowsWanted,
    lifeboat_command: &dyn Fn(&str) -> Result<String>,
) -> Result<RowsReport> {
    let (at, result) = match DatabaseUrl::parse(&subject.location) {
        Some(url) => {
            let url = url?;
            let live = url
                .database()
                .with_context(|| format!("{}: name the live database (…/appdb)", url.redacted()))?;
            let (at, old) = postgres_at(lifeboat_command, subject, &url, wanted.at, "rows")?;
            let live_psql = Psql::new(&url)?;
            let result = postgres::rows::restore_rows(
                old.side(),
                postgres::rows::Side {
                    psql: &live_psql,
                    database: &live,
                },
                wanted.table,
                wanted.condition,
                wanted.apply,
                wanted.with_children,
            )?;
            (at, result)
        }
        None => restore_sqlite_rows(subject, wanted)?,
    };
    Ok(RowsReport {
        source: subject.name.clone(),
        restore_point: at,
        result,
    })
}

/// A past state of a PostgreSQL database, kept while this lives.
enum PastState {
    /// A dump restored into a scratch database beside the live one.
    Dump(ScratchDatabase, Psql),
    /// The server recovered to a point in a throwaway cluster (its scratch directory
    /// goes after the cluster has stopped).
    Recovered {
        psql: Psql,
        database: String,
        _cluster: RecoveredCluster,
        _dir: tempfile::TempDir,
    },
}

impl PastState {
    fn side(&self) -> postgres::rows::Side<'_> {
        match self {
            PastState::Dump(scratch, psql) => postgres::rows::Side {
                psql,
                database: &scratch.name,
            },
            PastState::Recovered { psql, database, .. } => postgres::rows::Side { psql, database },
        }
    }
}

/// PostgreSQL source `url` as it was at `at`: recovered to that moment when the
/// repository holds base backups of its server, else its newest dump at or before it.
fn postgres_at(
    lifeboat_command: &dyn Fn(&str) -> Result<String>,
    subject: &Subject,
    url: &DatabaseUrl,
    at: &str,
    purpose: &str,
) -> Result<(DateTime<Utc>, PastState)> {
    let snapshots = subject.repo.list_snapshots()?;
    let bases = base_backups_of(&snapshots, url);
    if !bases.is_empty() {
        let database = url
            .database()
            .with_context(|| format!("{}: name the database (…/appdb)", url.redacted()))?;
        let target = PointInTime::parse_for_postgres(at, Utc::now())
            .recovery_target()
            .map_err(anyhow::Error::msg)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("lifeboat-{purpose}-"))
            .tempdir()?;
        let (cluster, _, meta) = recover_cluster(
            lifeboat_command,
            &subject.repo,
            url,
            &bases,
            &target,
            &dir.path().join("cluster"),
        )?;
        let time = match (&target, cluster.replayed) {
            (RecoveryTarget::Time(time), _) => *time,
            (_, Some(replayed)) => replayed,
            _ => meta.finished,
        };
        let psql = Psql::new(&cluster.url)?;
        return Ok((
            time,
            PastState::Recovered {
                psql,
                database,
                _cluster: cluster,
                _dir: dir,
            },
        ));
    }
    let snapshot = dump_at(subject, url, timeline::parse_time(at, Utc::now())?)?;
    let scratch = ScratchDatabase::restore(&subject.repo, &snapshot, url, purpose)?;
    if scratch.engine != Engine::Postgres {
        bail!(
            "row-level diff and restore work on SQLite and PostgreSQL; {} is MySQL/MariaDB",
            url.redacted()
        );
    }
    Ok((
        snapshot.snapshot.time,
        PastState::Dump(scratch, Psql::new(url)?),
    ))
}

/// Restores the restore point of `subject` at `at` into `file`; returns its time.
fn restore_at(subject: &Subject, at: &str, file: &Path) -> Result<chrono::DateTime<chrono::Utc>> {
    let path = timeline::source_path(&subject.location)?;
    let repo = &subject.repo;
    let index = repo.load_index()?;
    let points = timeline::restore_points(repo, &index, &path)?;
    if !points.iter().any(|p| p.node.sqlite) {
        bail!(
            "{} has no SQLite restore points in this repository",
            path.display()
        );
    }
    let point = timeline::choose(
        &points,
        timeline::parse_time(at, chrono::Utc::now())?,
        &path,
    )?;
    timeline::restore_point(
        repo,
        &index,
        &points,
        point,
        file,
        &lifeboat_sources::NoProgress,
    )?;
    Ok(point.time)
}

fn scratch() -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix("lifeboat-rows-")
        .tempdir()?)
}

fn restore_sqlite_rows(
    subject: &Subject,
    wanted: &RowsWanted,
) -> Result<(DateTime<Utc>, RowsRestore)> {
    let live = timeline::source_path(&subject.location)?;
    if !live.is_file() {
        bail!(
            "{} does not exist: restore the whole database instead",
            live.display()
        );
    }
    let dir = scratch()?;
    let old = dir.path().join("at.db");
    let at = restore_at(subject, wanted.at, &old)?;
    let result = rows::restore_rows(
        &old,
        &live,
        wanted.table,
        wanted.condition,
        wanted.apply,
        wanted.with_children,
    )?;
    Ok((at, result))
}
