use anyhow::Result;
use chrono::SecondsFormat;
use lifeboat_sources::timeline;
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
    for point in &points {
        ctx.say(match &point.segment {
            Some(segment) => format!(
                "  {}  segment {} on snapshot {}{}",
                time(&point.time),
                segment.seq,
                point.snapshot.short(),
                segment
                    .transactions
                    .map(|(first, last)| format!(
                        "  transactions {first}-{last} (restore --at tx:N)"
                    ))
                    .unwrap_or_default()
            ),
            None => format!(
                "  {}  snapshot {}  {}",
                time(&point.time),
                point.snapshot.short(),
                human(point.node.size)
            ),
        });
    }
    Ok(())
}
