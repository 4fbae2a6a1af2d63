//! One plan run on one target: back up each source (a snapshot each, tagged with the plan
//! and the source so `status` and retention can find them), then apply the plan's
//! retention to its own snapshots.

use lifeboat_config::{Config, Plan, Target};
use lifeboat_ops::forget::ForgetReport;
use lifeboat_ops::request::Request;
use lifeboat_ops::{report, tags, BackupReport};

use crate::asking::Asker;

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
    asker: &Asker,
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
        if config.source(name).is_none() {
            continue;
        }
        // The child reads the source (its URL may hold a password) from lifeboat.toml.
        let request = Request::Backup {
            source: name.clone(),
            tags: vec![tags::plan_tag(&plan.name), tags::source_tag(name)],
        };
        match asker.run(Some(target), &request) {
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
    if plan.keep.is_some() {
        let request = Request::Forget {
            plan: plan.name.clone(),
        };
        match asker.ask::<ForgetReport>(Some(target), &request, "request (forget)") {
            Ok(_) => {}
            // An app host with an append-only token of `lifeboat serve` cannot delete:
            // retention is the admin's job there, not a failure of every run.
            Err(error) if error.contains("needs an admin token") => tracing::info!(
                "retention of plan {} on {} is left to the admin: its token is append-only",
                plan.name,
                target.name
            ),
            Err(error) => return Err(format!("retention: {error}")),
        }
    }
    Ok(outcome)
}
