//! `lifeboat diff` and `lifeboat restore-rows`: row-level answers to "what changed since
//! this morning" and "bring back the customer deleted an hour ago", without rolling back
//! anyone else's work. SQLite restore points are restored into scratch files. PostgreSQL:
//! with base backups and archived WAL, the server is recovered to the exact moment in a
//! throwaway cluster (writes made after the last dump come back too); otherwise the dump
//! is restored into a scratch database on the source's server. Either is removed after.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use chrono::SecondsFormat;
use chrono::{DateTime, Utc};
use lifeboat_repo::snapshot::Engine;
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::postgres::{self, Psql};
use lifeboat_sources::rows::{RowsRestore, TableDiff};
use lifeboat_sources::sqlite::rows;
use lifeboat_sources::timeline;
use serde_json::json;

use crate::args::{DiffArgs, RestoreRowsArgs};
use crate::commands::drill::{resolve_subject, Subject};
use crate::context::Context;
use lifeboat_ops::drill::cluster::{base_backups_of, recover_cluster, RecoveredCluster};
use lifeboat_ops::drill::{dump_at, ScratchDatabase};
use lifeboat_sources::postgres::recovery::RecoveryTarget;

/// A past state of a PostgreSQL database, kept while this lives.
enum PastState {
    /// A dump restored into a scratch database beside the live one.
    Dump(ScratchDatabase, Psql),
    /// The server recovered to a point in a throwaway cluster (its scratch directory
    /// goes after the cluster has stopped).
    Recovered {
        psql: Psql,
        database: String,
        _cluster: RecoveredCluster,
        _dir: tempfile::TempDir,
    },
}

impl PastState {
    fn side(&self) -> postgres::rows::Side<'_> {
        match self {
            PastState::Dump(scratch, psql) => postgres::rows::Side {
                psql,
                database: &scratch.name,
            },
            PastState::Recovered { psql, database, .. } => postgres::rows::Side { psql, database },
        }
    }
}

/// PostgreSQL source `url` as it was at `at`: recovered to that moment when the
/// repository holds base backups of its server, else its newest dump at or before it.
fn postgres_at(
    ctx: &Context,
    subject: &Subject,
    url: &DatabaseUrl,
    at: &str,
    purpose: &str,
) -> Result<(DateTime<Utc>, PastState)> {
    let snapshots = subject.repo.list_snapshots()?;
    let bases = base_backups_of(&snapshots, url);
    if !bases.is_empty() {
        let database = url
            .database()
            .with_context(|| format!("{}: name the database (…/appdb)", url.redacted()))?;
        let target = RecoveryTarget::parse(at, Utc::now());
        let dir = tempfile::Builder::new()
            .prefix(&format!("lifeboat-{purpose}-"))
            .tempdir()?;
        let lifeboat_command = |tail: &str| super::pg::lifeboat_command(ctx, tail);
        let (cluster, _, meta) = recover_cluster(
            &lifeboat_command,
            &subject.repo,
            url,
            &bases,
            &target,
            &dir.path().join("cluster"),
        )?;
        let time = match (&target, cluster.replayed) {
            (RecoveryTarget::Time(time), _) => *time,
            (_, Some(replayed)) => replayed,
            _ => meta.finished,
        };
        let psql = Psql::new(&cluster.url)?;
        return Ok((
            time,
            PastState::Recovered {
                psql,
                database,
                _cluster: cluster,
                _dir: dir,
            },
        ));
    }
    let snapshot = dump_at(subject, url, timeline::parse_time(at, Utc::now())?)?;
    let scratch = ScratchDatabase::restore(&subject.repo, &snapshot, url, purpose)?;
    if scratch.engine != Engine::Postgres {
        bail!(
            "row-level diff and restore work on SQLite and PostgreSQL; {} is MySQL/MariaDB",
            url.redacted()
        );
    }
    Ok((
        snapshot.snapshot.time,
        PastState::Dump(scratch, Psql::new(url)?),
    ))
}

/// Restores the restore point of `subject` at `at` into `file`; returns its time.
fn restore_at(subject: &Subject, at: &str, file: &Path) -> Result<chrono::DateTime<chrono::Utc>> {
    let path = timeline::source_path(&subject.location)?;
    let repo = &subject.repo;
    let index = repo.load_index()?;
    let points = timeline::restore_points(repo, &index, &path)?;
    if !points.iter().any(|p| p.node.sqlite) {
        bail!(
            "{} has no SQLite restore points in this repository",
            path.display()
        );
    }
    let point = timeline::choose(
        &points,
        timeline::parse_time(at, chrono::Utc::now())?,
        &path,
    )?;
    timeline::restore_point(
        repo,
        &index,
        &points,
        point,
        file,
        &lifeboat_sources::NoProgress,
    )?;
    Ok(point.time)
}

fn scratch() -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix("lifeboat-rows-")
        .tempdir()?)
}

pub fn diff(ctx: &Context, args: &DiffArgs) -> Result<()> {
    let subject = resolve_subject(ctx, &args.subject)?;
    let (from, to, tables) = match DatabaseUrl::parse(&subject.location) {
        Some(url) => {
            let url = url?;
            let (from, old) = postgres_at(ctx, &subject, &url, &args.from, "diff")?;
            let (to, new) = postgres_at(ctx, &subject, &url, &args.to, "diff")?;
            let tables = postgres::rows::diff(old.side(), new.side(), args.table.as_deref())?;
            (from, to, tables)
        }
        None => {
            let dir = scratch()?;
            let (old, new): (PathBuf, PathBuf) =
                (dir.path().join("from.db"), dir.path().join("to.db"));
            let from = restore_at(&subject, &args.from, &old)?;
            let to = restore_at(&subject, &args.to, &new)?;
            (from, to, rows::diff(&old, &new, args.table.as_deref())?)
        }
    };
    print_diff(ctx, &subject, from, to, &tables);
    Ok(())
}

fn print_diff(
    ctx: &Context,
    subject: &Subject,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tables: &[TableDiff],
) {
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    if ctx.global.json {
        ctx.print_json(&json!({
            "source": subject.name,
            "from": time(from),
            "to": time(to),
            "tables": tables,
        }));
        return;
    }
    ctx.say(format!("{}: {} -> {}", subject.name, time(from), time(to)));
    for table in tables.iter().filter(|t| !t.is_empty()) {
        if let Some(change) = &table.schema_changed {
            ctx.say(format!("  {}: {change}", table.table));
            continue;
        }
        ctx.say(format!(
            "  {}: {} inserted, {} updated, {} deleted",
            table.table,
            table.inserted.len(),
            table.updated.len(),
            table.deleted.len()
        ));
        for row in &table.inserted {
            ctx.say(format!("    + {row}"));
        }
        for change in &table.updated {
            ctx.say(format!("    ~ {} -> {}", change["before"], change["after"]));
        }
        for row in &table.deleted {
            ctx.say(format!("    - {row}"));
        }
    }
}

pub fn restore_rows(ctx: &Context, args: &RestoreRowsArgs) -> Result<()> {
    let subject = resolve_subject(ctx, &args.subject)?;
    let (at, result) = match DatabaseUrl::parse(&subject.location) {
        Some(url) => {
            let url = url?;
            let live = url
                .database()
                .with_context(|| format!("{}: name the live database (…/appdb)", url.redacted()))?;
            let (at, old) = postgres_at(ctx, &subject, &url, &args.at, "rows")?;
            let live_psql = Psql::new(&url)?;
            let result = postgres::rows::restore_rows(
                old.side(),
                postgres::rows::Side {
                    psql: &live_psql,
                    database: &live,
                },
                &args.table,
                &args.condition,
                args.apply,
                args.with_children,
            )?;
            (at, result)
        }
        None => restore_sqlite_rows(&subject, args)?,
    };
    print_restore(ctx, &subject, at, &result);
    Ok(())
}

fn restore_sqlite_rows(
    subject: &Subject,
    args: &RestoreRowsArgs,
) -> Result<(DateTime<Utc>, RowsRestore)> {
    let live = timeline::source_path(&subject.location)?;
    if !live.is_file() {
        bail!(
            "{} does not exist: restore the whole database instead",
            live.display()
        );
    }
    let dir = scratch()?;
    let old = dir.path().join("at.db");
    let at = restore_at(subject, &args.at, &old)?;
    let result = rows::restore_rows(
        &old,
        &live,
        &args.table,
        &args.condition,
        args.apply,
        args.with_children,
    )?;
    Ok((at, result))
}

fn print_restore(ctx: &Context, subject: &Subject, at: DateTime<Utc>, result: &RowsRestore) {
    if ctx.global.json {
        ctx.print_json(&json!({
            "source": subject.name,
            "restore_point": at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "result": result,
        }));
        return;
    }
    let verb = if result.applied {
        "put back"
    } else {
        "would put back"
    };
    ctx.say(format!(
        "{} row(s) of {} as of {}: {verb} {} missing and {} changed row(s){}",
        result.rows.len(),
        result.table,
        timeline::show_time(at),
        result.missing,
        result.different,
        if result.applied {
            ""
        } else {
            " (dry run: add --apply)"
        }
    ));
    for row in &result.rows {
        ctx.say(format!("  {row}"));
    }
    for cascaded in &result.cascaded {
        let offer = if cascaded.applied {
            format!("put back {} missing", cascaded.missing)
        } else if cascaded.missing > 0 {
            format!(
                "{} missing (a cascade deleted them with the rows): add --with-children to put them back in the same transaction",
                cascaded.missing
            )
        } else {
            "none missing".to_string()
        };
        ctx.say(format!(
            "  and {} row(s) of {} through {} (ON DELETE CASCADE): {offer}{}",
            cascaded.rows,
            cascaded.table,
            cascaded.via,
            match cascaded.different {
                0 => String::new(),
                n => format!("; {n} present but changed since, left as they are"),
            }
        ));
    }
}
