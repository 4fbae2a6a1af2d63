//! PostgreSQL's use cases: the setup that ties a server's WAL archiving to a repository,
//! physical base backups, and point-in-time recovery into a new data directory.

pub mod access;
pub mod archive;
pub mod base_backup;
pub mod recovery;
pub mod setup;
