use std::time::Instant;

use anyhow::{bail, ensure, Result};
use lifeboat_repo::snapshot::SnapshotSource;
use lifeboat_sources::command;
use lifeboat_sources::restore::{restore_tree, RestoreOptions};
use serde_json::json;

use crate::args::RestoreArgs;
use crate::context::Context;
use crate::progress::Bar;

pub fn run(ctx: &Context, args: &RestoreArgs) -> Result<()> {
    let repo = ctx.open()?;
    let started = Instant::now();
    let snapshot = repo.find_snapshot(&args.snapshot)?;
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
            let file = if target.is_dir() {
                target.join(&node.name)
            } else {
                target.clone()
            };
            ensure!(
                args.force || !file.exists(),
                "{} already exists; restore elsewhere or add --force to replace it",
                file.display()
            );
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
