//! `lifeboat diff` and `lifeboat restore-rows`: row-level answers to "what changed since
//! this morning" and "bring back the customer deleted an hour ago" for SQLite sources,
//! without rolling back anyone else's work.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use chrono::SecondsFormat;
use lifeboat_sources::sqlite::rows;
use lifeboat_sources::timeline;
use serde_json::json;

use crate::args::{DiffArgs, RestoreRowsArgs};
use crate::commands::drill::{resolve, Subject};
use crate::context::Context;

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
    let subject = resolve(ctx, &args.subject)?;
    let dir = scratch()?;
    let (old, new): (PathBuf, PathBuf) = (dir.path().join("from.db"), dir.path().join("to.db"));
    let from = restore_at(&subject, &args.from, &old)?;
    let to = restore_at(&subject, &args.to, &new)?;
    let tables = rows::diff(&old, &new, args.table.as_deref())?;
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    if ctx.global.json {
        ctx.print_json(&json!({
            "source": subject.name,
            "from": time(from),
            "to": time(to),
            "tables": tables,
        }));
        return Ok(());
    }
    ctx.say(format!("{}: {} -> {}", subject.name, time(from), time(to)));
    for table in &tables {
        if let Some(change) = &table.schema_changed {
            ctx.say(format!("  {}: {change}", table.table));
            continue;
        }
        if table.inserted.is_empty() && table.updated.is_empty() && table.deleted.is_empty() {
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
    Ok(())
}

pub fn restore_rows(ctx: &Context, args: &RestoreRowsArgs) -> Result<()> {
    let subject = resolve(ctx, &args.subject)?;
    let live = timeline::source_path(&subject.location)?;
    if !live.is_file() {
        bail!(
            "{} does not exist: restore the whole database instead",
            live.display()
        );
    }
    let dir = scratch()?;
    let old = dir.path().join("at.db");
    let at = restore_at(&subject, &args.at, &old)?;
    let result = rows::restore_rows(&old, &live, &args.table, &args.condition, args.apply)?;
    if ctx.global.json {
        ctx.print_json(&json!({
            "source": subject.name,
            "restore_point": at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "result": result,
        }));
        return Ok(());
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
    Ok(())
}
