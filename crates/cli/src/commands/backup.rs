//! `lifeboat backup`: the arguments mapped to an [`lifeboat_ops::backup::BackupRequest`],
//! the outcome printed.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use lifeboat_ops::backup::{BackupOutcome, BackupRequest, Contents};
use lifeboat_repo::snapshot::SnapshotWarning;
use lifeboat_sources::files;

use crate::args::BackupArgs;
use crate::context::Context;
use crate::progress::Terminal;

pub fn run(ctx: &Context, args: &BackupArgs) -> Result<()> {
    if let Some(plan) = &args.plan {
        return back_up_plan(ctx, args, plan);
    }
    let outcome = take_snapshot(ctx, args)?;
    finish(ctx, &outcome)
}

/// One source's backup to one target of a plan, for `backup --plan --json`.
#[derive(serde::Serialize)]
struct PlanBackup {
    source: String,
    target: String,
    report: Option<lifeboat_ops::BackupReport>,
    error: Option<String>,
}

/// `backup --plan NAME`: each source of the plan to each of its targets, one after the
/// other; a failure is reported and the others still run.
fn back_up_plan(ctx: &Context, args: &BackupArgs, name: &str) -> Result<()> {
    let config = super::config::load_repositories(&args.file.config)?;
    let plan = config.plan(name).ok_or_else(|| {
        crate::exit::Usage(format!(
            "{} has no plan {name:?}",
            args.file.config.display()
        ))
    })?;
    let mut done = Vec::new();
    for target in plan.targets.iter().filter_map(|t| config.target(t)) {
        let repo = ctx.open_target(target);
        for source in plan.sources.iter().filter_map(|s| config.source(s)) {
            let mut tags = vec![
                lifeboat_ops::tags::plan_tag(&plan.name),
                lifeboat_ops::tags::source_tag(&source.name),
            ];
            tags.extend(args.tags.iter().cloned());
            let outcome = repo
                .as_ref()
                .map_err(|e| anyhow::anyhow!("{e:#}"))
                .and_then(|repo| {
                    let mut request = BackupRequest::of_source(source, tags, ctx.page_cache(repo))?;
                    request.pinned = args.pin;
                    lifeboat_ops::backup::run(repo, &request, &Terminal::new(ctx))
                });
            if !ctx.global.json {
                ctx.say(format!("{} to {}:", source.name, target.name));
            }
            let (report, error) = match outcome {
                Ok(outcome) => {
                    if !ctx.global.json {
                        show(ctx, &outcome);
                    }
                    (Some(outcome.report), None)
                }
                Err(e) => {
                    let line = crate::exit::one_line(&e);
                    if !ctx.global.json {
                        eprintln!("error: {line}");
                    }
                    (None, Some(line))
                }
            };
            done.push(PlanBackup {
                source: source.name.clone(),
                target: target.name.clone(),
                report,
                error,
            });
        }
    }
    if ctx.global.json {
        ctx.print_json(&done);
    }
    let failed = done.iter().filter(|d| d.error.is_some()).count();
    let warned = done
        .iter()
        .filter(|d| d.report.as_ref().is_some_and(|r| !r.warnings.is_empty()))
        .count();
    if failed > 0 {
        return Err(crate::exit::WithCode {
            code: crate::exit::FAILURE,
            message: format!("{failed} of {} backups of plan {name} failed", done.len()),
        }
        .into());
    }
    if warned > 0 {
        return Err(crate::exit::WithCode {
            code: crate::exit::SAVED_WITH_WARNINGS,
            message: format!(
                "{warned} backup(s) of plan {name} saved with paths skipped or stored as plain bytes"
            ),
        }
        .into());
    }
    Ok(())
}

/// Prints `outcome`; a snapshot saved with warnings is an error carrying its own exit
/// code, which tells scripts (and the agent) that some paths are missing from it or
/// stored as plain bytes.
pub fn finish(ctx: &Context, outcome: &BackupOutcome) -> Result<()> {
    show(ctx, outcome);
    let report = &outcome.report;
    if outcome.dry_run || report.warnings.is_empty() {
        return Ok(());
    }
    Err(crate::exit::WithCode {
        code: crate::exit::SAVED_WITH_WARNINGS,
        message: format!(
            "snapshot {} saved, but {} path(s) were skipped or stored as plain bytes (each is named in the output)",
            report.short_id,
            report.warnings.len()
        ),
    }
    .into())
}

/// Takes the snapshot `args` describe and prints it. A snapshot saved with warnings is a
/// success here (they have been printed).
pub fn take(ctx: &Context, args: &BackupArgs) -> Result<lifeboat_ops::BackupReport> {
    let outcome = take_snapshot(ctx, args)?;
    show(ctx, &outcome);
    Ok(outcome.report)
}

fn take_snapshot(ctx: &Context, args: &BackupArgs) -> Result<BackupOutcome> {
    let repo = ctx.open()?;
    let request = request(ctx, &repo, args)?;
    lifeboat_ops::backup::run(&repo, &request, &Terminal::new(ctx))
}

fn request(
    ctx: &Context,
    repo: &lifeboat_repo::Repository,
    args: &BackupArgs,
) -> Result<BackupRequest> {
    let contents = match &args.stdin_from_command {
        Some(command) => Contents::Command {
            command: command.clone(),
            name: args.name.clone().unwrap_or_default(),
        },
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            Contents::of(&given_paths(args)?, &cwd)?
        }
    };
    Ok(BackupRequest {
        contents,
        tags: args.tags.clone(),
        pinned: args.pin,
        without_parent: args.force,
        skip_if_unchanged: args.skip_if_unchanged,
        dry_run: args.dry_run,
        host: args.host.clone().unwrap_or_else(lifeboat_repo::hostname),
        selection: selection(&args.select)?,
        page_cache: ctx.page_cache(repo),
    })
}

fn show(ctx: &Context, outcome: &BackupOutcome) {
    let report = &outcome.report;
    if outcome.dry_run {
        return show_dry_run(ctx, outcome);
    }
    if ctx.global.json {
        return ctx.print_json(report);
    }
    for db in &outcome.dumped {
        ctx.say(format!(
            "{} database {}: {} tables, {} rows, from one consistent state",
            db.engine, db.name, db.tables, db.rows
        ));
    }
    if outcome.globals_missing {
        ctx.say("roles and other server-wide objects could not be read; not included");
    }
    let sqlite = &outcome.sqlite;
    if sqlite.databases > 0 {
        ctx.say(format!(
            "{} SQLite database(s) read from one committed state: {} of {} pages stored{}",
            sqlite.databases,
            sqlite.changed_pages,
            sqlite.pages,
            if sqlite.incremental {
                " (changed pages only)"
            } else {
                ""
            }
        ));
    }
    if report.skipped {
        return ctx.say(format!(
            "nothing changed since snapshot {}; no snapshot saved",
            report.short_id
        ));
    }
    let summary = &report.summary;
    ctx.say(format!(
        "snapshot {} saved: {} files, {} dirs, {} ({} new, {} stored) in {:.1}s",
        report.short_id,
        summary.files,
        summary.dirs,
        human(summary.total_bytes),
        human(summary.new_bytes),
        human(summary.stored_bytes),
        summary.duration_ms as f64 / 1000.0
    ));
    print_warnings(&report.warnings);
}

/// What a dry run found: what the backup would read and add.
fn show_dry_run(ctx: &Context, outcome: &BackupOutcome) {
    if ctx.global.json {
        return ctx.print_json(&outcome.dry_run_report());
    }
    let summary = &outcome.report.summary;
    ctx.say(format!(
        "dry run: would save {} files, {} dirs, {} ({} new before compression, in {} new blobs); {} excluded; nothing written",
        summary.files,
        summary.dirs,
        human(summary.total_bytes),
        human(summary.new_bytes),
        summary.new_blobs,
        outcome.excluded,
    ));
    print_warnings(&outcome.report.warnings);
}

/// Printed even with --quiet: each is a path missing from the snapshot or stored in a
/// lesser form, which is not chatter.
fn print_warnings(warnings: &[SnapshotWarning]) {
    for warning in warnings {
        out!(
            "warning: {}: {}",
            escape_controls(&warning.path),
            escape_controls(&warning.problem)
        );
    }
}

/// `text` with control characters escaped, so a file name cannot move the cursor or
/// rewrite the terminal's title when printed.
fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The paths (or URLs) to back up; with none given, `DATABASE_URL`.
fn given_paths(args: &BackupArgs) -> Result<Vec<PathBuf>> {
    let mut paths = args.paths.clone();
    for file in &args.select.files_from {
        let listed = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read --files-from {}", file.display()))?;
        let before = paths.len();
        paths.extend(
            listed
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .map(PathBuf::from),
        );
        anyhow::ensure!(
            paths.len() > before,
            "--files-from {} lists no paths",
            file.display()
        );
    }
    if !paths.is_empty() {
        return Ok(paths);
    }
    match std::env::var_os("DATABASE_URL") {
        Some(url) if !url.is_empty() => Ok(vec![PathBuf::from(url)]),
        _ => Err(crate::exit::Usage(
            "give files, directories or database URLs to back up, or set DATABASE_URL".into(),
        )
        .into()),
    }
}

/// The exclusions of `select`, with the patterns of its files read.
fn selection(select: &crate::args::SelectArgs) -> Result<files::select::Selection> {
    let mut excludes = select.excludes.clone();
    for file in &select.exclude_files {
        excludes.extend(files::select::read_pattern_file(file)?);
    }
    let mut iexcludes = select.iexcludes.clone();
    for file in &select.iexclude_files {
        iexcludes.extend(files::select::read_pattern_file(file)?);
    }
    Ok(files::select::Selection::new(
        &excludes,
        &iexcludes,
        &select.exclude_if_present,
        select.one_file_system,
    )?)
}

pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
