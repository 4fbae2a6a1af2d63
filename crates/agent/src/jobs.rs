//! One plan run on one target: back up each source (a snapshot each, tagged with the plan
//! and the source so `status` and retention can find them), then apply the plan's
//! retention to its own snapshots.

use std::path::PathBuf;

use lifeboat_config::{Config, Keep, Plan, SourceLocation, Target};
use lifeboat_ops::{report, tags, BackupReport};

use crate::children::Children;

/// `lifeboat backup`'s exit code for a snapshot saved with warnings (some paths skipped
/// or stored as plain bytes; `crates/cli/src/exit.rs`).
pub const SAVED_WITH_WARNINGS: i32 = 6;

/// What a successful run stored.
pub struct Outcome {
    pub stored_bytes: u64,
    pub snapshots: Vec<String>,
    /// Paths the snapshots lack or hold as plain bytes, `source: path: problem` each:
    /// the run still counts (its snapshots are kept), but it is a warning incident.
    pub warnings: Vec<String>,
}

pub fn run(
    exe: &PathBuf,
    children: &Children,
    config: &Config,
    plan: &Plan,
    target: &Target,
) -> Result<Outcome, String> {
    let mut outcome = Outcome {
        stored_bytes: 0,
        snapshots: Vec::new(),
        warnings: Vec::new(),
    };
    let mut failures = Vec::new();
    for name in &plan.sources {
        let Some(source) = config.source(name) else {
            continue;
        };
        let mut args = vec!["backup".to_string()];
        let mut env = Vec::new();
        match &source.location {
            // A URL may hold a password, and arguments show in `ps` for every user: the
            // child reads it from DATABASE_URL (backup's default source) instead.
            SourceLocation::Url(url) => env.push(("DATABASE_URL", url.as_str())),
            SourceLocation::Command(command) => args.extend([
                "--stdin-from-command".into(),
                command.clone(),
                "--name".into(),
                name.clone(),
            ]),
        }
        // Patterns are not secret: they go as arguments.
        args.extend(source.select.backup_args());
        args.extend([
            "--tag".into(),
            tags::plan_tag(&plan.name),
            "--tag".into(),
            tags::source_tag(name),
            "--json".into(),
            "--quiet".into(),
        ]);
        match children.run_with_env(exe, target, &args, &env) {
            Ok(done) if done.success || done.code == Some(SAVED_WITH_WARNINGS) => {
                // A backup that says it saved a snapshot but gives no readable report has
                // not shown that it did: a failure, not a run that stored nothing.
                let report: BackupReport = match report::parse("backup", &done.stdout) {
                    Ok(report) => report,
                    Err(e) => {
                        failures.push(format!("{name}: {e}"));
                        continue;
                    }
                };
                outcome.stored_bytes += report.summary.stored_bytes;
                outcome.snapshots.push(report.id.to_string());
                for warning in &report.warnings {
                    outcome
                        .warnings
                        .push(format!("{name}: {}: {}", warning.path, warning.problem));
                }
                // Never a silent success: without a listed warning, the child's own line.
                if !done.success && report.warnings.is_empty() {
                    outcome.warnings.push(format!("{name}: {}", done.error));
                }
            }
            Ok(done) => failures.push(format!("{name}: {}", done.error)),
            Err(e) => failures.push(format!("{name}: cannot start lifeboat: {e}")),
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    if let Some(keep) = &plan.keep {
        let mut args = vec![
            "forget".to_string(),
            "--tag".into(),
            tags::plan_tag(&plan.name),
            "--quiet".into(),
        ];
        args.extend(keep_args(keep));
        match children.run(exe, target, &args) {
            Ok(done) if done.success => {}
            // An app host with an append-only token of `lifeboat serve` cannot delete:
            // retention is the admin's job there, not a failure of every run.
            Ok(done) if done.error.contains("needs an admin token") => tracing::info!(
                "retention of plan {} on {} is left to the admin: its token is append-only",
                plan.name,
                target.name
            ),
            Ok(done) => return Err(format!("retention: {}", done.error)),
            Err(e) => return Err(format!("retention: cannot start lifeboat: {e}")),
        }
    }
    Ok(outcome)
}

fn keep_args(keep: &Keep) -> Vec<String> {
    let mut args = Vec::new();
    for (flag, n) in [
        ("--keep-last", keep.last),
        ("--keep-hourly", keep.hourly),
        ("--keep-daily", keep.daily),
        ("--keep-weekly", keep.weekly),
        ("--keep-monthly", keep.monthly),
        ("--keep-yearly", keep.yearly),
    ] {
        if n > 0 {
            args.extend([flag.to_string(), n.to_string()]);
        }
    }
    if let Some(within) = keep.within {
        args.extend(["--keep-within".into(), format!("{}s", within.as_secs())]);
    }
    for tag in &keep.tags {
        args.extend(["--keep-tag".into(), tag.clone()]);
    }
    args
}
