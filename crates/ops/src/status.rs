//! Status: is each plan's source within its recovery point objective on each target?
//! `lifeboat status` prints the answer and the agent alerts on it, so there is one answer.

use std::collections::HashMap;

use anyhow::Result;
use chrono::{DateTime, Utc};
use lifeboat_config::{Config, SourceLocation, Target};
use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::snapshot::{Engine, StoredSnapshot};
use lifeboat_repo::Repository;
use lifeboat_sources::database_url::DatabaseUrl;

use crate::report::{RestorePointStatus, StatusReport};
use crate::source_kind::SourceKind;
use crate::tags::source_tag;

/// Measures `sources` (every source when empty) of every plan on each of its targets.
/// `open` opens a target's repository; a target that cannot be opened or read gives rows
/// with the error and the RPO missed, never an absent row.
pub fn measure(
    config: &Config,
    sources: &[String],
    mut open: impl FnMut(&Target) -> Result<Repository>,
    now: DateTime<Utc>,
) -> StatusReport {
    let wanted = |source: &String| sources.is_empty() || sources.contains(source);
    let mut rows = Vec::new();
    for target in &config.targets {
        // Each target is opened and read once, however many plans and sources use it.
        let mut view = open(target)
            .map(|repo| TargetView {
                repo,
                snapshots: None,
                index: None,
            })
            .map_err(|e| crate::one_line(&e));
        let mut newest_of: HashMap<String, Result<Option<DateTime<Utc>>, String>> = HashMap::new();
        for plan in config
            .plans
            .iter()
            .filter(|p| p.targets.contains(&target.name))
        {
            for source in plan.sources.iter().filter(|s| wanted(s)) {
                let newest = newest_of
                    .entry(source.clone())
                    .or_insert_with(|| match &mut view {
                        Ok(view) => view
                            .newest_restore_point(config, source)
                            .map_err(|e| crate::one_line(&e)),
                        Err(e) => Err(e.clone()),
                    })
                    .clone();
                // A restore point stamped a moment after `now` (another host's clock, or a
                // segment shipped while this ran) is as fresh as can be, not negative.
                let age = newest
                    .as_ref()
                    .ok()
                    .copied()
                    .flatten()
                    .map(|t| (now - t).max(chrono::TimeDelta::zero()));
                let met = match (plan.rpo, &newest) {
                    (_, Err(_)) => Some(false),
                    (Some(rpo), Ok(_)) => {
                        Some(age.is_some_and(|a| a.to_std().unwrap_or_default() <= rpo))
                    }
                    (None, Ok(_)) => None,
                };
                rows.push(RestorePointStatus {
                    plan: plan.name.clone(),
                    source: source.clone(),
                    target: target.name.clone(),
                    newest: newest.as_ref().ok().copied().flatten(),
                    age_seconds: age.map(|a| a.num_milliseconds() as f64 / 1000.0),
                    rpo_seconds: plan.rpo.map(|d| d.as_secs()),
                    rpo_met: met,
                    error: newest.err(),
                });
            }
        }
    }
    StatusReport {
        time: now,
        ok: rows.iter().all(|r| r.rpo_met != Some(false)),
        restore_points: rows,
    }
}

/// One target's repository, with what has been read of it so far.
struct TargetView {
    repo: Repository,
    snapshots: Option<Vec<StoredSnapshot>>,
    index: Option<MasterIndex>,
}

impl TargetView {
    /// The newest restore point of `source`: its newest tagged snapshot, or for a SQLite
    /// database also the newest replicated segment.
    fn newest_restore_point(
        &mut self,
        config: &Config,
        source: &str,
    ) -> Result<Option<DateTime<Utc>>> {
        if self.snapshots.is_none() {
            self.snapshots = Some(self.repo.list_snapshots()?);
        }
        let tag = source_tag(source);
        let mut newest = self
            .snapshots
            .iter()
            .flatten()
            .filter(|s| s.snapshot.tags.contains(&tag))
            .map(|s| s.snapshot.time)
            .max();
        let kind = config.source(source).map(|s| SourceKind::of(&s.location));
        // A database file (or any file) also has the restore points of its replication
        // stream and of snapshots of a directory around it.
        if let Some(SourceKind::Sqlite(path) | SourceKind::File(path)) = &kind {
            if self.index.is_none() {
                self.index = Some(self.repo.load_index()?);
            }
            let index = self.index.as_ref().expect("loaded above");
            let path = lifeboat_sources::timeline::source_path(&path.display().to_string())?;
            let points = lifeboat_sources::timeline::restore_points(&self.repo, index, &path)?;
            newest = newest.max(points.last().map(|p| p.time));
        }
        // A MySQL/MariaDB server with a dump is recoverable up to the newest transaction
        // its archived binlog holds.
        if let (Some(SourceKind::DatabaseServer(Engine::Mysql)), Some(_)) = (&kind, newest) {
            let location = config.source(source).and_then(|s| match &s.location {
                SourceLocation::Url(url) => Some(url.as_str()),
                SourceLocation::Command(_) => None,
            });
            if let Some(Ok(url)) = location.and_then(DatabaseUrl::parse) {
                let server = lifeboat_sources::mysql::binlog_stream::server_key(&self.repo, &url);
                let archived =
                    lifeboat_sources::mysql::pitr::last_archived_commit(&self.repo, &server)?;
                newest = newest.max(archived);
            }
        }
        Ok(newest)
    }
}
