//! Reading every page of one committed state of a live database, without copying it first.
//!
//! A read transaction pins one committed state. In rollback-journal modes that state is
//! the database file itself: the shared lock keeps every writer from touching the file
//! until the transaction ends, so the file is read directly. In WAL mode the newest
//! pages may sit in the `-wal` file and a checkpoint may rewrite the database file under
//! us, so pages are read through SQLite's pager with the `sqlite_dbpage` virtual table.
//! A SQLite built without that table falls back to a consistent copy in a scratch file.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{consistent_copy, sqlite_error, ConsistentCopy};
use crate::{Result, SourceError};

enum Reader {
    /// Rollback journal: the file, stable while the shared lock is held.
    File(std::fs::File),
    /// WAL: through the pager, inside the read transaction.
    DbPage,
    /// No `sqlite_dbpage` in this SQLite: a consistent copy taken with the backup API.
    Copy(ConsistentCopy),
}

/// One committed state of a database, pinned by a read transaction until dropped.
pub struct PageScan {
    path: PathBuf,
    connection: Connection,
    reader: Reader,
    pub page_size: u32,
    pub page_count: u32,
    pub wal_mode: bool,
}

impl PageScan {
    /// Opens `path` and starts a read transaction on it.
    pub fn open(path: &Path) -> Result<PageScan> {
        // The header is checked through SQLite, not by reading the file: POSIX locks belong
        // to the process, and closing any descriptor of the database file would silently
        // drop the locks of every connection this process has open to it (a replicator's
        // read transaction among them).
        let connection = open_connection(path)?;
        let fail = |what: &str, e| sqlite_error(path, what, e);
        // BEGIN is deferred: the first read takes the shared lock (or the WAL snapshot).
        connection
            .execute_batch("BEGIN; SELECT count(*) FROM sqlite_schema;")
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase) => not_a_database(path),
                _ => fail("cannot start a read transaction", e),
            })?;
        let pragma_u32 = |name: &str| -> Result<u32> {
            connection
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(|e| fail(&format!("reading {name}"), e))
        };
        let page_size = pragma_u32("page_size")?;
        let page_count = pragma_u32("page_count")?;
        let journal_mode: String = connection
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| fail("reading journal_mode", e))?;
        let wal_mode = journal_mode.eq_ignore_ascii_case("wal");
        let reader = if !wal_mode {
            let file = std::fs::File::open(path).map_err(|e| SourceError::io(path, e))?;
            Reader::File(file)
        } else if connection
            .prepare("SELECT data FROM sqlite_dbpage LIMIT 0")
            .is_ok()
        {
            Reader::DbPage
        } else {
            Reader::Copy(consistent_copy(path)?)
        };
        let mut scan = PageScan {
            path: path.to_path_buf(),
            connection,
            reader,
            page_size,
            page_count,
            wal_mode,
        };
        if let Reader::Copy(copy) = &scan.reader {
            scan.page_size = copy.page_size;
            scan.page_count = copy.page_count as u32;
        }
        Ok(scan)
    }

    /// The file that holds the pinned state's pages at their offsets, when there is one
    /// (rollback-journal mode, or a scratch copy): it may be read at any offset from any
    /// thread while this scan lives. `None` in WAL mode, where [`PageScan::read`] goes
    /// through SQLite's pager.
    pub fn file(&self) -> Option<&std::fs::File> {
        match &self.reader {
            Reader::File(file) => Some(file),
            Reader::Copy(copy) => Some(copy.file.as_file()),
            Reader::DbPage => None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `each` with batches of `per_batch` whole pages (fewer in the last), in page
    /// order, starting at page 0. The batch is a buffer `each` may take, leaving another
    /// in its place (of any length): recycling buffers spares the kernel zeroing a fresh
    /// one for every batch.
    pub fn read(
        &self,
        per_batch: u32,
        mut each: impl FnMut(u32, &mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let page_size = self.page_size as usize;
        let per_batch = per_batch.max(1);
        let mut buffer = Vec::new();
        match &self.reader {
            Reader::File(file) => self.read_file(file, &mut buffer, per_batch, &mut each),
            Reader::Copy(copy) => {
                self.read_file(copy.file.as_file(), &mut buffer, per_batch, &mut each)
            }
            Reader::DbPage => {
                let fail = |e| sqlite_error(&self.path, "reading pages", e);
                let mut statement = self
                    .connection
                    .prepare("SELECT pgno, data FROM sqlite_dbpage")
                    .map_err(fail)?;
                let mut rows = statement.query([]).map_err(fail)?;
                let (mut first, mut filled) = (0u32, 0usize);
                let mut expected = 1u32;
                buffer.resize(per_batch as usize * page_size, 0);
                while let Some(row) = rows.next().map_err(fail)? {
                    let pgno: u32 = row.get(0).map_err(fail)?;
                    let data = row.get_ref(1).map_err(fail)?;
                    let data = data.as_blob().map_err(|e| fail(e.into()))?;
                    if pgno != expected || data.len() != page_size {
                        return Err(SourceError::Invalid(format!(
                            "{}: page {pgno} came back out of order or with {} bytes",
                            self.path.display(),
                            data.len()
                        )));
                    }
                    expected += 1;
                    buffer[filled..filled + page_size].copy_from_slice(data);
                    filled += page_size;
                    if filled == buffer.len() {
                        each(first, &mut buffer)?;
                        buffer.resize(per_batch as usize * page_size, 0);
                        first += per_batch;
                        filled = 0;
                    }
                }
                if filled > 0 {
                    buffer.truncate(filled);
                    each(first, &mut buffer)?;
                }
                if expected - 1 != self.page_count {
                    return Err(SourceError::Invalid(format!(
                        "{}: read {} pages, the database has {}",
                        self.path.display(),
                        expected - 1,
                        self.page_count
                    )));
                }
                Ok(())
            }
        }
    }

    fn read_file(
        &self,
        file: &std::fs::File,
        buffer: &mut Vec<u8>,
        per_batch: u32,
        each: &mut impl FnMut(u32, &mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let page_size = self.page_size as u64;
        let mut first = 0u32;
        while first < self.page_count {
            let count = per_batch.min(self.page_count - first);
            buffer.resize((count as u64 * page_size) as usize, 0);
            file.read_exact_at(buffer, first as u64 * page_size)
                .map_err(|e| SourceError::io(&self.path, e))?;
            each(first, buffer)?;
            first += count;
        }
        Ok(())
    }
}

fn not_a_database(path: &Path) -> SourceError {
    SourceError::Invalid(format!(
        "{}: not a SQLite database (no SQLite header; an SQLCipher-encrypted database cannot be read consistently without its key)",
        path.display()
    ))
}

/// A connection that waits up to 30 s for a writer's lock, read-write where allowed (a
/// WAL reader needs to write the -shm), read-only otherwise.
pub(super) fn open_connection(path: &Path) -> Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .or_else(|_| {
        Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    })
    .map_err(|e| sqlite_error(path, "cannot open the database", e))?;
    connection
        .busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| sqlite_error(path, "cannot set a busy timeout", e))?;
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages_of(scan: &PageScan) -> Vec<u8> {
        let mut all = Vec::new();
        scan.read(7, |first, batch| {
            assert_eq!(all.len(), first as usize * scan.page_size as usize);
            // Taking the buffer leaves an empty one: the reader must size it again.
            all.extend(std::mem::take(batch));
            Ok(())
        })
        .unwrap();
        all
    }

    #[test]
    fn wal_pages_come_from_the_pinned_snapshot_not_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let app = Connection::open(&path).unwrap();
        app.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
        )
        .unwrap();
        for i in 0..300 {
            app.execute(
                "INSERT INTO t(v) VALUES (?1)",
                [format!("row {i} {}", "x".repeat(50))],
            )
            .unwrap();
        }
        let scan = PageScan::open(&path).unwrap();
        assert!(scan.wal_mode);
        // Commits after the scan began must not show up in what it reads.
        for i in 0..300 {
            app.execute("INSERT INTO t(v) VALUES (?1)", [format!("late {i}")])
                .unwrap();
        }
        let bytes = pages_of(&scan);
        assert_eq!(
            bytes.len(),
            scan.page_count as usize * scan.page_size as usize
        );
        drop(scan);
        let copy = dir.path().join("copy.db");
        std::fs::write(&copy, bytes).unwrap();
        let restored = Connection::open(&copy).unwrap();
        let count: i64 = restored
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 300);
        super::super::check(&copy).unwrap();
    }

    #[test]
    fn rollback_journal_database_is_read_from_the_file_under_a_shared_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let app = Connection::open(&path).unwrap();
        app.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1);")
            .unwrap();
        app.busy_timeout(std::time::Duration::from_millis(50))
            .unwrap();
        let scan = PageScan::open(&path).unwrap();
        assert!(!scan.wal_mode);
        // The shared lock keeps a writer out until the scan ends.
        assert!(app.execute("INSERT INTO t VALUES (2)", []).is_err());
        let bytes = pages_of(&scan);
        assert_eq!(bytes, std::fs::read(&path).unwrap());
        drop(scan);
        app.execute("INSERT INTO t VALUES (2)", []).unwrap();
    }
}
