//! `lifeboat diff` and `lifeboat restore-rows`: row-level answers to "what changed since
//! this morning" and "bring back the customer deleted an hour ago", without rolling back
//! anyone else's work. SQLite restore points are restored into scratch files; PostgreSQL
//! dumps into scratch databases on the source's server, dropped afterwards.

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
use crate::commands::drill::{dump_at, resolve_subject, ScratchDatabase, Subject};
use crate::context::Context;

/// The dump of PostgreSQL source `url` at `at`, restored into a scratch database.
fn postgres_at(
    subject: &Subject,
    url: &DatabaseUrl,
    at: &str,
    purpose: &str,
) -> Result<(DateTime<Utc>, ScratchDatabase)> {
    let snapshot = dump_at(subject, url, timeline::parse_time(at, Utc::now())?)?;
    let scratch = ScratchDatabase::restore(&subject.repo, &snapshot, url, purpose)?;
    if scratch.engine != Engine::Postgres {
        bail!(
            "row-level diff and restore work on SQLite and PostgreSQL; {} is MySQL/MariaDB",
            url.redacted()
        );
    }
    Ok((snapshot.snapshot.time, scratch))
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
            let (from, old) = postgres_at(&subject, &url, &args.from, "diff")?;
            let (to, new) = postgres_at(&subject, &url, &args.to, "diff")?;
            let tables = postgres::rows::diff(
                &Psql::new(&url)?,
                &old.name,
                &new.name,
                args.table.as_deref(),
            )?;
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
            let (at, old) = postgres_at(&subject, &url, &args.at, "rows")?;
            let result = postgres::rows::restore_rows(
                &Psql::new(&url)?,
                &old.name,
                &live,
                &args.table,
                &args.condition,
                args.apply,
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
    let result = rows::restore_rows(&old, &live, &args.table, &args.condition, args.apply)?;
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
        at.to_rfc3339_opts(SecondsFormat::Secs, true),
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
}
