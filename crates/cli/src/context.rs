//! What every command needs: the repository location, the passphrase, an open repository.

use anyhow::{Context as _, Result};
use lifeboat_repo::Repository;
use lifeboat_storage::Storage;

use crate::args::GlobalArgs;

pub struct Context<'a> {
    pub global: &'a GlobalArgs,
}

impl Context<'_> {
    pub fn repo_url(&self) -> Result<&str> {
        self.global
            .repo
            .as_deref()
            .context("no repository given: use --repo or set LIFEBOAT_REPO")
    }

    pub fn storage(&self) -> Result<Storage> {
        Ok(self.limited(Storage::open(self.repo_url()?)?))
    }

    /// `storage` under the bandwidth limits given (KiB/s, as restic takes them).
    pub fn limited(&self, storage: Storage) -> Storage {
        let bytes = |kib: Option<u64>| kib.map(|k| k.saturating_mul(1024));
        storage.with_limits(
            bytes(self.global.limit_upload),
            bytes(self.global.limit_download),
        )
    }

    pub fn passphrase(&self, creating: bool) -> Result<String> {
        crate::secrets::passphrase(
            self.global.password_file.as_deref(),
            self.global.password_command.as_deref(),
            creating,
        )
    }

    pub fn open(&self) -> Result<Repository> {
        // Opening local storage creates its directory; only `init` may do that, or a typo
        // (or an unmounted disk's mount point) would sprout an empty repository directory.
        if let Ok(lifeboat_storage::Location::Local(root)) =
            lifeboat_storage::Location::parse(self.repo_url()?)
        {
            if !root.is_dir() {
                return Err(
                    lifeboat_repo::RepoError::NotARepository(root.display().to_string()).into(),
                );
            }
        }
        let storage = self.storage()?;
        let passphrase = self.passphrase(false)?;
        Ok(Repository::open(storage, passphrase.as_bytes())?)
    }

    /// For commands that delete or change stored objects (forget, prune, key changes,
    /// repair): through a `lifeboat serve` server they need an admin token. Asked of the
    /// server up front, so such a command is refused before it does anything, with the
    /// reason, rather than halfway.
    pub fn require_admin(&self, repo: &Repository, command: &str) -> Result<()> {
        if let Some(access) = repo.server_access()? {
            if access.role != "admin" {
                anyhow::bail!(
                    "{command} needs an admin token: the server refused: token '{}' has role {}, which may not delete or change what is stored (run {command} where the admin token is)",
                    access.token,
                    access.role
                );
            }
        }
        Ok(())
    }

    /// Opens a target of `lifeboat.toml` with its own passphrase (`password`,
    /// `password_file`), else the one every command uses.
    pub fn open_target(&self, target: &lifeboat_config::Target) -> Result<Repository> {
        if let Ok(lifeboat_storage::Location::Local(root)) =
            lifeboat_storage::Location::parse(&target.url)
        {
            if !root.is_dir() {
                return Err(
                    lifeboat_repo::RepoError::NotARepository(root.display().to_string()).into(),
                );
            }
        }
        let passphrase = match (&target.password, &target.password_file) {
            (Some(secret), _) => secret.expose().to_string(),
            (None, Some(file)) => crate::secrets::passphrase(Some(file), None, false)?,
            (None, None) => self.passphrase(false)?,
        };
        let storage = self.limited(Storage::open(&target.url)?);
        Ok(Repository::open(storage, passphrase.as_bytes())?)
    }

    /// Where local caches live: `LIFEBOAT_CACHE_DIR`, else `$XDG_CACHE_HOME/lifeboat`, else
    /// `~/.cache/lifeboat`. `None` when there is no home (caches are then skipped).
    pub fn cache_root(&self) -> Option<std::path::PathBuf> {
        let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        env("LIFEBOAT_CACHE_DIR")
            .map(Into::into)
            .or_else(|| env("XDG_CACHE_HOME").map(|d| std::path::PathBuf::from(d).join("lifeboat")))
            .or_else(|| env("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/lifeboat")))
    }

    /// The cache of SQLite page hashes for `repo`.
    pub fn page_cache(
        &self,
        repo: &Repository,
    ) -> Option<lifeboat_sources::sqlite::page_cache::PageCache> {
        Some(lifeboat_sources::sqlite::page_cache::PageCache::new(
            &self.cache_root()?,
            &repo.config().id.to_string(),
            repo.page_hash_key(),
        ))
    }

    pub fn progress_enabled(&self) -> bool {
        !self.global.json && !self.global.quiet
    }

    /// Informational output for people: stderr when --json owns stdout.
    pub fn say(&self, text: impl AsRef<str>) {
        if self.global.quiet {
            return;
        }
        if self.global.json {
            eprintln!("{}", text.as_ref());
        } else {
            out!("{}", text.as_ref());
        }
    }

    pub fn print_json(&self, value: &impl serde::Serialize) {
        out!(
            "{}",
            serde_json::to_string_pretty(value).expect("json serializes")
        );
    }
}
