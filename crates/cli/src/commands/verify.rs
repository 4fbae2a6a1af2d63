use anyhow::Result;
use lifeboat_repo::check::{check, CheckOptions};
use serde_json::json;

use crate::args::VerifyArgs;
use crate::context::Context;
use crate::exit::DamageFound;

pub fn run(ctx: &Context, args: &VerifyArgs) -> Result<()> {
    if let Some(pct) = args.read_data {
        if !(pct > 0.0 && pct <= 100.0) {
            anyhow::bail!("--read-data takes a percentage above 0 and at most 100, not {pct}");
        }
    }
    if let Some(config) = &args.config {
        return every_target(ctx, args, config);
    }
    let repo = ctx.open()?;
    verify(ctx, args, &repo)
}

/// Verifies each target in turn; one unreachable or damaged target does not stop the
/// others from being checked.
fn every_target(ctx: &Context, args: &VerifyArgs, config: &std::path::Path) -> Result<()> {
    let config = super::config::load_repositories(config)?;
    let mut failed = Vec::new();
    for target in &config.targets {
        ctx.say(format!("target {} ({}):", target.name, target.url));
        let result = ctx
            .open_target(target)
            .and_then(|repo| verify(ctx, args, &repo));
        if let Err(e) = result {
            eprintln!(
                "lifeboat: target {}: {}",
                target.name,
                crate::exit::one_line(&e)
            );
            failed.push(target.name.clone());
        }
    }
    if !failed.is_empty() {
        return Err(DamageFound(format!("targets with problems: {}", failed.join(", "))).into());
    }
    Ok(())
}

fn verify(ctx: &Context, args: &VerifyArgs, repo: &lifeboat_repo::Repository) -> Result<()> {
    let report = check(
        repo,
        &CheckOptions {
            read_data_percent: args.read_data,
            record_damage: true,
        },
    )?;
    if ctx.global.json {
        ctx.print_json(&json!({
            "ok": report.is_ok(),
            "report": report,
        }));
    } else {
        for problem in &report.problems {
            let snapshots = if problem.snapshots.is_empty() {
                String::new()
            } else {
                let short: Vec<&str> = problem.snapshots.iter().map(|s| &s[..8]).collect();
                format!(" (needed by snapshots {})", short.join(", "))
            };
            out!(
                "damaged: {}: {}{}",
                problem.object,
                problem.detail,
                snapshots
            );
            for point in &problem.restore_points {
                let source = problem.source.as_deref().unwrap_or("restore points");
                out!("  lost: {source}: {point}");
            }
        }
        ctx.say(format!(
            "checked {} snapshots, {} trees, {} index files, {} packs ({} read), {} blobs, {} stream segments ({} read), {} archived WAL files ({} read), {} binlog pieces ({} read)",
            report.snapshots,
            report.trees,
            report.index_files,
            report.packs,
            report.packs_read,
            report.blobs,
            report.segments,
            report.segments_read,
            report.wal_files,
            report.wal_files_read,
            report.binlog_pieces,
            report.binlog_pieces_read,
        ));
        match report.read_data_percent {
            None => ctx.say(
                "data was not read: this checked structure, names and sizes; `verify --read-data` reads every pack, segment, WAL file and binlog piece",
            ),
            Some(pct) if pct < 100.0 => ctx.say(format!(
                "data read: about {pct}% of packs, segments, WAL files and binlog pieces, chosen at random"
            )),
            Some(_) => {}
        }
        if !report.recorded_damaged_packs.is_empty() {
            ctx.say(format!(
                "recorded {} damaged pack(s): the next backup stores their content again where the sources still hold it; `lifeboat repair` stores their intact blobs again and removes them",
                report.recorded_damaged_packs.len()
            ));
        }
        if report.unindexed_packs > 0 {
            ctx.say(format!(
                "{} pack(s) are not indexed yet (left by an interrupted backup; the next backup indexes them)",
                report.unindexed_packs
            ));
        }
    }
    if !report.is_ok() {
        return Err(
            DamageFound(format!("{} damaged object(s) found", report.problems.len())).into(),
        );
    }
    if !ctx.global.json {
        ctx.say("no problems found");
    }
    Ok(())
}
