//! `lifeboat prune`: free the packs no snapshot needs (the protocol is in
//! `lifeboat_repo::prune`).

use anyhow::Result;
use lifeboat_repo::prune::{prune, PruneOptions};

use crate::args::PruneArgs;
use crate::context::Context;

pub fn run(ctx: &Context, args: &PruneArgs) -> Result<()> {
    if !(0.0..=100.0).contains(&args.max_unused) {
        return Err(crate::exit::Usage("--max-unused is a percentage: 0 to 100".into()).into());
    }
    let repo = ctx.open()?;
    ctx.require_admin(&repo, "prune")?;
    let options = PruneOptions {
        dry_run: args.dry_run,
        max_unused_percent: args.max_unused,
        grace: args.grace.map_or(chrono::Duration::zero(), |g| {
            chrono::Duration::from_std(g).unwrap_or(chrono::Duration::MAX)
        }),
    };
    let report = prune(&repo, &options)?;
    if ctx.global.json {
        ctx.print_json(&serde_json::to_value(&report)?);
        return Ok(());
    }
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    ctx.say(format!(
        "{} snapshots, {} packs: {} used, {} unused",
        report.snapshots,
        report.packs,
        mib(report.used_bytes),
        mib(report.unused_bytes)
    ));
    let verb = if args.dry_run {
        "would condemn"
    } else {
        "condemned"
    };
    if report.condemned_packs + report.repacked_packs > 0 {
        ctx.say(format!(
            "{verb} {} unused and {} repacked pack(s), {}",
            report.condemned_packs,
            report.repacked_packs,
            mib(report.condemned_bytes)
        ));
    }
    if report.repacked_blobs > 0 {
        ctx.say(format!(
            "repacked {} blob(s) into {}",
            report.repacked_blobs,
            mib(report.repack_written_bytes)
        ));
    }
    if !args.dry_run {
        ctx.say(format!(
            "deleted {} pack(s), freed {}",
            report.deleted_packs,
            mib(report.freed_bytes)
        ));
    }
    let (would, did) = if args.dry_run {
        ("would ", "")
    } else {
        ("", "d")
    };
    if report.reindexed_packs > 0 {
        ctx.say(format!(
            "{would}index{} {} pack(s) that no index listed",
            if args.dry_run { "" } else { "ed" },
            report.reindexed_packs
        ));
    }
    if !report.removed_index_files.is_empty() {
        ctx.say(format!(
            "{would}remove{did} unreadable index file(s): {}",
            report.removed_index_files.join(", ")
        ));
    }
    if report.removed_temp_files > 0 {
        ctx.say(format!(
            "{would}remove{did} {} stale temporary file(s), {}",
            report.removed_temp_files,
            mib(report.removed_temp_bytes)
        ));
    }
    if report.spared_packs > 0 {
        ctx.say(format!(
            "kept {} condemned pack(s) that a newer snapshot uses",
            report.spared_packs
        ));
    }
    if report.pending_packs > 0 {
        ctx.say(format!(
            "{} pack(s) ({}) will be deleted by a later prune, after: {}",
            report.pending_packs,
            mib(report.pending_bytes),
            if report.waiting_for.is_empty() {
                "the grace period".to_string()
            } else {
                report.waiting_for.join("; ")
            }
        ));
    }
    if let Some(until) = report.locked_until {
        ctx.say(format!(
            "{} condemned pack(s) are locked (S3 Object Lock) until {} at the latest; a prune after that deletes them",
            report.locked_packs,
            until.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    if report.renewed_locks > 0 {
        ctx.say(format!(
            "renewed the lock of {} object(s) still needed",
            report.renewed_locks
        ));
    }
    Ok(())
}
