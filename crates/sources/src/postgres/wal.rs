//! `archive_command` and `restore_command`: WAL files in and out of the repository's
//! archive ([`lifeboat_repo::pg_wal`]), filed under the cluster's system identifier so
//! one repository can hold several clusters.

use std::io::Write;
use std::path::Path;

use lifeboat_repo::pg_wal::WalPush;
use lifeboat_repo::Repository;

use crate::{Result, SourceError};

// The names of archived files are part of the repository's format (verify checks how far
// the archive reaches), so they live in `lifeboat_repo::pg_wal`.
pub use lifeboat_repo::pg_wal::{
    archive_reach, is_segment, parse_segment_name, segment_name, ArchiveReach,
};

/// XLP_LONG_HEADER: the first page of a segment carries the system identifier.
const XLP_LONG_HEADER: u16 = 0x0002;

/// A WAL position (`0/2000028`).
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.trim().split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    (high <= u32::MAX as u64 && low <= u32::MAX as u64).then_some(high << 32 | low)
}

pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// The system identifier of the cluster whose data directory is `pgdata`.
pub fn cluster_of(pgdata: &Path) -> Result<String> {
    let path = pgdata.join("global/pg_control");
    let bytes = std::fs::read(&path).map_err(|e| {
        SourceError::Invalid(format!(
            "{}: {e}; run from the data directory (PostgreSQL does for archive_command) or give --pgdata",
            path.display()
        ))
    })?;
    let id = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or_else(|| SourceError::Invalid(format!("{}: too short", path.display())))?;
    Ok(id.to_string())
}

/// The system identifier in a segment's first page header, if it has a long header.
fn cluster_in_segment(data: &[u8]) -> Option<String> {
    let info = u16::from_le_bytes(data.get(2..4)?.try_into().ok()?);
    if info & XLP_LONG_HEADER == 0 {
        return None;
    }
    let id = u64::from_le_bytes(data.get(24..32)?.try_into().ok()?);
    Some(id.to_string())
}

/// `archive_command`: archives the file at `path` (relative to the data directory
/// `pgdata`, as `%p` is). Returns the file name and whether it was new.
pub fn push(repo: &Repository, path: &Path, pgdata: &Path) -> Result<(String, WalPush)> {
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        pgdata.join(path)
    };
    let name = full
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| SourceError::Invalid(format!("{}: not a WAL file", path.display())))?
        .to_string();
    let data = std::fs::read(&full).map_err(|e| SourceError::io(&full, e))?;
    let from_control = cluster_of(pgdata);
    let cluster = match (
        is_segment(&name)
            .then(|| cluster_in_segment(&data))
            .flatten(),
        from_control,
    ) {
        (Some(in_segment), Ok(control)) if in_segment != control => {
            return Err(SourceError::Invalid(format!(
                "{name} belongs to cluster {in_segment}, but {} is cluster {control}",
                pgdata.display()
            )))
        }
        (Some(in_segment), _) => in_segment,
        (None, control) => control?,
    };
    let outcome = repo.push_wal(&cluster, &name, &data)?;
    Ok((name, outcome))
}

/// `restore_command`: writes archived file `name` of `cluster` to `dest` (written
/// beside it and renamed, so PostgreSQL never reads half a file). `false` when the
/// archive does not hold it.
pub fn fetch(repo: &Repository, cluster: &str, name: &str, dest: &Path) -> Result<bool> {
    let Some(data) = repo.fetch_wal(cluster, name)? else {
        return Ok(false);
    };
    crate::restore::write_then_rename(dest, |file| {
        file.write_all(&data).map_err(|e| SourceError::io(dest, e))
    })?;
    Ok(true)
}

/// Where WAL fetched ahead waits, inside the data directory being recovered: PostgreSQL
/// asks for one file per `restore_command`, and opening the repository (the passphrase's
/// key derivation) costs more than reading a segment, so each fetch brings the next few.
pub const PREFETCH_DIR: &str = "lifeboat-prefetch";

/// Moves a file fetched ahead into place, if there is one, and drops any fetched-ahead
/// segments of the same timeline before it (recovery has moved past them).
pub fn take_prefetched(pgdata: &Path, name: &str, dest: &Path) -> Result<bool> {
    let dir = pgdata.join(PREFETCH_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(false);
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if is_segment(&file) && file.get(..8) == name.get(..8) && file.as_str() < name {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    match std::fs::rename(dir.join(name), dest) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SourceError::io(dest, e)),
    }
}

/// Fetches up to `count` segments after segment `name` (same timeline) into the prefetch
/// directory, two at a time, stopping at the first the archive does not hold yet.
pub fn prefetch(
    repo: &Repository,
    cluster: &str,
    name: &str,
    pgdata: &Path,
    count: u32,
    segment_size: u64,
) -> Result<u32> {
    let Some((timeline, segno)) = parse_segment_name(name, segment_size) else {
        return Ok(0);
    };
    let dir = pgdata.join(PREFETCH_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| SourceError::io(&dir, e))?;
    let names: Vec<String> = (1..=count as u64)
        .map(|i| segment_name(timeline, (segno + i) * segment_size, segment_size))
        .collect();
    let mut fetched = 0;
    for pair in names.chunks(2) {
        let results: Vec<Result<bool>> = std::thread::scope(|scope| {
            let handles: Vec<_> = pair
                .iter()
                .map(|next| {
                    let dest = dir.join(next);
                    scope.spawn(move || {
                        if dest.exists() {
                            return Ok(true);
                        }
                        fetch(repo, cluster, next, &dest)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        });
        for result in results {
            if !result? {
                return Ok(fetched);
            }
            fetched += 1;
        }
    }
    Ok(fetched)
}

/// The segment size a segment's first page records (`xlp_seg_size`), if it has a long
/// header.
pub fn segment_size_of(data: &[u8]) -> Option<u64> {
    let info = u16::from_le_bytes(data.get(2..4)?.try_into().ok()?);
    if info & XLP_LONG_HEADER == 0 {
        return None;
    }
    let size = u32::from_le_bytes(data.get(32..36)?.try_into().ok()?) as u64;
    (size.is_power_of_two() && size >= 1 << 20).then_some(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_and_segment_names() {
        let lsn = parse_lsn("1/A2000028").unwrap();
        assert_eq!(format_lsn(lsn), "1/A2000028");
        assert_eq!(segment_name(1, lsn, 16 << 20), "0000000100000001000000A2");
        assert_eq!(
            segment_name(3, 0x2000000, 16 << 20),
            "000000030000000000000002"
        );
        assert_eq!(
            segment_name(1, 0x1_4000_0000, 1 << 30),
            "000000010000000100000001"
        );
        assert!(parse_lsn("nonsense").is_none());
        assert!(is_segment("000000010000000000000002"));
        assert!(is_segment("000000010000000000000002.partial"));
        assert!(!is_segment("00000002.history"));
        assert_eq!(
            parse_segment_name("0000000100000001000000A2", 16 << 20),
            Some((1, 0x1A2))
        );
    }

    #[test]
    fn a_prefetched_segment_is_taken_once_and_older_ones_are_dropped() {
        let pgdata = tempfile::tempdir().unwrap();
        let spool = pgdata.path().join(PREFETCH_DIR);
        std::fs::create_dir_all(&spool).unwrap();
        let size = 16 << 20;
        let name = |tli, n: u64| segment_name(tli, n * size, size);
        for (tli, n) in [(1, 3), (1, 4), (1, 5), (2, 1)] {
            std::fs::write(spool.join(name(tli, n)), format!("{tli}/{n}")).unwrap();
        }
        let dest = pgdata.path().join("RECOVERYXLOG");
        assert!(take_prefetched(pgdata.path(), &name(1, 4), &dest).unwrap());
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "1/4");
        assert!(!take_prefetched(pgdata.path(), &name(1, 4), &dest).unwrap());
        let mut left: Vec<String> = std::fs::read_dir(&spool)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec![name(1, 5), name(2, 1)]);
    }

    #[test]
    fn the_archive_reaches_as_far_as_segments_are_consecutive() {
        let size = 16 << 20;
        let names: Vec<String> = [3u64, 4, 5, 7, 8]
            .iter()
            .map(|n| segment_name(1, n * size, size))
            .chain(["000000010000000000000004.00000028.backup".to_string()])
            .chain([segment_name(2, 9 * size, size)])
            .collect();
        let reach = archive_reach(&names, &segment_name(1, 3 * size, size), size).unwrap();
        assert_eq!(reach.last, "000000010000000000000005");
        assert_eq!(reach.gap.as_deref(), Some("000000010000000000000006"));
        let whole = archive_reach(&names[..3], &names[0], size).unwrap();
        assert_eq!(whole.gap, None);
        assert!(archive_reach(&names, &segment_name(1, 2 * size, size), size).is_none());
    }
}
