//! Restoring one snapshot, chosen by id or filter: files into a directory, a command's
//! output into a file or a command, a dumped database into a new database (its row
//! counts checked against the dump) or a command. Restoring over what is there takes
//! `force`: restoring over live data by mistake is how a recovery becomes a second
//! disaster.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Result};
use lifeboat_repo::snapshot::{Engine, SnapshotSource, StoredSnapshot};
use lifeboat_repo::tree::escape_path;
use lifeboat_repo::{Id, Repository};
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::restore::{restore_tree, RestoreOptions};
use lifeboat_sources::{command, dump};
use serde::{Deserialize, Serialize};

use crate::meters::Meters;
use crate::restore::file_target;

/// Where a snapshot goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A directory (files, a base backup, the dump files themselves) or, for a command's
    /// output, a file.
    Path(PathBuf),
    /// A shell command reading the command's output or one database's dump on stdin.
    Command(String),
    /// A new database on a server of the dump's engine (`postgres://`, `mysql://`).
    Database(String),
}

pub struct SnapshotRestore<'a> {
    pub snapshot: &'a StoredSnapshot,
    pub destination: Destination,
    /// The database of a dump with several.
    pub database: Option<&'a str>,
    /// Only these paths of a files snapshot, and what lies below them.
    pub include: Vec<PathBuf>,
    /// Restore over what is there.
    pub force: bool,
}

/// `lifeboat restore SNAPSHOT --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRestoreReport {
    pub snapshot: Id,
    pub bytes: u64,
    pub seconds: f64,
    /// What was restored where, in words.
    pub restored: String,
}

pub fn restore(
    repo: &Repository,
    request: &SnapshotRestore,
    meters: &dyn Meters,
) -> Result<SnapshotRestoreReport> {
    let started = Instant::now();
    let snapshot = request.snapshot;
    let index = repo.load_index()?;
    let meter = meters.start("restoring", Some(snapshot.snapshot.summary.total_bytes));
    let progress = meter.as_ref();
    let tree = &snapshot.snapshot.tree;
    let chosen_database = |dump| dump::find_database(repo, &index, tree, dump, request.database);
    let (restored, bytes) = match (&snapshot.snapshot.source, &request.destination) {
        (SnapshotSource::Command { .. }, Destination::Command(cmd)) => {
            let node = command::stream_node(repo, &index, tree)?;
            command::restore_to_command(repo, &index, &node, cmd, progress)?;
            (format!("into {cmd:?}"), node.size)
        }
        (SnapshotSource::Command { .. }, Destination::Path(target)) => {
            let node = command::stream_node(repo, &index, tree)?;
            let file = file_target(target, &node.name, request.force)?;
            command::restore_to_file(repo, &index, &node, &file, progress)?;
            (format!("to {}", escape_path(&file)), node.size)
        }
        (SnapshotSource::Database(dump), Destination::Database(into)) => {
            let target = match DatabaseUrl::parse(into) {
                Some(url) => url?,
                None => bail!("--into needs a postgres:// or mysql:// URL naming the new database"),
            };
            ensure!(
                target.engine == dump.engine,
                "this snapshot holds {} databases; it cannot be restored into {}",
                dump.engine.name(),
                target.engine.name()
            );
            let (dumped, node) = chosen_database(dump)?;
            let restore = match dump.engine {
                Engine::Postgres => lifeboat_sources::postgres::logical::restore,
                Engine::Mysql => lifeboat_sources::mysql::restore,
            };
            let restored = restore(
                repo,
                &index,
                &node,
                dumped,
                &target,
                request.force,
                progress,
            )?;
            (
                format!(
                    "database {} into {}{} ({} tables, {} rows, row counts match the dump)",
                    dumped.name,
                    target.redacted(),
                    if restored.replaced {
                        ", replacing what was there"
                    } else {
                        ""
                    },
                    restored.tables,
                    restored.rows
                ),
                node.size,
            )
        }
        (_, Destination::Database(_)) => {
            bail!("--into only applies to snapshots of PostgreSQL or MySQL/MariaDB databases")
        }
        (SnapshotSource::Database(dump), Destination::Command(cmd)) => {
            let (dumped, node) = chosen_database(dump)?;
            command::restore_to_command(repo, &index, &node, cmd, progress)?;
            (format!("database {} into {cmd:?}", dumped.name), node.size)
        }
        (
            SnapshotSource::Files | SnapshotSource::Database(_) | SnapshotSource::PgBase(_),
            Destination::Path(target),
        ) => {
            let occupied = std::fs::read_dir(target).is_ok_and(|mut d| d.next().is_some());
            ensure!(
                request.force || !occupied,
                "{} is not empty; restore into a new directory or add --force to restore over it",
                target.display()
            );
            let options = RestoreOptions {
                include: request.include.clone(),
            };
            let stats = restore_tree(repo, &index, *tree, target, &options, progress)?;
            let databases = match stats.databases {
                0 => String::new(),
                n => {
                    format!(", {n} SQLite database(s) passed integrity_check and foreign_key_check")
                }
            };
            (
                format!(
                    "to {} ({} files, {} dirs{databases})",
                    target.display(),
                    stats.files,
                    stats.dirs
                ),
                stats.bytes,
            )
        }
        (SnapshotSource::Files | SnapshotSource::PgBase(_), Destination::Command(_)) => {
            bail!("--to-command only applies to command and database snapshots")
        }
    };
    Ok(SnapshotRestoreReport {
        snapshot: snapshot.id,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        restored,
    })
}
