//! The forget use case: apply a retention policy to each group of snapshots (one host's
//! backups of the same paths), or remove snapshots by id. Removing a base snapshot also
//! removes the stream segments of its generation, which nothing else can restore from,
//! and archived PostgreSQL WAL that no kept base backup can replay. The base a running
//! replicator ships onto always stays; a snapshot S3 Object Lock still holds stays until
//! a later forget.

use std::collections::BTreeMap;

use anyhow::{ensure, Result};
use chrono::{DateTime, Utc};
use lifeboat_repo::retention::{decide, Candidate, KeepPolicy};
use lifeboat_repo::snapshot::StoredSnapshot;
use lifeboat_repo::snapshot_filter::SnapshotFilter;
use lifeboat_repo::{Id, Repository};
use lifeboat_sources::postgres::wal;
use serde::{Deserialize, Serialize};

/// What to forget: snapshots a policy does not keep, or the snapshots named.
pub enum Forget<'a> {
    Policy {
        policy: &'a KeepPolicy,
        filter: &'a SnapshotFilter,
    },
    /// Ids or unique prefixes; pinned snapshots too (the user named them).
    Named(&'a [String]),
}

/// The policy a plan's `keep` in lifeboat.toml describes.
pub fn policy_of(keep: &lifeboat_config::Keep) -> KeepPolicy {
    KeepPolicy {
        last: keep.last,
        hourly: keep.hourly,
        daily: keep.daily,
        weekly: keep.weekly,
        monthly: keep.monthly,
        yearly: keep.yearly,
        within: keep
            .within
            .map(|d| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)),
        tags: keep.tags.clone(),
    }
}

/// `lifeboat forget --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgetReport {
    pub dry_run: bool,
    pub groups: Vec<ForgetGroup>,
    /// Removed (or, in a dry run, none).
    pub removed_snapshots: usize,
    pub removed_segments: usize,
    pub removed_wal_files: usize,
    /// Archived MySQL/MariaDB binlog pieces no kept dump can replay from.
    pub removed_binlog_pieces: usize,
    /// Snapshots that stay because S3 Object Lock still holds them.
    pub locked: Vec<LockedSnapshot>,
}

/// One group's decision (a host's snapshots of the same paths), or the snapshots named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgetGroup {
    /// The group's host and paths (none for snapshots named by id).
    pub host: Option<String>,
    pub paths: Vec<String>,
    pub named: bool,
    pub keep: Vec<KeptSnapshot>,
    pub remove: Vec<RemovedSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptSnapshot {
    pub id: Id,
    /// Each rule that keeps it (`last`, `daily`, `live replication`, ...).
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovedSnapshot {
    pub id: Id,
    pub time: DateTime<Utc>,
    pub paths: Vec<String>,
    pub pinned: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSnapshot {
    pub id: Id,
    pub locked_until: DateTime<Utc>,
}

/// Decides and (unless `dry_run`) removes. The caller checks that it may delete.
pub fn forget(repo: &Repository, what: Forget, dry_run: bool) -> Result<ForgetReport> {
    let all = repo.list_snapshots()?;
    // A running replicator ships segments onto its newest base: that base must stay.
    let live = lifeboat_repo::lock::live_streams(repo)?;
    let shipped_onto = |s: &StoredSnapshot| {
        s.snapshot.tags.iter().any(|t| t == "replicate")
            && s.snapshot
                .paths
                .first()
                .is_some_and(|p| live.contains(&repo.stream_id(p)))
    };
    let groups = match what {
        Forget::Policy { policy, filter } => by_policy(&all, policy, filter, &shipped_onto),
        Forget::Named(wanted) => vec![named(repo, &all, wanted, &shipped_onto)?],
    };
    let mut removed: Vec<Id> = groups
        .iter()
        .flat_map(|g| g.remove.iter().map(|r| r.id))
        .collect();
    removed.dedup();
    let held = repo.held_snapshots(&removed)?;
    let locked: Vec<LockedSnapshot> = held
        .iter()
        .map(|(id, until)| LockedSnapshot {
            id: *id,
            locked_until: *until,
        })
        .collect();
    removed.retain(|id| !held.contains_key(id));
    let (mut segments, mut wal_files, mut binlog_pieces) = (0, 0, 0);
    if !dry_run && !removed.is_empty() {
        // Snapshots first: a segment without its base is useless, a base without some of
        // its segments is a shorter (still correct) timeline.
        for id in &removed {
            repo.delete_snapshot(id)?;
        }
        segments = repo.delete_generations(&removed)?;
        // Every snapshot left, not only the ones the filter chose: WAL serves every base.
        let kept: Vec<StoredSnapshot> = all
            .into_iter()
            .filter(|s| !removed.contains(&s.id))
            .collect();
        wal_files = prune_wal_archive(repo, &kept)?;
        binlog_pieces = prune_binlog_archive(repo, &kept)?;
    }
    Ok(ForgetReport {
        dry_run,
        groups,
        removed_snapshots: if dry_run { 0 } else { removed.len() },
        removed_segments: segments,
        removed_wal_files: wal_files,
        removed_binlog_pieces: binlog_pieces,
        locked,
    })
}

fn by_policy(
    all: &[StoredSnapshot],
    policy: &KeepPolicy,
    filter: &SnapshotFilter,
    shipped_onto: &dyn Fn(&StoredSnapshot) -> bool,
) -> Vec<ForgetGroup> {
    let mut groups: BTreeMap<(String, Vec<String>), Vec<&StoredSnapshot>> = BTreeMap::new();
    for s in all.iter().filter(|s| filter.matches(&s.snapshot)) {
        groups
            .entry((s.snapshot.host.clone(), s.snapshot.paths.clone()))
            .or_default()
            .push(s);
    }
    groups
        .into_iter()
        .map(|((host, paths), snapshots)| {
            let candidates: Vec<Candidate> = snapshots
                .iter()
                .map(|s| Candidate {
                    time: s.snapshot.time,
                    pinned: s.snapshot.pinned,
                    tags: s.snapshot.tags.clone(),
                })
                .collect();
            let mut reasons = decide(policy, &candidates);
            let live_base = snapshots
                .iter()
                .enumerate()
                .filter(|(_, s)| shipped_onto(s))
                .max_by_key(|(_, s)| s.snapshot.time)
                .map(|(i, _)| i);
            if let Some(i) = live_base {
                reasons[i].push("live replication");
            }
            let mut group = ForgetGroup {
                host: Some(host),
                paths,
                named: false,
                keep: Vec::new(),
                remove: Vec::new(),
            };
            for (s, why) in snapshots.iter().zip(reasons) {
                if why.is_empty() {
                    group.remove.push(removal(s));
                } else {
                    group.keep.push(KeptSnapshot {
                        id: s.id,
                        reasons: why.into_iter().map(str::to_string).collect(),
                    });
                }
            }
            group
        })
        .collect()
}

/// Exactly the snapshots named, but never the base a running replicator is shipping onto.
fn named(
    repo: &Repository,
    all: &[StoredSnapshot],
    wanted: &[String],
    shipped_onto: &dyn Fn(&StoredSnapshot) -> bool,
) -> Result<ForgetGroup> {
    let mut remove: Vec<RemovedSnapshot> = Vec::new();
    for wanted in wanted {
        let chosen = repo.find_snapshot(wanted)?;
        let newer_base = all.iter().any(|other| {
            other.snapshot.paths == chosen.snapshot.paths
                && other.snapshot.tags.iter().any(|t| t == "replicate")
                && other.snapshot.time > chosen.snapshot.time
        });
        ensure!(
            newer_base || !shipped_onto(&chosen),
            "snapshot {} is the base a running replicator ships onto; stop `lifeboat replicate` first",
            chosen.id.short()
        );
        if !remove.iter().any(|r| r.id == chosen.id) {
            remove.push(removal(&chosen));
        }
    }
    Ok(ForgetGroup {
        host: None,
        paths: Vec::new(),
        named: true,
        keep: Vec::new(),
        remove,
    })
}

fn removal(s: &StoredSnapshot) -> RemovedSnapshot {
    RemovedSnapshot {
        id: s.id,
        time: s.snapshot.time,
        paths: s.snapshot.paths.clone(),
        pinned: s.snapshot.pinned,
    }
}

/// Removes archived binlog files older than the file of the oldest binlog position a
/// kept dump of each server recorded: no kept dump replays from them. A server with no
/// such dump left keeps its whole archive (a dump may be on its way).
fn prune_binlog_archive(repo: &Repository, kept: &[StoredSnapshot]) -> Result<usize> {
    use lifeboat_repo::mysql_binlog::file_number;
    let mut oldest: BTreeMap<String, u64> = BTreeMap::new();
    for s in kept {
        let lifeboat_repo::snapshot::SnapshotSource::Database(dump) = &s.snapshot.source else {
            continue;
        };
        if dump.engine != lifeboat_repo::snapshot::Engine::Mysql {
            continue;
        }
        let server = lifeboat_repo::mysql_binlog::server_key(repo, &dump.server);
        for position in dump.databases.iter().filter_map(|d| d.binlog.as_ref()) {
            if let Some(n) = file_number(&position.file) {
                let entry = oldest.entry(server.clone()).or_insert(n);
                *entry = (*entry).min(n);
            }
        }
    }
    let mut removed = 0;
    for (server, first_needed) in oldest {
        for piece in repo.list_binlog(&server)? {
            let old = file_number(&piece.file).is_some_and(|n| n < first_needed);
            if old && repo.delete_binlog_piece(&server, &piece)? {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Removes archived WAL segments older than the first segment of the oldest base backup
/// in `kept` of each cluster: no kept base can replay them. History files stay (they
/// are small and describe every timeline); a cluster with no base backup left keeps all
/// its WAL (a base backup may be on its way).
fn prune_wal_archive(repo: &Repository, kept: &[StoredSnapshot]) -> Result<usize> {
    let mut oldest: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (_, meta) in lifeboat_sources::postgres::recovery::base_backups(kept, None) {
        let size = meta.wal_segment_size;
        if let Some((_, segno)) = wal::parse_segment_name(&meta.start_wal, size) {
            let entry = oldest.entry(meta.cluster.clone()).or_insert((segno, size));
            entry.0 = entry.0.min(segno);
        }
    }
    let mut removed = 0;
    for (cluster, (first_needed, size)) in oldest {
        for file in repo.list_wal(&cluster)? {
            let base = file.strip_suffix(".partial").unwrap_or(&file);
            let old = wal::parse_segment_name(base, size).is_some_and(|(_, n)| n < first_needed);
            if old && repo.delete_wal_file(&cluster, &file)? {
                removed += 1;
            }
        }
    }
    Ok(removed)
}
