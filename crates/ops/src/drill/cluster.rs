//! The physical PostgreSQL drill: a base backup restored into a throwaway cluster on a
//! free loopback port, the archived WAL replayed to the chosen point, the server promoted
//! and queried, then stopped and deleted whatever happened.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chrono::{SecondsFormat, Utc};
use lifeboat_repo::snapshot::{PgBaseBackup, StoredSnapshot};
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::postgres::recovery::{self, RecoverySettings, RecoveryTarget};
use lifeboat_sources::postgres::Psql;

use super::{random_below, truthy_text, verdict, DrillOptions};
use crate::pg::archive::{check_time_is_archived, last_commit};
use crate::point_in_time::PointInTime;
use crate::report::{CheckResult, DrillReport};
use crate::subject::Subject;

/// Replaying a day of WAL can take a while; a drill that takes longer has failed.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(3600);

/// The base backups of `url`'s server among `snapshots`.
pub fn base_backups_of<'a>(
    snapshots: &'a [StoredSnapshot],
    url: &DatabaseUrl,
) -> Vec<(&'a StoredSnapshot, &'a PgBaseBackup)> {
    let server = url.server();
    recovery::base_backups(snapshots, None)
        .into_iter()
        .filter(|(_, meta)| meta.server == server)
        .collect()
}

/// Whether `snapshots` hold base backups of `url`'s server.
pub fn has_base_backups(snapshots: &[StoredSnapshot], url: &DatabaseUrl) -> bool {
    !base_backups_of(snapshots, url).is_empty()
}

/// A cluster started by a drill or a row-level command: stopped when dropped (its
/// directory goes with the caller's scratch directory).
struct RunningCluster(PathBuf);

/// A base backup of `url`'s server recovered to a point in a throwaway cluster on a free
/// loopback port: for drills, and for row-level diff and undo between dumps.
pub struct RecoveredCluster {
    _running: RunningCluster,
    /// `url` pointed at the recovered copy.
    pub url: DatabaseUrl,
    /// The commit time of the last transaction replayed, if any was.
    pub replayed: Option<chrono::DateTime<Utc>>,
}

/// Recovers the newest base backup in `bases` that ends before `target` into `dir` (new
/// or empty), replays the archived WAL to `target` and starts the server.
pub fn recover_cluster<'a>(
    lifeboat_command: &dyn Fn(&str) -> Result<String>,
    repo: &lifeboat_repo::Repository,
    url: &DatabaseUrl,
    bases: &[(&'a StoredSnapshot, &'a PgBaseBackup)],
    target: &RecoveryTarget,
    dir: &Path,
) -> Result<(RecoveredCluster, &'a StoredSnapshot, &'a PgBaseBackup)> {
    let (base, meta) = recovery::choose_base(bases, target)?;
    if let RecoveryTarget::Time(time) = target {
        check_time_is_archived(repo, meta, *time)?;
    }
    let settings = RecoverySettings {
        target: target.clone(),
        restore_command: lifeboat_command(&format!(
            "pg wal-fetch --cluster {} %f %p",
            meta.cluster
        ))?,
        timeline: None,
        keep_archiving: false,
    };
    let index = repo.load_index()?;
    recovery::prepare(
        repo,
        &index,
        base,
        meta,
        dir,
        &settings,
        &lifeboat_sources::NoProgress,
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let running = RunningCluster(dir.to_path_buf());
    recovery::start(dir, port, RECOVERY_TIMEOUT)?;
    let copy = url.with_address("127.0.0.1", port);
    let replayed = Psql::new(&copy)?.query(None, "SELECT pg_last_xact_replay_timestamp()")?;
    let replayed = chrono::DateTime::parse_from_str(replayed.trim(), "%Y-%m-%d %H:%M:%S%.f%#z")
        .ok()
        .map(|t| t.with_timezone(&Utc));
    Ok((
        RecoveredCluster {
            _running: running,
            url: copy,
            replayed,
        },
        base,
        meta,
    ))
}

impl Drop for RunningCluster {
    fn drop(&mut self) {
        if self.0.join("postmaster.pid").exists() {
            if let Err(e) = recovery::stop(&self.0) {
                tracing::warn!(
                    "could not stop the drill's cluster in {}: {e}",
                    self.0.display()
                );
            }
        }
    }
}

pub fn drill_physical(
    subject: &Subject,
    options: &DrillOptions,
    url: &DatabaseUrl,
    snapshots: &[StoredSnapshot],
    scratch: &Path,
    record: &mut DrillReport,
    started: Instant,
) -> Result<()> {
    let bases = base_backups_of(snapshots, url);
    let Some(oldest) = bases.iter().map(|(_, meta)| meta.finished).min() else {
        bail!("no base backup of {} in this repository", url.server());
    };
    let target = match PointInTime::parse_for_postgres(options.at, Utc::now()) {
        // Any moment the archive can recover to: from the end of the oldest base backup
        // to the last archived commit (a time after it cannot be reached).
        PointInTime::Random => {
            let newest = bases.last().map(|(_, meta)| *meta).expect("not empty");
            match last_commit(&subject.repo, newest)? {
                Some(end) if end > oldest => {
                    let span = (end - oldest).num_milliseconds().max(1) as usize;
                    RecoveryTarget::Time(
                        oldest + chrono::Duration::milliseconds(random_below(span) as i64),
                    )
                }
                _ => RecoveryTarget::Latest,
            }
        }
        at => at.recovery_target().map_err(anyhow::Error::msg)?,
    };
    let (cluster, base, meta) = recover_cluster(
        options.lifeboat_command,
        &subject.repo,
        url,
        &bases,
        &target,
        &scratch.join("cluster"),
    )?;
    record.snapshot = Some(base.id.to_hex());
    record.restore_point = Some(match (&target, cluster.replayed) {
        (RecoveryTarget::Time(time), _) => *time,
        // The newest transaction replayed is the recovered state's real age.
        (RecoveryTarget::Latest, Some(replayed)) => replayed,
        _ => meta.finished,
    });
    let psql = Psql::new(&cluster.url)?;
    let replayed = cluster
        .replayed
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
    let databases = psql.query(None, "SELECT count(*) FROM pg_database WHERE datallowconn")?;
    record.checks.push(CheckResult {
        check: "base backup restored, archived WAL replayed, server promoted".into(),
        passed: true,
        detail: Some(format!(
            "base {} (ended {}), recovered to {}; {} databases answer; last transaction replayed: {}",
            base.id.short(),
            meta.finished.to_rfc3339_opts(SecondsFormat::Secs, true),
            target.describe(),
            databases.trim(),
            replayed.as_deref().unwrap_or("none")
        )),
    });
    record.rto_seconds = started.elapsed().as_secs_f64();
    for sql in &subject.checks {
        let result = psql
            .query(None, sql)
            .map_err(|e| e.to_string())
            .map(|text| truthy_text(&text));
        record.checks.push(verdict(sql, result));
    }
    Ok(())
}
