//! `lifeboat forget`: apply a retention policy to each group of snapshots (one host's
//! backups of the same paths). Removing a base snapshot also removes the stream segments
//! of its generation, which nothing else can restore from.

use std::collections::BTreeMap;

use anyhow::Result;
use lifeboat_repo::retention::{decide, Candidate, KeepPolicy};
use lifeboat_repo::segment::generation_name;
use lifeboat_repo::snapshot::{snapshot_name, StoredSnapshot};
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
    if policy.is_empty() {
        return Err(crate::exit::Usage(
            "no policy given (--keep-last, --keep-daily, --keep-within, ...): refusing to forget every snapshot".into(),
        )
        .into());
    }
    let repo = ctx.open()?;
    let mut groups: BTreeMap<(String, Vec<String>), Vec<StoredSnapshot>> = BTreeMap::new();
    for s in repo.list_snapshots()? {
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
    let mut segments = 0;
    if !args.dry_run && !removed.is_empty() {
        let generations: Vec<String> = removed.iter().map(generation_name).collect();
        // Snapshots first: a segment without its base is useless, a base without some of
        // its segments is a shorter (still correct) timeline.
        for id in &removed {
            repo.storage().delete(&snapshot_name(id))?;
        }
        for object in repo.storage().list("streams")? {
            let generation = object.name.split('/').nth(2).unwrap_or_default();
            if generations.iter().any(|g| g == generation) {
                repo.storage().delete(&object.name)?;
                segments += 1;
            }
        }
    }
    if ctx.global.json {
        ctx.print_json(&json!({
            "dry_run": args.dry_run,
            "groups": report,
            "removed_snapshots": if args.dry_run { 0 } else { removed.len() },
            "removed_segments": segments,
        }));
    } else if args.dry_run {
        ctx.say(format!(
            "dry run: {} snapshot(s) would be removed",
            removed.len()
        ));
    } else {
        ctx.say(format!(
            "{} snapshot(s) and {segments} stream segment(s) removed; their data stays in the \
             repository until a prune frees it",
            removed.len()
        ));
    }
    Ok(())
}
