//! `lifeboat forget`: [`lifeboat_ops::forget`] from the command line, its report as text
//! or `--json`.

use anyhow::Result;
use lifeboat_ops::forget::{forget, Forget, ForgetReport};
use lifeboat_repo::retention::KeepPolicy;

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
    let filter = args.filter.filter();
    let what = if args.snapshots.is_empty() {
        if policy.is_empty() {
            return Err(crate::exit::Usage(
                "no policy given (--keep-last, --keep-daily, --keep-within, ...): refusing to forget every snapshot".into(),
            )
            .into());
        }
        Forget::Policy {
            policy: &policy,
            filter: &filter,
        }
    } else {
        if !policy.is_empty() || !filter.is_empty() {
            return Err(crate::exit::Usage(
                "give snapshot ids or a policy (--keep-...), not both".into(),
            )
            .into());
        }
        Forget::Named(&args.snapshots)
    };
    let repo = ctx.open()?;
    if !args.dry_run {
        ctx.require_admin(&repo, "forget")?;
    }
    let report = forget(&repo, what, args.dry_run)?;
    if ctx.global.json {
        ctx.print_json(&report);
    } else {
        print(ctx, &report);
    }
    Ok(())
}

fn print(ctx: &Context, report: &ForgetReport) {
    for group in &report.groups {
        if let Some(host) = &group.host {
            ctx.say(format!(
                "{host} {}: keep {}, remove {}",
                group.paths.join(" "),
                group.keep.len(),
                group.remove.len()
            ));
        }
        for s in &group.remove {
            let time = s.time.format("%Y-%m-%d %H:%M:%S");
            ctx.say(if group.named {
                format!(
                    "  remove {}  {time}  {}{}",
                    s.id.short(),
                    s.paths.join(" "),
                    if s.pinned { "  (pinned)" } else { "" }
                )
            } else {
                format!("  remove {}  {time}", s.id.short())
            });
        }
    }
    for locked in &report.locked {
        ctx.say(format!(
            "  keep {}: locked (S3 Object Lock) until {}; a forget after that removes it",
            locked.id.short(),
            locked.locked_until.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    let chosen: usize = report.groups.iter().map(|g| g.remove.len()).sum();
    if report.dry_run {
        ctx.say(format!(
            "dry run: {} snapshot(s) would be removed",
            chosen - report.locked.len()
        ));
    } else {
        ctx.say(format!(
            "{} snapshot(s), {} stream segment(s), {} archived WAL file(s) and {} binlog piece(s) removed; the snapshots' data stays in the repository until a prune frees it",
            report.removed_snapshots,
            report.removed_segments,
            report.removed_wal_files,
            report.removed_binlog_pieces
        ));
    }
}
