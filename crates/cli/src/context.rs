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
        Ok(Storage::open(self.repo_url()?)?)
    }

    pub fn passphrase(&self, creating: bool) -> Result<String> {
        crate::secrets::passphrase(self.global.password_file.as_deref(), creating)
    }

    pub fn open(&self) -> Result<Repository> {
        let storage = self.storage()?;
        let passphrase = self.passphrase(false)?;
        Ok(Repository::open(storage, passphrase.as_bytes())?)
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
            println!("{}", text.as_ref());
        }
    }

    pub fn print_json(&self, value: &serde_json::Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("json serializes")
        );
    }
}
