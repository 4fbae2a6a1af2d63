//! The restore drill: restore a restore point into a scratch place, check it, time it,
//! record the result in the repository, and always clean up.
//!
//! SQLite: a temporary file, `integrity_check` and `foreign_key_check`. PostgreSQL and
//! MySQL/MariaDB logical dumps: a temporary database on the same server, whose row counts
//! must match what the dump recorded. PostgreSQL base backups: a throwaway cluster
//! (`cluster.rs`). MySQL/MariaDB with an archived binlog: point-in-time recovery into a
//! temporary database (`binlog.rs`). Files: a temporary directory (every blob checked).
//! Then the source's `checks` from lifeboat.toml: SQL that must return true.

pub mod binlog;
pub mod cluster;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use lifeboat_repo::snapshot::{Engine, SnapshotSource, StoredSnapshot};
use lifeboat_repo::Repository;
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::dump::Server;
use lifeboat_sources::timeline;

use crate::point_in_time::PointInTime;
use crate::report::{CheckResult, DrillReport};
use crate::subject::Subject;

/// What to drill.
pub struct DrillOptions<'a> {
    /// `latest`, `random` (any restore point in the window) or a time.
    pub at: &'a str,
    /// A PostgreSQL server: recover a base backup with its WAL even when dumps exist.
    pub physical: bool,
    /// How PostgreSQL runs lifeboat for archived WAL: the whole command line for the
    /// given arguments (the front end knows the binary and how it reaches the repository).
    pub lifeboat_command: &'a dyn Fn(&str) -> Result<String>,
}

/// Drills `subject` and records the result in its repository. A failed drill is a
/// report with `passed: false` and the reason, not an error.
pub fn run(subject: &Subject, options: &DrillOptions) -> Result<DrillReport> {
    let started = Instant::now();
    let began = Utc::now();
    let scratch = tempfile::Builder::new()
        .prefix("lifeboat-drill-")
        .tempdir()
        .context("cannot create a scratch directory")?;
    let mut record = DrillReport {
        time: began,
        host: lifeboat_repo::hostname(),
        source: subject.name.clone(),
        passed: false,
        reason: None,
        restore_point: None,
        snapshot: None,
        rto_seconds: 0.0,
        rpo_seconds: None,
        checks: Vec::new(),
    };
    let outcome = drill(subject, options, scratch.path(), &mut record, started);
    record.rto_seconds = started.elapsed().as_secs_f64().max(record.rto_seconds);
    record.rpo_seconds = record
        .restore_point
        .map(|t| (began - t).num_milliseconds() as f64 / 1000.0);
    match outcome {
        Ok(()) if record.checks.iter().all(|c| c.passed) => record.passed = true,
        Ok(()) => {
            let failed: Vec<&str> = record
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.check.as_str())
                .collect();
            record.reason = Some(format!("check failed: {}", failed.join("; ")));
        }
        Err(e) => record.reason = Some(crate::one_line(&e)),
    }
    drop(scratch);
    if let Err(e) = subject.repo.save_drill_record(&record) {
        tracing::warn!("cannot record the drill in the repository: {e}");
    }
    Ok(record)
}

fn drill(
    subject: &Subject,
    options: &DrillOptions,
    scratch: &Path,
    record: &mut DrillReport,
    started: Instant,
) -> Result<()> {
    if let Some(url) = DatabaseUrl::parse(&subject.location) {
        let url = url?;
        let snapshots = subject.repo.list_snapshots()?;
        let dumps = dumps_of(&snapshots, subject, &url);
        let physical = options.physical
            || (url.engine == Engine::Postgres
                && dumps.is_empty()
                && cluster::has_base_backups(&snapshots, &url));
        if physical {
            return cluster::drill_physical(
                subject, options, &url, &snapshots, scratch, record, started,
            );
        }
        if url.engine == Engine::Mysql {
            if let Some(window) = binlog::window(&subject.repo, &snapshots, &url)? {
                return binlog::drill(subject, options, &url, window, record, started);
            }
        }
        return drill_database(subject, options, &url, dumps, record, started);
    }
    let path = timeline::source_path(&subject.location)?;
    let repo = &subject.repo;
    let index = repo.load_index()?;
    let points = timeline::restore_points(repo, &index, &path)?;
    if points.iter().any(|p| p.node.sqlite) {
        let point = match Pick::parse(options.at)? {
            Pick::Random => &points[random_below(points.len())],
            Pick::AtOrBefore(at) => timeline::choose(&points, at, &path)?,
        };
        record.restore_point = Some(point.time);
        record.snapshot = Some(point.snapshot.to_hex());
        let file = scratch.join("drill.db");
        timeline::restore_point(
            repo,
            &index,
            &points,
            point,
            &file,
            &lifeboat_sources::NoProgress,
        )?;
        lifeboat_sources::sqlite::check(&file)?;
        record
            .checks
            .push(passed("integrity_check and foreign_key_check"));
        let db = rusqlite::Connection::open(&file)?;
        record.rto_seconds = started.elapsed().as_secs_f64();
        for sql in &subject.checks {
            let result = db
                .query_row(sql, [], |row| row.get::<_, rusqlite::types::Value>(0))
                .map_err(|e| e.to_string())
                .map(|v| truthy_sqlite(&v));
            record.checks.push(verdict(sql, result));
        }
        return Ok(());
    }
    // Files: the newest snapshot holding the path (tagged by the agent, or by its paths).
    let tag = crate::tags::source_tag(&subject.name);
    let snapshots: Vec<StoredSnapshot> = repo
        .list_snapshots()?
        .into_iter()
        .filter(|s| {
            s.snapshot.tags.contains(&tag) || s.snapshot.paths.iter().any(|p| Path::new(p) == path)
        })
        .collect();
    let what = format!("snapshot of {}", subject.location);
    let snapshot = pick(snapshots, Pick::parse(options.at)?, &what)?;
    record.restore_point = Some(snapshot.snapshot.time);
    record.snapshot = Some(snapshot.id.to_hex());
    let target: PathBuf = scratch.join("files");
    let stats = lifeboat_sources::restore::restore_tree(
        repo,
        &index,
        snapshot.snapshot.tree,
        &target,
        &lifeboat_sources::restore::RestoreOptions::default(),
        &lifeboat_sources::NoProgress,
    )?;
    let expected = snapshot.snapshot.summary.files;
    record.checks.push(verdict(
        "every file restored and checked",
        Ok(stats.files == expected),
    ));
    record.rto_seconds = started.elapsed().as_secs_f64();
    Ok(())
}

fn drill_database(
    subject: &Subject,
    options: &DrillOptions,
    url: &DatabaseUrl,
    dumps: Vec<StoredSnapshot>,
    record: &mut DrillReport,
    started: Instant,
) -> Result<()> {
    let what = format!("dump of {}", url.redacted());
    let snapshot = pick(dumps, Pick::parse(options.at)?, &what)?;
    record.restore_point = Some(snapshot.snapshot.time);
    record.snapshot = Some(snapshot.id.to_hex());
    let scratch = ScratchDatabase::restore(&subject.repo, &snapshot, url, "drill")?;
    record.checks.push(CheckResult {
        check: "restore succeeded; tables and row counts match the dump".into(),
        passed: true,
        detail: Some(format!(
            "{} tables, {} rows",
            scratch.restored.tables, scratch.restored.rows
        )),
    });
    record.rto_seconds = started.elapsed().as_secs_f64();
    for sql in &subject.checks {
        let result = scratch
            .client
            .query_in(&scratch.name, sql)
            .map_err(|e| e.to_string())
            .map(|text| truthy_text(&text));
        record.checks.push(verdict(sql, result));
    }
    Ok(())
}

/// Which of a source's snapshots a drill (or a row-level command) restores.
enum Pick {
    Random,
    /// The newest at or before this time (`latest` is now).
    AtOrBefore(DateTime<Utc>),
}

impl Pick {
    fn parse(at: &str) -> Result<Pick> {
        let now = Utc::now();
        Ok(
            match PointInTime::parse(at, now).map_err(anyhow::Error::msg)? {
                PointInTime::Random => Pick::Random,
                at @ (PointInTime::Latest | PointInTime::At(_)) => {
                    Pick::AtOrBefore(at.instant(now))
                }
                other => bail!("a drill restores latest, random or a time, not {other}"),
            },
        )
    }
}

/// The snapshot `pick` names among `snapshots` (any order); `what` names them in errors.
fn pick(mut snapshots: Vec<StoredSnapshot>, pick: Pick, what: &str) -> Result<StoredSnapshot> {
    snapshots.sort_by_key(|s| s.snapshot.time);
    let Some(first) = snapshots.first().map(|s| s.snapshot.time) else {
        bail!("no {what} in this repository");
    };
    match pick {
        Pick::Random => Ok(snapshots.swap_remove(random_below(snapshots.len()))),
        Pick::AtOrBefore(at) => {
            snapshots.retain(|s| timeline::at_or_before(s.snapshot.time, at));
            snapshots.pop().with_context(|| {
                format!(
                    "no {what} at or before {}: the first is from {}",
                    timeline::show_time(at),
                    timeline::show_time(first)
                )
            })
        }
    }
}

/// The dumps of `url`'s server among `snapshots`: snapshots of that server, or ones
/// tagged with the source's name.
fn dumps_of(
    snapshots: &[StoredSnapshot],
    subject: &Subject,
    url: &DatabaseUrl,
) -> Vec<StoredSnapshot> {
    let tag = crate::tags::source_tag(&subject.name);
    let server = url.server();
    snapshots
        .iter()
        .filter(|s| {
            matches!(&s.snapshot.source, SnapshotSource::Database(d) if d.server == server)
                || s.snapshot.tags.contains(&tag)
        })
        .cloned()
        .collect()
}

/// The newest dump of `url`'s database at or before `at`.
pub fn dump_at(subject: &Subject, url: &DatabaseUrl, at: DateTime<Utc>) -> Result<StoredSnapshot> {
    let dumps = dumps_of(&subject.repo.list_snapshots()?, subject, url);
    pick(
        dumps,
        Pick::AtOrBefore(at),
        &format!("dump of {}", url.redacted()),
    )
}

/// A database dump restored into a scratch database beside the source's (same server),
/// dropped again when this is dropped, whatever happened in between.
pub struct ScratchDatabase {
    pub name: String,
    pub engine: Engine,
    pub restored: lifeboat_sources::dump::Restored,
    pub client: Box<dyn Server>,
}

impl ScratchDatabase {
    pub fn restore(
        repo: &Repository,
        snapshot: &StoredSnapshot,
        url: &DatabaseUrl,
        purpose: &str,
    ) -> Result<ScratchDatabase> {
        let SnapshotSource::Database(dump) = &snapshot.snapshot.source else {
            bail!("snapshot {} is not a database dump", snapshot.id.short());
        };
        let index = repo.load_index()?;
        let (dumped, node) = lifeboat_sources::dump::find_database(
            repo,
            &index,
            &snapshot.snapshot.tree,
            dump,
            url.database().as_deref(),
        )?;
        let name = format!(
            "{}_lifeboat_{purpose}_{}",
            dumped.name,
            &lifeboat_repo::Id::random().to_hex()[..8]
        );
        let scratch = url.with_database(&name);
        let client: Box<dyn Server> = match dump.engine {
            Engine::Postgres => Box::new(lifeboat_sources::postgres::Psql::new(&scratch)?),
            Engine::Mysql => Box::new(lifeboat_sources::mysql::Client::new(&scratch)?),
        };
        let restore = match dump.engine {
            Engine::Postgres => lifeboat_sources::postgres::logical::restore,
            Engine::Mysql => lifeboat_sources::mysql::restore,
        };
        let mut database = ScratchDatabase {
            name,
            engine: dump.engine.clone(),
            restored: Default::default(),
            client,
        };
        database.restored = restore(
            repo,
            &index,
            &node,
            dumped,
            &scratch,
            false,
            &lifeboat_sources::NoProgress,
        )?;
        Ok(database)
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Err(e) = self.client.drop_database(&self.name) {
            tracing::warn!("could not drop the scratch database {}: {e}", self.name);
        }
    }
}

fn passed(check: &str) -> CheckResult {
    CheckResult {
        check: check.into(),
        passed: true,
        detail: None,
    }
}

pub fn verdict(check: &str, result: std::result::Result<bool, String>) -> CheckResult {
    match result {
        Ok(true) => passed(check),
        Ok(false) => CheckResult {
            check: check.into(),
            passed: false,
            detail: Some("returned false".into()),
        },
        Err(e) => CheckResult {
            check: check.into(),
            passed: false,
            detail: Some(e),
        },
    }
}

pub fn truthy_sqlite(value: &rusqlite::types::Value) -> bool {
    use rusqlite::types::Value;
    match value {
        Value::Integer(n) => *n != 0,
        Value::Real(x) => *x != 0.0,
        Value::Text(t) => truthy_text(t),
        Value::Null | Value::Blob(_) => false,
    }
}

pub fn truthy_text(text: &str) -> bool {
    matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "t" | "true" | "1" | "yes"
    )
}

pub fn random_below(n: usize) -> usize {
    let random = lifeboat_repo::Id::random().0;
    u64::from_le_bytes(random[..8].try_into().expect("8 bytes")) as usize % n.max(1)
}
