//! What kind of thing a source of `lifeboat.toml` is, decided in one place for every use
//! case that treats kinds differently (backup, status, the runbook, the agent's
//! replicators, drills and restores).

use std::path::{Path, PathBuf};

use lifeboat_config::SourceLocation;
use lifeboat_repo::snapshot::Engine;
use lifeboat_sources::database_url::DatabaseUrl;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A shell command's standard output.
    Command,
    /// A PostgreSQL or MySQL/MariaDB server (`postgres://`, `mysql://`, `mariadb://`).
    DatabaseServer(Engine),
    /// A SQLite database: a `sqlite:`/`file:` URL, a file with SQLite's header, or a
    /// path named like one (`.db`, `.sqlite`, `.sqlite3`) that does not exist yet.
    Sqlite(PathBuf),
    /// A directory (an uploads folder).
    Directory(PathBuf),
    /// Any other file, or a path that does not exist (yet).
    File(PathBuf),
}

impl SourceKind {
    pub fn of(location: &SourceLocation) -> SourceKind {
        match location {
            SourceLocation::Command(_) => SourceKind::Command,
            SourceLocation::Url(url) => SourceKind::of_url(url),
        }
    }

    /// The kind of what was backed up at `url` (a path or a URL).
    pub fn of_url(url: &str) -> SourceKind {
        match DatabaseUrl::parse(url) {
            Some(Ok(parsed)) => return SourceKind::DatabaseServer(parsed.engine),
            // Still a server, whose URL the use case will refuse with the reason.
            Some(Err(_)) if url.starts_with("postgres") => {
                return SourceKind::DatabaseServer(Engine::Postgres)
            }
            Some(Err(_)) => return SourceKind::DatabaseServer(Engine::Mysql),
            None => {}
        }
        if let Some(path) = lifeboat_sources::sqlite::path_from_url(url) {
            return SourceKind::Sqlite(path);
        }
        let path = PathBuf::from(url);
        if path.is_dir() {
            SourceKind::Directory(path)
        } else if lifeboat_sources::sqlite::is_sqlite(&path)
            || (!path.exists() && named_like_sqlite(&path))
        {
            SourceKind::Sqlite(path)
        } else {
            SourceKind::File(path)
        }
    }

    /// How the runbook and messages name the kind.
    pub fn describe(&self) -> &'static str {
        match self {
            SourceKind::Command => "command output",
            SourceKind::DatabaseServer(Engine::Postgres) => "PostgreSQL",
            SourceKind::DatabaseServer(Engine::Mysql) => "MySQL/MariaDB",
            SourceKind::Sqlite(_) => "SQLite",
            SourceKind::Directory(_) | SourceKind::File(_) => "files",
        }
    }

    /// Whether restore points of it are files a restore writes (not a database server
    /// or a command's output).
    pub fn is_file_like(&self) -> bool {
        matches!(
            self,
            SourceKind::Sqlite(_) | SourceKind::Directory(_) | SourceKind::File(_)
        )
    }
}

fn named_like_sqlite(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "db" | "sqlite" | "sqlite3"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.data");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a database").unwrap();
        let url = |p: &Path| SourceLocation::Url(p.display().to_string());
        assert_eq!(SourceKind::of(&url(&db)), SourceKind::Sqlite(db.clone()));
        assert_eq!(SourceKind::of(&url(&text)), SourceKind::File(text.clone()));
        assert_eq!(
            SourceKind::of(&url(dir.path())),
            SourceKind::Directory(dir.path().to_path_buf())
        );
        let later = dir.path().join("not-yet.sqlite3");
        assert_eq!(
            SourceKind::of(&url(&later)),
            SourceKind::Sqlite(later.clone())
        );
        assert_eq!(
            SourceKind::of_url("sqlite:./data/app.db"),
            SourceKind::Sqlite("./data/app.db".into())
        );
        assert_eq!(
            SourceKind::of_url("postgres://u:p@127.0.0.1/app"),
            SourceKind::DatabaseServer(Engine::Postgres)
        );
        assert_eq!(
            SourceKind::of_url("mysql://root@127.0.0.1/app").describe(),
            "MySQL/MariaDB"
        );
        assert_eq!(
            SourceKind::of(&SourceLocation::Command("pg_dumpall".into())),
            SourceKind::Command
        );
    }
}
