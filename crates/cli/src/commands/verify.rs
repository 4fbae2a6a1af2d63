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
    let config = super::config::load(config)?;
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
        }
        ctx.say(format!(
            "checked {} snapshots, {} index files, {} packs ({} read), {} blobs",
            report.snapshots, report.index_files, report.packs, report.packs_read, report.blobs
        ));
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
