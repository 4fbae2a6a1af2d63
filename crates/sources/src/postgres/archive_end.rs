//! How far in time point-in-time recovery can go: the commit time of the last transaction
//! in the archived WAL. PostgreSQL stops a time-targeted recovery only at a commit or
//! abort record later than the target; a target after the last one replays everything,
//! finds no such record, and fails with "recovery ended before configured recovery target
//! was reached" after the whole restore. So the target is checked against this first.
//!
//! The times come from `pg_waldump` (shipped with the server) run on the last archived
//! segments, newest first, until one holds a commit.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};
use lifeboat_repo::snapshot::PgBaseBackup;
use lifeboat_repo::Repository;

use super::recovery::server_tool;
use super::wal::{parse_segment_name, segment_name, ArchiveReach};
use crate::{Result, SourceError};

/// The newest moment the archive reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEnd {
    /// When the last archived transaction committed (or aborted).
    pub last_commit: DateTime<Utc>,
    /// The WAL file that holds it.
    pub wal_file: String,
}

/// Segments looked at, newest first, before giving up: a quiet server's archive ends in
/// a few segments without commits (switches, checkpoints), not in hundreds.
const SEGMENTS_TO_SEARCH: u64 = 16;

/// The last commit in the archive from `meta`'s first WAL file to `reach.last`; `None`
/// when none of the searched segments holds one (nothing committed since the backup).
pub fn archive_end(
    repo: &Repository,
    meta: &PgBaseBackup,
    reach: &ArchiveReach,
) -> Result<Option<ArchiveEnd>> {
    let size = meta.wal_segment_size;
    let (Some((timeline, last)), Some((_, first))) = (
        parse_segment_name(&reach.last, size),
        parse_segment_name(&meta.start_wal, size),
    ) else {
        return Ok(None);
    };
    let waldump = server_tool("pg_waldump", meta.version)?;
    let scratch = tempfile::tempdir().map_err(|e| SourceError::io(Path::new("."), e))?;
    let mut segno = last;
    while segno >= first && last - segno < SEGMENTS_TO_SEARCH {
        let name = segment_name(timeline, segno * size, size);
        let path = scratch.path().join(&name);
        if super::wal::fetch(repo, &meta.cluster, &name, &path)? {
            let mut command = waldump.command();
            // pg_waldump prints times in the local zone; UTC makes them parseable.
            command.env("TZ", "UTC").arg(&path);
            // It exits non-zero at the end of valid records (the rest of a switched
            // segment); what it printed before is what counts.
            let out = command
                .output()
                .map_err(|e| SourceError::io(Path::new("pg_waldump"), e))?;
            let _ = std::fs::remove_file(&path);
            if let Some(time) = last_commit_time(&String::from_utf8_lossy(&out.stdout)) {
                return Ok(Some(ArchiveEnd {
                    last_commit: time,
                    wal_file: name,
                }));
            }
        }
        if segno == 0 {
            break;
        }
        segno -= 1;
    }
    Ok(None)
}

/// The time of the last `COMMIT` or `ABORT` record in `pg_waldump` output (run with
/// TZ=UTC): `... desc: COMMIT 2026-12-02 15:00:00.123456 UTC; ...`.
pub fn last_commit_time(waldump: &str) -> Option<DateTime<Utc>> {
    waldump.lines().rev().find_map(|line| {
        let desc = line.split_once("desc: ")?.1;
        let rest = desc
            .strip_prefix("COMMIT ")
            .or_else(|| desc.strip_prefix("ABORT "))?;
        let mut words = rest.split_whitespace();
        let (date, time) = (words.next()?, words.next()?);
        let zone = words.next()?.trim_end_matches(';');
        if zone != "UTC" {
            return None;
        }
        NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S%.f")
            .ok()
            .map(|t| t.and_utc())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_commit_or_abort_counts() {
        let out = "\
rmgr: Heap        len (rec/tot):     54/   150, tx:        735, lsn: 0/03000060, prev 0/03000028, desc: INSERT off 2 flags 0x00
rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/030000F8, prev 0/03000060, desc: COMMIT 2026-12-02 15:00:00.123456 UTC
rmgr: Transaction len (rec/tot):     34/    34, tx:        736, lsn: 0/03000120, prev 0/030000F8, desc: ABORT 2026-12-02 15:00:01.5 UTC
rmgr: Transaction len (rec/tot):     66/    66, tx:        737, lsn: 0/03000148, prev 0/03000120, desc: COMMIT 2026-12-02 15:00:02.000250 UTC; subxacts: 738
rmgr: XLOG        len (rec/tot):     24/    24, tx:          0, lsn: 0/03000190, prev 0/03000148, desc: SWITCH
";
        assert_eq!(
            last_commit_time(out),
            Some(
                NaiveDateTime::parse_from_str("2026-12-02 15:00:02.000250", "%Y-%m-%d %H:%M:%S%.f")
                    .unwrap()
                    .and_utc()
            )
        );
        assert_eq!(
            last_commit_time("rmgr: XLOG len (rec/tot): 24/24, desc: SWITCH\n"),
            None
        );
        // A time in another zone is not guessed at.
        assert_eq!(
            last_commit_time("desc: COMMIT 2026-12-02 15:00:00.1 CET\n"),
            None
        );
    }
}
