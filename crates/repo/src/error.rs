use lifeboat_storage::StorageError;

use crate::id::Id;

/// Every error names the object, path or location it is about.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("no Lifeboat repository at {0} (run `lifeboat init` first)")]
    NotARepository(String),
    #[error("a repository already exists at {0}")]
    AlreadyExists(String),
    /// Repository objects without `config`: the config was lost, and only a copy of it
    /// brings the repository back.
    #[error("{}", config_missing(.location, .found, .during_init))]
    ConfigMissing {
        location: String,
        found: String,
        during_init: bool,
    },
    #[error("wrong passphrase for the repository at {0}: no key slot opens with it")]
    WrongPassphrase(String),
    #[error("repository format version {found} is not supported; this lifeboat reads version {supported}")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("damaged repository object {object}: {detail}")]
    Damaged { object: String, detail: String },
    #[error("blob {0} is not in any index: the repository is missing data")]
    BlobMissing(Id),
    #[error("{0}")]
    Invalid(String),
    /// Object lock was asked for where the store cannot give it.
    #[error("cannot lock the objects of {location} (S3 Object Lock): {reason}")]
    ObjectLockUnavailable { location: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn config_missing(location: &str, found: &str, during_init: &bool) -> String {
    format!(
        "{}the repository at {location} has lost its config file (it still holds {found}): \
         restore `config` from a copy of this repository (another target, a backup of the disk \
         or bucket); nothing can be read without it, `repair` cannot recreate it, and {}",
        if *during_init {
            "refusing to create a repository here: "
        } else {
            ""
        },
        if *during_init {
            "a new repository here would leave the old data unreadable"
        } else {
            "`init` here would leave the old data unreadable"
        }
    )
}

impl RepoError {
    pub fn damaged(object: impl Into<String>, detail: impl std::fmt::Display) -> RepoError {
        RepoError::Damaged {
            object: object.into(),
            detail: detail.to_string(),
        }
    }

    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> RepoError {
        RepoError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, RepoError>;
