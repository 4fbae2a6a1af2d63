//! Point-in-time recovery of a PostgreSQL cluster: the base backup that ends before the
//! target restored into a new data directory, set to replay archived WAL up to the target,
//! and optionally started, recovered and promoted on a loopback port.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use lifeboat_repo::{Id, Repository};
use lifeboat_sources::postgres::recovery::{self, RecoverySettings, RecoveryTarget};
use serde::{Deserialize, Serialize};

use crate::meters::Meters;
use crate::pg::archive::check_time_is_archived;
use crate::point_in_time::PointInTime;

pub struct PitrRequest<'a> {
    /// `latest`, a time, a relative time, an LSN or a restore point's name.
    pub at: &'a str,
    /// The cluster (system identifier) when the repository holds several.
    pub cluster: Option<&'a str>,
    pub target_dir: &'a Path,
    /// Follow this timeline instead of the base backup's.
    pub timeline: Option<u32>,
    /// The recovered cluster replaces the lost primary and archives its new timeline.
    pub keep_archiving: bool,
    /// Start it on this port and wait this long for it to be promoted.
    pub start: Option<(u16, Duration)>,
}

/// `lifeboat pg restore --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PitrReport {
    pub base_backup: Id,
    pub cluster: String,
    /// When the base backup ended.
    pub base_finished: chrono::DateTime<chrono::Utc>,
    /// The recovery target, described.
    pub target: String,
    pub timeline: u32,
    pub target_dir: PathBuf,
    /// Until the data directory was ready to start.
    pub restored_seconds: f64,
    pub started: bool,
    pub port: Option<u16>,
    /// Until the end: with `started`, until the server was promoted.
    pub seconds: f64,
}

/// Restores the cluster as `request` asks. `restore_command` gives the command the
/// server runs to fetch the WAL of a cluster (named by its system identifier).
pub fn restore(
    repo: &Repository,
    request: &PitrRequest,
    restore_command: &dyn Fn(&str) -> Result<String>,
    meters: &dyn Meters,
) -> Result<PitrReport> {
    let target = PointInTime::parse_for_postgres(request.at, chrono::Utc::now())
        .recovery_target()
        .map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let snapshots = repo.list_snapshots()?;
    let bases = recovery::base_backups(&snapshots, request.cluster);
    let (base, meta) = recovery::choose_base(&bases, &target)?;
    if let RecoveryTarget::Time(time) = &target {
        check_time_is_archived(repo, meta, *time)?;
    }
    let index = repo.load_index()?;
    let settings = RecoverySettings {
        target: target.clone(),
        restore_command: restore_command(&meta.cluster)?,
        timeline: request.timeline,
        keep_archiving: request.keep_archiving,
    };
    {
        let meter = meters.start("restoring", Some(base.snapshot.summary.total_bytes));
        recovery::prepare(
            repo,
            &index,
            base,
            meta,
            request.target_dir,
            &settings,
            meter.as_ref(),
        )?;
    }
    let restored_seconds = started.elapsed().as_secs_f64();
    if let Some((port, wait)) = request.start {
        if let Err(e) = recovery::start(request.target_dir, port, wait) {
            return Err(clean_up_failed_start(request.target_dir, e));
        }
    }
    Ok(PitrReport {
        base_backup: base.id,
        cluster: meta.cluster.clone(),
        base_finished: meta.finished,
        target: target.describe(),
        timeline: request.timeline.unwrap_or(meta.timeline),
        target_dir: request.target_dir.to_path_buf(),
        restored_seconds,
        started: request.start.is_some(),
        port: request.start.map(|(port, _)| port),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// After a recovered server failed to come up: stop it if it runs, keep its log, and
/// remove the directory the restore filled (it was empty or missing), so that a second
/// attempt can start over.
fn clean_up_failed_start(dir: &Path, error: lifeboat_sources::SourceError) -> anyhow::Error {
    let _ = recovery::stop(dir);
    let log = dir.join("lifeboat-recovery.log");
    let kept = std::env::temp_dir().join(format!(
        "lifeboat-recovery-{}-{}.log",
        std::process::id(),
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    let kept = std::fs::copy(&log, &kept).ok().map(|_| kept);
    let removed = std::fs::remove_dir_all(dir).is_ok();
    anyhow::anyhow!(
        "{}{}{}",
        crate::one_line(&error.into()).replace(&format!(" (log: {})", log.display()), ""),
        kept.map(|k| format!(" (log kept as {})", k.display()))
            .unwrap_or_default(),
        if removed {
            format!("; {} was removed", dir.display())
        } else {
            String::new()
        }
    )
}
