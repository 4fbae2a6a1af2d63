//! `lifeboat request`: one use case described as JSON on standard input
//! ([`lifeboat_ops::request::Request`]), its report printed as JSON. The agent asks for
//! its status checks, drills, and its API's timelines and restores this way, so that
//! nothing it is asked reaches the process list. A report is printed whenever the use
//! case ran, a failed drill or a missed objective included; only a use case that could
//! not run exits non-zero.

use std::io::Read;

use anyhow::{ensure, Context as _, Result};
use lifeboat_ops::backup::BackupRequest;
use lifeboat_ops::forget::Forget;
use lifeboat_ops::meters::NoMeters;
use lifeboat_ops::point_in_time::PointInTime;
use lifeboat_ops::request::Request;
use lifeboat_repo::snapshot_filter::SnapshotFilter;
use lifeboat_repo::tree::escape_path;

use crate::args::RequestArgs;
use crate::context::Context;

/// A request is a few hundred bytes; more is not one.
const MAX_REQUEST: u64 = 64 * 1024;

pub fn run(ctx: &Context, args: &RequestArgs) -> Result<()> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_REQUEST + 1)
        .read_to_string(&mut text)
        .context("cannot read the request from standard input")?;
    ensure!(
        text.len() as u64 <= MAX_REQUEST,
        "the request is larger than {MAX_REQUEST} bytes"
    );
    let config = &args.file.config;
    match Request::parse(&text).map_err(crate::exit::Usage)? {
        Request::Timeline { source, target } => {
            let subject =
                crate::commands::subject::resolve(ctx, &source, target.as_deref(), config)?;
            let report = lifeboat_ops::timeline::of(&subject.repo, &subject.location)?;
            ctx.print_json(&report);
        }
        Request::Restore {
            source,
            target,
            at,
            into,
        } => {
            let at = PointInTime::parse_for_restore(&at, chrono::Utc::now())
                .map_err(crate::exit::Usage)?;
            let subject =
                crate::commands::subject::resolve(ctx, &source, target.as_deref(), config)?;
            make_private_dir(&into)?;
            let restored = lifeboat_ops::restore::source(
                &subject.repo,
                &subject.location,
                at,
                &into,
                false,
                &lifeboat_sources::NoProgress,
            );
            match restored {
                Ok(report) => ctx.print_json(&report),
                Err(e) => {
                    // The directory was made for this restore: nothing half-written stays.
                    let _ = std::fs::remove_dir_all(&into);
                    return Err(e);
                }
            }
        }
        Request::Drill { source, target, at } => {
            let subject =
                crate::commands::subject::resolve(ctx, &source, target.as_deref(), config)?;
            let lifeboat_command = |tail: &str| super::pg::lifeboat_command(ctx, tail);
            let report = lifeboat_ops::drill::run(
                &subject,
                &lifeboat_ops::drill::DrillOptions {
                    at: &at,
                    physical: false,
                    lifeboat_command: &lifeboat_command,
                },
            )?;
            ctx.print_json(&report);
        }
        Request::Backup { source, tags } => {
            let config = super::config::load_repositories(config)?;
            let Some(entry) = config.source(&source) else {
                return Err(crate::exit::Usage(format!("no source {source:?}")).into());
            };
            let repo = ctx.open()?;
            let request = BackupRequest::of_source(entry, tags, ctx.page_cache(&repo))?;
            let outcome = lifeboat_ops::backup::run(&repo, &request, &NoMeters)?;
            // Prints the report (the agent passes --json); warnings give their exit code.
            super::backup::finish(ctx, &outcome)?;
        }
        Request::Forget { plan } => {
            let config = super::config::load_repositories(config)?;
            let Some(plan) = config.plan(&plan) else {
                return Err(crate::exit::Usage(format!("no plan {plan:?}")).into());
            };
            let Some(keep) = &plan.keep else {
                return Err(
                    crate::exit::Usage(format!("plan {:?} keeps no retention", plan.name)).into(),
                );
            };
            let policy = lifeboat_ops::forget::policy_of(keep);
            if policy.is_empty() {
                return Err(crate::exit::Usage(
                    "a retention that keeps nothing: refusing to forget every snapshot".into(),
                )
                .into());
            }
            let repo = ctx.open()?;
            ctx.require_admin(&repo, "forget")?;
            let filter = SnapshotFilter {
                tags: vec![lifeboat_ops::tags::plan_tag(&plan.name)],
                ..Default::default()
            };
            let what = Forget::Policy {
                policy: &policy,
                filter: &filter,
            };
            ctx.print_json(&lifeboat_ops::forget::forget(&repo, what, false)?);
        }
        Request::Snapshots { source } => {
            let repo = ctx.open()?;
            let filter = SnapshotFilter {
                tags: source
                    .iter()
                    .map(|s| lifeboat_ops::tags::source_tag(s))
                    .collect(),
                ..Default::default()
            };
            ctx.print_json(&lifeboat_ops::snapshots::list(&repo, &filter)?);
        }
        Request::Status { sources } => {
            let config = super::config::load_repositories(config)?;
            if let Some(unknown) = sources.iter().find(|s| config.source(s).is_none()) {
                return Err(crate::exit::Usage(format!("no source {unknown:?}")).into());
            }
            let report = lifeboat_ops::status::measure(
                &config,
                &sources,
                |target| ctx.open_target(target),
                chrono::Utc::now(),
            );
            ctx.print_json(&report);
        }
    }
    Ok(())
}

/// Makes `dir`, which must not exist, readable by its owner only: what is restored there
/// is the data the repository kept encrypted.
fn make_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .with_context(|| {
            format!(
                "cannot make the directory {} to restore into",
                escape_path(dir)
            )
        })
}
