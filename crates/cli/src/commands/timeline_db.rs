//! The text form of a database server's timeline: its logical dumps, and (PostgreSQL) the
//! window that base backups and the WAL archive cover.

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_ops::timeline::TimelineReport;

use crate::context::Context;

pub fn print(ctx: &Context, report: &TimelineReport) -> Result<()> {
    let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let (dumps, clusters) = (&report.dumps, &report.clusters);
    if dumps.is_empty() && clusters.is_empty() && report.binlog.is_none() {
        anyhow::bail!("no restore point of {} in this repository", report.source);
    }
    ctx.say(format!("{}:", report.source));
    if !dumps.is_empty() {
        ctx.say(format!(
            "  {} logical dump(s) (restore one with `lifeboat restore SNAPSHOT --into URL`):",
            dumps.len()
        ));
        for dump in dumps {
            ctx.say(format!(
                "    {}  snapshot {}{}",
                time(&dump.time),
                dump.snapshot.short(),
                dump.binlog
                    .as_ref()
                    .map(|p| format!("  binlog {p}"))
                    .unwrap_or_default()
            ));
        }
    }
    if let Some(binlog) = &report.binlog {
        let replayable = dumps.iter().any(|d| d.binlog.is_some());
        ctx.say(format!(
            "  binlog archive: {} .. {} ({} pieces){}{}",
            binlog.first_file,
            binlog.reaches,
            binlog.pieces,
            match (&binlog.last_commit, replayable) {
                (Some(last), true) => format!(
                    "; point-in-time recovery from each dump with a binlog position to {} \
                     (`lifeboat restore URL --at TIME --into URL`)",
                    time(last)
                ),
                (_, false) =>
                    "; no dump records a binlog position yet: back the database up".into(),
                (None, true) => String::new(),
            },
            binlog
                .gap
                .as_ref()
                .map(|g| format!("; GAP: {g} is missing, recovery cannot cross it"))
                .unwrap_or_default()
        ));
    }
    for cluster in clusters {
        let to_wal = cluster.to_wal.as_deref().unwrap_or("-");
        let to = match &cluster.to {
            Some(last_commit) => format!(
                "up to (not including) the last archived commit at {}, or all of it with --at latest; WAL up to {to_wal}",
                time(last_commit)
            ),
            None => format!("to the end of WAL file {to_wal}"),
        };
        ctx.say(format!(
            "  cluster {}: point-in-time recovery from {} {to} ({} files archived; `lifeboat pg restore --at TIME`)",
            cluster.cluster,
            cluster.from.as_ref().map_or("-".into(), time),
            cluster.archived_files
        ));
        for base in &cluster.base_backups {
            let gap = match &base.wal_gap {
                Some(missing) => format!("; GAP: {missing} is missing, recovery stops before it"),
                None => String::new(),
            };
            ctx.say(format!(
                "    base backup {} finished {} (WAL {} .. {}), archive reaches {}{gap}",
                base.snapshot.short(),
                time(&base.finished),
                base.start_wal,
                base.end_wal,
                base.wal_reaches
                    .as_deref()
                    .unwrap_or("nothing: its first WAL file is missing"),
            ));
        }
    }
    Ok(())
}
