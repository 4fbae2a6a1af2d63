//! PostgreSQL: logical dumps with `pg_dump` ([`logical`]); physical base backups with
//! `pg_basebackup`, WAL archiving and point-in-time recovery ([`physical`], [`wal`],
//! [`recovery`]). Every SQL statement goes through `psql`, the client the user already
//! has, with the password in `PGPASSWORD` only.

pub mod archive_end;
pub mod logical;
pub mod physical;
pub mod recovery;
pub mod rows;
pub mod wal;

use std::path::PathBuf;
use std::process::Command;

use crate::database_url::DatabaseUrl;
use crate::tool::{self, Tool};
use crate::{Result, SourceError};

/// Finds the PostgreSQL client tool `name` of major version `min_major` or newer:
/// `LIFEBOAT_PG_BIN` if set, else `PATH`, else the versioned directories distributions
/// install side by side (`/usr/lib/postgresql/N/bin`, `/usr/pgsql-N/bin`, Homebrew).
pub fn find_tool(name: &str, min_major: u32) -> Result<Tool> {
    // Probing runs each candidate; stop at the first that will do.
    let mut newest: Option<u32> = None;
    for tool in candidates(name).iter().filter_map(|p| tool::probe(p)) {
        if tool.major >= min_major {
            return Ok(tool);
        }
        newest = newest.max(Some(tool.major));
    }
    let package = if min_major > 0 {
        format!("postgresql-client-{min_major}")
    } else {
        "postgresql-client".to_string()
    };
    let hint = format!(
        "install {name} {} or newer (Debian/Ubuntu: {package}) or set LIFEBOAT_PG_BIN to its bin directory",
        min_major.max(1)
    );
    Err(SourceError::Invalid(match newest {
        Some(newest) => format!(
            "{name} {newest} is older than the server (PostgreSQL {min_major}) and cannot dump it; {hint}"
        ),
        None => format!("{name} not found; {hint}"),
    }))
}

fn candidates(name: &str) -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("LIFEBOAT_PG_BIN") {
        return vec![PathBuf::from(dir).join(name)];
    }
    let mut found = tool::in_path(name);
    let mut versioned: Vec<(u32, PathBuf)> = Vec::new();
    for (parent, prefix, bin) in [
        ("/usr/lib/postgresql", "", "bin"),
        ("/usr", "pgsql-", "bin"),
        ("/opt/homebrew/opt", "postgresql@", "bin"),
        ("/usr/local/opt", "postgresql@", "bin"),
    ] {
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(version) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|v| v.parse::<u32>().ok())
            else {
                continue;
            };
            let path = entry.path().join(bin).join(name);
            if path.is_file() {
                versioned.push((version, path));
            }
        }
    }
    // Nearest version first: it matches the server best.
    versioned.sort();
    found.extend(versioned.into_iter().map(|(_, p)| p));
    found
}

/// `psql` pointed at one server.
pub struct Psql {
    tool: Tool,
    pub url: DatabaseUrl,
}

impl Psql {
    pub fn new(url: &DatabaseUrl) -> Result<Psql> {
        Ok(Psql {
            tool: find_tool("psql", 0)?,
            url: url.clone(),
        })
    }

    /// A client tool's command with the connection's secrets in its environment.
    pub fn with_password(url: &DatabaseUrl, mut command: Command) -> Command {
        command.envs(url.libpq_env());
        if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
            command.env("PGCONNECT_TIMEOUT", "10");
        }
        command
    }

    pub(crate) fn command(&self, url: &DatabaseUrl) -> Command {
        let mut command = self.tool.command();
        command
            .args([
                "-X",
                "-A",
                "-t",
                "-q",
                "--no-password",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
            ])
            .arg(url.libpq_uri());
        Psql::with_password(url, command)
    }

    /// Runs `sql` in the URL's database (or `database`) and returns the unaligned,
    /// tuples-only output.
    pub fn query(&self, database: Option<&str>, sql: &str) -> Result<String> {
        let url = match database {
            Some(db) => self.url.with_database(db),
            None => self.url.clone(),
        };
        let mut command = self.command(&url);
        command.arg("-c").arg(sql);
        let out = tool::output(command, &format!("PostgreSQL at {}", url.redacted()))?;
        Ok(out.trim().to_string())
    }

    /// Runs `script` (read from standard input, so its size is not limited by the
    /// command line and its contents never show in the process list) in `database`;
    /// with `single_transaction`, all of it or none of it. Returns the output.
    pub fn run_script(
        &self,
        database: &str,
        script: String,
        single_transaction: bool,
    ) -> Result<String> {
        let url = self.url.with_database(database);
        let command = self.script_command(database, single_transaction);
        let out = tool::output_fed(
            command,
            Some(script.into_bytes()),
            &format!("PostgreSQL at {}", url.redacted()),
        )?;
        Ok(out.trim().to_string())
    }

    /// psql reading a script from standard input into `database`, stopping at the first
    /// error; with `single_transaction`, all of it or none of it.
    pub fn script_command(&self, database: &str, single_transaction: bool) -> Command {
        let mut command = self.command(&self.url.with_database(database));
        if single_transaction {
            command.arg("--single-transaction");
        }
        command
    }

    /// The server's major version and full version string.
    pub fn server_version(&self) -> Result<(u32, String)> {
        let out = self.query(
            None,
            "SELECT current_setting('server_version_num'), version()",
        )?;
        let (num, full) = out.split_once('|').unwrap_or((out.as_str(), ""));
        let num: u32 = num
            .trim()
            .parse()
            .map_err(|_| SourceError::Invalid(format!("unexpected server version {num:?}")))?;
        let full = full.split(" on ").next().unwrap_or(full).to_string();
        Ok((num / 10000, full))
    }
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
