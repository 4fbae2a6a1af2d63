//! `lifeboat stats`: what the repository holds and what deduplication and compression
//! save, for the whole repository or the snapshots chosen (by id, or the filters), as
//! restic's `stats` answers "how big is it, and what does it cost".

use anyhow::Result;
use lifeboat_repo::reachable::Reachable;
use serde_json::json;

use crate::args::StatsArgs;
use crate::commands::backup::human;
use crate::context::Context;

pub fn run(ctx: &Context, args: &StatsArgs) -> Result<()> {
    let repo = ctx.open()?;
    let filter = args.filter.filter();
    let chosen = crate::commands::snapshots::chosen(&repo, &args.snapshots, &filter)?;
    let index = repo.load_index()?;
    let mut reachable = Reachable::default();
    reachable.walk(&repo, &index, &chosen)?;
    let (raw, stored) = index.sizes_of(&reachable.blobs);
    let logical: u64 = chosen.iter().map(|s| s.snapshot.summary.total_bytes).sum();
    let files: u64 = chosen.iter().map(|s| s.snapshot.summary.files).sum();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let whole = args.snapshots.is_empty() && filter.is_empty();
    // The whole repository also counts what no snapshot needs yet (a backup under way, or
    // data a prune will free) and every object on the storage.
    let repository = if whole {
        let (index_raw, index_stored) = index.total_sizes();
        let objects = repo.inventory()?;
        Some(json!({
            "blobs": index.blob_count(),
            "raw_bytes": index_raw,
            "stored_bytes": index_stored,
            "unreferenced_stored_bytes": index_stored.saturating_sub(stored),
            "objects": objects.len(),
            "object_bytes": objects.iter().map(|o| o.size).sum::<u64>(),
        }))
    } else {
        None
    };
    if ctx.global.json {
        ctx.print_json(&json!({
            "snapshots": chosen.len(),
            "files": files,
            "logical_bytes": logical,
            "unique_blobs": reachable.blobs.len(),
            "raw_bytes": raw,
            "stored_bytes": stored,
            "dedup_ratio": ratio(logical, raw),
            "compression_ratio": ratio(raw, stored),
            "repository": repository,
        }));
        return Ok(());
    }
    out!(
        "{} snapshot(s), {files} files: {} as restored",
        chosen.len(),
        human(logical)
    );
    out!(
        "  {} unique ({} blobs; deduplication {:.1}x), {} stored (compression {:.1}x)",
        human(raw),
        reachable.blobs.len(),
        ratio(logical, raw),
        human(stored),
        ratio(raw, stored)
    );
    if let Some(repository) = repository {
        out!(
            "  repository: {} objects, {}; {} of packed data no snapshot needs (a prune frees it)",
            repository["objects"],
            human(repository["object_bytes"].as_u64().unwrap_or(0)),
            human(
                repository["unreferenced_stored_bytes"]
                    .as_u64()
                    .unwrap_or(0)
            )
        );
    }
    Ok(())
}
