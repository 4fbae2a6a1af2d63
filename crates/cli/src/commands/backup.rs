use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};
use lifeboat_repo::session::WriteSession;
use lifeboat_repo::snapshot::{SnapshotDraft, SnapshotSource, SnapshotSummary, SnapshotWarning};
use lifeboat_repo::Repository;
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::{command, dump, files};
use serde_json::json;

use crate::args::BackupArgs;
use crate::context::Context;
use crate::progress::Bar;

pub fn run(ctx: &Context, args: &BackupArgs) -> Result<()> {
    let taken = take_snapshot(ctx, args)?;
    if taken.warnings.is_empty() {
        return Ok(());
    }
    // The snapshot is saved; the exit code tells scripts (and the agent) that some paths
    // are missing from it or stored as plain bytes.
    Err(crate::exit::WithCode {
        code: crate::exit::SAVED_WITH_WARNINGS,
        message: format!(
            "snapshot {} saved, but {} path(s) were skipped or stored as plain bytes (each is named in the output)",
            taken.id.short(),
            taken.warnings.len()
        ),
    }
    .into())
}

/// A snapshot just taken.
pub struct Taken {
    pub id: lifeboat_repo::Id,
    pub paths: Vec<String>,
    pub warnings: Vec<SnapshotWarning>,
}

/// Takes the snapshot `args` describe and reports it; returns its id and paths. A
/// snapshot saved with warnings is a success here (they have been printed).
pub fn take(ctx: &Context, args: &BackupArgs) -> Result<(lifeboat_repo::Id, Vec<String>)> {
    take_snapshot(ctx, args).map(|t| (t.id, t.paths))
}

/// Takes the snapshot `args` describe and reports it, with the paths it had to skip or
/// store as plain bytes.
pub fn take_snapshot(ctx: &Context, args: &BackupArgs) -> Result<Taken> {
    let repo = ctx.open()?;
    let started = Instant::now();
    let mut time = chrono::Utc::now();
    let given = given_paths(args)?;
    let databases = database_urls(&given)?;
    let selection = selection(&args.select)?;
    let host = args.host.clone().unwrap_or_else(lifeboat_repo::hostname);
    let session = if args.dry_run {
        WriteSession::dry_run(&repo)?
    } else {
        WriteSession::start(&repo, "backup")?
    };
    let mut warnings = Vec::new();
    let mut excluded = 0;
    let (source, paths, tree, summary, parent) = match &args.stdin_from_command {
        Some(cmd) => {
            let name = args.name.clone().unwrap_or_default();
            let bar = Bar::bytes(ctx.progress_enabled(), None, "backing up");
            let (tree, size) = command::backup_command(&session, cmd, &name, &bar)?;
            bar.finish();
            let summary = SnapshotSummary {
                files: 1,
                total_bytes: size,
                ..Default::default()
            };
            let source = SnapshotSource::Command {
                command: cmd.clone(),
                name: name.clone(),
            };
            (source, vec![format!("command:{name}")], tree, summary, None)
        }
        None if !databases.is_empty() => {
            let bar = Bar::bytes(ctx.progress_enabled(), None, "dumping");
            let dumped = dump::backup(&session, &databases, &bar)?;
            bar.finish();
            // A dump shows the database as it was when its snapshot was taken, which is
            // what `--at` times are compared with.
            time = dumped.consistent_at.unwrap_or(time);
            if !ctx.global.json {
                for db in &dumped.dump.databases {
                    let rows: u64 = db.tables.iter().map(|t| t.rows).sum();
                    ctx.say(format!(
                        "{} database {}: {} tables, {rows} rows, from one consistent state",
                        dumped.dump.engine.name(),
                        db.name,
                        db.tables.len()
                    ));
                }
                if dumped.dump.globals.is_none() {
                    ctx.say("roles and other server-wide objects could not be read; not included");
                }
            }
            let summary = SnapshotSummary {
                files: dumped.dump.databases.len() as u64 + dumped.dump.globals.is_some() as u64,
                total_bytes: dumped.bytes,
                ..Default::default()
            };
            let shown = databases.iter().map(|d| d.redacted()).collect();
            (
                SnapshotSource::Database(dumped.dump),
                shown,
                dumped.root,
                summary,
                None,
            )
        }
        None => {
            let paths = absolute_paths(&given)?;
            let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let parent = if args.force {
                None
            } else {
                find_parent(&repo, &shown, &host)?
            };
            let total = paths.iter().map(|p| disk_usage(p)).sum();
            let bar = Bar::bytes(ctx.progress_enabled(), Some(total), "backing up");
            let parent_ref = parent.map(|root| files::Parent {
                repo: &repo,
                index: session.index(),
                root: root.1,
            });
            // A dry run leaves this host's page cache as it was, too.
            let page_cache = ctx.page_cache(&repo).filter(|_| !args.dry_run);
            let (tree, found) = files::backup_paths(
                &session,
                &paths,
                parent_ref.as_ref(),
                page_cache.as_ref(),
                &selection,
                &bar,
            )?;
            bar.finish();
            warnings = found.warnings;
            excluded = found.excluded;
            if found.databases > 0 && !ctx.global.json {
                ctx.say(format!(
                    "{} SQLite database(s) read from one committed state: {} of {} pages stored{}",
                    found.databases,
                    found.changed_pages,
                    found.database_pages,
                    if found.incremental_databases > 0 {
                        " (changed pages only)"
                    } else {
                        ""
                    }
                ));
            }
            let summary = SnapshotSummary {
                files: found.files,
                dirs: found.dirs,
                total_bytes: found.total_bytes,
                database_pages: found.database_pages,
                changed_pages: found.changed_pages,
                ..Default::default()
            };
            (
                SnapshotSource::Files,
                shown,
                tree,
                summary,
                parent.map(|p| p.0),
            )
        }
    };
    if args.skip_if_unchanged {
        if let Some(same) = unchanged_snapshot(&repo, &paths, &args.tags, &host, tree)? {
            // Every blob of the tree is stored already: nothing new to index.
            session.finish()?;
            if ctx.global.json {
                ctx.print_json(&lifeboat_ops::BackupReport {
                    id: same,
                    short_id: same.short(),
                    time,
                    skipped: true,
                    summary: summary.clone(),
                    recovered_packs: 0,
                    warnings: Vec::new(),
                });
            } else {
                ctx.say(format!(
                    "nothing changed since snapshot {}; no snapshot saved",
                    same.short()
                ));
            }
            return Ok(Taken {
                id: same,
                paths,
                warnings: Vec::new(),
            });
        }
    }
    let finished = session.finish()?;
    let stats = finished.stats;
    let draft = SnapshotDraft {
        time,
        host: Some(host),
        paths,
        tags: args.tags.clone(),
        pinned: args.pin,
        source,
        tree,
        parent,
        summary,
        warnings,
        started,
    };
    if args.dry_run {
        let would_be = draft.complete(&stats);
        report_dry_run(
            ctx,
            &would_be.paths,
            &would_be.summary,
            excluded,
            &would_be.warnings,
        );
        return Ok(Taken {
            id: lifeboat_repo::Id([0; 32]),
            paths: would_be.paths,
            warnings: Vec::new(),
        });
    }
    let (id, snapshot) = finished.save(draft)?;
    let summary = &snapshot.summary;
    if ctx.global.json {
        ctx.print_json(&lifeboat_ops::BackupReport {
            id,
            short_id: id.short(),
            time: snapshot.time,
            skipped: false,
            summary: summary.clone(),
            recovered_packs: stats.recovered_packs,
            warnings: snapshot.warnings.clone(),
        });
    } else {
        ctx.say(format!(
            "snapshot {} saved: {} files, {} dirs, {} ({} new, {} stored) in {:.1}s",
            id.short(),
            summary.files,
            summary.dirs,
            human(summary.total_bytes),
            human(summary.new_bytes),
            human(summary.stored_bytes),
            summary.duration_ms as f64 / 1000.0
        ));
        // Printed even with --quiet: each is a path missing from the snapshot or stored
        // in a lesser form, which is not chatter.
        for warning in &snapshot.warnings {
            out!(
                "warning: {}: {}",
                escape_controls(&warning.path),
                escape_controls(&warning.problem)
            );
        }
    }
    Ok(Taken {
        id,
        paths: snapshot.paths,
        warnings: snapshot.warnings,
    })
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
    if !paths.is_empty() || args.stdin_from_command.is_some() {
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

/// The `postgres://` and `mysql://` URLs among the paths: all of them, or none.
fn database_urls(paths: &[PathBuf]) -> Result<Vec<DatabaseUrl>> {
    let mut urls = Vec::new();
    for path in paths {
        if let Some(url) = path.to_str().and_then(DatabaseUrl::parse) {
            urls.push(url?);
        }
    }
    anyhow::ensure!(
        urls.is_empty() || urls.len() == paths.len(),
        "back up databases and files in separate snapshots"
    );
    Ok(urls)
}

fn absolute_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    paths
        .iter()
        .map(|p| {
            // `sqlite:./app.db` and `file:./dev.db`, as DATABASE_URL is written for
            // Prisma and Drizzle, name a database file.
            let p = match p.to_str().and_then(lifeboat_sources::sqlite::path_from_url) {
                Some(db) => {
                    anyhow::ensure!(
                        lifeboat_sources::sqlite::is_sqlite(&db),
                        "{}: not a SQLite database (from {})",
                        db.display(),
                        p.display()
                    );
                    db
                }
                None => p.clone(),
            };
            let absolute = if p.is_absolute() { p } else { cwd.join(&p) };
            // Normalise `.` and trailing slashes; keep symlinks as given.
            Ok(absolute.components().collect())
        })
        .collect()
}

/// The newest snapshot of `paths` with `tags` from `host`, if its tree is `tree`.
fn unchanged_snapshot(
    repo: &Repository,
    paths: &[String],
    tags: &[String],
    host: &str,
    tree: lifeboat_repo::Id,
) -> Result<Option<lifeboat_repo::Id>> {
    Ok(newest_of_paths(repo, paths, Some(tags), host)?
        .filter(|s| s.snapshot.tree == tree)
        .map(|s| s.id))
}

/// The newest files snapshot of exactly `paths` (and `tags`, if given) from `host`.
fn newest_of_paths(
    repo: &Repository,
    paths: &[String],
    tags: Option<&[String]>,
    host: &str,
) -> Result<Option<lifeboat_repo::snapshot::StoredSnapshot>> {
    Ok(repo.list_snapshots()?.into_iter().rev().find(|s| {
        s.snapshot.host == host
            && s.snapshot.paths == paths
            && tags.is_none_or(|tags| s.snapshot.tags == tags)
            && s.snapshot.source == SnapshotSource::Files
    }))
}

/// The newest snapshot of the same paths from `host`: its unchanged files are reused.
fn find_parent(
    repo: &Repository,
    paths: &[String],
    host: &str,
) -> Result<Option<(lifeboat_repo::Id, lifeboat_repo::Id)>> {
    Ok(newest_of_paths(repo, paths, None, host)?.map(|s| (s.id, s.snapshot.tree)))
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

/// What a dry run found: what the backup would read and add.
fn report_dry_run(
    ctx: &Context,
    paths: &[String],
    summary: &SnapshotSummary,
    excluded: u64,
    warnings: &[SnapshotWarning],
) {
    if ctx.global.json {
        ctx.print_json(&json!({
            "dry_run": true,
            "paths": paths,
            "summary": summary,
            "excluded": excluded,
            "warnings": warnings,
        }));
        return;
    }
    ctx.say(format!(
        "dry run: would save {} files, {} dirs, {} ({} new before compression, in {} new blobs); {excluded} excluded; nothing written",
        summary.files,
        summary.dirs,
        human(summary.total_bytes),
        human(summary.new_bytes),
        summary.new_blobs,
    ));
    for warning in warnings {
        out!(
            "warning: {}: {}",
            escape_controls(&warning.path),
            escape_controls(&warning.problem)
        );
    }
}

fn disk_usage(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| disk_usage(&e.path())).sum())
            .unwrap_or(0)
    } else if meta.is_file() {
        meta.len()
    } else {
        0
    }
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
