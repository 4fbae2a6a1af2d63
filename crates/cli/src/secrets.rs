//! Passphrases: from a file, the environment or a prompt, never from the command line
//! (where `ps` would show them).

use std::path::Path;

use anyhow::{bail, Context, Result};

fn read_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the passphrase file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        bail!("the passphrase file {} is empty", path.display());
    }
    Ok(line)
}

fn prompt(label: &str, confirm: bool) -> Result<String> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("no passphrase: set LIFEBOAT_PASSWORD or LIFEBOAT_PASSWORD_FILE (stdin is not a terminal)");
    }
    let first =
        rpassword::prompt_password(format!("{label}: ")).context("reading the passphrase")?;
    if first.is_empty() {
        bail!("an empty passphrase is not allowed");
    }
    if confirm {
        let second = rpassword::prompt_password(format!("{label} (again): "))
            .context("reading the passphrase")?;
        if first != second {
            bail!("the passphrases do not match");
        }
    }
    Ok(first)
}

/// A passphrase from a file, else the environment variable `env`, else a prompt.
fn find(file: Option<&Path>, env: &str, label: &str, confirm: bool) -> Result<String> {
    if let Some(file) = file {
        return read_file(file);
    }
    if let Ok(value) = std::env::var(env) {
        if value.is_empty() {
            bail!("{env} is set but empty");
        }
        return Ok(value);
    }
    prompt(label, confirm)
}

/// The repository passphrase: from the file, else what `command` prints (a secret
/// manager: `pass show lifeboat`, `op read ...`), else `LIFEBOAT_PASSWORD`, else a prompt.
pub fn passphrase(file: Option<&Path>, command: Option<&str>, creating: bool) -> Result<String> {
    match (file, command) {
        (None, Some(command)) => from_command(command),
        _ => find(file, "LIFEBOAT_PASSWORD", "Repository passphrase", creating),
    }
}

/// The first line `command` prints. Neither its output nor its text (which may hold a
/// secret) is ever shown, even when it fails.
fn from_command(command: &str) -> Result<String> {
    let out = lifeboat_sources::child_env::user_command("sh")
        .args(["-c", command])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run the password command (--password-command)")?;
    if !out.status.success() {
        bail!(
            "the password command (--password-command) failed ({})",
            out.status
        );
    }
    let text = String::from_utf8(out.stdout)
        .context("the password command (--password-command) printed no text")?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        bail!("the password command (--password-command) printed an empty line");
    }
    Ok(line)
}

/// A new passphrase for `key add` / `key passwd`.
pub fn new_passphrase(file: Option<&Path>) -> Result<String> {
    find(file, "LIFEBOAT_NEW_PASSWORD", "New passphrase", true)
}
