//! How far a PostgreSQL cluster's WAL archive reaches in time, for the use cases that
//! recover to a moment (drills, `pg restore`, row-level commands): the last archived
//! commit, and a refusal, before anything is restored, of a moment past it.

use anyhow::{bail, Result};
use lifeboat_sources::postgres::wal;

/// The commit time of the last transaction archived after base backup `meta`, if any.
pub fn last_commit(
    repo: &lifeboat_repo::Repository,
    meta: &lifeboat_repo::snapshot::PgBaseBackup,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let archived = repo.list_wal(&meta.cluster)?;
    let Some(reach) = wal::archive_reach(&archived, &meta.start_wal, meta.wal_segment_size) else {
        return Ok(None);
    };
    let end = lifeboat_sources::postgres::archive_end::archive_end(repo, meta, &reach)?;
    Ok(end.map(|e| e.last_commit))
}

/// Refuses a target time the archived WAL cannot reach, before anything is restored:
/// PostgreSQL would replay everything and only then fail.
pub fn check_time_is_archived(
    repo: &lifeboat_repo::Repository,
    meta: &lifeboat_repo::snapshot::PgBaseBackup,
    time: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let archived = repo.list_wal(&meta.cluster)?;
    let Some(reach) = wal::archive_reach(&archived, &meta.start_wal, meta.wal_segment_size) else {
        bail!(
            "the archive does not hold {}, the first WAL file base backup of {} needs; no point in time after it can be recovered",
            meta.start_wal,
            meta.finished.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    };
    let end = lifeboat_sources::postgres::archive_end::archive_end(repo, meta, &reach)?;
    let how_to_reach_further = "to archive what the server has written since, run `SELECT pg_switch_wal()` on it;          set archive_timeout (`lifeboat pg setup --rpo 5m`) so a quiet server archives at least that often";
    let millis =
        |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    match end {
        Some(end) if time < end.last_commit => Ok(()),
        Some(end) => bail!(
            "{} is past what the archive reaches: its last transaction committed at {} (WAL file {}{});              recover to a time before that, or everything archived with --at latest; {how_to_reach_further}",
            millis(&time),
            millis(&end.last_commit),
            end.wal_file,
            reach
                .gap
                .as_ref()
                .map(|g| format!(", the archive stops before the missing {g}"))
                .unwrap_or_default()
        ),
        None => bail!(
            "{} is past what the archive reaches: no transaction committed after base backup of {} is archived (WAL up to {});              recover with --at latest; {how_to_reach_further}",
            millis(&time),
            millis(&meta.finished),
            reach.last
        ),
    }
}
