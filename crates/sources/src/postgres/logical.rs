//! Logical backups of PostgreSQL databases: `pg_dump` in plain format (it deduplicates;
//! custom format compresses and would not), the roles and tablespaces of
//! `pg_dumpall --globals-only` where the user may read them, and restore into a new
//! database with `psql --single-transaction`, so a failed restore leaves nothing behind.

use std::process::Command;

use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::session::WriteSession;
use lifeboat_repo::snapshot::{DumpedDatabase, Engine, TableRows};
use lifeboat_repo::tree::Node;
use lifeboat_repo::Repository;

use super::{find_tool, quote_ident, quote_literal, Psql};
use crate::database_url::DatabaseUrl;
use crate::dump::{self, DumpTree, Dumped, Lines, Restored, RowCounter, Server};
use crate::{Progress, Result};

pub fn backup(
    session: &WriteSession,
    urls: &[DatabaseUrl],
    progress: &dyn Progress,
) -> Result<Dumped> {
    let psql = Psql::new(&urls[0])?;
    let (major, server_version) = psql.server_version()?;
    let pg_dump = find_tool("pg_dump", major)?;
    let restrict_key_supported = supports_restrict_key(&pg_dump);
    let mut tree = DumpTree::default();
    let mut consistent_at = None;
    for url in urls {
        // pg_dump reads the snapshot exported here, so the moment it was taken is the
        // moment the dump shows, not when this command or pg_dump started.
        lifeboat_repo::fault::point("dump-snapshot");
        let exported = ExportedSnapshot::take(&psql, url)?;
        consistent_at = consistent_at.or(Some(exported.time));
        let mut command = Psql::with_password(url, pg_dump.command());
        command
            .args(["--format=plain", "--no-password"])
            .arg(format!("--snapshot={}", exported.id))
            .arg("-d")
            .arg(url.libpq_uri());
        if restrict_key_supported {
            command.arg(format!("--restrict-key={}", restrict_key(session, url)));
        }
        tree.add_database(
            session,
            url.database().expect("checked by dump::backup"),
            command,
            &format!("pg_dump of {}", url.redacted()),
            &mut CopyCounter::default(),
            progress,
        )?;
        exported.release()?;
    }
    backup_globals(session, &mut tree, &urls[0], major)?;
    let mut dumped = tree.finish(
        session,
        Engine::Postgres,
        urls[0].server(),
        server_version,
        pg_dump.version,
    )?;
    dumped.consistent_at = consistent_at;
    Ok(dumped)
}

/// A snapshot exported by a transaction that stays open while pg_dump imports it, and
/// the server's clock when it was taken.
struct ExportedSnapshot {
    id: String,
    time: chrono::DateTime<chrono::Utc>,
    holder: std::process::Child,
}

impl ExportedSnapshot {
    fn take(psql: &Psql, url: &DatabaseUrl) -> Result<ExportedSnapshot> {
        use std::io::{BufRead, Write};
        let what = format!("PostgreSQL at {}", url.redacted());
        let failed = |detail: String| crate::SourceError::Invalid(format!("{what}: {detail}"));
        let mut holder = psql
            .command(url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot start psql: {e}")))?;
        // The first statement takes the snapshot; clock_timestamp() is read just after.
        let script = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n\
             SELECT pg_export_snapshot() || ' ' || \
             to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"');\n";
        let stdin = holder.stdin.as_mut().expect("piped");
        let line = stdin
            .write_all(script.as_bytes())
            .and_then(|()| stdin.flush())
            .and_then(|()| {
                let mut line = String::new();
                std::io::BufReader::new(holder.stdout.as_mut().expect("piped"))
                    .read_line(&mut line)?;
                Ok(line)
            });
        let line = match line {
            Ok(line) if !line.trim().is_empty() => line,
            _ => {
                let _ = holder.kill();
                let out = holder.wait_with_output();
                let stderr = out
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                return Err(failed(format!(
                    "cannot export a snapshot for pg_dump: {}",
                    stderr
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("psql ended")
                )));
            }
        };
        let (id, time) = line
            .trim()
            .split_once(' ')
            .ok_or_else(|| failed(format!("unexpected answer {line:?}")))?;
        let time = chrono::DateTime::parse_from_rfc3339(time)
            .map_err(|e| failed(format!("unexpected time {time:?}: {e}")))?
            .with_timezone(&chrono::Utc);
        Ok(ExportedSnapshot {
            id: id.to_string(),
            time,
            holder,
        })
    }

    /// Ends the transaction once pg_dump has imported the snapshot and finished.
    fn release(mut self) -> Result<()> {
        use std::io::Write;
        if let Some(mut stdin) = self.holder.stdin.take() {
            let _ = stdin.write_all(b"COMMIT;\n");
        }
        let _ = self.holder.wait();
        Ok(())
    }
}

impl Drop for ExportedSnapshot {
    fn drop(&mut self) {
        // A failed dump: closing stdin ends psql, and the server rolls back.
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}

/// pg_dump since 13.22/14.19/15.14/16.10/17.6 writes `\restrict <random key>` at the top
/// and bottom of a plain dump, so two dumps of an unchanged database differ in their first
/// and last chunk. A key fixed per repository and database keeps them identical; it is
/// derived from the repository's secret key, so the server cannot guess it (its purpose).
fn supports_restrict_key(pg_dump: &crate::tool::Tool) -> bool {
    let mut command = pg_dump.command();
    command.arg("--help");
    crate::tool::output(command, "pg_dump --help").is_ok_and(|help| help.contains("--restrict-key"))
}

fn restrict_key(session: &WriteSession, url: &DatabaseUrl) -> String {
    let seed = format!(
        "pg_dump restrict key\0{}\0{}",
        url.server(),
        url.database().unwrap_or_default()
    );
    session.repo().keyed_id(seed.as_bytes()).to_hex()[..32].to_string()
}

/// Roles and tablespaces. Role passwords need a superuser; without one the roles are
/// still kept, without passwords; without even that, the backup goes on without them.
fn backup_globals(
    session: &WriteSession,
    tree: &mut DumpTree,
    url: &DatabaseUrl,
    major: u32,
) -> Result<()> {
    let pg_dumpall = match find_tool("pg_dumpall", major) {
        Ok(tool) => tool,
        Err(e) => {
            tracing::warn!("roles and other globals are not backed up: {e}");
            return Ok(());
        }
    };
    let mut last_error = None;
    for extra in [&[][..], &["--no-role-passwords"][..]] {
        let mut command = Psql::with_password(url, pg_dumpall.command());
        command
            .args(["--globals-only", "--no-password"])
            .args(extra)
            .arg("-d")
            .arg(url.libpq_uri());
        last_error = tree.add_globals(session, command, "pg_dumpall --globals-only")?;
        if last_error.is_none() {
            return Ok(());
        }
    }
    tracing::warn!(
        "roles and other globals are not backed up: {}",
        last_error.unwrap_or_default()
    );
    Ok(())
}

/// Restores into a PostgreSQL database with `psql --single-transaction`: a failed
/// load rolls back entirely.
pub fn restore(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    dumped: &DumpedDatabase,
    target: &DatabaseUrl,
    replace: bool,
    progress: &dyn Progress,
) -> Result<Restored> {
    let server = Psql::new(target)?;
    dump::restore(
        repo, index, node, dumped, target, &server, replace, progress,
    )
}

/// Databases are created and dropped from the maintenance database.
const MAINTENANCE: &str = "postgres";

impl Server for Psql {
    fn address(&self) -> String {
        self.url.server()
    }

    fn database_exists(&self, name: &str) -> Result<bool> {
        let sql = format!(
            "SELECT count(*) FROM pg_database WHERE datname = {}",
            quote_literal(name)
        );
        Ok(self.query(Some(MAINTENANCE), &sql)? == "1")
    }

    fn objects(&self, name: &str) -> Result<u64> {
        let sql = "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%') \
                   + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))";
        Ok(self.query(Some(name), sql)?.parse().unwrap_or(u64::MAX))
    }

    fn create_database(&self, name: &str) -> Result<()> {
        self.query(
            Some(MAINTENANCE),
            &format!("CREATE DATABASE {}", quote_ident(name)),
        )?;
        Ok(())
    }

    fn drop_database(&self, name: &str) -> Result<()> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
        self.query(Some(MAINTENANCE), &sql)?;
        Ok(())
    }

    fn load_command(&self, name: &str) -> Command {
        self.script_command(name, true)
    }

    fn query_in(&self, name: &str, sql: &str) -> Result<String> {
        self.query(Some(name), sql)
    }
}

/// Counts the data lines of each `COPY ... FROM stdin;` block of a plain dump: one line
/// per row, since COPY's text format escapes newlines inside values.
#[derive(Default)]
pub struct CopyCounter {
    lines: Lines,
    copying: Option<(String, u64)>,
    tables: Vec<TableRows>,
}

impl RowCounter for CopyCounter {
    fn feed(&mut self, bytes: &[u8]) {
        let CopyCounter {
            lines,
            copying,
            tables,
        } = self;
        lines.feed(bytes, |line| match copying {
            Some((name, rows)) => {
                if line == b"\\." {
                    tables.push(TableRows {
                        name: std::mem::take(name),
                        rows: *rows,
                    });
                    *copying = None;
                } else {
                    *rows += 1;
                }
            }
            None => {
                if let Some(rest) = line.strip_prefix(b"COPY ") {
                    if line.ends_with(b" FROM stdin;") {
                        *copying = Some((qualified_name(rest), 0));
                    }
                }
            }
        });
    }

    fn tables(&self) -> Vec<TableRows> {
        self.tables.clone()
    }
}

/// The table name at the start of `text`, as written (quoted parts kept quoted).
fn qualified_name(text: &[u8]) -> String {
    let mut quoted = false;
    let end = text
        .iter()
        .position(|&b| {
            if b == b'"' {
                quoted = !quoted;
            }
            b == b' ' && !quoted
        })
        .unwrap_or(text.len());
    String::from_utf8_lossy(&text[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::count_in_chunks;
    use proptest::prelude::*;

    const DUMP: &str = "--\n-- PostgreSQL database dump\n--\n\
        COPY public.customers (id, name) FROM stdin;\n1\tAda\n2\tGrace\\nHopper\n3\t\\\\.\n\\.\n\
        COPY public.\"Order Items\" (id) FROM stdin;\n\\.\n\
        COPY public.orders (id, customer_id) FROM stdin;\n10\t1\n\\.\n\
        SELECT pg_catalog.setval('public.customers_id_seq', 3, true);\n";

    #[test]
    fn counts_copy_rows_per_table() {
        assert_eq!(
            count_in_chunks::<CopyCounter>(DUMP.as_bytes(), &[]),
            vec![
                ("public.customers".to_string(), 3),
                ("public.\"Order Items\"".to_string(), 0),
                ("public.orders".to_string(), 1),
            ]
        );
    }

    proptest! {
        #[test]
        fn chunk_boundaries_do_not_matter(cuts in proptest::collection::vec(0..DUMP.len(), 0..8)) {
            let bytes = DUMP.as_bytes();
            prop_assert_eq!(count_in_chunks::<CopyCounter>(bytes, &cuts), count_in_chunks::<CopyCounter>(bytes, &[]));
        }
    }
}
