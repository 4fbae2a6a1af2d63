//! SQLite databases: read page by page from one committed state, stored incrementally,
//! and checked after restore.
//!
//! A live database file is never copied raw: a copy taken while the app writes can mix
//! pages from different transactions, and the committed pages still in the `-wal` file
//! would be missing. [`pages`] reads every page of one committed state inside a read
//! transaction (never blocking writers in WAL mode; in rollback-journal mode the shared
//! lock holds writers off while the pages are read). [`store`] stores them as a page map
//! so the next backup stores only changed pages, found with the hashes in [`page_cache`].

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::{Result, SourceError};

pub mod changes;
pub mod page_cache;
pub mod pages;
pub mod replicate;
pub mod rows;
pub mod store;
pub mod wal;

/// The first 16 bytes of every SQLite 3 database file.
pub const HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Files SQLite keeps beside a database; a backup of the database covers them.
pub const COMPANION_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Whether the file at `path` is a regular file that starts with the SQLite header. A
/// FIFO or device named as a database is opened without blocking and refused.
pub fn is_sqlite(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let mut header = [0u8; 16];
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .and_then(|mut f| {
            if !f.metadata()?.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            f.read_exact(&mut header)
        })
        .map(|_| &header == HEADER)
        .unwrap_or(false)
}

/// For a `-wal`, `-shm` or `-journal` file name, the name of the database it belongs to.
/// Whether that database really is one is the caller's to know: the backup walk skips a
/// companion only beside a file it stored as a database.
pub fn companion_base(name: &OsStr) -> Option<&OsStr> {
    let bytes = name.as_bytes();
    COMPANION_SUFFIXES.iter().find_map(|suffix| {
        bytes
            .strip_suffix(suffix.as_bytes())
            .filter(|base| !base.is_empty())
            .map(OsStr::from_bytes)
    })
}

/// What SQLite makes of a file that starts with the SQLite header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It opens and its schema reads: it is stored from one committed state.
    Database,
    /// SQLite says it is not a database, or that it is damaged where every reader must
    /// start (the schema): no committed state can be read, only the bytes.
    NotADatabase(String),
    /// It may well be a database but cannot be read now (locked, unreadable, an I/O
    /// error): its bytes must not be stored raw, since it may be live.
    Unreadable(String),
}

/// Opens `path` with SQLite and reads its schema. Call only when no other connection of
/// this process has the file open (see `pages::PageScan::open` on POSIX locks).
pub fn probe(path: &Path) -> Probe {
    let connection = match pages::open_connection(path) {
        Ok(c) => c,
        Err(e) => return Probe::Unreadable(e.to_string()),
    };
    match connection.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Probe::Database,
        Err(e) => match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                Probe::NotADatabase(e.to_string())
            }
            _ => Probe::Unreadable(e.to_string()),
        },
    }
}

/// Turns `sqlite:./app.db`, `sqlite:///abs/app.db`, `file:./dev.db` (as Prisma and Drizzle
/// write them) into a path; `None` for anything else.
pub fn path_from_url(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite:")
        .or_else(|| url.strip_prefix("file:"))?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let rest = rest.split('?').next().unwrap_or(rest);
    (!rest.is_empty()).then(|| PathBuf::from(rest))
}

/// A consistent copy of a database in a scratch file, removed when dropped.
pub struct ConsistentCopy {
    pub file: tempfile::NamedTempFile,
    pub page_size: u32,
    pub page_count: u64,
}

fn sqlite_error(path: &Path, what: &str, e: rusqlite::Error) -> SourceError {
    SourceError::Invalid(format!("{}: {what}: {e}", path.display()))
}

/// Copies one committed state of the database at `path` into a scratch file.
pub fn consistent_copy(path: &Path) -> Result<ConsistentCopy> {
    if !is_sqlite(path) {
        return Err(SourceError::Invalid(format!(
            "{}: not a SQLite database (no SQLite header; an SQLCipher-encrypted database cannot be copied consistently without its key)",
            path.display()
        )));
    }
    let source = pages::open_connection(path)?;
    let file = tempfile::Builder::new()
        .prefix(".lifeboat-sqlite-")
        .tempfile()
        .map_err(|e| SourceError::io(std::env::temp_dir(), e))?;
    {
        let mut dest = Connection::open(file.path())
            .map_err(|e| sqlite_error(file.path(), "scratch copy", e))?;
        // The scratch copy is read once and deleted: it needs neither a journal nor fsync.
        dest.execute_batch("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")
            .map_err(|e| sqlite_error(file.path(), "scratch copy", e))?;
        let backup = rusqlite::backup::Backup::new(&source, &mut dest)
            .map_err(|e| sqlite_error(path, "cannot start a consistent copy", e))?;
        // All pages in one step: one read transaction, so one committed state. A busy
        // database (a writer holding the lock in rollback mode) is retried for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            use rusqlite::backup::StepResult;
            match backup.step(-1).map_err(|e| sqlite_error(path, "consistent copy failed", e))? {
                StepResult::Done => break,
                StepResult::More => continue,
                _ if std::time::Instant::now() > deadline => {
                    return Err(SourceError::Invalid(format!(
                        "{}: the database stayed locked for 60 s; no consistent copy could be taken",
                        path.display()
                    )))
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
    let page_size: u32 = source
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(|e| sqlite_error(path, "reading the page size", e))?;
    let length = file
        .as_file()
        .metadata()
        .map_err(|e| SourceError::io(file.path(), e))?
        .len();
    Ok(ConsistentCopy {
        file,
        page_size,
        page_count: length / page_size.max(1) as u64,
    })
}

/// After restoring a database to `path`: remove `-wal`/`-shm`/`-journal` files left from an
/// older database (SQLite would apply a stale WAL to the restored file), then check it.
pub fn after_restore(path: &Path) -> Result<()> {
    remove_stale_companions(path)?;
    check(path)
}

/// Removes the `-wal`, `-shm` and `-journal` files beside `path`.
pub fn remove_stale_companions(path: &Path) -> Result<()> {
    for suffix in COMPANION_SUFFIXES {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        let companion = PathBuf::from(companion);
        match std::fs::remove_file(&companion) {
            Ok(()) => tracing::info!("removed stale {}", companion.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SourceError::io(&companion, e)),
        }
    }
    Ok(())
}

/// `PRAGMA integrity_check` and `PRAGMA foreign_key_check`; an error names the first problem.
pub fn check(path: &Path) -> Result<()> {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| sqlite_error(path, "cannot open the restored database", e))?;
    // Not memory-mapped, though mmap makes integrity_check of 1 GiB 1.7 s faster: the
    // mapped file then counts as 1 GiB of resident memory (bench/results/2026-11-26.md).
    let integrity: String = db
        .query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))
        .map_err(|e| sqlite_error(path, "integrity_check", e))?;
    if integrity != "ok" {
        return Err(SourceError::Invalid(format!(
            "{}: restored database fails integrity_check: {integrity}",
            path.display()
        )));
    }
    let mut statement = db
        .prepare("PRAGMA foreign_key_check")
        .map_err(|e| sqlite_error(path, "foreign_key_check", e))?;
    let violation: Option<String> = statement
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| sqlite_error(path, "foreign_key_check", e))?
        .next()
        .transpose()
        .map_err(|e| sqlite_error(path, "foreign_key_check", e))?;
    if let Some(table) = violation {
        return Err(SourceError::Invalid(format!(
            "{}: restored database fails foreign_key_check (table {table})",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_prisma_and_drizzle_write_them() {
        assert_eq!(
            path_from_url("file:./dev.db"),
            Some(PathBuf::from("./dev.db"))
        );
        assert_eq!(
            path_from_url("sqlite:./data/app.db"),
            Some(PathBuf::from("./data/app.db"))
        );
        assert_eq!(
            path_from_url("sqlite:///var/app.db"),
            Some(PathBuf::from("/var/app.db"))
        );
        assert_eq!(
            path_from_url("file:app.db?mode=ro"),
            Some(PathBuf::from("app.db"))
        );
        assert_eq!(path_from_url("postgres://x"), None);
        assert_eq!(path_from_url("./app.db"), None);
    }

    #[test]
    fn copy_of_a_wal_database_includes_uncheckpointed_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let app = Connection::open(&path).unwrap();
        app.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
        )
        .unwrap();
        for i in 0..500 {
            app.execute("INSERT INTO t(v) VALUES (?1)", [format!("row {i}")])
                .unwrap();
        }
        // Everything is still in the -wal file; a raw copy of app.db would miss it.
        assert!(
            std::fs::metadata(dir.path().join("app.db-wal"))
                .unwrap()
                .len()
                > 0
        );
        let copy = consistent_copy(&path).unwrap();
        let restored = Connection::open(copy.file.path()).unwrap();
        let count: i64 = restored
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 500);
        check(copy.file.path()).unwrap();
        assert_eq!(probe(&path), Probe::Database);
    }

    #[test]
    fn companion_names() {
        assert_eq!(
            companion_base(OsStr::new("app.db-wal")),
            Some(OsStr::new("app.db"))
        );
        assert_eq!(
            companion_base(OsStr::new("x-journal")),
            Some(OsStr::new("x"))
        );
        assert_eq!(companion_base(OsStr::new("-shm")), None);
        assert_eq!(companion_base(OsStr::new("app.db")), None);
    }

    #[test]
    fn not_sqlite_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fake.db");
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let err = consistent_copy(&path).err().unwrap().to_string();
        assert!(err.contains("not a SQLite database"), "{err}");
        // A fake header is not a database either, and says so without an error.
        let mut fake = HEADER.to_vec();
        fake.extend_from_slice(&[0xAB; 4080]);
        std::fs::write(&path, fake).unwrap();
        assert!(is_sqlite(&path));
        assert!(matches!(probe(&path), Probe::NotADatabase(_)));
    }

    #[test]
    fn a_fifo_is_not_a_database_and_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("app.db");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo reads a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(!is_sqlite(&fifo));
    }
}
