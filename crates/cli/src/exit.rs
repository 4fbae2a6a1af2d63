//! Exit codes scripts can branch on, and the one line a person reads.

pub use lifeboat_ops::one_line;
use lifeboat_repo::RepoError;
use lifeboat_sources::SourceError;
use lifeboat_storage::StorageError;

pub const FAILURE: i32 = 1;
pub const USAGE: i32 = 2;
pub const DAMAGE_FOUND: i32 = 3;
pub const WRONG_PASSPHRASE: i32 = 4;
pub const NO_REPOSITORY: i32 = 5;
/// `backup` saved its snapshot, but skipped some paths or stored them as plain bytes
/// (each is printed, in the JSON report and in the snapshot's `warnings`). Not 3, as
/// restic uses for an incomplete snapshot: 3 is `verify`'s damage here.
pub const SAVED_WITH_WARNINGS: i32 = 6;

/// Raised by `verify` when it found damage; the report has already been printed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DamageFound(pub String);

/// A command line that cannot work as given (what clap cannot see by itself).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// An error whose exit code the command chose itself (e.g. `pg wal-fetch`, whose codes
/// PostgreSQL's restore_command contract shapes).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct WithCode {
    pub code: i32,
    pub message: String,
}

fn repo_code(e: &RepoError) -> i32 {
    match e {
        RepoError::WrongPassphrase(_) => WRONG_PASSPHRASE,
        RepoError::NotARepository(_) => NO_REPOSITORY,
        RepoError::Storage(s) => storage_code(s),
        _ => FAILURE,
    }
}

fn storage_code(e: &StorageError) -> i32 {
    match e {
        StorageError::NotFound { .. }
        | StorageError::Truncated { .. }
        | StorageError::TooLarge { .. } => FAILURE,
        _ => NO_REPOSITORY,
    }
}

pub fn code_for(error: &anyhow::Error) -> i32 {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<WithCode>() {
            return e.code;
        }
        if cause.downcast_ref::<Usage>().is_some() {
            return USAGE;
        }
        if cause.downcast_ref::<DamageFound>().is_some() {
            return DAMAGE_FOUND;
        }
        if let Some(e) = cause.downcast_ref::<RepoError>() {
            return repo_code(e);
        }
        if let Some(SourceError::Repo(e)) = cause.downcast_ref::<SourceError>() {
            return repo_code(e);
        }
        if let Some(e) = cause.downcast_ref::<StorageError>() {
            return storage_code(e);
        }
    }
    FAILURE
}
