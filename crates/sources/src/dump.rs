//! Logical database dumps as a source: a dump tool's SQL output is stored as one file per
//! database (never pre-compressed, so the chunker deduplicates one day's dump against the
//! last), and rows are counted per table as the stream goes by, so a restore or a drill
//! can prove it got every row back.

use std::io::Read;
use std::process::{Command, Stdio};

use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::session::{StoredContent, WriteSession};
use lifeboat_repo::snapshot::{BinlogPosition, DatabaseDump, DumpedDatabase, Engine, TableRows};
use lifeboat_repo::tree::{Node, Tree};
use lifeboat_repo::{Id, Repository};

use crate::database_url::DatabaseUrl;
use crate::tool::{reason, Stderr};
use crate::{mysql, postgres, NoProgress, Progress, Result, SourceError};

/// What a logical backup stored: the root tree and what the snapshot records of it.
pub struct Dumped {
    pub root: Id,
    pub dump: DatabaseDump,
    pub bytes: u64,
    /// When the state the dump shows was current (the server's clock when its snapshot
    /// was taken), when the engine can tell; the snapshot's time then.
    pub consistent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Dumps every database named by `urls` (all on one server) into one snapshot tree.
pub fn backup(
    session: &WriteSession,
    urls: &[DatabaseUrl],
    progress: &dyn Progress,
) -> Result<Dumped> {
    let first = urls
        .first()
        .ok_or_else(|| SourceError::Invalid("no database given".into()))?;
    for url in urls {
        if url.engine != first.engine || url.server() != first.server() {
            return Err(SourceError::Invalid(format!(
                "{} and {} are different servers; back them up in separate snapshots",
                first.server(),
                url.server()
            )));
        }
        if url.database().is_none() {
            return Err(SourceError::Invalid(format!(
                "{}: name the database in the URL (…/dbname)",
                url.redacted()
            )));
        }
    }
    match first.engine {
        Engine::Postgres => postgres::logical::backup(session, urls, progress),
        Engine::Mysql => mysql::backup(session, urls, progress),
    }
}

/// The file in a dump's snapshot tree that holds the server's roles or users.
pub const GLOBALS_FILE: &str = "globals.sql";
const GLOBALS_FILE_BESIDE_A_GLOBALS_DATABASE: &str = "globals";

/// One server's dumps on their way into a snapshot tree.
#[derive(Default)]
pub struct DumpTree {
    nodes: Vec<Node>,
    databases: Vec<DumpedDatabase>,
    bytes: u64,
    /// The file name the globals were stored under, when they were.
    globals: Option<&'static str>,
}

impl DumpTree {
    /// Stores database `name`'s dump, the standard output of `command`, counting its
    /// rows with `counter`.
    pub fn add_database(
        &mut self,
        session: &WriteSession,
        name: String,
        command: Command,
        what: &str,
        counter: &mut dyn RowCounter,
        progress: &dyn Progress,
    ) -> Result<()> {
        let file = file_name(&name);
        if self.nodes.iter().any(|n| n.name == file) {
            return Err(SourceError::Invalid(format!(
                "database {name} is named twice"
            )));
        }
        let stored = store_tool_output(session, command, what, counter, progress)?;
        self.bytes += stored.size;
        self.databases.push(DumpedDatabase {
            name,
            file: file.clone(),
            tables: counter.tables(),
            binlog: counter.binlog_position(),
        });
        self.nodes.push(crate::command::file_node(&file, stored));
        Ok(())
    }

    /// Stores the server's globals from `command`. A tool that fails (most often for
    /// want of privileges) does not fail the backup: its reason is returned instead.
    pub fn add_globals(
        &mut self,
        session: &WriteSession,
        command: Command,
        what: &str,
    ) -> Result<Option<String>> {
        let mut no_rows = NoRows;
        match store_tool_output(session, command, what, &mut no_rows, &NoProgress) {
            Ok(stored) => {
                // Every dump is `<database>.sql`, so a database named `globals` takes
                // `globals.sql`; the globals then go without the suffix, which no dump
                // has (the snapshot records the name, so restore finds either).
                let name = if self.nodes.iter().any(|n| n.name == GLOBALS_FILE) {
                    GLOBALS_FILE_BESIDE_A_GLOBALS_DATABASE
                } else {
                    GLOBALS_FILE
                };
                self.nodes.push(crate::command::file_node(name, stored));
                self.globals = Some(name);
                Ok(None)
            }
            Err(SourceError::Invalid(reason)) => Ok(Some(reason)),
            Err(e) => Err(e),
        }
    }

    pub fn finish(
        self,
        session: &WriteSession,
        engine: Engine,
        server: String,
        server_version: String,
        tool: String,
    ) -> Result<Dumped> {
        Ok(Dumped {
            root: store_root(session, self.nodes)?,
            dump: DatabaseDump {
                engine,
                server,
                server_version,
                tool,
                databases: self.databases,
                globals: self.globals.map(str::to_string),
            },
            bytes: self.bytes,
            consistent_at: None,
        })
    }
}

/// Globals are not counted.
struct NoRows;

impl RowCounter for NoRows {
    fn feed(&mut self, _bytes: &[u8]) {}
    fn tables(&self) -> Vec<TableRows> {
        Vec::new()
    }
}

/// The file a database's dump is stored under in the snapshot tree.
pub fn file_name(database: &str) -> String {
    let safe: String = database
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    format!("{safe}.sql")
}

/// Runs a dump tool, storing its standard output through `counter`. A tool that fails
/// fails the backup: its output may be incomplete, so no snapshot may refer to it.
pub fn store_tool_output(
    session: &WriteSession,
    mut command: Command,
    what: &str,
    counter: &mut dyn RowCounter,
    progress: &dyn Progress,
) -> Result<StoredContent> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| SourceError::Invalid(format!("{what}: cannot start: {e}")))?;
    let stderr = Stderr::capture(&mut child);
    let stdout = child.stdout.take().expect("stdout is piped");
    let stored = session.store_reader(
        Counting {
            inner: stdout,
            counter,
        },
        what,
        |n| progress.bytes(n),
    );
    if stored.is_err() {
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| SourceError::Invalid(format!("{what}: {e}")))?;
    let stderr = stderr.text();
    if !status.success() {
        return Err(SourceError::Invalid(format!(
            "{what} failed: {}; no snapshot was written",
            reason(&stderr)
        )));
    }
    Ok(stored?)
}

fn store_root(session: &WriteSession, mut nodes: Vec<Node>) -> Result<Id> {
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(session.store_tree(&Tree { nodes })?)
}

/// The dump of `database` in a snapshot, and its file node.
pub fn find_database<'a>(
    repo: &Repository,
    index: &MasterIndex,
    root: &Id,
    dump: &'a DatabaseDump,
    database: Option<&str>,
) -> Result<(&'a DumpedDatabase, Node)> {
    let chosen = match database {
        Some(name) => dump.databases.iter().find(|d| d.name == name),
        None if dump.databases.len() == 1 => dump.databases.first(),
        None => {
            let names: Vec<&str> = dump.databases.iter().map(|d| d.name.as_str()).collect();
            return Err(SourceError::Invalid(format!(
                "this snapshot holds {} databases ({}); choose one with --database",
                names.len(),
                names.join(", ")
            )));
        }
    };
    let chosen = chosen.ok_or_else(|| {
        SourceError::Invalid(format!(
            "this snapshot holds no database {:?}",
            database.unwrap_or_default()
        ))
    })?;
    let tree = repo.load_tree(index, root)?;
    let node = tree
        .nodes
        .into_iter()
        .find(|n| n.name == chosen.file)
        .ok_or_else(|| {
            SourceError::Invalid(format!("the snapshot tree has no file {}", chosen.file))
        })?;
    Ok((chosen, node))
}

/// A server a dump is restored into: what [`restore`] needs of each engine.
pub trait Server {
    /// The server as shown to people (no password).
    fn address(&self) -> String;
    fn database_exists(&self, name: &str) -> Result<bool>;
    /// Tables, views, sequences and routines in the database: anything a restore
    /// would collide with or silently mix with.
    fn objects(&self, name: &str) -> Result<u64>;
    fn create_database(&self, name: &str) -> Result<()>;
    fn drop_database(&self, name: &str) -> Result<()>;
    /// The client reading a dump on standard input into `name`, stopping at the first
    /// error.
    fn load_command(&self, name: &str) -> Command;
    /// Runs `sql` in database `name`; rows come back one a line, fields split by `|` or
    /// a tab.
    fn query_in(&self, name: &str, sql: &str) -> Result<String>;

    /// Rows of each table, in the order given.
    fn count_rows(&self, name: &str, tables: &[TableRows]) -> Result<Vec<u64>> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let sql: Vec<String> = tables
            .iter()
            .enumerate()
            .map(|(i, t)| format!("SELECT {i}, (SELECT COUNT(*) FROM {})", t.name))
            .collect();
        let out = self.query_in(name, &sql.join(" UNION ALL "))?;
        Ok(parse_counts(&out, tables.len()))
    }
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct Restored {
    pub database: String,
    pub replaced: bool,
    pub tables: usize,
    pub rows: u64,
}

/// Restores one database's dump into the database `target` names: created if missing,
/// used if empty, refused if it holds anything unless `replace` (then dropped and
/// created again). A failed load drops what it created, so nothing half-restored stays;
/// a finished one must hold exactly the rows the dump held, table by table.
#[allow(clippy::too_many_arguments)]
pub fn restore(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    dumped: &DumpedDatabase,
    target: &DatabaseUrl,
    server: &dyn Server,
    replace: bool,
    progress: &dyn Progress,
) -> Result<Restored> {
    let name = target.database().ok_or_else(|| {
        SourceError::Invalid(format!(
            "{}: name the database to restore into (…/newdb)",
            target.redacted()
        ))
    })?;
    let exists = server.database_exists(&name)?;
    let mut replaced = false;
    if exists {
        let objects = server.objects(&name)?;
        if objects > 0 {
            if !replace {
                return Err(SourceError::Invalid(format!(
                    "database {name} at {} is not empty ({objects} tables, views, sequences or routines); \
                     restore into a new database or add --force to drop and recreate it",
                    server.address()
                )));
            }
            server.drop_database(&name)?;
            replaced = true;
        }
    }
    let created = !exists || replaced;
    if created {
        server.create_database(&name)?;
    }
    if let Err(e) = load(
        repo,
        index,
        node,
        server.load_command(&name),
        &name,
        progress,
    ) {
        if created {
            let _ = server.drop_database(&name);
        }
        return Err(e);
    }
    let found = server.count_rows(&name, &dumped.tables)?;
    compare_rows(&dumped.tables, &found, &name)?;
    Ok(Restored {
        database: name,
        replaced,
        tables: dumped.tables.len(),
        rows: found.iter().sum(),
    })
}

fn load(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    mut command: Command,
    database: &str,
    progress: &dyn Progress,
) -> Result<()> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let what = format!("restore into {database}");
    let mut child = command
        .spawn()
        .map_err(|e| SourceError::Invalid(format!("{what}: cannot start the client: {e}")))?;
    let stderr = Stderr::capture(&mut child);
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = crate::command::write_stream(repo, index, node, &mut stdin, &what, progress);
    drop(stdin);
    let status = child
        .wait()
        .map_err(|e| SourceError::Invalid(format!("{what}: {e}")))?;
    if !status.success() {
        return Err(SourceError::Invalid(format!(
            "{what} failed, nothing was kept: {}",
            reason(&stderr.text())
        )));
    }
    written
}

/// Parses `i|n` (or tab-separated) lines of a row-count query into counts by index.
fn parse_counts(output: &str, tables: usize) -> Vec<u64> {
    let mut counts = vec![0; tables];
    for line in output.lines() {
        let mut parts = line.split(['|', '\t']);
        if let (Some(Ok(i)), Some(Ok(n))) = (
            parts.next().map(str::parse::<usize>),
            parts.next().map(str::parse::<u64>),
        ) {
            if i < tables {
                counts[i] = n;
            }
        }
    }
    counts
}

/// Compares the rows found after a restore with what the dump held.
pub fn compare_rows(expected: &[TableRows], found: &[u64], database: &str) -> Result<()> {
    let wrong: Vec<String> = expected
        .iter()
        .zip(found)
        .filter(|(t, n)| t.rows != **n)
        .map(|(t, n)| format!("{} has {n} rows, the dump held {}", t.name, t.rows))
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(SourceError::Invalid(format!(
            "restored database {database} does not match its dump: {}",
            wrong.join("; ")
        )))
    }
}

/// Watches a dump stream go by and counts rows per table.
pub trait RowCounter {
    fn feed(&mut self, bytes: &[u8]);
    fn tables(&self) -> Vec<TableRows>;
    /// Where the server's binary log stood at the dump's moment, when the dump says.
    fn binlog_position(&self) -> Option<BinlogPosition> {
        None
    }
}

struct Counting<'a, R> {
    inner: R,
    counter: &'a mut dyn RowCounter,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.feed(&buf[..n]);
        Ok(n)
    }
}

/// Splits a stream into lines, keeping the first `HEAD` bytes of each (enough to
/// recognise a statement) and handing every byte to `each_byte` when asked to.
pub struct Lines {
    head: Vec<u8>,
}

pub const HEAD: usize = 64 * 1024;

impl Lines {
    pub fn new() -> Lines {
        Lines { head: Vec::new() }
    }

    /// Feeds `bytes`; calls `line` with the head of every completed line.
    pub fn feed(&mut self, bytes: &[u8], mut line: impl FnMut(&[u8])) {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.push(&rest[..end]);
            line(&self.head);
            self.head.clear();
            rest = &rest[end + 1..];
        }
        self.push(rest);
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = HEAD.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

impl Default for Lines {
    fn default() -> Self {
        Lines::new()
    }
}

/// Feeds `bytes` to a fresh counter cut at `cuts`, for tests that chunk boundaries do
/// not change the counts.
#[cfg(test)]
pub fn count_in_chunks<C: RowCounter + Default>(
    bytes: &[u8],
    cuts: &[usize],
) -> Vec<(String, u64)> {
    let mut cuts = cuts.to_vec();
    cuts.sort();
    let mut counter = C::default();
    let mut start = 0;
    for cut in cuts {
        counter.feed(&bytes[start..cut]);
        start = cut;
    }
    counter.feed(&bytes[start..]);
    counter
        .tables()
        .into_iter()
        .map(|t| (t.name, t.rows))
        .collect()
}
