use std::time::Instant;

use anyhow::{bail, ensure, Result};
use lifeboat_ops::point_in_time::PointInTime;
use lifeboat_ops::restore::file_target;
use lifeboat_repo::snapshot::Engine;
use lifeboat_repo::snapshot::SnapshotSource;
use lifeboat_repo::tree::escape_path;
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::restore::{restore_tree, RestoreOptions};
use lifeboat_sources::timeline;
use lifeboat_sources::{command, dump};
use serde_json::json;

use crate::args::RestoreArgs;
use crate::context::Context;
use crate::progress::Bar;

pub fn run(ctx: &Context, args: &RestoreArgs) -> Result<()> {
    let filter = args.filter.filter();
    if let Some(source) = &args.source {
        ensure!(
            filter.is_empty(),
            "--host, --tag and --path choose a snapshot; --source chooses by source and --at"
        );
        return restore_source(ctx, args, source);
    }
    let repo = ctx.open()?;
    let started = Instant::now();
    let snapshot =
        repo.find_snapshot_matching(args.snapshot.as_deref().unwrap_or("latest"), &filter)?;
    let index = repo.load_index()?;
    ensure!(
        args.into.is_none() || matches!(snapshot.snapshot.source, SnapshotSource::Database(_)),
        "--into only applies to snapshots of PostgreSQL or MySQL/MariaDB databases"
    );
    let total = snapshot.snapshot.summary.total_bytes;
    let bar = Bar::bytes(ctx.progress_enabled(), Some(total), "restoring");
    let chosen_database = |dump| {
        dump::find_database(
            &repo,
            &index,
            &snapshot.snapshot.tree,
            dump,
            args.database.as_deref(),
        )
    };
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
            (format!("to {}", escape_path(&file)), node.size)
        }
        (SnapshotSource::Database(dump), _, _) if args.into.is_some() => {
            let into = args.into.as_deref().expect("checked");
            let target = match DatabaseUrl::parse(into) {
                Some(url) => url?,
                None => bail!("--into needs a postgres:// or mysql:// URL naming the new database"),
            };
            ensure!(
                target.engine == dump.engine,
                "this snapshot holds {} databases; it cannot be restored into {}",
                dump.engine.name(),
                target.engine.name()
            );
            let (dumped, node) = chosen_database(dump)?;
            let restore = match dump.engine {
                Engine::Postgres => lifeboat_sources::postgres::logical::restore,
                Engine::Mysql => lifeboat_sources::mysql::restore,
            };
            let restored = restore(&repo, &index, &node, dumped, &target, args.force, &bar)?;
            (
                format!(
                    "database {} into {}{} ({} tables, {} rows, row counts match the dump)",
                    dumped.name,
                    target.redacted(),
                    if restored.replaced {
                        ", replacing what was there"
                    } else {
                        ""
                    },
                    restored.tables,
                    restored.rows
                ),
                node.size,
            )
        }
        (SnapshotSource::Database(dump), Some(cmd), _) => {
            let (dumped, node) = chosen_database(dump)?;
            command::restore_to_command(&repo, &index, &node, cmd, &bar)?;
            (format!("database {} into {cmd:?}", dumped.name), node.size)
        }
        (
            SnapshotSource::Files | SnapshotSource::Database(_) | SnapshotSource::PgBase(_),
            None,
            Some(target),
        ) => {
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
        (SnapshotSource::Files | SnapshotSource::PgBase(_), Some(_), _) => {
            bail!("--to-command only applies to command and database snapshots")
        }
        (_, None, None) => bail!("give --target, --to-command or --into"),
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
            "restored snapshot {} ({} of {} on {}) {what} in {seconds:.1}s",
            snapshot.id.short(),
            timeline::show_time(snapshot.snapshot.time),
            snapshot.snapshot.paths.join(" "),
            snapshot.snapshot.host,
        ));
    }
    Ok(())
}

/// `restore --source DB --at TIME --target FILE`: the newest restore point at or before TIME.
fn restore_source(ctx: &Context, args: &RestoreArgs, source: &str) -> Result<()> {
    let subject =
        crate::commands::subject::resolve(ctx, source, args.from.as_deref(), &args.file.config)?;
    if let Some(url) = DatabaseUrl::parse(&subject.location) {
        let url = url?;
        bail!(
            "{} is a database server ({}): restore a dump with `lifeboat restore SNAPSHOT --into URL` (`lifeboat timeline {}` lists them){}",
            subject.name,
            url.redacted(),
            subject.name,
            if url.engine == Engine::Postgres {
                ", or a point in time with `lifeboat pg restore --at TIME`"
            } else {
                ""
            }
        );
    }
    // Checked when the command line was read.
    let at = PointInTime::parse(&args.at, chrono::Utc::now()).map_err(anyhow::Error::msg)?;
    let target = args.target.as_ref().expect("clap requires --target");
    let bar = Bar::bytes(ctx.progress_enabled(), None, "restoring");
    let report = lifeboat_ops::restore::source(
        &subject.repo,
        &subject.location,
        at,
        target,
        args.force,
        &bar,
    )?;
    bar.finish();
    if ctx.global.json {
        ctx.print_json(&report);
        return Ok(());
    }
    let checked = if report.checked {
        "; integrity_check and foreign_key_check passed"
    } else {
        ""
    };
    let point = &report.restore_point;
    let used = match point.segment {
        Some(seq) => format!(
            "snapshot {} + stream segments 1-{seq}{}",
            point.snapshot.short(),
            point
                .transaction
                .map(|n| format!(", up to transaction {n}"))
                .unwrap_or_default()
        ),
        None => format!("snapshot {}", point.snapshot.short()),
    };
    ctx.say(format!(
        "restored {} as of {} (restore point: {used}) to {}{checked} in {:.1}s",
        report.source,
        timeline::show_time(point.time),
        escape_path(&report.target),
        report.seconds
    ));
    if let Some(later) = &report.note {
        ctx.say(format!("note: {later}"));
    }
    Ok(())
}
