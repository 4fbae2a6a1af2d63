//! The drill of a MySQL/MariaDB database with an archived binary log: point-in-time
//! recovery ([`crate::mysql_pitr`]) into a scratch database beside the source, at the
//! moment asked for (a random one in the window for `random`), every table checked,
//! then the source's checks; the scratch database is dropped whatever happens.

use std::time::Instant;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use lifeboat_repo::snapshot::{SnapshotSource, StoredSnapshot};
use lifeboat_repo::Repository;
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::dump::Server;
use lifeboat_sources::mysql::binlog_stream::server_key;
use lifeboat_sources::mysql::pitr::last_archived_commit;

use super::{random_below, truthy_text, verdict, DrillOptions};
use crate::meters::NoMeters;
use crate::point_in_time::PointInTime;
use crate::report::{CheckResult, DrillReport};
use crate::subject::Subject;

/// The window point-in-time recovery covers for `url`'s database: from the first dump
/// with a binlog position (when it finished) to the archive's last commit (or that
/// dump, when nothing committed since). `None` when the database has no such dump or
/// the server no archive.
pub fn window(
    repo: &Repository,
    snapshots: &[StoredSnapshot],
    url: &DatabaseUrl,
) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>> {
    let Some(database) = url.database() else {
        return Ok(None);
    };
    let server = url.server();
    let first = snapshots
        .iter()
        .filter(|s| match &s.snapshot.source {
            SnapshotSource::Database(dump) => {
                lifeboat_repo::mysql_binlog::server_address(&dump.server)
                    == lifeboat_repo::mysql_binlog::server_address(&server)
                    && dump
                        .databases
                        .iter()
                        .any(|d| d.name == database && d.binlog.is_some())
            }
            _ => false,
        })
        .map(|s| {
            s.snapshot.time + chrono::Duration::milliseconds(s.snapshot.summary.duration_ms as i64)
        })
        .min();
    let Some(first) = first else {
        return Ok(None);
    };
    let last = last_archived_commit(repo, &server_key(repo, url))?;
    Ok(last.map(|last| (first, last.max(first))))
}

pub fn drill(
    subject: &Subject,
    options: &DrillOptions,
    url: &DatabaseUrl,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    record: &mut DrillReport,
    started: Instant,
) -> Result<()> {
    let at = match PointInTime::parse(options.at, Utc::now()).map_err(anyhow::Error::msg)? {
        PointInTime::Latest => "latest".to_string(),
        PointInTime::Random if to <= from => "latest".to_string(),
        PointInTime::Random => {
            let span = (to - from).num_seconds().max(1) as usize;
            let moment = from + chrono::Duration::seconds(random_below(span) as i64 + 1);
            moment.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }
        PointInTime::At(time) => time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        other => bail!("a drill restores latest, random or a time, not {other}"),
    };
    let database = url.database().unwrap_or_default();
    let name = format!(
        "{database}_lifeboat_drill_{}",
        &lifeboat_repo::Id::random().to_hex()[..8]
    );
    let scratch = url.with_database(&name);
    let client = lifeboat_sources::mysql::Client::new(&scratch)?;
    let _drop = DropDatabase {
        client: &client,
        name: &name,
    };
    let report = crate::mysql_pitr::restore(&subject.repo, url, &at, &scratch, false, &NoMeters)?;
    record.restore_point = Some(report.replayed_to_time.unwrap_or(report.dump_time));
    record.snapshot = Some(report.dump.to_hex());
    record.checks.push(CheckResult {
        check: "dump restored, binlog replayed, CHECK TABLE passed on every table".into(),
        passed: true,
        detail: Some(format!(
            "dump of {} + {} transactions to {}; {} tables, {} rows",
            lifeboat_sources::timeline::show_time(report.dump_time),
            report.transactions,
            report.replayed_to,
            report.tables.len(),
            report.tables.iter().map(|t| t.rows).sum::<u64>()
        )),
    });
    record.rto_seconds = started.elapsed().as_secs_f64();
    for sql in &subject.checks {
        let result = client
            .query_in(&name, sql)
            .map_err(|e| e.to_string())
            .map(|text| truthy_text(&text));
        record.checks.push(verdict(sql, result));
    }
    Ok(())
}

struct DropDatabase<'a> {
    client: &'a lifeboat_sources::mysql::Client,
    name: &'a str,
}

impl Drop for DropDatabase<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.client.drop_database(self.name) {
            tracing::warn!("could not drop the scratch database {}: {e}", self.name);
        }
    }
}
