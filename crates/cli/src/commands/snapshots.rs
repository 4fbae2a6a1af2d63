use anyhow::Result;
use lifeboat_repo::snapshot::StoredSnapshot;
use serde_json::json;

use crate::args::SnapshotsArgs;
use crate::commands::backup::human;
use crate::context::Context;

pub fn to_json(s: &StoredSnapshot) -> serde_json::Value {
    let snap = &s.snapshot;
    json!({
        "id": s.id,
        "short_id": s.id.short(),
        "time": snap.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "host": snap.host,
        "username": snap.username,
        "paths": snap.paths,
        "tags": snap.tags,
        "pinned": snap.pinned,
        "source": snap.source,
        "tree": snap.tree,
        "parent": snap.parent,
        "size": snap.summary.total_bytes,
        "added_size": snap.summary.stored_bytes,
        "summary": snap.summary,
        "warnings": snap.warnings,
    })
}

/// The snapshots named by id (or `latest`, the newest `filter` matches), or with no ids,
/// every snapshot `filter` matches.
pub fn chosen(
    repo: &lifeboat_repo::Repository,
    ids: &[String],
    filter: &lifeboat_repo::snapshot_filter::SnapshotFilter,
) -> Result<Vec<StoredSnapshot>> {
    if ids.is_empty() {
        return Ok(repo
            .list_snapshots()?
            .into_iter()
            .filter(|s| filter.matches(&s.snapshot))
            .collect());
    }
    Ok(ids
        .iter()
        .map(|wanted| repo.find_snapshot_matching(wanted, filter))
        .collect::<Result<Vec<_>, _>>()?)
}

pub fn run(ctx: &Context, args: &SnapshotsArgs) -> Result<()> {
    let repo = ctx.open()?;
    let filter = args.filter.filter();
    let snapshots: Vec<StoredSnapshot> = repo
        .list_snapshots()?
        .into_iter()
        .filter(|s| filter.matches(&s.snapshot))
        .collect();
    if ctx.global.json {
        ctx.print_json(&serde_json::Value::Array(
            snapshots.iter().map(to_json).collect(),
        ));
        return Ok(());
    }
    out!(
        "{:<9} {:<20} {:<16} {:>10} {:<6} {:<16} paths",
        "id",
        "time",
        "host",
        "size",
        "pinned",
        "tags"
    );
    for s in &snapshots {
        let snap = &s.snapshot;
        out!(
            "{:<9} {:<20} {:<16} {:>10} {:<6} {:<16} {}",
            s.id.short(),
            snap.time.format("%Y-%m-%d %H:%M:%S"),
            snap.host,
            human(snap.summary.total_bytes),
            if snap.pinned { "yes" } else { "" },
            snap.tags.join(","),
            snap.paths.join(" ")
        );
    }
    ctx.say(format!("{} snapshot(s)", snapshots.len()));
    Ok(())
}
