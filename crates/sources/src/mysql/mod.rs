//! Logical backups of MySQL and MariaDB databases: `mariadb-dump` (or `mysqldump`) with
//! `--single-transaction`, so InnoDB tables come from one consistent state without
//! locking the app out, plus routines, triggers and events; restore with the `mariadb`
//! (or `mysql`) client. The password goes to the tools in a private option file, never
//! on their command line.

use std::io::Write;
use std::process::Command;

use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::session::WriteSession;
use lifeboat_repo::snapshot::{BinlogPosition, DumpedDatabase, Engine, TableRows};
use lifeboat_repo::tree::Node;
use lifeboat_repo::Repository;
use tempfile::NamedTempFile;

use crate::database_url::DatabaseUrl;
use crate::dump::{self, DumpTree, Dumped, Restored, RowCounter, Server};
use crate::tool::{self, Tool};
use crate::{Progress, Result, SourceError};

pub mod binlog_stream;
pub mod events;
pub mod pitr;

/// The first of `names` found in `PATH`.
fn find_tool(names: &[&str]) -> Result<Tool> {
    names
        .iter()
        .flat_map(|n| tool::in_path(n))
        .find_map(|p| tool::probe(&p))
        .ok_or_else(|| {
            SourceError::Invalid(format!(
                "{} not found; install the MariaDB or MySQL client (Debian/Ubuntu: mariadb-client)",
                names.join(" or ")
            ))
        })
}

/// Connection settings shared by the client and the dump tool.
struct Connection {
    url: DatabaseUrl,
    /// Holds the password; deleted when the connection is dropped.
    options: Option<NamedTempFile>,
}

impl Connection {
    fn new(url: &DatabaseUrl) -> Result<Connection> {
        let options = match url.password() {
            Some(password) => {
                let mut file = tempfile::Builder::new()
                    .prefix("lifeboat-mysql-")
                    .tempfile()
                    .map_err(|e| SourceError::io(std::env::temp_dir(), e))?;
                let escaped = password.replace('\\', "\\\\").replace('"', "\\\"");
                writeln!(file, "[client]\npassword=\"{escaped}\"")
                    .map_err(|e| SourceError::io(file.path(), e))?;
                Some(file)
            }
            None => None,
        };
        Ok(Connection {
            url: url.clone(),
            options,
        })
    }

    fn command(&self, tool: &Tool) -> Command {
        let mut command = tool.command();
        // The option file must come first, or the tools ignore it.
        match &self.options {
            Some(file) => command.arg(format!("--defaults-extra-file={}", file.path().display())),
            None => command.arg("--no-defaults"),
        };
        if let Some(host) = self.url.host() {
            command.arg(format!("--host={host}"));
        }
        if let Some(port) = self.url.port() {
            command.arg(format!("--port={port}"));
        }
        if let Some(user) = self.url.user() {
            command.arg(format!("--user={user}"));
        }
        command
    }
}

/// The `mariadb` (or `mysql`) client pointed at one server.
pub struct Client {
    connection: Connection,
    mariadb: Tool,
}

impl Client {
    pub fn new(url: &DatabaseUrl) -> Result<Client> {
        Ok(Client {
            connection: Connection::new(url)?,
            mariadb: find_tool(&["mariadb", "mysql"])?,
        })
    }

    pub fn query(&self, database: Option<&str>, sql: &str) -> Result<String> {
        let mut command = self.connection.command(&self.mariadb);
        command.args([
            "--connect-timeout=10",
            "--batch",
            "--skip-column-names",
            "-e",
            sql,
        ]);
        if let Some(db) = database {
            command.arg(db);
        }
        let what = format!("MySQL at {}", self.connection.url.server());
        Ok(tool::output(command, &what)?.trim().to_string())
    }
}

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

pub fn backup(
    session: &WriteSession,
    urls: &[DatabaseUrl],
    progress: &dyn Progress,
) -> Result<Dumped> {
    let client = Client::new(&urls[0])?;
    let server_version = client.query(None, "SELECT VERSION()")?;
    // With a binary log, each dump records its position in it: where point-in-time
    // recovery starts replaying.
    let log_bin = client.query(None, "SELECT @@log_bin")? == "1";
    let dumper = find_tool(&["mariadb-dump", "mysqldump"])?;
    let mut tree = DumpTree::default();
    for url in urls {
        let name = url.database().expect("checked by dump::backup");
        let mut command = client.connection.command(&dumper);
        command.args([
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--skip-dump-date",
            "--default-character-set=utf8mb4",
        ]);
        if log_bin {
            command.args(binlog_position_args(&server_version));
        }
        command.arg("--").arg(&name);
        tree.add_database(
            session,
            name,
            command,
            &format!("{} of {}", tool_name(&dumper), url.redacted()),
            &mut InsertCounter::default(),
            progress,
        )?;
    }
    // Users and grants (MariaDB's --system=users); MySQL's mysqldump has no such option.
    let mut command = client.connection.command(&dumper);
    command.arg("--system=users");
    if let Some(reason) = tree.add_globals(session, command, "users and grants")? {
        tracing::warn!("users and grants are not backed up: {reason}");
    }
    tree.finish(
        session,
        Engine::Mysql,
        urls[0].server(),
        server_version,
        dumper.version,
    )
}

/// The options that make the dump tool write the binary log position: MariaDB's
/// `--master-data` (with `--gtid`), MySQL 8's `--source-data`.
fn binlog_position_args(server_version: &str) -> Vec<&'static str> {
    if server_version.contains("MariaDB") {
        vec!["--master-data=2", "--gtid"]
    } else {
        vec!["--source-data=2"]
    }
}

fn tool_name(tool: &Tool) -> String {
    tool.path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Restores into a MySQL/MariaDB database with the `mariadb` client. MySQL cannot roll
/// DDL back, so a failed load is undone by dropping the database it created.
pub fn restore(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    dumped: &DumpedDatabase,
    target: &DatabaseUrl,
    replace: bool,
    progress: &dyn Progress,
) -> Result<Restored> {
    let client = Client::new(target)?;
    dump::restore(
        repo, index, node, dumped, target, &client, replace, progress,
    )
}

impl Server for Client {
    fn address(&self) -> String {
        self.connection.url.server()
    }

    fn database_exists(&self, name: &str) -> Result<bool> {
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = {}",
            quote_literal(name)
        );
        Ok(self.query(None, &sql)? == "1")
    }

    fn objects(&self, name: &str) -> Result<u64> {
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {0}) + \
             (SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = {0})",
            quote_literal(name)
        );
        Ok(self.query(None, &sql)?.parse().unwrap_or(u64::MAX))
    }

    fn create_database(&self, name: &str) -> Result<()> {
        self.query(None, &format!("CREATE DATABASE {}", quote_ident(name)))?;
        Ok(())
    }

    fn drop_database(&self, name: &str) -> Result<()> {
        self.query(
            None,
            &format!("DROP DATABASE IF EXISTS {}", quote_ident(name)),
        )?;
        Ok(())
    }

    fn load_command(&self, name: &str) -> Command {
        let mut command = self.connection.command(&self.mariadb);
        command.arg("--batch").arg("--").arg(name);
        command
    }

    fn query_in(&self, name: &str, sql: &str) -> Result<String> {
        self.query(Some(name), sql)
    }
}

/// Counts the row tuples of each `INSERT INTO `t` VALUES (...),(...);` statement, with
/// rows on one line or (newer MariaDB) one per line, and lists tables that have a
/// `CREATE TABLE` but no rows.
#[derive(Default)]
pub struct InsertCounter {
    head: Vec<u8>,
    state: InsertState,
    tables: Vec<TableRows>,
    binlog: Option<BinlogPosition>,
}

#[derive(Default)]
enum InsertState {
    #[default]
    Head,
    Values {
        table: usize,
        depth: u32,
        quote: Option<u8>,
        escaped: bool,
    },
    SkipLine,
}

const INSERT: &[u8] = b"INSERT INTO ";
const CREATE: &[u8] = b"CREATE TABLE ";
/// What `--master-data=2` (MariaDB) or `--source-data=2` (MySQL 8) writes near the top
/// of a dump: the binary log position of its consistent moment.
const BINLOG_FILE: [&[u8]; 2] = [
    b"-- CHANGE MASTER TO MASTER_LOG_FILE=",
    b"-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE=",
];
/// And, with MariaDB's `--gtid`, near the end: the GTID position there.
const GTID_POSITION: &[u8] = b"-- SET GLOBAL gtid_slave_pos=";

/// The file and position of a `CHANGE MASTER TO` comment line.
fn binlog_position(line: &str) -> Option<BinlogPosition> {
    let file = line.split('\'').nth(1)?.to_string();
    let position = line
        .split("_LOG_POS=")
        .nth(1)?
        .trim_end_matches(';')
        .trim()
        .parse()
        .ok()?;
    Some(BinlogPosition {
        file,
        position,
        gtid: None,
    })
}

impl InsertCounter {
    fn table(&mut self, name: &[u8]) -> usize {
        let name = String::from_utf8_lossy(name).into_owned();
        match self.tables.iter().position(|t| t.name == name) {
            Some(i) => i,
            None => {
                self.tables.push(TableRows { name, rows: 0 });
                self.tables.len() - 1
            }
        }
    }

    fn head_byte(&mut self, b: u8) {
        if b == b'\n' || b == b' ' {
            if self.head.starts_with(INSERT) && self.head.ends_with(b" VALUES") {
                let name = self.head[INSERT.len()..self.head.len() - 7].to_vec();
                let table = self.table(&name);
                self.head.clear();
                self.state = InsertState::Values {
                    table,
                    depth: 0,
                    quote: None,
                    escaped: false,
                };
                return;
            }
            if b == b' ' && self.head.starts_with(CREATE) && self.head.len() > CREATE.len() {
                let name = self.head[CREATE.len()..].to_vec();
                self.table(&name);
                self.head.clear();
                self.state = InsertState::SkipLine;
                return;
            }
        }
        if b == b'\n' {
            self.binlog_line();
            self.head.clear();
            return;
        }
        self.head.push(b);
        let starts = |prefix: &[u8]| {
            prefix.starts_with(&self.head[..self.head.len().min(prefix.len())])
                || self.head.starts_with(prefix)
        };
        let could_matter = starts(INSERT)
            || starts(CREATE)
            || BINLOG_FILE.iter().any(|p| starts(p))
            || starts(GTID_POSITION);
        if !could_matter || self.head.len() > 4096 {
            self.head.clear();
            self.state = InsertState::SkipLine;
        }
    }
}

impl InsertCounter {
    fn binlog_line(&mut self) {
        let line = String::from_utf8_lossy(&self.head);
        if BINLOG_FILE.iter().any(|p| self.head.starts_with(p)) && self.binlog.is_none() {
            self.binlog = binlog_position(&line);
        } else if self.head.starts_with(GTID_POSITION) {
            if let Some(position) = &mut self.binlog {
                position.gtid = line.split('\'').nth(1).map(str::to_string);
            }
        }
    }
}

impl RowCounter for InsertCounter {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match &mut self.state {
                InsertState::Head => self.head_byte(b),
                InsertState::SkipLine => {
                    if b == b'\n' {
                        self.state = InsertState::Head;
                    }
                }
                InsertState::Values {
                    table,
                    depth,
                    quote,
                    escaped,
                } => {
                    if let Some(q) = *quote {
                        if *escaped {
                            *escaped = false;
                        } else if b == b'\\' {
                            *escaped = true;
                        } else if b == q {
                            *quote = None;
                        }
                        continue;
                    }
                    match b {
                        b'\'' | b'"' => *quote = Some(b),
                        b'(' => {
                            if *depth == 0 {
                                self.tables[*table].rows += 1;
                            }
                            *depth += 1;
                        }
                        b')' => *depth = depth.saturating_sub(1),
                        b';' if *depth == 0 => self.state = InsertState::SkipLine,
                        _ => {}
                    }
                }
            }
        }
    }

    fn tables(&self) -> Vec<TableRows> {
        self.tables.clone()
    }

    fn binlog_position(&self) -> Option<BinlogPosition> {
        self.binlog.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::count_in_chunks;
    use proptest::prelude::*;

    const DUMP: &str = "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump\n\
        DROP TABLE IF EXISTS `e`;\nCREATE TABLE `e` (\n  `id` int(11) DEFAULT NULL\n) ENGINE=InnoDB;\n\
        CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n);\nLOCK TABLES `t` WRITE;\n\
        INSERT INTO `t` VALUES\n(1,'a\\'b\\nc (x),',0x00FF),\n(2,NULL,NULL);\n\
        INSERT INTO `t` VALUES (3,'it''s;(',NULL),(4,'\\\\',NULL);\nUNLOCK TABLES;\n\
        INSERT INTO `my``odd` VALUES (1);\n";

    #[test]
    fn counts_tuples_per_table_in_both_layouts() {
        assert_eq!(
            count_in_chunks::<InsertCounter>(DUMP.as_bytes(), &[]),
            vec![
                ("`e`".to_string(), 0),
                ("`t`".to_string(), 4),
                ("`my``odd`".to_string(), 1)
            ]
        );
    }

    #[test]
    fn reads_the_binlog_position_and_gtid_of_the_dump() {
        let dump = "-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n\
            -- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000042', MASTER_LOG_POS=843;\n\
            INSERT INTO `t` VALUES (1);\n-- SET GLOBAL gtid_slave_pos='0-7-3';\n";
        for cut in 0..dump.len() {
            let mut counter = InsertCounter::default();
            counter.feed(&dump.as_bytes()[..cut]);
            counter.feed(&dump.as_bytes()[cut..]);
            assert_eq!(
                counter.binlog_position(),
                Some(BinlogPosition {
                    file: "mysql-bin.000042".into(),
                    position: 843,
                    gtid: Some("0-7-3".into())
                })
            );
            assert_eq!(counter.tables()[0].rows, 1);
        }
        let mysql8 = "-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000003', SOURCE_LOG_POS=157;\n";
        let mut counter = InsertCounter::default();
        counter.feed(mysql8.as_bytes());
        assert_eq!(counter.binlog_position().unwrap().position, 157);
        assert_eq!(InsertCounter::default().binlog_position(), None);
    }

    proptest! {
        #[test]
        fn chunk_boundaries_do_not_matter(cuts in proptest::collection::vec(0..DUMP.len(), 0..8)) {
            let bytes = DUMP.as_bytes();
            prop_assert_eq!(count_in_chunks::<InsertCounter>(bytes, &cuts), count_in_chunks::<InsertCounter>(bytes, &[]));
        }
    }
}
