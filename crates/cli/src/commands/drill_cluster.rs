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

use super::drill::{random_below, truthy_text, verdict, CheckResult, DrillRecord, Subject};
use crate::args::DrillArgs;
use crate::context::Context;

/// Replaying a day of WAL can take a while; a drill that takes longer has failed.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(3600);

/// The base backups of `url`'s server among `snapshots`.
fn base_backups_of<'a>(
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

/// A cluster started by the drill: stopped when dropped (its directory goes with the
/// drill's scratch directory).
struct RunningCluster(PathBuf);

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

#[allow(clippy::too_many_arguments)]
pub fn drill_physical(
    ctx: &Context,
    subject: &Subject,
    args: &DrillArgs,
    url: &DatabaseUrl,
    snapshots: &[StoredSnapshot],
    scratch: &Path,
    record: &mut DrillRecord,
    started: Instant,
) -> Result<()> {
    let bases = base_backups_of(snapshots, url);
    let Some(oldest) = bases.iter().map(|(_, meta)| meta.finished).min() else {
        bail!("no base backup of {} in this repository", url.server());
    };
    let target = match args.at.as_str() {
        // Any moment the archive can recover to: from the end of the oldest base backup.
        "random" => {
            let span = (Utc::now() - oldest).num_milliseconds().max(1) as usize;
            RecoveryTarget::Time(oldest + chrono::Duration::milliseconds(random_below(span) as i64))
        }
        at => RecoveryTarget::parse(at, Utc::now()),
    };
    let (base, meta) = recovery::choose_base(&bases, &target)?;
    record.snapshot = Some(base.id.to_hex());
    record.restore_point = Some(match &target {
        RecoveryTarget::Time(time) => *time,
        _ => meta.finished,
    });
    let settings = RecoverySettings {
        target: target.clone(),
        restore_command: super::pg::lifeboat_command(
            ctx,
            &format!("pg wal-fetch --cluster {} %f %p", meta.cluster),
        )?,
        timeline: None,
        keep_archiving: false,
    };
    let dir = scratch.join("cluster");
    let index = subject.repo.load_index()?;
    recovery::prepare(
        &subject.repo,
        &index,
        base,
        meta,
        &dir,
        &settings,
        &lifeboat_sources::NoProgress,
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _cluster = RunningCluster(dir.clone());
    recovery::start(&dir, port, RECOVERY_TIMEOUT)?;
    let copy = url.with_address("127.0.0.1", port);
    let psql = Psql::new(&copy)?;
    // The newest transaction replayed is the recovered state's real age.
    let replayed = psql.query(None, "SELECT pg_last_xact_replay_timestamp()")?;
    if let Ok(time) = chrono::DateTime::parse_from_str(replayed.trim(), "%Y-%m-%d %H:%M:%S%.f%#z") {
        if matches!(target, RecoveryTarget::Latest) {
            record.restore_point = Some(time.with_timezone(&Utc));
        }
    }
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
            if replayed.trim().is_empty() { "none" } else { replayed.trim() }
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
