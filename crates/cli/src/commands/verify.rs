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
    let repo = ctx.open()?;
    let report = check(
        &repo,
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
            println!(
                "damaged: {}: {}{}",
                problem.object, problem.detail, snapshots
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
