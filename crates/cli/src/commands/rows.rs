//! `lifeboat diff` and `lifeboat restore-rows`: [`lifeboat_ops::rows`] from the command
//! line, its reports as text or `--json`.

use anyhow::Result;
use chrono::SecondsFormat;
use lifeboat_ops::rows::{DiffReport, RowsReport, RowsWanted};
use lifeboat_sources::timeline;

use crate::args::{DiffArgs, RestoreRowsArgs};
use crate::commands::drill::resolve_subject;
use crate::context::Context;

pub fn diff(ctx: &Context, args: &DiffArgs) -> Result<()> {
    let subject = resolve_subject(ctx, &args.subject)?;
    let lifeboat_command = |tail: &str| super::pg::lifeboat_command(ctx, tail);
    let report = lifeboat_ops::rows::diff(
        &subject,
        &args.from,
        &args.to,
        args.table.as_deref(),
        &lifeboat_command,
    )?;
    print_diff(ctx, &report);
    Ok(())
}

pub fn restore_rows(ctx: &Context, args: &RestoreRowsArgs) -> Result<()> {
    let subject = resolve_subject(ctx, &args.subject)?;
    let lifeboat_command = |tail: &str| super::pg::lifeboat_command(ctx, tail);
    let wanted = RowsWanted {
        at: &args.at,
        table: &args.table,
        condition: &args.condition,
        apply: args.apply,
        with_children: args.with_children,
    };
    let report = lifeboat_ops::rows::restore_rows(&subject, &wanted, &lifeboat_command)?;
    print_restore(ctx, &report);
    Ok(())
}

fn print_diff(ctx: &Context, report: &DiffReport) {
    if ctx.global.json {
        ctx.print_json(report);
        return;
    }
    let time = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    ctx.say(format!(
        "{}: {} -> {}",
        report.source,
        time(&report.from),
        time(&report.to)
    ));
    for table in report.tables.iter().filter(|t| !t.is_empty()) {
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

fn print_restore(ctx: &Context, report: &RowsReport) {
    if ctx.global.json {
        ctx.print_json(report);
        return;
    }
    let (at, result) = (report.restore_point, &report.result);
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
