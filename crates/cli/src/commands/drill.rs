//! `lifeboat drill SOURCE`: [`lifeboat_ops::drill`] from the command line, its report as
//! text or `--json`; a failed drill exits non-zero.

use anyhow::{bail, Result};
use lifeboat_ops::drill::DrillOptions;
use lifeboat_sources::timeline;

use crate::args::{DrillArgs, SubjectArgs};
pub(crate) use crate::commands::subject::Subject;
use crate::context::Context;

/// The source of `drill`, `timeline`, `diff` and `restore-rows`.
pub(crate) fn resolve_subject(ctx: &Context, args: &SubjectArgs) -> Result<Subject> {
    crate::commands::subject::resolve(ctx, &args.source, args.target.as_deref(), &args.file.config)
}

pub fn run(ctx: &Context, args: &DrillArgs) -> Result<()> {
    let subject = resolve_subject(ctx, &args.subject)?;
    let lifeboat_command = |tail: &str| super::pg::lifeboat_command(ctx, tail);
    let record = lifeboat_ops::drill::run(
        &subject,
        &DrillOptions {
            at: &args.at,
            physical: args.physical,
            lifeboat_command: &lifeboat_command,
        },
    )?;
    if ctx.global.json {
        ctx.print_json(&record);
    } else {
        let point = record
            .restore_point
            .map(timeline::show_time)
            .unwrap_or_else(|| "none".into());
        ctx.say(format!(
            "drill of {}: {} (restore point {point}, RTO {:.1}s, RPO {})",
            record.source,
            if record.passed { "PASSED" } else { "FAILED" },
            record.rto_seconds,
            record
                .rpo_seconds
                .map(|s| format!("{s:.0}s"))
                .unwrap_or_else(|| "unknown".into())
        ));
        for check in &record.checks {
            ctx.say(format!(
                "  {} {}{}",
                if check.passed { "ok  " } else { "FAIL" },
                check.check,
                check
                    .detail
                    .as_ref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
        }
    }
    if !record.passed {
        bail!(
            "drill of {} failed: {}",
            record.source,
            record.reason.unwrap_or_default()
        );
    }
    Ok(())
}
