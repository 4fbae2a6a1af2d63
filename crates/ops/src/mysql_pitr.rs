//! MySQL/MariaDB point-in-time recovery: the newest dump of the database that finished
//! before the moment, loaded into a new database, then the archived binary log replayed
//! from the dump's position up to the moment; every table checked and counted after.
//! `lifeboat restore mysql://…/db --at T --into mysql://…/copy`.

use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use lifeboat_repo::snapshot::{SnapshotSource, TableRows};
use lifeboat_repo::{Id, Repository};
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::dump::Server as _;
use lifeboat_sources::mysql::binlog_stream::server_key;
use lifeboat_sources::mysql::events::Gtid;
use lifeboat_sources::mysql::pitr::{self, ReplayTarget};
use lifeboat_sources::timeline::show_time;
use serde::{Deserialize, Serialize};

use crate::meters::Meters;
use crate::point_in_time::PointInTime;

/// `lifeboat restore mysql://… --at … --into … --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlPitrReport {
    /// The database recovered, as backed up (no password).
    pub source: String,
    pub into: String,
    /// The moment asked for.
    pub at: String,
    /// The dump loaded first.
    pub dump: Id,
    pub dump_time: DateTime<Utc>,
    /// The binlog position the replay started from (`file:position`).
    pub replayed_from: String,
    /// Transactions replayed after the dump.
    pub transactions: u64,
    /// The last one replayed: its commit time (whole seconds, as the binlog keeps it),
    /// GTID and end (`file:position`).
    pub replayed_to_time: Option<DateTime<Utc>>,
    pub replayed_to_gtid: Option<String>,
    pub replayed_to: String,
    /// The newest commit the archive holds after the dump.
    pub archive_last_commit: Option<DateTime<Utc>>,
    /// Rows per table after the replay; every table passed `CHECK TABLE`.
    pub tables: Vec<TableRows>,
    pub seconds: f64,
}

/// `at`: `latest`, a time (RFC 3339 or relative) or `gtid:D-S-N`.
pub fn parse_target(at: &str, now: DateTime<Utc>) -> Result<ReplayTarget, String> {
    if let Some(gtid) = at.trim().strip_prefix("gtid:") {
        return gtid.parse::<Gtid>().map(ReplayTarget::Gtid);
    }
    match PointInTime::parse(at, now)? {
        PointInTime::Latest => Ok(ReplayTarget::Latest),
        PointInTime::At(time) => Ok(ReplayTarget::Time(time)),
        other => Err(format!(
            "MySQL recovers to latest, a time or gtid:DOMAIN-SERVER-SEQUENCE, not {other}"
        )),
    }
}

/// Recovers the database `source` names, as it was at `at`, into the new database
/// `into` (created; an existing non-empty one only with `replace`).
pub fn restore(
    repo: &Repository,
    source: &DatabaseUrl,
    at: &str,
    into: &DatabaseUrl,
    replace: bool,
    meters: &dyn Meters,
) -> Result<MysqlPitrReport> {
    let started = Instant::now();
    let target = parse_target(at, Utc::now()).map_err(anyhow::Error::msg)?;
    let database = source
        .database()
        .context("name the database to recover in the URL (mysql://host/db)")?;
    into.database()
        .context("name the new database in --into (mysql://host/copy)")?;
    let same_server = |server: &str| {
        DatabaseUrl::parse(server)
            .and_then(|u| u.ok())
            .is_some_and(|u| u.host() == source.host() && u.port() == source.port())
    };
    let snapshots = repo.list_snapshots()?;
    // Dumps of this database that recorded a binlog position, newest first.
    let mut dumps: Vec<_> = snapshots
        .iter()
        .filter_map(|s| match &s.snapshot.source {
            SnapshotSource::Database(dump) if same_server(&dump.server) => dump
                .databases
                .iter()
                .find(|d| d.name == database && d.binlog.is_some())
                .map(|d| (s, dump, d)),
            _ => None,
        })
        .collect();
    dumps.sort_by_key(|(s, _, _)| std::cmp::Reverse(s.snapshot.time));
    if dumps.is_empty() {
        bail!(
            "no dump of {} with a binlog position is in the repository: back it up (`lifeboat backup {}`) \
             while the server writes a binary log (log_bin)",
            source.redacted(),
            source.redacted()
        );
    }
    let finished = |s: &lifeboat_repo::snapshot::StoredSnapshot| {
        s.snapshot.time + chrono::Duration::milliseconds(s.snapshot.summary.duration_ms as i64)
    };
    let chosen = match &target {
        ReplayTarget::Time(t) => dumps.iter().find(|(s, _, _)| finished(s) <= *t),
        _ => dumps.first(),
    };
    let Some((snapshot, dump, dumped)) = chosen else {
        bail!(
            "{} is before the first dump of {database} that point-in-time recovery can start from (it finished at {})",
            at,
            show_time(finished(dumps.last().expect("not empty").0))
        );
    };
    let from = dumped.binlog.clone().expect("filtered");
    let server = server_key(repo, source);
    let scratch = tempfile::Builder::new()
        .prefix("lifeboat-binlog-replay-")
        .tempdir()
        .context("creating scratch space for the binlog")?;
    let renamed = into.database().as_deref() != Some(database.as_str());
    let replay = pitr::prepare(
        repo,
        &server,
        &from,
        &target,
        &database,
        renamed,
        scratch.path(),
    )?;
    if let ReplayTarget::Time(t) = &target {
        let end = replay.archive_end.as_ref().map(pitr::commit_time);
        if end.is_none_or(|end| *t > end + chrono::Duration::seconds(1)) {
            bail!(
                "{} is past what the binlog archive reaches: {}{}; recover to a time before that, or with --at latest \
                 (is `lifeboat mysql binlog-stream` running?)",
                show_time(*t),
                match end {
                    Some(end) => format!("its last transaction committed at {}", show_time(end)),
                    None => format!("no transaction after the dump of {} is archived", show_time(snapshot.snapshot.time)),
                },
                replay
                    .reach
                    .gap
                    .as_ref()
                    .map(|g| format!(", and it stops before the missing {g}"))
                    .unwrap_or_default()
            );
        }
    }
    let index = repo.load_index()?;
    let (dumped, node) = lifeboat_sources::dump::find_database(
        repo,
        &index,
        &snapshot.snapshot.tree,
        dump,
        Some(&database),
    )?;
    {
        let meter = meters.start("restoring the dump", Some(node.size));
        lifeboat_sources::mysql::restore(
            repo,
            &index,
            &node,
            dumped,
            into,
            replace,
            meter.as_ref(),
        )?;
    }
    let replayed = pitr::apply(&replay, &database, into).and_then(|()| pitr::check_tables(into));
    let tables = match replayed {
        Ok(tables) => tables,
        Err(e) => {
            // Nothing half-recovered stays: the database was created for this restore.
            let _ = lifeboat_sources::mysql::Client::new(into)
                .and_then(|c| c.drop_database(&into.database().unwrap_or_default()));
            return Err(anyhow::Error::new(e).context(format!(
                "the recovery into {} failed and the database was dropped",
                into.redacted()
            )));
        }
    };
    let position = |file: &str, at: u64| format!("{file}:{at}");
    Ok(MysqlPitrReport {
        source: source.redacted(),
        into: into.redacted(),
        at: match &target {
            ReplayTarget::Latest => "latest".into(),
            ReplayTarget::Time(t) => show_time(*t),
            ReplayTarget::Gtid(g) => format!("gtid:{g}"),
        },
        dump: snapshot.id,
        dump_time: snapshot.snapshot.time,
        replayed_from: position(&from.file, from.position),
        transactions: replay.transactions,
        replayed_to_time: replay.last.as_ref().map(pitr::commit_time),
        replayed_to_gtid: replay
            .last
            .as_ref()
            .and_then(|c| c.gtid)
            .map(|g| g.to_string()),
        replayed_to: match &replay.last {
            Some(c) => position(&c.file, c.end),
            None => position(&from.file, from.position),
        },
        archive_last_commit: replay.archive_end.as_ref().map(pitr::commit_time),
        tables,
        seconds: started.elapsed().as_secs_f64(),
    })
}
