use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_repo::segment::SegmentName;
use lifeboat_sources::timeline::{self, RestorePoint};
use serde_json::json;

use crate::args::TimelineArgs;
use crate::commands::backup::human;
use crate::context::Context;

pub fn run(ctx: &Context, args: &TimelineArgs) -> Result<()> {
    let subject = crate::commands::drill::resolve_subject(ctx, &args.subject)?;
    let repo = subject.repo;
    if let Some(url) = lifeboat_sources::database_url::DatabaseUrl::parse(&subject.location) {
        return crate::commands::timeline_db::run(ctx, &repo, &url?);
    }
    let source = timeline::source_path(&subject.location)?;
    let index = repo.load_index()?;
    let points = timeline::restore_points(&repo, &index, &source)?;
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
    let time = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(precision, true);
    // Scripts get milliseconds, so each point can be named exactly in `restore --at`.
    let exact = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    if ctx.global.json {
        ctx.print_json(&json!({
            "source": source,
            "window": points.first().zip(points.last()).map(|(a, b)| json!({"from": exact(&a.time), "to": exact(&b.time)})),
            "restore_points": points.iter().map(|p| json!({
                "time": exact(&p.time),
                "kind": p.kind(),
                "snapshot": p.snapshot,
                "segment": p.segment.as_ref().map(|s| s.seq),
                "transactions": p.segment.as_ref().and_then(|s| s.transactions).map(|(first, last)| json!({"first": first, "last": last})),
                // A segment's own stored size; a snapshot's, the file's size.
                "bytes": p.segment.as_ref().map_or(p.node.size, |s| s.stored_bytes),
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        anyhow::bail!(
            "no restore point of {} in this repository (back it up first)",
            source.display()
        );
    };
    ctx.say(format!(
        "{}: {} restore point(s), {} to {}",
        source.display(),
        points.len(),
        time(&first.time),
        time(&last.time)
    ));
    if args.all {
        for point in &points {
            ctx.say(point_line(point, &time));
        }
    } else {
        for entry in group(&points) {
            ctx.say(match entry {
                Entry::Point(point) => point_line(point, &time),
                Entry::Run(run) => run_line(&run, &time),
            });
        }
    }
    Ok(())
}

fn point_line(point: &RestorePoint, time: &dyn Fn(&DateTime<Utc>) -> String) -> String {
    match &point.segment {
        Some(segment) => format!(
            "  {}  segment {} on snapshot {}{}",
            time(&point.time),
            segment.seq,
            point.snapshot.short(),
            segment
                .transactions
                .map(|(first, last)| format!("  transactions {first}-{last} (restore --at tx:N)"))
                .unwrap_or_default()
        ),
        None => format!(
            "  {}  snapshot {}  {}",
            time(&point.time),
            point.snapshot.short(),
            human(point.node.size)
        ),
    }
}

fn run_line(run: &Run, time: &dyn Fn(&DateTime<Utc>) -> String) -> String {
    let (first, last) = (run.segments[0], run.segments[run.segments.len() - 1]);
    let transactions = match (first.transactions, last.transactions) {
        (Some((from, _)), Some((_, to))) => format!("  transactions {from}-{to}"),
        _ => String::new(),
    };
    let gap = match run.after_gap {
        Some(missing) => format!(
            "  AFTER A GAP (segment {missing} is missing): not restorable past segment {}",
            missing - 1
        ),
        None => String::new(),
    };
    let segments = if first.seq == last.seq {
        format!("segment {}", first.seq)
    } else {
        format!("segments {}-{}", first.seq, last.seq)
    };
    format!(
        "  {} to {}  {segments} on snapshot {}{transactions}{gap}",
        time(&run.from),
        time(&run.to),
        run.snapshot.short(),
    )
}

/// One line of the grouped timeline: a snapshot, or a continuous run of one generation's
/// stream segments (every moment from its first to its last can be restored).
enum Entry<'a> {
    Point(&'a RestorePoint),
    Run(Run<'a>),
}

struct Run<'a> {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    snapshot: lifeboat_repo::Id,
    segments: Vec<&'a SegmentName>,
    /// The run starts after a missing segment: roll-forward stops at the gap.
    after_gap: Option<u64>,
}

/// Snapshots as they are, and each generation's segments in runs of consecutive
/// numbers, ordered by their first moment.
fn group(points: &[RestorePoint]) -> Vec<Entry<'_>> {
    let mut entries: Vec<(DateTime<Utc>, Entry)> = Vec::new();
    let mut generations: std::collections::BTreeMap<&str, Vec<&RestorePoint>> = Default::default();
    for point in points {
        match &point.segment {
            None => entries.push((point.time, Entry::Point(point))),
            Some(segment) => generations
                .entry(segment.generation.as_str())
                .or_default()
                .push(point),
        }
    }
    for mut members in generations.into_values() {
        members.sort_by_key(|p| p.segment.as_ref().map(|s| s.seq));
        let mut expected = 1;
        let mut run: Option<Run> = None;
        for point in members {
            let segment = point.segment.as_ref().expect("grouped segments");
            if let Some(open) = run.as_mut().filter(|_| segment.seq == expected) {
                open.to = open.to.max(point.time);
                open.segments.push(segment);
            } else {
                if let Some(done) = run.take() {
                    entries.push((done.from, Entry::Run(done)));
                }
                run = Some(Run {
                    from: point.time,
                    to: point.time,
                    snapshot: point.snapshot,
                    segments: vec![segment],
                    after_gap: (segment.seq != expected).then_some(expected),
                });
            }
            expected = segment.seq + 1;
        }
        if let Some(done) = run {
            entries.push((done.from, Entry::Run(done)));
        }
    }
    entries.sort_by_key(|(from, _)| *from);
    entries.into_iter().map(|(_, entry)| entry).collect()
}
