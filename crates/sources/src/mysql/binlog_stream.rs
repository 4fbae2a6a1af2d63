//! `lifeboat mysql binlog-stream`: the server's binary log, archived as it is written.
//! `mariadb-binlog --read-from-remote-server --raw` (a replication client) writes the
//! files into a private scratch directory; this side reads whole events from them, puts
//! each at its offset in the server's file, and stores them as pieces
//! ([`lifeboat_repo::mysql_binlog`]) every `interval`, at 16 MiB, and at each rotation.
//! It resumes where the archive ends, so a restart (or a lost connection) neither
//! repeats nor skips anything; one streamer per server holds the stream's lease.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use lifeboat_repo::lock::Lock;
use lifeboat_repo::mysql_binlog::{file_chain, file_number, BinlogPiece};
use lifeboat_repo::Repository;

use super::events::{self, MAGIC};
use super::{find_tool, Client, Connection};
use crate::database_url::DatabaseUrl;
use crate::{Result, SourceError};

/// A piece is cut at this size even within `interval`.
const PIECE_BYTES: usize = 16 << 20;
/// How often the scratch files are read for new events.
const POLL: Duration = Duration::from_millis(100);

/// The name the archive of the server at `url` is filed under
/// ([`lifeboat_repo::mysql_binlog::server_key`]).
pub fn server_key(repo: &Repository, url: &DatabaseUrl) -> String {
    lifeboat_repo::mysql_binlog::server_key(repo, &url.server())
}

#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Store what arrived at least this often.
    pub interval: Duration,
    /// Archive up to the end of the server's current file, then return.
    pub once: bool,
}

/// What one run stored.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Streamed {
    pub pieces: u64,
    pub bytes: u64,
    /// The end of the archive: a file and the byte it reaches.
    pub reaches: Option<(String, u64)>,
}

/// Where the next byte of the archive goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resume {
    file: String,
    position: u64,
}

/// The file after `file` (`binlog.000009` -> `binlog.000010`), numbered as the server
/// numbers them.
fn next_file(file: &str) -> Option<String> {
    let (stem, digits) = file.rsplit_once('.')?;
    let n: u64 = digits.parse().ok()?;
    Some(format!("{stem}.{:0width$}", n + 1, width = digits.len()))
}

/// The end of what is archived, or `None` for an empty archive.
fn archive_end(pieces: &[BinlogPiece]) -> Option<Resume> {
    let last = pieces.iter().filter_map(|p| file_number(&p.file)).max()?;
    let file = pieces
        .iter()
        .find(|p| file_number(&p.file) == Some(last))?
        .file
        .clone();
    let chain = file_chain(pieces, &file);
    match chain.last() {
        Some(p) if p.rotated => Some(Resume {
            file: next_file(&file)?,
            position: 0,
        }),
        Some(p) => Some(Resume {
            file,
            position: p.end,
        }),
        None => Some(Resume { file, position: 0 }),
    }
}

/// The server's binlog files, oldest first (`SHOW BINARY LOGS`).
fn server_files(client: &Client) -> Result<Vec<String>> {
    let on = client.query(None, "SELECT @@log_bin")?;
    if on.trim() != "1" {
        return Err(SourceError::Invalid(format!(
            "MySQL at {} does not write a binary log: start it with log_bin (and binlog_format=ROW) to archive it",
            client.connection.url.server()
        )));
    }
    Ok(client
        .query(None, "SHOW BINARY LOGS")?
        .lines()
        .filter_map(|l| l.split('\t').next())
        .map(str::to_string)
        .collect())
}

/// Archives the binary log of the server at `url` into `repo` until stopped (or, with
/// `once`, up to the end of its current file).
pub fn stream(
    repo: &Repository,
    url: &DatabaseUrl,
    options: &StreamOptions,
    stop: &dyn Fn() -> bool,
) -> Result<Streamed> {
    let server = server_key(repo, url);
    let _lease = Lock::acquire_stream(repo, &format!("binlog-{server}"))?;
    let client = Client::new(url)?;
    let tool = find_tool(&["mariadb-binlog", "mysqlbinlog"])?;
    let mut total = Streamed::default();
    let mut failures = 0u32;
    loop {
        let pieces = repo.list_binlog(&server)?;
        let on_server = server_files(&client)?;
        let address = url.server();
        let Some(resume) = choose_start(archive_end(&pieces), &on_server, &address)? else {
            if options.once {
                return Ok(total);
            }
            if pause(options.interval, stop) {
                return Ok(total);
            }
            continue;
        };
        let scratch = tempfile::Builder::new()
            .prefix("lifeboat-binlog-")
            .tempdir()
            .map_err(|e| SourceError::io(std::env::temp_dir(), e))?;
        let mut child = spawn(
            &client.connection,
            &tool,
            &resume,
            options,
            scratch.path(),
            &server,
        )?;
        let run = follow(
            repo,
            &server,
            &resume,
            scratch.path(),
            &mut child,
            options,
            stop,
            &mut total,
        );
        let _ = child.kill();
        let status = child.wait().map_err(|e| SourceError::io(&tool.path, e))?;
        match run {
            Ok(Ended::Stopped) => return Ok(total),
            Ok(Ended::ToolExited) if options.once && status.success() => return Ok(total),
            Ok(Ended::ToolExited) => {
                failures += 1;
                let why = std::fs::read_to_string(scratch.path().join(".stderr"))
                    .map(|text| format!(": {}", crate::tool::reason(&text)))
                    .unwrap_or_default();
                tracing::warn!(
                    "{} stopped ({status}{why}); reconnecting",
                    super::tool_name(&tool)
                );
                if options.once {
                    return Err(SourceError::Invalid(format!(
                        "{} failed reading the binary log of {}: {status}{why}",
                        super::tool_name(&tool),
                        url.redacted()
                    )));
                }
            }
            Err(e) if options.once => return Err(e),
            Err(e) => {
                failures += 1;
                tracing::warn!("binlog stream: {e}; starting again from the archive's end");
            }
        }
        if pause(Duration::from_secs(1 << failures.min(5)), stop) {
            return Ok(total);
        }
    }
}

/// Waits `wait`; true when asked to stop meanwhile.
fn pause(wait: Duration, stop: &dyn Fn() -> bool) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if stop() {
            return true;
        }
        std::thread::sleep(POLL);
    }
    stop()
}

/// Where to start reading the server: the archive's end, or the server's oldest file
/// for an empty archive. `None` while the archive ends with a rotation into a file the
/// server has not started yet.
fn choose_start(
    end: Option<Resume>,
    on_server: &[String],
    address: &str,
) -> Result<Option<Resume>> {
    let Some(first) = on_server.first() else {
        return Err(SourceError::Invalid(format!(
            "MySQL at {address} lists no binary log files"
        )));
    };
    let Some(end) = end else {
        return Ok(Some(Resume {
            file: first.clone(),
            position: 0,
        }));
    };
    if on_server.contains(&end.file) {
        return Ok(Some(end));
    }
    let newest = on_server.last().expect("not empty");
    if file_number(newest) < file_number(&end.file) {
        if next_file(newest).as_deref() == Some(end.file.as_str()) {
            return Ok(None);
        }
        return Err(SourceError::Invalid(format!(
            "MySQL at {address} writes binary log {newest}, older than {} that the archive already holds: \
             was the log reset (RESET MASTER), or is this another server? Archive it into another repository",
            end.file
        )));
    }
    tracing::warn!(
        "the archive ends in {} at byte {}, which the server no longer has (purged); \
         continuing from {first}: point-in-time recovery cannot cross the gap",
        end.file,
        end.position
    );
    Ok(Some(Resume {
        file: first.clone(),
        position: 0,
    }))
}

fn spawn(
    connection: &Connection,
    tool: &crate::tool::Tool,
    resume: &Resume,
    options: &StreamOptions,
    scratch: &Path,
    server: &str,
) -> Result<Child> {
    let mut command = connection.command(tool);
    command.args(["--read-from-remote-server", "--raw"]);
    if options.once {
        command.arg("--to-last-log");
    } else {
        // A replica id of its own, stable per server, so the server does not mistake it
        // for one of its replicas.
        let id = 3_000_000_000u64 + u64::from_str_radix(&server[..6], 16).unwrap_or(0);
        command
            .arg("--stop-never")
            .arg(format!("--stop-never-slave-server-id={id}"));
    }
    command
        .arg(format!("--start-position={}", resume.position.max(4)))
        .arg(format!("--result-file={}/", scratch.display()))
        .arg("--")
        .arg(&resume.file);
    let stderr = File::create(scratch.join(".stderr")).map_err(|e| SourceError::io(scratch, e))?;
    command.stdout(Stdio::null()).stderr(stderr);
    command.spawn().map_err(|e| SourceError::io(&tool.path, e))
}

enum Ended {
    Stopped,
    ToolExited,
}

/// One scratch file as read so far.
struct Scratch {
    read: u64,
    buffer: Vec<u8>,
    checksums: Option<bool>,
}

/// What is waiting to be stored for one file.
struct Pending {
    file: String,
    start: u64,
    data: Vec<u8>,
    rotated: bool,
    since: Instant,
}

#[allow(clippy::too_many_arguments)]
fn follow(
    repo: &Repository,
    server: &str,
    resume: &Resume,
    scratch_dir: &Path,
    child: &mut Child,
    options: &StreamOptions,
    stop: &dyn Fn() -> bool,
    total: &mut Streamed,
) -> Result<Ended> {
    let mut ends: BTreeMap<String, u64> = BTreeMap::new();
    ends.insert(resume.file.clone(), resume.position);
    let mut scratch: BTreeMap<String, Scratch> = BTreeMap::new();
    let mut pending: Option<Pending> = None;
    loop {
        let exited = child
            .try_wait()
            .map_err(|e| SourceError::io(scratch_dir, e))?
            .is_some();
        for (name, path) in scratch_files(scratch_dir)? {
            let state = scratch.entry(name.clone()).or_insert(Scratch {
                read: 0,
                buffer: Vec::new(),
                checksums: None,
            });
            read_new(&path, state)?;
            for event in take_events(&name, state)? {
                let (offset, h, bytes) = event;
                let end = ends.entry(name.clone()).or_insert(0);
                if offset + (bytes.len() as u64) <= *end {
                    continue;
                }
                if offset != (*end).max(MAGIC.len() as u64) {
                    return Err(SourceError::Invalid(format!(
                        "the server sent {name} from byte {offset}, but the archive ends at byte {end}"
                    )));
                }
                if pending.as_ref().is_some_and(|p| p.file != name) {
                    store(repo, server, pending.take().expect("checked"), total)?;
                }
                let p = pending.get_or_insert_with(|| Pending {
                    file: name.clone(),
                    start: *end,
                    data: Vec::new(),
                    rotated: false,
                    since: Instant::now(),
                });
                if *end == 0 {
                    p.data.extend_from_slice(MAGIC);
                }
                p.data.extend_from_slice(&bytes);
                *end = offset + bytes.len() as u64;
                if h.ends_file() {
                    p.rotated = true;
                    store(repo, server, pending.take().expect("just set"), total)?;
                } else if p.data.len() >= PIECE_BYTES {
                    store(repo, server, pending.take().expect("just set"), total)?;
                }
            }
        }
        let due = pending
            .as_ref()
            .is_some_and(|p| p.since.elapsed() >= options.interval);
        if due || exited || stop() {
            if let Some(p) = pending.take() {
                store(repo, server, p, total)?;
            }
        }
        total.reaches = ends.iter().next_back().map(|(f, e)| (f.clone(), *e));
        if stop() {
            return Ok(Ended::Stopped);
        }
        if exited {
            return Ok(Ended::ToolExited);
        }
        std::thread::sleep(POLL);
    }
}

fn store(repo: &Repository, server: &str, pending: Pending, total: &mut Streamed) -> Result<()> {
    let piece = BinlogPiece {
        file: pending.file,
        start: pending.start,
        end: pending.start + pending.data.len() as u64,
        rotated: pending.rotated,
    };
    repo.push_binlog(server, &piece, &pending.data)?;
    lifeboat_repo::fault::point("binlog-piece-stored");
    total.pieces += 1;
    total.bytes += pending.data.len() as u64;
    tracing::debug!(file = %piece.file, start = piece.start, end = piece.end, "binlog piece stored");
    Ok(())
}

/// The binlog files in the scratch directory, in log order.
fn scratch_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| SourceError::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            (!name.starts_with('.')).then(|| (name, e.path()))
        })
        .collect();
    files.sort_by_key(|(name, _)| (file_number(name), name.clone()));
    Ok(files)
}

fn read_new(path: &Path, state: &mut Scratch) -> Result<()> {
    let mut file = File::open(path).map_err(|e| SourceError::io(path, e))?;
    file.seek(SeekFrom::Start(state.read))
        .map_err(|e| SourceError::io(path, e))?;
    let before = state.buffer.len();
    file.read_to_end(&mut state.buffer)
        .map_err(|e| SourceError::io(path, e))?;
    state.read += (state.buffer.len() - before) as u64;
    Ok(())
}

/// The whole events at the front of a scratch file's buffer, each with its offset in
/// the server's file; made-up events (not in the server's file) are dropped.
fn take_events(name: &str, state: &mut Scratch) -> Result<Vec<(u64, events::Header, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    if state.checksums.is_none() {
        // The scratch file starts with the magic, then the format description.
        if state.buffer.len() < MAGIC.len() {
            return Ok(out);
        }
        if &state.buffer[..4] != MAGIC {
            return Err(SourceError::Invalid(format!(
                "{name} from the server does not start as a binlog file"
            )));
        }
        at = 4;
    }
    while let Some(h) = events::header(&state.buffer[at..]) {
        let size = h.size as usize;
        if size < events::HEADER {
            return Err(SourceError::Invalid(format!(
                "{name}: an event of {size} bytes"
            )));
        }
        let Some(bytes) = state.buffer.get(at..at + size) else {
            break;
        };
        if h.kind == events::FORMAT_DESCRIPTION {
            state.checksums = Some(events::has_checksums(bytes));
        }
        if state.checksums == Some(true) && !events::crc_ok(bytes) {
            return Err(SourceError::Invalid(format!(
                "{name}: the event ending at byte {} fails its CRC32",
                h.log_pos
            )));
        }
        if let Some(offset) = h.offset_in_file() {
            out.push((offset, h, bytes.to_vec()));
        }
        at += size;
    }
    if state.checksums.is_none() && at == 4 {
        // Not even the format description yet: keep the magic for next time.
        return Ok(out);
    }
    state.buffer.drain(..at);
    if state.checksums.is_none() {
        state.checksums = Some(false);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_file_keeps_the_servers_numbering() {
        assert_eq!(next_file("binlog.000009").unwrap(), "binlog.000010");
        assert_eq!(next_file("mysql-bin.999999").unwrap(), "mysql-bin.1000000");
        assert_eq!(next_file("nonumber"), None);
    }

    #[test]
    fn the_archive_resumes_after_its_last_piece() {
        let piece = |file: &str, start, end, rotated| BinlogPiece {
            file: file.into(),
            start,
            end,
            rotated,
        };
        assert_eq!(archive_end(&[]), None);
        let pieces = vec![
            piece("b.000001", 0, 300, true),
            piece("b.000002", 0, 120, false),
        ];
        assert_eq!(
            archive_end(&pieces),
            Some(Resume {
                file: "b.000002".into(),
                position: 120
            })
        );
        let rotated = vec![piece("b.000002", 0, 120, true)];
        assert_eq!(archive_end(&rotated).unwrap().file, "b.000003");
    }

    #[test]
    fn scratch_events_come_whole_and_at_their_offsets() {
        use crate::mysql::events::tests::{file, query_body};
        let bytes = file(&[(events::QUERY, 5, query_body("d", "CREATE TABLE t (a int)"))]);
        let mut state = Scratch {
            read: 0,
            buffer: Vec::new(),
            checksums: None,
        };
        // Fed a byte at a time, nothing is taken until an event is whole.
        let mut got = Vec::new();
        for b in &bytes {
            state.buffer.push(*b);
            got.extend(take_events("b.000001", &mut state).unwrap());
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, 4);
        let rebuilt: Vec<u8> = MAGIC
            .iter()
            .copied()
            .chain(got.iter().flat_map(|e| e.2.clone()))
            .collect();
        assert_eq!(rebuilt, bytes);
    }
}
