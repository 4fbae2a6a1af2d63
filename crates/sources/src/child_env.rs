//! The environment of the commands Lifeboat runs for the user (`run --snapshot-before --
//! CMD`, `backup --stdin-from-command`, `restore --to-command`): everything Lifeboat was
//! given, less Lifeboat's own secrets. A migration and all its dependencies, or a dump
//! command, have no business with the repository passphrase.
//!
//! The rule: a variable is Lifeboat's own secret when its name starts with `LIFEBOAT_`
//! and contains `PASSWORD`, `TOKEN`, `SECRET` or `KEY` (the passphrase and its file, the
//! new and `copy --from` passphrases, the agent's API token, the `lifeboat serve` client's
//! token `LIFEBOAT_SERVER_TOKEN`), and `LIFEBOAT_REPO` when it
//! has a query string (storage options, which may hold credentials). Everything else is
//! passed on, including `DATABASE_URL` and the standard `AWS_*` variables: the user's
//! command may need its own database and storage credentials, and they came from the
//! user. `--pass-env NAME` passes one of Lifeboat's variables on all the same.

use std::ffi::{OsStr, OsString};
use std::process::Command;
use std::sync::OnceLock;

static PASSED: OnceLock<Vec<String>> = OnceLock::new();

/// Lets the user's commands see the variables `names` (`--pass-env`) after all. Set once,
/// when the command line is read; later calls change nothing.
pub fn pass_through(names: &[String]) {
    let _ = PASSED.set(names.to_vec());
}

/// Whether `name` (with `value`) is one of Lifeboat's own secrets (see the module docs).
pub fn is_lifeboat_secret(name: &OsStr, value: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let Some(rest) = name.strip_prefix("LIFEBOAT_") else {
        return false;
    };
    ["PASSWORD", "TOKEN", "SECRET", "KEY"]
        .iter()
        .any(|word| rest.contains(word))
        || (rest == "REPO" && value.to_string_lossy().contains('?'))
}

/// The variables of this process that a user's command must not inherit.
pub fn withheld() -> Vec<OsString> {
    let passed = PASSED.get().map(Vec::as_slice).unwrap_or_default();
    std::env::vars_os()
        .filter(|(name, value)| is_lifeboat_secret(name, value))
        .filter(|(name, _)| !passed.iter().any(|p| OsStr::new(p) == name))
        .map(|(name, _)| name)
        .collect()
}

/// `Command::new(program)` with Lifeboat's secrets taken out of its environment: the one
/// way Lifeboat starts a command the user gave it.
pub fn user_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for name in withheld() {
        command.env_remove(name);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifeboat_secrets_by_name() {
        let secret = |name: &str, value: &str| is_lifeboat_secret(name.as_ref(), value.as_ref());
        for name in [
            "LIFEBOAT_PASSWORD",
            "LIFEBOAT_PASSWORD_FILE",
            "LIFEBOAT_NEW_PASSWORD",
            "LIFEBOAT_FROM_PASSWORD_FILE",
            "LIFEBOAT_AGENT_TOKEN",
            "LIFEBOAT_SERVER_TOKEN",
        ] {
            assert!(secret(name, "x"), "{name}");
        }
        for name in [
            "DATABASE_URL",
            "AWS_SECRET_ACCESS_KEY",
            "LIFEBOAT_CACHE_DIR",
            "PASSWORD",
        ] {
            assert!(!secret(name, "x"), "{name}");
        }
        assert!(!secret("LIFEBOAT_REPO", "s3://bucket/prefix"));
        assert!(secret(
            "LIFEBOAT_REPO",
            "s3://bucket/prefix?secret_access_key=x"
        ));
    }
}
