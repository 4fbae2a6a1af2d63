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
    if let Some(url) = args.snapshot.as_deref().and_then(DatabaseUrl::parse) {
        ensure!(
            filter.is_empty(),
            "--host, --tag and --path choose a snapshot; a database URL is recovered to --at"
        );
        return recover_database(ctx, args, &url?, &ctx.open()?);
    }
    if let Some(source) = &args.source {
        ensure!(
            filter.is_empty(),
            "--host, --tag and --path choose a snapshot; --source chooses by source and --at"
        );
        return restore_source(ctx, args, source);
    }
    ensure!(
        args.at.is_none(),
        "--at goes with --source, or with a mysql:// URL to recover; a snapshot is restored as it is"
    );
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
        if url.engine == Engine::Mysql && args.into.is_some() {
            return recover_database(ctx, args, &url, &subject.repo);
        }
        bail!(
            "{} is a database server ({}): restore a dump with `lifeboat restore SNAPSHOT --into URL` (`lifeboat timeline {}` lists them){}",
            subject.name,
            url.redacted(),
            subject.name,
            if url.engine == Engine::Postgres {
                ", or a point in time with `lifeboat pg restore --at TIME`"
            } else {
                ", or a point in time with --at TIME --into mysql://…/newdb"
            }
        );
    }
    let at =
        PointInTime::parse_for_restore(args.at.as_deref().unwrap_or("latest"), chrono::Utc::now())
            .map_err(anyhow::Error::msg)?;
    let Some(target) = args.target.as_ref() else {
        bail!(
            "{} is restored into a file or directory: give --target",
            subject.name
        );
    };
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

/// `restore mysql://…/db --at T --into mysql://…/copy`: the newest dump before T, then
/// the archived binary log replayed up to T.
fn recover_database(
    ctx: &Context,
    args: &RestoreArgs,
    url: &DatabaseUrl,
    repo: &lifeboat_repo::Repository,
) -> Result<()> {
    ensure!(
        url.engine == Engine::Mysql,
        "{} is a PostgreSQL server: recover it to a moment with `lifeboat pg restore --at TIME`",
        url.redacted()
    );
    let Some(into) = &args.into else {
        bail!(
            "give --into mysql://…/newdb: {} is recovered into a new database",
            url.redacted()
        );
    };
    let into = match DatabaseUrl::parse(into) {
        Some(parsed) => parsed?,
        None => bail!("--into needs a mysql:// URL naming the new database"),
    };
    let report = lifeboat_ops::mysql_pitr::restore(
        repo,
        url,
        args.at.as_deref().unwrap_or("latest"),
        &into,
        args.force,
        &Terminal::new(ctx),
    )?;
    if ctx.global.json {
        ctx.print_json(&report);
        return Ok(());
    }
    ctx.say(format!(
        "recovered {} as of {} into {}: dump {} of {} + {} binlog transactions ({} to {}{}); \
         {} tables checked in {:.1}s",
        report.source,
        report.at,
        report.into,
        report.dump.short(),
        timeline::show_time(report.dump_time),
        report.transactions,
        report.replayed_from,
        report.replayed_to,
        report
            .replayed_to_time
            .map(|t| format!(", last commit {}", timeline::show_time(t)))
            .unwrap_or_default(),
        report.tables.len(),
        report.seconds
    ));
    Ok(())
}
