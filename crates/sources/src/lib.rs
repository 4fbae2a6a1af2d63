//! What Lifeboat backs up and restores, and how: one module per kind of source.
//!
//! Sources turn something on the host (a directory tree, a command's output) into blobs
//! and trees through a [`lifeboat_repo::session::WriteSession`], and turn a snapshot's
//! trees back into that thing. They know nothing of packs, keys or storage.

pub mod child_env;
pub mod command;
pub mod database_url;
pub mod dump;
pub mod files;
pub mod mysql;
pub mod postgres;
pub mod restore;
pub mod rows;
pub mod sqlite;
pub mod tar_tree;
pub mod timeline;
pub mod tool;

use lifeboat_repo::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl SourceError {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> SourceError {
        SourceError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, SourceError>;

/// Progress hears byte counts as they are read or written; it must be cheap.
pub trait Progress: Sync {
    fn bytes(&self, n: u64);
    fn file(&self, _path: &std::path::Path) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn bytes(&self, _n: u64) {}
}
