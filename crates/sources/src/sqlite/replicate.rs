//! Continuous replication of a WAL-mode database: committed pages shipped as stream
//! segments every interval, on top of a base snapshot.
//!
//! Each tick takes the write lock for a moment (so no transaction is half-written and
//! none can commit), reads the frames committed since the last tick from the `-wal`,
//! lets go of the previous read transaction, runs a PASSIVE checkpoint (never RESTART or
//! TRUNCATE under the app), starts a new read transaction and releases the write lock.
//! Holding a read transaction between ticks keeps any checkpoint from copying frames we
//! have not read into the database, so the log cannot restart past them; it can restart
//! at most once, and only when everything we read was already checkpointed. When the
//! frames since the last tick cannot be accounted for (the first tick, a log that
//! restarted more than once, our own restart) the replicator re-bases: it takes a new
//! base snapshot and starts a new generation.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lifeboat_repo::segment::{Segment, SegmentHeader, Transaction};
use lifeboat_repo::session::WriteSession;
use lifeboat_repo::snapshot::{SnapshotDraft, SnapshotSource, SnapshotSummary};
use lifeboat_repo::{Id, Repository};
use rusqlite::Connection;

use super::page_cache::PageCache;
use super::wal::{self, Continuity, WalCursor};
use super::{pages::open_connection, sqlite_error};
use crate::{Result, SourceError};

pub struct Options {
    /// How often committed transactions are shipped.
    pub interval: Duration,
    /// How often a new base snapshot starts a new generation.
    pub base_every: Duration,
}

struct Generation {
    base: Id,
    seq: u64,
    previous: Option<String>,
    started: Instant,
}

/// Committed transactions read from the log but not yet stored.
#[derive(Default)]
struct Pending {
    transactions: Vec<Transaction>,
}

impl Pending {
    fn count(&self) -> u32 {
        self.transactions.len() as u32
    }
}

/// What one tick did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// A new base snapshot was taken (and why).
    pub rebased: Option<String>,
    /// A segment was stored: its sequence number, transactions and pages.
    pub shipped: Option<(u64, u32, usize)>,
    /// Transactions read but not yet stored because storage failed.
    pub waiting: u32,
}

pub struct Replicator<'a> {
    repo: &'a Repository,
    path: PathBuf,
    source: String,
    stream: String,
    page_size: u32,
    writer: Connection,
    reader: Connection,
    reading: bool,
    cursor: Option<WalCursor>,
    generation: Option<Generation>,
    pending: Pending,
    /// The stream's number for the next transaction shipped: numbers run on across
    /// segments, generations and restarts of the replicator.
    next_transaction: u64,
    cache: Option<&'a PageCache>,
    options: Options,
    inode: u64,
}

impl<'a> Replicator<'a> {
    /// Opens the database; refuses one that is not in WAL mode.
    pub fn open(
        repo: &'a Repository,
        path: &Path,
        cache: Option<&'a PageCache>,
        options: Options,
    ) -> Result<Replicator<'a>> {
        if !super::is_sqlite(path) {
            return Err(SourceError::Invalid(format!(
                "{}: not a SQLite database (no SQLite header; an SQLCipher-encrypted database cannot be replicated without its key)",
                path.display()
            )));
        }
        let writer = open_connection(path)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| sqlite_error(path, "reading journal_mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SourceError::Invalid(format!(
                "{}: journal_mode is {mode}; continuous replication needs WAL (PRAGMA journal_mode=WAL), scheduled backups work in any mode",
                path.display()
            )));
        }
        let page_size = writer
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(|e| sqlite_error(path, "reading page_size", e))?;
        let source = path.display().to_string();
        let inode = inode_of(path)?;
        let stream = repo.stream_id(&source);
        let next_transaction = repo
            .list_segments(&stream)?
            .iter()
            .filter_map(|s| s.transactions)
            .map(|(_, last)| last + 1)
            .max()
            .unwrap_or(1);
        Ok(Replicator {
            next_transaction,
            inode,
            repo,
            stream,
            path: path.to_path_buf(),
            source,
            page_size,
            reader: open_connection(path)?,
            writer,
            reading: false,
            cursor: None,
            generation: None,
            pending: Pending::default(),
            cache,
            options,
        })
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Reads what committed since the last tick and ships it (or re-bases).
    pub fn tick(&mut self) -> Result<Tick> {
        self.check_still_there()?;
        let (cursor, changes, continuity) = self.read_under_write_lock()?;
        tracing::debug!(
            "log: {continuity:?}, {} transaction(s), cursor {:?}",
            changes.transactions(),
            cursor.map(|c| (c.checkpoint_seq, c.frames))
        );
        self.cursor = cursor;
        let mut tick = Tick::default();
        let stale = self
            .generation
            .as_ref()
            .is_none_or(|g| g.started.elapsed() >= self.options.base_every);
        if continuity == Continuity::Unknown || stale {
            let why = match (&self.generation, continuity) {
                (None, _) => "first base snapshot",
                (_, Continuity::Unknown) => "the log restarted more than once since the last tick",
                _ => "periodic base snapshot",
            };
            let base = self.take_base()?;
            self.generation = Some(Generation {
                base,
                seq: 0,
                previous: None,
                started: Instant::now(),
            });
            // Everything read so far is in the base (it was taken after this read).
            self.pending = Pending::default();
            tick.rebased = Some(why.to_string());
            return Ok(tick);
        }
        self.pending.transactions.extend(changes.commits);
        if self.pending.count() == 0 {
            return Ok(tick);
        }
        match self.ship() {
            Ok(shipped) => tick.shipped = Some(shipped),
            Err(e) => {
                tracing::warn!(
                    "cannot store a segment ({e}); {} transaction(s) wait for the next tick",
                    self.pending.count()
                );
                tick.waiting = self.pending.count();
            }
        }
        Ok(tick)
    }

    /// The write lock held only while the log is read and the read snapshot moved.
    fn read_under_write_lock(
        &mut self,
    ) -> Result<(Option<WalCursor>, wal::WalChanges, Continuity)> {
        let fail = |what: &str, e| sqlite_error(&self.path, what, e);
        self.writer
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| fail("cannot take the write lock", e))?;
        let locked = Instant::now();
        let result = (|| {
            let read = wal::read_committed(&self.path, self.page_size, self.cursor)?;
            if self.reading {
                self.reader
                    .execute_batch("COMMIT")
                    .map_err(|e| fail("ending the read transaction", e))?;
                self.reading = false;
            }
            // PASSIVE only: it copies what it can and never waits for or blocks the app.
            let _: (i64, i64, i64) = self
                .reader
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(|e| fail("checkpoint", e))?;
            self.reader
                .execute_batch("BEGIN; SELECT count(*) FROM sqlite_schema;")
                .map_err(|e| fail("starting a read transaction", e))?;
            self.reading = true;
            Ok(read)
        })();
        self.writer
            .execute_batch("COMMIT")
            .map_err(|e| fail("releasing the write lock", e))?;
        tracing::debug!(
            "write lock held {:.1} ms",
            locked.elapsed().as_secs_f64() * 1000.0
        );
        result
    }

    fn take_base(&self) -> Result<Id> {
        let started = Instant::now();
        let time = chrono::Utc::now();
        let session = WriteSession::start(self.repo, "replicate base")?;
        // The newest snapshot of this database is the parent: with the page cache, a new
        // base stores only the pages changed since, like any incremental backup.
        let parent = crate::timeline::restore_points(self.repo, session.index(), &self.path)?
            .into_iter()
            .rev()
            .find(|p| p.segment.is_none() && !p.node.page_map.is_empty());
        let stored = super::store::store_database(
            &session,
            &self.path,
            parent.as_ref().map(|p| p.node.page_map.as_slice()),
            self.cache,
            &crate::NoProgress,
        )?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "database".into());
        let meta = std::fs::metadata(&self.path).map_err(|e| SourceError::io(&self.path, e))?;
        let mut node = crate::files::base_node(std::ffi::OsStr::new(&name), &meta);
        node.sqlite = true;
        node.size = stored.size;
        node.page_map = stored.page_map;
        let tree = session.store_tree(&lifeboat_repo::tree::Tree { nodes: vec![node] })?;
        let finished = session.finish()?;
        let draft = SnapshotDraft {
            time,
            host: None,
            paths: vec![self.source.clone()],
            tags: vec!["replicate".into()],
            pinned: false,
            source: SnapshotSource::Files,
            tree,
            parent: parent.map(|p| p.snapshot),
            summary: SnapshotSummary {
                files: 1,
                total_bytes: stored.size,
                database_pages: stored.pages as u64,
                changed_pages: stored.changed_pages as u64,
                ..Default::default()
            },
            warnings: Vec::new(),
            started,
        };
        Ok(finished.save(draft)?.0)
    }

    fn ship(&mut self) -> Result<(u64, u32, usize)> {
        let generation = self.generation.as_mut().expect("a base precedes segments");
        // The transactions move into the segment, and back into `pending` if it cannot be
        // stored.
        let pending = std::mem::take(&mut self.pending);
        let segment = Segment {
            header: SegmentHeader {
                stream: self.stream.clone(),
                source: self.source.clone(),
                host: lifeboat_repo::hostname(),
                base_snapshot: generation.base,
                seq: generation.seq + 1,
                previous: generation.previous.clone(),
                time: chrono::Utc::now(),
                page_size: self.page_size,
                page_count: pending.transactions.last().map_or(0, |t| t.page_count),
                transactions: pending.count(),
                first_transaction: self.next_transaction,
            },
            transactions: pending.transactions,
        };
        match self.repo.save_segment(&segment) {
            Ok(name) => {
                generation.seq += 1;
                generation.previous = Some(name);
                let header = &segment.header;
                self.next_transaction += header.transactions as u64;
                let pages = segment.transactions.iter().map(|t| t.pages.len()).sum();
                Ok((header.seq, header.transactions, pages))
            }
            Err(e) => {
                self.pending = Pending {
                    transactions: segment.transactions,
                };
                Err(e.into())
            }
        }
    }

    /// A database deleted or replaced under the replicator is an error, not a silent
    /// stream of another file.
    fn check_still_there(&self) -> Result<()> {
        match inode_of(&self.path) {
            Ok(inode) if inode == self.inode => Ok(()),
            Ok(_) => Err(SourceError::Invalid(format!(
                "{}: the database was replaced by another file while replicating; restart replicate to follow the new one",
                self.path.display()
            ))),
            Err(_) => Err(SourceError::Invalid(format!(
                "{}: the database was deleted while replicating",
                self.path.display()
            ))),
        }
    }
}

fn inode_of(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)
        .map_err(|e| SourceError::io(path, e))?
        .ino())
}
