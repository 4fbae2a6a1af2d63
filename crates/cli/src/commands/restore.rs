//! `lifeboat restore`: a snapshot ([`lifeboat_ops::restore_snapshot`]) or a source as it
//! was at a moment ([`lifeboat_ops::restore`]).

use anyhow::{bail, ensure, Result};
use lifeboat_ops::point_in_time::PointInTime;
use lifeboat_ops::restore_snapshot::{self, Destination, SnapshotRestore};
use lifeboat_repo::snapshot::Engine;
use lifeboat_repo::tree::escape_path;
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::timeline;

use crate::args::RestoreArgs;
use crate::context::Context;
use crate::progress::{Bar, Terminal};

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
    let snapshot =
        repo.find_snapshot_matching(args.snapshot.as_deref().unwrap_or("latest"), &filter)?;
    let destination = match (&args.into, &args.to_command, &args.target) {
        (Some(url), _, _) => Destination::Database(url.clone()),
        (None, Some(command), _) => Destination::Command(command.clone()),
        (None, None, Some(target)) => Destination::Path(target.clone()),
        (None, None, None) => bail!("give --target, --to-command or --into"),
    };
    let request = SnapshotRestore {
        snapshot: &snapshot,
        destination,
        database: args.database.as_deref(),
        include: args.include.clone(),
        force: args.force,
    };
    let report = restore_snapshot::restore(&repo, &request, &Terminal::new(ctx))?;
    if ctx.global.json {
        ctx.print_json(&report);
    } else {
        ctx.say(format!(
            "restored snapshot {} ({} of {} on {}) {} in {:.1}s",
            snapshot.id.short(),
            timeline::show_time(snapshot.snapshot.time),
            snapshot.snapshot.paths.join(" "),
            snapshot.snapshot.host,
            report.restored,
            report.seconds
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
    let at =
        PointInTime::parse_for_restore(&args.at, chrono::Utc::now()).map_err(anyhow::Error::msg)?;
    let target = args.target.as_ref().expect("clap requires --target");
    let report = {
        let bar = Bar::bytes(ctx.progress_enabled(), None, "restoring");
        lifeboat_ops::restore::source(
            &subject.repo,
            &subject.location,
            at,
            target,
            args.force,
            &bar,
        )?
    };
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
