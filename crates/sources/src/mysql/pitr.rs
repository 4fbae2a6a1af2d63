//! MySQL/MariaDB point-in-time recovery, after a dump is loaded: the archived binary log
//! from the dump's position up to the moment asked for, rebuilt into private scratch
//! files and replayed with `mariadb-binlog` into the restored database.
//!
//! The log records whole seconds, so a time `T` replays every transaction that
//! committed before `T`'s second began; a GTID replays up to and including that
//! transaction. Only the dumped database's events are replayed (`--database`, which
//! goes by the database current when a statement ran), renamed to the target's name
//! (`--rewrite-db`). A statement logged as text that names the dumped database itself
//! (`ALTER TABLE shop.t ...`) would, renamed only in its current database, change the
//! original: such a replay is refused before anything runs.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use chrono::{DateTime, TimeZone, Utc};
use lifeboat_repo::mysql_binlog::{binlog_reach, file_chain, BinlogReach};
use lifeboat_repo::snapshot::{BinlogPosition, TableRows};
use lifeboat_repo::Repository;

use super::events::{self, Commit, Gtid, Statement};

use super::{find_tool, Client};
use crate::database_url::DatabaseUrl;
use crate::{Result, SourceError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayTarget {
    /// Everything archived.
    Latest,
    /// Transactions that committed before this moment's second.
    Time(DateTime<Utc>),
    /// Up to and including this transaction.
    Gtid(Gtid),
}

/// What a replay will apply, decided before anything is applied.
#[derive(Debug)]
pub struct Replay {
    pub from: BinlogPosition,
    /// The files, rebuilt in scratch space, from `from`'s file to the last one needed.
    files: Vec<PathBuf>,
    /// The last transaction replayed; `None` when the dump already is the moment.
    pub last: Option<Commit>,
    pub transactions: u64,
    /// The newest transaction the archive holds from `from` on.
    pub archive_end: Option<Commit>,
    pub reach: BinlogReach,
}

pub fn commit_time(commit: &Commit) -> DateTime<Utc> {
    Utc.timestamp_opt(commit.time as i64, 0)
        .single()
        .unwrap_or_default()
}

/// Rebuilds the archive of `server` from `from` into `scratch` and decides where the
/// replay stops for `target`. `database` is the dumped database (for the check of
/// statements that name it); `renamed` is whether the replay goes to another name.
pub fn prepare(
    repo: &Repository,
    server: &str,
    from: &BinlogPosition,
    target: &ReplayTarget,
    database: &str,
    renamed: bool,
    scratch: &Path,
) -> Result<Replay> {
    let pieces = repo.list_binlog(server)?;
    let reach = binlog_reach(&pieces, &from.file, from.position).ok_or_else(|| {
        SourceError::Invalid(format!(
            "the binlog archive does not hold {} up to byte {}, where the dump starts: \
             was `lifeboat mysql binlog-stream` running when it was taken?",
            from.file, from.position
        ))
    })?;
    let cutoff = match target {
        ReplayTarget::Time(t) => Some(t.timestamp()),
        _ => None,
    };
    let mut files = Vec::new();
    let mut last: Option<Commit> = None;
    let mut archive_end: Option<Commit> = None;
    let mut transactions = 0u64;
    let mut hazard: Option<Statement> = None;
    let mut done = false;
    for (i, (file, end)) in reach.files.iter().enumerate() {
        let mut bytes = Vec::with_capacity(*end as usize);
        for piece in file_chain(&pieces, file) {
            let data = repo.fetch_binlog(server, piece)?.ok_or_else(|| {
                SourceError::Invalid(format!(
                    "binlog piece {file} {}-{} disappeared while being read",
                    piece.start, piece.end
                ))
            })?;
            bytes.extend_from_slice(&data);
        }
        let path = scratch.join(file);
        write_private(&path, &bytes)?;
        files.push(path);
        let start = if i == 0 { from.position } else { 0 };
        let commits = events::commits(file, &bytes, start)
            .map_err(|e| SourceError::Invalid(format!("archived binlog {file}: {}", e.0)))?;
        for mut commit in commits {
            archive_end = Some(commit.clone());
            if done {
                continue;
            }
            let included = match target {
                ReplayTarget::Latest => true,
                ReplayTarget::Time(_) => (commit.time as i64) < cutoff.expect("time target"),
                ReplayTarget::Gtid(_) => true,
            };
            if !included {
                done = true;
                continue;
            }
            if renamed && hazard.is_none() {
                hazard = std::mem::take(&mut commit.statements)
                    .into_iter()
                    .find(|s| s.database == database && names_database(&s.text, database));
            }
            transactions += 1;
            let reached = matches!(target, ReplayTarget::Gtid(g) if commit.gtid == Some(*g));
            last = Some(commit);
            if reached {
                done = true;
            }
        }
        if done && !matches!(target, ReplayTarget::Latest) {
            break;
        }
    }
    if let ReplayTarget::Gtid(gtid) = target {
        if last.as_ref().and_then(|c| c.gtid) != Some(*gtid) {
            return Err(SourceError::Invalid(format!(
                "GTID {gtid} is not in the archived binlog after the dump's position ({} byte {})",
                from.file, from.position
            )));
        }
    }
    if let Some(statement) = hazard {
        return Err(SourceError::Invalid(format!(
            "the binlog holds a statement that names database `{database}` itself{} ({}): replayed \
             into another database it would change `{database}`; restore into a database named \
             `{database}` on another server instead",
            statement
                .gtid
                .map(|g| format!(" at GTID {g}"))
                .unwrap_or_default(),
            statement.text.chars().take(80).collect::<String>()
        )));
    }
    // Only the files up to the last one replayed are handed to mariadb-binlog.
    if let Some(commit) = &last {
        let keep = files
            .iter()
            .position(|p| p.file_name().and_then(|n| n.to_str()) == Some(&commit.file))
            .map_or(files.len(), |i| i + 1);
        files.truncate(keep);
    }
    Ok(Replay {
        from: from.clone(),
        files,
        last,
        transactions,
        archive_end,
        reach,
    })
}

/// When the newest transaction archived for `server` committed: read from the end of
/// the newest file's pieces (each starts at an event), so the cost is a piece or two.
pub fn last_archived_commit(repo: &Repository, server: &str) -> Result<Option<DateTime<Utc>>> {
    let pieces = repo.list_binlog(server)?;
    let Some(newest) = pieces.last() else {
        return Ok(None);
    };
    let chain = file_chain(&pieces, &newest.file);
    let Some(first) = chain.first() else {
        return Ok(None);
    };
    let read = |piece| {
        repo.fetch_binlog(server, piece)?.ok_or_else(|| {
            SourceError::Invalid(format!("binlog piece of {} disappeared", newest.file))
        })
    };
    let head = read(first)?;
    let checksums = events::Events::new(&head, 0)
        .map_err(|e| SourceError::Invalid(format!("archived binlog {}: {}", newest.file, e.0)))?
        .checksums();
    for piece in chain.iter().rev() {
        let data = if piece.start == 0 {
            head.clone()
        } else {
            read(piece)?
        };
        let events = if piece.start == 0 {
            events::Events::new(&data, 0)
        } else {
            Ok(events::Events::within(&data, checksums))
        };
        let commits = events
            .and_then(|e| events::commits_of(&piece.file, e, piece.start))
            .map_err(|e| {
                SourceError::Invalid(format!("archived binlog {}: {}", piece.file, e.0))
            })?;
        if let Some(commit) = commits.last() {
            return Ok(Some(commit_time(commit)));
        }
    }
    Ok(None)
}

/// Whether `sql` names `database` as a qualifier (`shop.t`, `` `shop`.t ``).
fn names_database(sql: &str, database: &str) -> bool {
    let lower = sql.to_lowercase();
    let db = database.to_lowercase();
    [format!("`{db}`"), db.clone()].iter().any(|quoted| {
        lower.match_indices(quoted.as_str()).any(|(at, _)| {
            let before = lower[..at].chars().next_back();
            let after = lower[at + quoted.len()..].trim_start().chars().next();
            let word_start = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$'));
            word_start && after == Some('.')
        })
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| SourceError::io(path, e))?;
    file.write_all(bytes).map_err(|e| SourceError::io(path, e))
}

/// Lines of `mariadb-binlog`'s output that would replay the original GTIDs and server
/// id: the target server gives the replayed transactions its own, so its log stays in
/// order (and no SUPER privilege is needed).
fn replays_identity(line: &[u8]) -> bool {
    line.starts_with(b"/*M!100001 SET @@session.gtid_")
        || line.starts_with(b"/*M!100001 SET @@session.server_id=")
}

/// Replays `replay` into the database `into` (already holding the dump), reading the
/// events of `database`.
pub fn apply(replay: &Replay, database: &str, into: &DatabaseUrl) -> Result<()> {
    let Some(last) = &replay.last else {
        return Ok(());
    };
    let target = into.database().expect("a database URL names its database");
    let reader = find_tool(&["mariadb-binlog", "mysqlbinlog"])?;
    let client = Client::new(into)?;
    let mut decode = reader.command();
    decode
        .arg("--no-defaults")
        .arg(format!("--start-position={}", replay.from.position.max(4)))
        .arg(format!("--stop-position={}", last.end))
        .arg(format!("--database={database}"));
    if target != database {
        decode.arg(format!("--rewrite-db={database}->{target}"));
    }
    decode
        .arg("--")
        .args(&replay.files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut decoder = decode
        .spawn()
        .map_err(|e| SourceError::io(&reader.path, e))?;
    let decoder_err = crate::tool::Stderr::capture(&mut decoder);
    let mut load = client.connection.command(&client.mariadb);
    load.arg("--binary-mode")
        .arg("--batch")
        .arg("--")
        .arg(&target)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut loader = load
        .spawn()
        .map_err(|e| SourceError::io(&client.mariadb.path, e))?;
    let loader_err = crate::tool::Stderr::capture(&mut loader);
    let copied = {
        let mut input = loader.stdin.take().expect("piped");
        let output = BufReader::new(decoder.stdout.take().expect("piped"));
        copy_lines(output, &mut input)
    };
    let decoded = decoder
        .wait()
        .map_err(|e| SourceError::io(&reader.path, e))?;
    let loaded = loader
        .wait()
        .map_err(|e| SourceError::io(&client.mariadb.path, e))?;
    let tool = super::tool_name(&reader);
    if !loaded.success() {
        return Err(SourceError::Invalid(format!(
            "replaying the binlog into {} failed: {}",
            into.redacted(),
            crate::tool::reason(&loader_err.text())
        )));
    }
    if !decoded.success() {
        return Err(SourceError::Invalid(format!(
            "{tool} failed reading the archived binlog: {}",
            crate::tool::reason(&decoder_err.text())
        )));
    }
    copied.map_err(|e| SourceError::Invalid(format!("piping {tool} into mariadb: {e}")))
}

/// After a replay: `CHECK TABLE` on every table of the database `into` names, and the
/// rows each holds now. A table that fails its check is an error.
pub fn check_tables(into: &DatabaseUrl) -> Result<Vec<TableRows>> {
    let client = Client::new(into)?;
    let database = into.database().expect("a database URL names its database");
    let names = client.query(
        None,
        &format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = {} \
             AND table_type = 'BASE TABLE' ORDER BY table_name",
            super::quote_literal(&database)
        ),
    )?;
    let mut tables = Vec::new();
    for name in names.lines().filter(|l| !l.is_empty()) {
        let table = super::quote_ident(name);
        let checked = client.query(Some(&database), &format!("CHECK TABLE {table}"))?;
        let status = checked.lines().last().unwrap_or_default();
        if !status.ends_with("\tOK") && !status.contains("\tstatus\tOK") {
            return Err(SourceError::Invalid(format!(
                "CHECK TABLE {table} in {} after the replay: {status}",
                into.redacted()
            )));
        }
        let rows = client
            .query(Some(&database), &format!("SELECT COUNT(*) FROM {table}"))?
            .parse()
            .unwrap_or(0);
        tables.push(TableRows {
            name: name.to_string(),
            rows,
        });
    }
    Ok(tables)
}

fn copy_lines(mut from: impl BufRead, to: &mut impl Write) -> std::io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if from.read_until(b'\n', &mut line)? == 0 {
            return to.flush();
        }
        if !replays_identity(&line) {
            to.write_all(&line)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_statements_that_name_the_database() {
        assert!(names_database("ALTER TABLE shop.t ADD c int", "shop"));
        assert!(names_database("drop table `shop` . `t`", "shop"));
        assert!(names_database("DROP TABLE `Shop`.t", "shop"));
        assert!(!names_database("ALTER TABLE t ADD shop int", "shop"));
        assert!(!names_database("ALTER TABLE myshop.t ADD c int", "shop"));
        assert!(!names_database("CREATE TABLE shops (a int)", "shop"));
    }

    #[test]
    fn the_replayed_identity_is_dropped() {
        let input = b"/*M!100001 SET @@session.gtid_seq_no=4*//*!*/;\nBINLOG '\nabc\n'/*!*/;\n/*M!100001 SET @@session.server_id=7*//*!*/;\nCOMMIT;\n";
        let mut out = Vec::new();
        copy_lines(&input[..], &mut out).unwrap();
        assert_eq!(out, b"BINLOG '\nabc\n'/*!*/;\nCOMMIT;\n");
    }
}
