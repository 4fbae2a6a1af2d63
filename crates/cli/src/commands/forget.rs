//! `lifeboat forget`: apply a retention policy to each group of snapshots (one host's
//! backups of the same paths). Removing a base snapshot also removes the stream segments
//! of its generation, which nothing else can restore from, and archived PostgreSQL WAL
//! that no kept base backup can replay.

use std::collections::BTreeMap;

use anyhow::Result;
use lifeboat_repo::retention::{decide, Candidate, KeepPolicy};
use lifeboat_repo::segment::generation_name;
use lifeboat_repo::snapshot::{snapshot_name, StoredSnapshot};
use lifeboat_sources::postgres::wal;
use serde_json::json;

use crate::args::ForgetArgs;
use crate::context::Context;

pub fn run(ctx: &Context, args: &ForgetArgs) -> Result<()> {
    let policy = KeepPolicy {
        last: args.keep_last,
        hourly: args.keep_hourly,
        daily: args.keep_daily,
        weekly: args.keep_weekly,
        monthly: args.keep_monthly,
        yearly: args.keep_yearly,
        within: args
            .keep_within
            .map(|d| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)),
        tags: args.keep_tags.clone(),
    };
    if !args.snapshots.is_empty() {
        if !policy.is_empty() || !args.filter.filter().is_empty() {
            return Err(crate::exit::Usage(
                "give snapshot ids or a policy (--keep-...), not both".into(),
            )
            .into());
        }
        return forget_named(ctx, args);
    }
    if policy.is_empty() {
        return Err(crate::exit::Usage(
            "no policy given (--keep-last, --keep-daily, --keep-within, ...): refusing to forget every snapshot".into(),
        )
        .into());
    }
    let repo = ctx.open()?;
    if !args.dry_run {
        ctx.require_admin(&repo, "forget")?;
    }
    let mut groups: BTreeMap<(String, Vec<String>), Vec<StoredSnapshot>> = BTreeMap::new();
    let all = repo.list_snapshots()?;
    let filter = args.filter.filter();
    for s in all.iter().filter(|s| filter.matches(&s.snapshot)) {
        let s = s.clone();
        groups
            .entry((s.snapshot.host.clone(), s.snapshot.paths.clone()))
            .or_default()
            .push(s);
    }
    // A running replicator ships segments onto its newest base: that base must stay.
    let live = lifeboat_repo::lock::live_streams(&repo)?;
    let mut removed = Vec::new();
    let mut report = Vec::new();
    for ((host, paths), snapshots) in &groups {
        let candidates: Vec<Candidate> = snapshots
            .iter()
            .map(|s| Candidate {
                time: s.snapshot.time,
                pinned: s.snapshot.pinned,
                tags: s.snapshot.tags.clone(),
            })
            .collect();
        let mut reasons = decide(&policy, &candidates);
        let live_base = snapshots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.snapshot.tags.iter().any(|t| t == "replicate"))
            .filter(|(_, s)| {
                s.snapshot.paths.first().is_some_and(|p| {
                    live.contains(&lifeboat_repo::segment::stream_id(repo.key(), p))
                })
            })
            .max_by_key(|(_, s)| s.snapshot.time)
            .map(|(i, _)| i);
        if let Some(i) = live_base {
            reasons[i].push("live replication");
        }
        let mut keep = Vec::new();
        let mut remove = Vec::new();
        for (s, why) in snapshots.iter().zip(&reasons) {
            if why.is_empty() {
                remove.push(s);
            } else {
                keep.push(json!({"id": s.id, "reasons": why}));
            }
        }
        if !ctx.global.json {
            ctx.say(format!(
                "{host} {}: keep {}, remove {}",
                paths.join(" "),
                keep.len(),
                remove.len()
            ));
            for s in &remove {
                ctx.say(format!(
                    "  remove {}  {}",
                    s.id.short(),
                    s.snapshot.time.format("%Y-%m-%d %H:%M:%S")
                ));
            }
        }
        report.push(json!({
            "host": host,
            "paths": paths,
            "keep": keep,
            "remove": remove.iter().map(|s| s.id).collect::<Vec<_>>(),
        }));
        removed.extend(remove.into_iter().map(|s| s.id));
    }
    remove_snapshots(ctx, &repo, args.dry_run, all, removed, report)
}

/// `forget ID...`: exactly these snapshots, pinned ones too (the user named them), but
/// never the base a running replicator is shipping onto.
fn forget_named(ctx: &Context, args: &ForgetArgs) -> Result<()> {
    let repo = ctx.open()?;
    if !args.dry_run {
        ctx.require_admin(&repo, "forget")?;
    }
    let all = repo.list_snapshots()?;
    let live = lifeboat_repo::lock::live_streams(&repo)?;
    let mut removed = Vec::new();
    for wanted in &args.snapshots {
        let chosen = repo.find_snapshot(wanted)?;
        let snapshot = &chosen.snapshot;
        let newest_base_of_live_stream = snapshot.tags.iter().any(|t| t == "replicate")
            && snapshot.paths.first().is_some_and(|p| {
                live.contains(&lifeboat_repo::segment::stream_id(repo.key(), p))
                    && !all.iter().any(|other| {
                        other.snapshot.paths == snapshot.paths
                            && other.snapshot.tags.iter().any(|t| t == "replicate")
                            && other.snapshot.time > snapshot.time
                    })
            });
        anyhow::ensure!(
            !newest_base_of_live_stream,
            "snapshot {} is the base a running replicator ships onto; stop `lifeboat replicate` first",
            chosen.id.short()
        );
        if !removed.contains(&chosen.id) {
            if !ctx.global.json {
                ctx.say(format!(
                    "  remove {}  {}  {}{}",
                    chosen.id.short(),
                    snapshot.time.format("%Y-%m-%d %H:%M:%S"),
                    snapshot.paths.join(" "),
                    if snapshot.pinned { "  (pinned)" } else { "" }
                ));
            }
            removed.push(chosen.id);
        }
    }
    let report = vec![json!({"named": true, "remove": removed})];
    remove_snapshots(ctx, &repo, args.dry_run, all, removed, report)
}

/// Removes `removed` (unless object-locked) with the stream segments of their
/// generations and the WAL no kept base needs, and reports.
fn remove_snapshots(
    ctx: &Context,
    repo: &lifeboat_repo::Repository,
    dry_run: bool,
    all: Vec<StoredSnapshot>,
    mut removed: Vec<lifeboat_repo::Id>,
    report: Vec<serde_json::Value>,
) -> Result<()> {
    // Under S3 Object Lock a snapshot still retained stays: this forget keeps it, and one
    // after its retention has expired removes it.
    let held = repo
        .storage()
        .held_objects(&removed.iter().map(snapshot_name).collect::<Vec<_>>())?;
    let mut locked: Vec<serde_json::Value> = Vec::new();
    if !held.is_empty() {
        removed.retain(|id| match held.get(&snapshot_name(id)) {
            Some(until) => {
                if !ctx.global.json {
                    ctx.say(format!(
                        "  keep {}: locked (S3 Object Lock) until {}; a forget after that removes it",
                        id.short(),
                        until.format("%Y-%m-%d %H:%M:%S UTC")
                    ));
                }
                locked.push(json!({"id": id, "locked_until": until}));
                false
            }
            None => true,
        });
    }
    let mut segments = 0;
    if !dry_run && !removed.is_empty() {
        let generations: Vec<String> = removed.iter().map(generation_name).collect();
        // Snapshots first: a segment without its base is useless, a base without some of
        // its segments is a shorter (still correct) timeline.
        for id in &removed {
            repo.storage().delete(&snapshot_name(id))?;
        }
        for object in repo.storage().list("streams")? {
            let generation = object.name.split('/').nth(2).unwrap_or_default();
            if generations.iter().any(|g| g == generation)
                && delete_unless_locked(repo, &object.name)?
            {
                segments += 1;
            }
        }
    }
    let wal_files = if dry_run || removed.is_empty() {
        0
    } else {
        // Every snapshot left, not only the ones --tag chose: WAL serves every base.
        let kept: Vec<StoredSnapshot> = all
            .into_iter()
            .filter(|s| !removed.contains(&s.id))
            .collect();
        prune_wal_archive(repo, &kept)?
    };
    if ctx.global.json {
        ctx.print_json(&json!({
            "dry_run": dry_run,
            "removed_wal_files": wal_files,
            "groups": report,
            "removed_snapshots": if dry_run { 0 } else { removed.len() },
            "removed_segments": segments,
            "locked": locked,
        }));
    } else if dry_run {
        ctx.say(format!(
            "dry run: {} snapshot(s) would be removed",
            removed.len()
        ));
    } else {
        ctx.say(format!(
            "{} snapshot(s), {segments} stream segment(s) and {wal_files} archived WAL file(s) \
             removed; the snapshots' data stays in the repository until a prune frees it",
            removed.len()
        ));
    }
    Ok(())
}

/// Removes archived WAL segments older than the first segment of the oldest base backup
/// in `kept` of each cluster: no kept base can replay them. History files stay (they
/// are small and describe every timeline); a cluster with no base backup left keeps all
/// its WAL (a base backup may be on its way).
fn prune_wal_archive(repo: &lifeboat_repo::Repository, kept: &[StoredSnapshot]) -> Result<usize> {
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
            if old
                && delete_unless_locked(
                    repo,
                    &lifeboat_repo::pg_wal::wal_object_name(&cluster, &file),
                )?
            {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Deletes an object unless S3 Object Lock still holds it (then it stays for a later run).
fn delete_unless_locked(repo: &lifeboat_repo::Repository, name: &str) -> Result<bool> {
    match repo.storage().delete(name) {
        Ok(()) => Ok(true),
        Err(lifeboat_storage::StorageError::Locked { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
