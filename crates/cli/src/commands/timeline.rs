//! `lifeboat timeline SOURCE`: prints [`lifeboat_ops::timeline`]'s report, as text or
//! `--json`.

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_ops::timeline::{self, Span, TimelineKind, TimelinePoint};

use crate::args::TimelineArgs;
use crate::commands::backup::human;
use crate::context::Context;

pub fn run(ctx: &Context, args: &TimelineArgs) -> Result<()> {
    let subject = crate::commands::drill::resolve_subject(ctx, &args.subject)?;
    let report = timeline::of(&subject.repo, &subject.location)?;
    if ctx.global.json {
        ctx.print_json(&report);
        return Ok(());
    }
    if report.kind == TimelineKind::DatabaseServer {
        return crate::commands::timeline_db::print(ctx, &report);
    }
    let points = &report.restore_points;
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        anyhow::bail!(
            "no restore point of {} in this repository (back it up first)",
            report.source
        );
    };
    // Points closer than a second (replication ships every 0.5 s) need milliseconds to be
    // told apart; whole seconds read better otherwise.
    let close = points
        .windows(2)
        .any(|w| (w[1].time - w[0].time) < chrono::TimeDelta::seconds(1));
    let precision = if close {
        SecondsFormat::Millis
    } else {
        SecondsFormat::Secs
    };
    let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(precision, true);
    ctx.say(format!(
        "{}: {} restore point(s), {} to {}",
        report.source,
        points.len(),
        time(&first.time),
        time(&last.time)
    ));
    if args.all {
        for point in points {
            ctx.say(point_line(point, &time));
        }
    } else {
        for span in &report.spans {
            ctx.say(span_line(span, points, &time));
        }
    }
    Ok(())
}

fn point_line(point: &TimelinePoint, time: &dyn Fn(&DateTime<Utc>) -> String) -> String {
    match point.segment {
        Some(seq) => format!(
            "  {}  segment {seq} on snapshot {}{}",
            time(&point.time),
            point.snapshot.short(),
            point
                .transactions
                .map(|t| format!("  transactions {}-{} (restore --at tx:N)", t.first, t.last))
                .unwrap_or_default()
        ),
        None => format!(
            "  {}  snapshot {}  {}",
            time(&point.time),
            point.snapshot.short(),
            human(point.bytes)
        ),
    }
}

fn span_line(
    span: &Span,
    points: &[TimelinePoint],
    time: &dyn Fn(&DateTime<Utc>) -> String,
) -> String {
    let Some(segments) = span.segments else {
        let bytes = points
            .iter()
            .find(|p| p.segment.is_none() && p.snapshot == span.snapshot)
            .map_or(0, |p| p.bytes);
        return format!(
            "  {}  snapshot {}  {}",
            time(&span.from),
            span.snapshot.short(),
            human(bytes)
        );
    };
    let transactions = span
        .transactions
        .map(|t| format!("  transactions {}-{}", t.first, t.last))
        .unwrap_or_default();
    let gap = match span.after_gap {
        Some(missing) => format!(
            "  AFTER A GAP (segment {missing} is missing): not restorable past segment {}",
            missing - 1
        ),
        None => String::new(),
    };
    let numbers = if segments.first == segments.last {
        format!("segment {}", segments.first)
    } else {
        format!("segments {}-{}", segments.first, segments.last)
    };
    format!(
        "  {} to {}  {numbers} on snapshot {}{transactions}{gap}",
        time(&span.from),
        time(&span.to),
        span.snapshot.short(),
    )
}
