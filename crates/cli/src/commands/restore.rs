use std::time::Instant;

use anyhow::{bail, ensure, Result};
use lifeboat_repo::snapshot::SnapshotSource;
use lifeboat_sources::command;
use lifeboat_sources::restore::{restore_tree, RestoreOptions};
use lifeboat_sources::timeline;
use serde_json::json;

use crate::args::RestoreArgs;
use crate::context::Context;
use crate::progress::Bar;

pub fn run(ctx: &Context, args: &RestoreArgs) -> Result<()> {
    if let Some(source) = &args.source {
        return restore_source(ctx, args, source);
    }
    let repo = ctx.open()?;
    let started = Instant::now();
    let snapshot = repo.find_snapshot(args.snapshot.as_deref().unwrap_or("latest"))?;
    let index = repo.load_index()?;
    let total = snapshot.snapshot.summary.total_bytes;
    let bar = Bar::bytes(ctx.progress_enabled(), Some(total), "restoring");
    let (what, bytes) = match (&snapshot.snapshot.source, &args.to_command, &args.target) {
        (SnapshotSource::Command { .. }, Some(cmd), _) => {
            let node = command::stream_node(&repo, &index, &snapshot.snapshot.tree)?;
            command::restore_to_command(&repo, &index, &node, cmd, &bar)?;
            (format!("into {cmd:?}"), node.size)
        }
        (SnapshotSource::Command { .. }, None, Some(target)) => {
            let node = command::stream_node(&repo, &index, &snapshot.snapshot.tree)?;
            let file = file_target(target, &node.name, args.force)?;
            command::restore_to_file(&repo, &index, &node, &file, &bar)?;
            (format!("to {}", file.display()), node.size)
        }
        (SnapshotSource::Files, None, Some(target)) => {
            // Restoring over live data by mistake is how a recovery becomes a second disaster.
            let occupied = std::fs::read_dir(target).is_ok_and(|mut d| d.next().is_some());
            ensure!(
                args.force || !occupied,
                "{} is not empty; restore into a new directory or add --force to restore over it",
                target.display()
            );
            let options = RestoreOptions {
                include: args.include.clone(),
            };
            let stats = restore_tree(
                &repo,
                &index,
                snapshot.snapshot.tree,
                target,
                &options,
                &bar,
            )?;
            let databases = match stats.databases {
                0 => String::new(),
                n => {
                    format!(", {n} SQLite database(s) passed integrity_check and foreign_key_check")
                }
            };
            (
                format!(
                    "to {} ({} files, {} dirs{databases})",
                    target.display(),
                    stats.files,
                    stats.dirs
                ),
                stats.bytes,
            )
        }
        (SnapshotSource::Files, Some(_), _) => {
            bail!("--to-command only applies to command snapshots")
        }
        (_, None, None) => bail!("give --target or --to-command"),
    };
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    if ctx.global.json {
        ctx.print_json(&json!({
            "snapshot": snapshot.id,
            "bytes": bytes,
            "seconds": seconds,
        }));
    } else {
        ctx.say(format!(
            "restored snapshot {} {what} in {seconds:.1}s",
            snapshot.id.short()
        ));
    }
    Ok(())
}

/// `restore --source DB --at TIME --target FILE`: the newest restore point at or before TIME.
fn restore_source(ctx: &Context, args: &RestoreArgs, source: &str) -> Result<()> {
    let source = timeline::source_path(source)?;
    let at = timeline::parse_time(&args.at, chrono::Utc::now())?;
    let repo = ctx.open()?;
    let started = Instant::now();
    let index = repo.load_index()?;
    let points = timeline::restore_points(&repo, &index, &source)?;
    let point = timeline::choose(&points, at, &source)?;
    let target = args.target.as_ref().expect("clap requires --target");
    let file = file_target(target, &point.node.name, args.force)?;
    let bar = Bar::bytes(ctx.progress_enabled(), Some(point.node.size), "restoring");
    timeline::restore_point(&repo, &index, &points, point, &file, &bar)?;
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    let time = point
        .time
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if ctx.global.json {
        ctx.print_json(&json!({
            "source": source,
            "at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "restore_point": {
                "time": time,
                "kind": point.kind(),
                "snapshot": point.snapshot,
                "segment": point.segment.as_ref().map(|s| s.seq),
            },
            "target": file,
            "bytes": point.node.size,
            "checked": point.node.sqlite,
            "seconds": seconds,
        }));
    } else {
        let checked = if point.node.sqlite {
            "; integrity_check and foreign_key_check passed"
        } else {
            ""
        };
        let used = match &point.segment {
            Some(segment) => format!(
                "snapshot {} + stream segments 1-{}",
                point.snapshot.short(),
                segment.seq
            ),
            None => format!("snapshot {}", point.snapshot.short()),
        };
        ctx.say(format!(
            "restored {} as of {time} (restore point: {used}) to {}{checked} in {seconds:.1}s",
            source.display(),
            file.display()
        ));
    }
    Ok(())
}

/// The file to restore one stream or database into: `target`, or `target/name` when it
/// is a directory; an existing file is replaced only with --force.
fn file_target(target: &std::path::Path, name: &str, force: bool) -> Result<std::path::PathBuf> {
    let file = if target.is_dir() {
        target.join(name)
    } else {
        target.to_path_buf()
    };
    ensure!(
        force || !file.exists(),
        "{} already exists; restore elsewhere or add --force to replace it",
        file.display()
    );
    Ok(file)
}
