//! Reading committed frames from SQLite's write-ahead log (`<db>-wal`).
//!
//! The WAL is a 32-byte header (magic, format, page size, checkpoint sequence, two salts,
//! a checksum) followed by frames: a 24-byte header (page number, database size in pages
//! for a commit frame else 0, the salts, a running checksum) and one page. A frame is
//! valid when its salts match the header and the checksum chain holds; a transaction is
//! committed once its commit frame is valid. A writer that restarts the log from the
//! beginning adds one to salt-1 and draws a new salt-2.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use lifeboat_repo::segment::Transaction;

use crate::{Result, SourceError};

const HEADER_LEN: usize = 32;
const FRAME_HEADER_LEN: usize = 24;

/// Where reading stopped: the log generation and the number of committed frames read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalCursor {
    pub checkpoint_seq: u32,
    pub salts: [u32; 2],
    /// Frames up to and including the last commit frame read.
    pub frames: u32,
    checksum: [u32; 2],
    big_endian: bool,
    /// There was no log (or an empty one): everything committed was in the database.
    empty: bool,
}

impl WalCursor {
    fn empty() -> WalCursor {
        WalCursor {
            checkpoint_seq: 0,
            salts: [0, 0],
            frames: 0,
            checksum: [0, 0],
            big_endian: false,
            empty: true,
        }
    }
}

/// What committed since a cursor.
#[derive(Debug, Default)]
pub struct WalChanges {
    /// Each transaction, in commit order: the database size after it and the pages it
    /// wrote (each once, as it left them).
    pub commits: Vec<Transaction>,
}

impl WalChanges {
    pub fn transactions(&self) -> u32 {
        self.commits.len() as u32
    }

    /// Database size in pages after the last commit read, if any commit was read.
    pub fn page_count(&self) -> Option<u32> {
        self.commits.last().map(|t| t.page_count)
    }
}

/// How a read relates to the cursor it started from.
#[derive(Debug, PartialEq, Eq)]
pub enum Continuity {
    /// The same log, read on from the cursor.
    Continued,
    /// The log restarted once (salt-1 + 1) and was read from its start.
    Restarted,
    /// No usable cursor, or the log restarted more than once: frames may have been missed.
    Unknown,
}

pub fn wal_path(database: &Path) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push("-wal");
    PathBuf::from(path)
}

/// Reads the committed frames after `from` (or the whole log when `from` is from an
/// earlier generation). Only call while holding the database's write lock, so no frame
/// is being written. An absent or empty log reads as no changes.
pub fn read_committed(
    database: &Path,
    page_size: u32,
    from: Option<WalCursor>,
) -> Result<(Option<WalCursor>, WalChanges, Continuity)> {
    let path = wal_path(database);
    let mut bytes = Vec::new();
    match std::fs::File::open(&path) {
        Ok(mut f) => f
            .read_to_end(&mut bytes)
            .map_err(|e| SourceError::io(&path, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(SourceError::io(&path, e)),
    };
    let Some(header) = parse_header(&bytes, page_size) else {
        // No log: everything committed is in the database file. That continues an empty
        // log; after a log we had read, it means a checkpoint removed it, and what it held
        // since our cursor cannot be accounted for.
        let continuity = match from {
            Some(c) if c.empty => Continuity::Continued,
            _ => Continuity::Unknown,
        };
        return Ok((Some(WalCursor::empty()), WalChanges::default(), continuity));
    };
    let (start, continuity) = match from {
        // A log that appeared after an empty one holds everything since, from frame 0.
        Some(c) if c.empty => (header, Continuity::Restarted),
        Some(c) if c.salts == header.salts => (c, Continuity::Continued),
        // Each restart adds one to salt-1 (from the shared header, so across connections;
        // the checkpoint sequence is per connection and cannot tell).
        Some(c) if c.salts[0].wrapping_add(1) == header.salts[0] => (header, Continuity::Restarted),
        _ => (header, Continuity::Unknown),
    };
    let frame_len = FRAME_HEADER_LEN + page_size as usize;
    let mut changes = WalChanges::default();
    let mut pending: Vec<(u32, usize)> = Vec::new();
    let mut cursor = start;
    let mut checksum = start.checksum;
    let mut frame = start.frames;
    loop {
        let at = HEADER_LEN + frame as usize * frame_len;
        let Some(raw) = bytes.get(at..at + frame_len) else {
            break;
        };
        let word = |i: usize| read_u32(&raw[i..i + 4], true);
        if [word(8), word(12)] != header.salts {
            break;
        }
        checksum = wal_checksum(&raw[..8], checksum, header.big_endian);
        checksum = wal_checksum(&raw[FRAME_HEADER_LEN..], checksum, header.big_endian);
        if checksum != [word(16), word(20)] {
            break;
        }
        frame += 1;
        pending.push((word(0), at + FRAME_HEADER_LEN));
        let commit_size = word(4);
        if commit_size != 0 {
            // A page written twice in one transaction counts as last written; a page past
            // the end of the database after the commit is not part of it.
            let pages: BTreeMap<u32, usize> = pending
                .drain(..)
                .filter(|&(page, _)| page <= commit_size)
                .collect();
            changes.commits.push(Transaction {
                page_count: commit_size,
                pages: pages
                    .into_iter()
                    .map(|(page, offset)| {
                        (page, bytes[offset..offset + page_size as usize].to_vec())
                    })
                    .collect(),
            });
            cursor.frames = frame;
            cursor.checksum = checksum;
        }
    }
    Ok((Some(cursor), changes, continuity))
}

fn parse_header(bytes: &[u8], page_size: u32) -> Option<WalCursor> {
    let header = bytes.get(..HEADER_LEN)?;
    let magic = read_u32(&header[0..4], true);
    let big_endian = match magic {
        0x377f0682 => false,
        0x377f0683 => true,
        _ => return None,
    };
    let word = |i: usize| read_u32(&header[i..i + 4], true);
    if word(8) != page_size {
        return None;
    }
    let checksum = wal_checksum(&header[..24], [0, 0], big_endian);
    if checksum != [word(24), word(28)] {
        return None;
    }
    Some(WalCursor {
        checkpoint_seq: word(12),
        salts: [word(16), word(20)],
        frames: 0,
        checksum,
        big_endian,
        empty: false,
    })
}

fn read_u32(bytes: &[u8], big_endian: bool) -> u32 {
    let array: [u8; 4] = bytes.try_into().expect("4 bytes");
    if big_endian {
        u32::from_be_bytes(array)
    } else {
        u32::from_le_bytes(array)
    }
}

/// SQLite's WAL checksum: two running sums over pairs of 32-bit words.
fn wal_checksum(data: &[u8], start: [u32; 2], big_endian: bool) -> [u32; 2] {
    let [mut s0, mut s1] = start;
    for pair in data.chunks_exact(8) {
        s0 = s0
            .wrapping_add(read_u32(&pair[..4], big_endian))
            .wrapping_add(s1);
        s1 = s1
            .wrapping_add(read_u32(&pair[4..], big_endian))
            .wrapping_add(s0);
    }
    [s0, s1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn committed_frames_are_read_and_followed_across_reads() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let app = Connection::open(&db).unwrap();
        app.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
        )
        .unwrap();
        let (cursor, changes, continuity) = read_committed(&db, 4096, None).unwrap();
        assert_eq!(continuity, Continuity::Unknown);
        assert!(changes.transactions() >= 1);
        let page_count = changes.page_count().unwrap();
        assert_eq!(page_count, 2);

        for i in 0..50 {
            app.execute("INSERT INTO t(v) VALUES (?1)", [format!("{i}").repeat(200)])
                .unwrap();
        }
        let (cursor, changes, continuity) = read_committed(&db, 4096, cursor).unwrap();
        assert_eq!(continuity, Continuity::Continued);
        assert_eq!(changes.transactions(), 50);
        assert!(changes
            .commits
            .iter()
            .any(|t| t.pages.iter().any(|p| p.0 == 1)));
        // Nothing new: nothing read.
        let (same, changes, _) = read_committed(&db, 4096, cursor).unwrap();
        assert_eq!(changes.transactions(), 0);
        assert_eq!(same, cursor);

        // The app checkpoints and the next write restarts the log: seen as one restart.
        app.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        app.execute("INSERT INTO t(v) VALUES ('after')", [])
            .unwrap();
        let (_, changes, continuity) = read_committed(&db, 4096, cursor).unwrap();
        assert_eq!(continuity, Continuity::Restarted);
        assert_eq!(changes.transactions(), 1);
    }

    #[test]
    fn no_log_continues_an_empty_one_but_not_a_read_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        Connection::open(&db)
            .unwrap()
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(v);")
            .unwrap();
        assert!(
            !wal_path(&db).exists(),
            "closing the last connection removes the log"
        );
        let (empty, _, continuity) = read_committed(&db, 4096, None).unwrap();
        assert_eq!(continuity, Continuity::Unknown);
        let (empty, _, continuity) = read_committed(&db, 4096, empty).unwrap();
        assert_eq!(continuity, Continuity::Continued);
        let app = Connection::open(&db).unwrap();
        app.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let (read, changes, continuity) = read_committed(&db, 4096, empty).unwrap();
        assert_eq!(
            (continuity, changes.transactions()),
            (Continuity::Restarted, 1)
        );
        drop(app);
        // The log we had read is gone: whatever it held since is unaccounted for.
        let (_, _, continuity) = read_committed(&db, 4096, read).unwrap();
        assert_eq!(continuity, Continuity::Unknown);
    }

    #[test]
    fn a_torn_frame_ends_the_committed_log() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let app = Connection::open(&db).unwrap();
        app.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t(v); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);",
        )
        .unwrap();
        let (_, whole, _) = read_committed(&db, 4096, None).unwrap();
        let wal = wal_path(&db);
        let mut bytes = std::fs::read(&wal).unwrap();
        let last_frame = bytes.len() - 4096 - FRAME_HEADER_LEN;
        bytes[last_frame + FRAME_HEADER_LEN + 100] ^= 1;
        std::fs::write(&wal, bytes).unwrap();
        let (_, torn, _) = read_committed(&db, 4096, None).unwrap();
        assert_eq!(torn.transactions(), whole.transactions() - 1);
    }
}
