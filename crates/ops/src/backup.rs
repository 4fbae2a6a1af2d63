//! The backup use case: files and directories (SQLite databases among them read from one
//! committed state), the databases of one PostgreSQL or MySQL/MariaDB server as a
//! consistent dump, or a command's output, saved as one snapshot. The front ends say what
//! to read and how to show progress; this module decides the parent, the snapshot's time
//! and whether anything is saved at all.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use lifeboat_repo::session::WriteSession;
use lifeboat_repo::snapshot::{
    SnapshotDraft, SnapshotSource, SnapshotSummary, SnapshotWarning, StoredSnapshot,
};
use lifeboat_repo::{Id, Repository};
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::files::select::Selection;
use lifeboat_sources::sqlite::page_cache::PageCache;
use lifeboat_sources::{command, dump, files};

use crate::meters::Meters;
use serde::{Deserialize, Serialize};

use crate::report::BackupReport;

/// What one snapshot holds.
#[derive(Debug, Clone)]
pub enum Contents {
    /// Absolute paths of files and directories.
    Files(Vec<PathBuf>),
    /// Databases on one server, dumped from one consistent state.
    Databases(Vec<DatabaseUrl>),
    /// A shell command's standard output, stored as the file `name`.
    Command { command: String, name: String },
}

impl Contents {
    /// What `given` names, as a user writes it: paths (relative to `cwd`), SQLite URLs
    /// (`sqlite:./app.db`, Prisma's `file:./dev.db`) or `postgres://`/`mysql://` URLs,
    /// which may not be mixed with paths.
    pub fn of(given: &[PathBuf], cwd: &Path) -> Result<Contents> {
        let databases = database_urls(given)?;
        if !databases.is_empty() {
            return Ok(Contents::Databases(databases));
        }
        Ok(Contents::Files(absolute_paths(given, cwd)?))
    }
}

/// A backup to take.
pub struct BackupRequest {
    pub contents: Contents,
    pub tags: Vec<String>,
    pub pinned: bool,
    /// Read every file again rather than trusting an unchanged size, time and inode.
    pub without_parent: bool,
    /// Save nothing when the newest snapshot of the same paths, tags and host holds the
    /// same tree.
    pub skip_if_unchanged: bool,
    /// Read everything, write nothing.
    pub dry_run: bool,
    pub host: String,
    pub selection: Selection,
    /// This host's cache of SQLite page hashes, when there is one.
    pub page_cache: Option<PageCache>,
}

impl BackupRequest {
    /// A backup of a source of `lifeboat.toml` (its location and selection), tagged
    /// `tags`, as the agent and `backup --plan` take it.
    pub fn of_source(
        source: &lifeboat_config::Source,
        tags: Vec<String>,
        page_cache: Option<PageCache>,
    ) -> Result<BackupRequest> {
        let contents = match &source.location {
            // Relative paths were resolved against the file's directory when it was read.
            lifeboat_config::SourceLocation::Url(url) => {
                Contents::of(&[PathBuf::from(url)], &std::env::current_dir()?)?
            }
            lifeboat_config::SourceLocation::Command(command) => Contents::Command {
                command: command.clone(),
                name: source.name.clone(),
            },
        };
        let select = &source.select;
        Ok(BackupRequest {
            contents,
            tags,
            pinned: false,
            without_parent: false,
            skip_if_unchanged: false,
            dry_run: false,
            host: lifeboat_repo::hostname(),
            selection: Selection::new(
                &select.exclude,
                &[],
                &select.exclude_if_present,
                select.one_file_system,
            )?,
            page_cache,
        })
    }
}

/// What a backup did, for the front end to show.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    /// The snapshot saved, or the one that already held the tree (`skipped`). For a dry
    /// run, what would have been saved, with a zero id.
    pub report: BackupReport,
    /// The paths (or redacted URLs) the snapshot records.
    pub paths: Vec<String>,
    pub dry_run: bool,
    /// Paths left out by the selection.
    pub excluded: u64,
    /// The dumped databases (a server's backup).
    pub dumped: Vec<DumpedDatabase>,
    /// A server backup whose roles and other server-wide objects could not be read.
    pub globals_missing: bool,
    /// The SQLite databases found among files.
    pub sqlite: SqliteRead,
}

#[derive(Debug, Clone)]
pub struct DumpedDatabase {
    pub engine: String,
    pub name: String,
    pub tables: usize,
    pub rows: u64,
}

#[derive(Debug, Clone, Default)]
pub struct SqliteRead {
    pub databases: u64,
    pub pages: u64,
    pub changed_pages: u64,
    /// Some database was read as only its changed pages since the parent.
    pub incremental: bool,
}

/// `lifeboat backup --dry-run --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunReport {
    pub dry_run: bool,
    pub paths: Vec<String>,
    pub summary: SnapshotSummary,
    pub excluded: u64,
    pub warnings: Vec<SnapshotWarning>,
}

impl BackupOutcome {
    pub fn dry_run_report(&self) -> DryRunReport {
        DryRunReport {
            dry_run: true,
            paths: self.paths.clone(),
            summary: self.report.summary.clone(),
            excluded: self.excluded,
            warnings: self.report.warnings.clone(),
        }
    }
}

/// The tree a backup read, before it is saved.
struct Read {
    source: SnapshotSource,
    paths: Vec<String>,
    tree: Id,
    summary: SnapshotSummary,
    parent: Option<Id>,
    time: chrono::DateTime<chrono::Utc>,
    warnings: Vec<SnapshotWarning>,
    excluded: u64,
    dumped: Vec<DumpedDatabase>,
    globals_missing: bool,
    sqlite: SqliteRead,
}

/// Takes the backup `request` describes into `repo`.
pub fn run(
    repo: &Repository,
    request: &BackupRequest,
    meters: &dyn Meters,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let session = if request.dry_run {
        WriteSession::dry_run(repo)?
    } else {
        WriteSession::start(repo, "backup")?
    };
    let read = read(repo, &session, request, meters)?;
    if request.skip_if_unchanged {
        if let Some(same) =
            unchanged_snapshot(repo, &read.paths, &request.tags, &request.host, read.tree)?
        {
            // Every blob of the tree is stored already: nothing new to index.
            session.finish()?;
            return Ok(BackupOutcome {
                report: BackupReport {
                    id: same,
                    short_id: same.short(),
                    time: read.time,
                    skipped: true,
                    summary: read.summary,
                    recovered_packs: 0,
                    warnings: Vec::new(),
                    rollback: rollback_command(repo, &same, &request.contents, &read.paths),
                },
                paths: read.paths,
                dry_run: false,
                excluded: read.excluded,
                dumped: read.dumped,
                globals_missing: read.globals_missing,
                sqlite: read.sqlite,
            });
        }
    }
    let finished = session.finish()?;
    let stats = finished.stats;
    let draft = SnapshotDraft {
        time: read.time,
        host: Some(request.host.clone()),
        paths: read.paths,
        tags: request.tags.clone(),
        pinned: request.pinned,
        source: read.source,
        tree: read.tree,
        parent: read.parent,
        summary: read.summary,
        warnings: read.warnings,
        started,
    };
    let contents = &request.contents;
    let (id, snapshot, rollback) = if request.dry_run {
        (Id([0; 32]), draft.complete(&stats), None)
    } else {
        let (id, snapshot) = finished.save(draft)?;
        let rollback = rollback_command(repo, &id, contents, &snapshot.paths);
        (id, snapshot, rollback)
    };
    Ok(BackupOutcome {
        report: BackupReport {
            id,
            short_id: id.short(),
            time: snapshot.time,
            skipped: false,
            summary: snapshot.summary,
            recovered_packs: stats.recovered_packs,
            warnings: snapshot.warnings,
            rollback,
        },
        paths: snapshot.paths,
        dry_run: request.dry_run,
        excluded: read.excluded,
        dumped: read.dumped,
        globals_missing: read.globals_missing,
        sqlite: read.sqlite,
    })
}

fn read(
    repo: &Repository,
    session: &WriteSession,
    request: &BackupRequest,
    meters: &dyn Meters,
) -> Result<Read> {
    let time = chrono::Utc::now();
    match &request.contents {
        Contents::Command { command, name } => {
            let (tree, size) = {
                let meter = meters.start("backing up", None);
                command::backup_command(session, command, name, meter.as_ref())?
            };
            let summary = SnapshotSummary {
                files: 1,
                total_bytes: size,
                ..Default::default()
            };
            let source = SnapshotSource::Command {
                command: command.clone(),
                name: name.clone(),
            };
            Ok(nothing_more(
                source,
                vec![format!("command:{name}")],
                tree,
                summary,
                time,
            ))
        }
        Contents::Databases(urls) => {
            let dumped = {
                let meter = meters.start("dumping", None);
                dump::backup(session, urls, meter.as_ref())?
            };
            let summary = SnapshotSummary {
                files: dumped.dump.databases.len() as u64 + dumped.dump.globals.is_some() as u64,
                total_bytes: dumped.bytes,
                ..Default::default()
            };
            let shown = urls.iter().map(|d| d.redacted()).collect();
            let databases = dumped
                .dump
                .databases
                .iter()
                .map(|db| DumpedDatabase {
                    engine: dumped.dump.engine.name().to_string(),
                    name: db.name.clone(),
                    tables: db.tables.len(),
                    rows: db.tables.iter().map(|t| t.rows).sum(),
                })
                .collect();
            let globals_missing = dumped.dump.globals.is_none();
            // A dump shows the database as it was when its snapshot was taken, which is
            // what `--at` times are compared with.
            let consistent_at = dumped.consistent_at.unwrap_or(time);
            Ok(Read {
                dumped: databases,
                globals_missing,
                ..nothing_more(
                    SnapshotSource::Database(dumped.dump),
                    shown,
                    dumped.root,
                    summary,
                    consistent_at,
                )
            })
        }
        Contents::Files(paths) => {
            let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let parent = if request.without_parent {
                None
            } else {
                newest_of_paths(repo, &shown, None, &request.host)?.map(|s| (s.id, s.snapshot.tree))
            };
            let total = meters
                .shown()
                .then(|| paths.iter().map(|p| disk_usage(p)).sum());
            let parent_ref = parent.map(|(_, root)| files::Parent {
                repo,
                index: session.index(),
                root,
            });
            // A dry run leaves this host's page cache as it was, too.
            let page_cache = request.page_cache.as_ref().filter(|_| !request.dry_run);
            let (tree, found) = {
                let meter = meters.start("backing up", total);
                files::backup_paths(
                    session,
                    paths,
                    parent_ref.as_ref(),
                    page_cache,
                    &request.selection,
                    meter.as_ref(),
                )?
            };
            let summary = SnapshotSummary {
                files: found.files,
                dirs: found.dirs,
                total_bytes: found.total_bytes,
                database_pages: found.database_pages,
                changed_pages: found.changed_pages,
                ..Default::default()
            };
            Ok(Read {
                parent: parent.map(|p| p.0),
                warnings: found.warnings,
                excluded: found.excluded,
                sqlite: SqliteRead {
                    databases: found.databases,
                    pages: found.database_pages,
                    changed_pages: found.changed_pages,
                    incremental: found.incremental_databases > 0,
                },
                ..nothing_more(SnapshotSource::Files, shown, tree, summary, time)
            })
        }
    }
}

/// The command that restores snapshot `id` of `contents` over the live data: a database
/// into itself, files into the directory they came from (a files snapshot restores each
/// path as `<target>/<its name>`).
fn rollback_command(
    repo: &Repository,
    id: &Id,
    contents: &Contents,
    paths: &[String],
) -> Option<String> {
    let quote = crate::shell_word;
    let lifeboat = format!("lifeboat --repo {}", quote(repo.location()));
    let id = id.short();
    match contents {
        Contents::Databases(urls) => match &urls[..] {
            [url] => Some(format!(
                "{lifeboat} restore {id} --into {} --force",
                quote(&url.redacted())
            )),
            _ => None,
        },
        Contents::Files(_) => {
            let parents: Vec<String> = paths
                .iter()
                .map(|p| {
                    Path::new(p)
                        .parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or("/".into())
                })
                .collect();
            let parent = parents.first()?;
            parents
                .iter()
                .all(|p| p == parent)
                .then(|| format!("{lifeboat} restore {id} --target {} --force", quote(parent)))
        }
        Contents::Command { .. } => None,
    }
}

/// A tree read with nothing more to say about it than where from.
fn nothing_more(
    source: SnapshotSource,
    paths: Vec<String>,
    tree: Id,
    summary: SnapshotSummary,
    time: chrono::DateTime<chrono::Utc>,
) -> Read {
    Read {
        source,
        paths,
        tree,
        summary,
        parent: None,
        time,
        warnings: Vec::new(),
        excluded: 0,
        dumped: Vec::new(),
        globals_missing: false,
        sqlite: SqliteRead::default(),
    }
}

/// The `postgres://` and `mysql://` URLs among the paths: all of them, or none.
fn database_urls(paths: &[PathBuf]) -> Result<Vec<DatabaseUrl>> {
    let mut urls = Vec::new();
    for path in paths {
        if let Some(url) = path.to_str().and_then(DatabaseUrl::parse) {
            urls.push(url?);
        }
    }
    anyhow::ensure!(
        urls.is_empty() || urls.len() == paths.len(),
        "back up databases and files in separate snapshots"
    );
    Ok(urls)
}

fn absolute_paths(paths: &[PathBuf], cwd: &Path) -> Result<Vec<PathBuf>> {
    paths
        .iter()
        .map(|p| {
            // `sqlite:./app.db` and `file:./dev.db`, as DATABASE_URL is written for
            // Prisma and Drizzle, name a database file.
            let p = match p.to_str().and_then(lifeboat_sources::sqlite::path_from_url) {
                Some(db) => {
                    anyhow::ensure!(
                        lifeboat_sources::sqlite::is_sqlite(&db),
                        "{}: not a SQLite database (from {})",
                        db.display(),
                        p.display()
                    );
                    db
                }
                None => p.clone(),
            };
            let absolute = if p.is_absolute() { p } else { cwd.join(&p) };
            // Normalise `.` and trailing slashes; keep symlinks as given.
            Ok(absolute.components().collect())
        })
        .collect()
}

/// The newest snapshot of `paths` with `tags` from `host`, if its tree is `tree`.
fn unchanged_snapshot(
    repo: &Repository,
    paths: &[String],
    tags: &[String],
    host: &str,
    tree: Id,
) -> Result<Option<Id>> {
    Ok(newest_of_paths(repo, paths, Some(tags), host)?
        .filter(|s| s.snapshot.tree == tree)
        .map(|s| s.id))
}

/// The newest files snapshot of exactly `paths` (and `tags`, if given) from `host`: its
/// unchanged files are reused by the next backup.
fn newest_of_paths(
    repo: &Repository,
    paths: &[String],
    tags: Option<&[String]>,
    host: &str,
) -> Result<Option<StoredSnapshot>> {
    Ok(repo.list_snapshots()?.into_iter().rev().find(|s| {
        s.snapshot.host == host
            && s.snapshot.paths == paths
            && tags.is_none_or(|tags| s.snapshot.tags == tags)
            && s.snapshot.source == SnapshotSource::Files
    }))
}

/// The bytes under `path`, for a progress bar's total.
fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| disk_usage(&e.path())).sum())
            .unwrap_or(0)
    } else if meta.is_file() {
        meta.len()
    } else {
        0
    }
}
