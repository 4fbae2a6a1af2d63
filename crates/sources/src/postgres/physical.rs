//! Physical base backups: `pg_basebackup -F t -D - -X none` streamed straight into the
//! repository as a tree (no local copy), deduplicated file by file against earlier base
//! backups. The WAL comes from the archive (`lifeboat pg wal-push`), never from the
//! backup itself, and a base backup counts only once the archive holds all the WAL up to
//! its end: until then no snapshot is written.

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lifeboat_repo::session::WriteSession;
use lifeboat_repo::snapshot::PgBaseBackup;
use lifeboat_repo::{Id, Repository};

use super::wal::{format_lsn, parse_lsn, segment_name};
use super::{find_tool, Psql};
use crate::database_url::DatabaseUrl;
use crate::tar_tree::{store_tar, Kept, TarStats};
use crate::tool::reason;
use crate::{Progress, Result, SourceError};

pub struct BaseBackup {
    pub root: Id,
    pub meta: PgBaseBackup,
    pub stats: TarStats,
}

/// What the server says about itself before a base backup.
struct ServerFacts {
    version: u32,
    cluster: String,
    segment_size: u64,
}

fn server_facts(psql: &Psql) -> Result<ServerFacts> {
    let (version, _) = psql.server_version()?;
    let out = psql.query(
        None,
        "SELECT current_setting('archive_mode'), current_setting('archive_command'), \
         system_identifier, (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') \
         FROM pg_control_system()",
    )?;
    let fields: Vec<&str> = out.split('|').collect();
    let [mode, command, cluster, segment_size] = fields[..] else {
        return Err(SourceError::Invalid(format!(
            "unexpected answer from {}: {out:?}",
            psql.url.server()
        )));
    };
    // Any archive_command may reach the repository (a wrapper script, say): waiting for
    // the WAL to arrive is the proof. Without archiving at all there is nothing to wait for.
    if mode == "off" || command.is_empty() || command == "(disabled)" {
        return Err(SourceError::Invalid(format!(
            "{} does not archive its WAL (archive_mode = {mode}, archive_command = {command:?}); \
             a base backup cannot be recovered without it: run `lifeboat pg setup` first",
            psql.url.server()
        )));
    }
    Ok(ServerFacts {
        version,
        cluster: cluster.to_string(),
        segment_size: segment_size.parse().unwrap_or(16 << 20),
    })
}

/// Takes a base backup of the cluster at `url` into `session` and waits (up to
/// `wal_timeout`) until the archive in `repo` holds the WAL to its end.
pub fn basebackup(
    repo: &Repository,
    session: &WriteSession,
    url: &DatabaseUrl,
    wal_timeout: Duration,
    progress: &dyn Progress,
) -> Result<BaseBackup> {
    let psql = Psql::new(url)?;
    let facts = server_facts(&psql)?;
    let tool = find_tool("pg_basebackup", facts.version)?;
    let label = format!(
        "lifeboat {}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    let mut command = Psql::with_password(url, tool.command());
    command
        .args([
            "-F",
            "t",
            "-D",
            "-",
            "-X",
            "none",
            "-c",
            "fast",
            "--no-password",
        ])
        .arg("-l")
        .arg(&label)
        .arg("-d")
        .arg(url.libpq_uri())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| SourceError::Invalid(format!("cannot start pg_basebackup: {e}")))?;
    // Once the data is sent, the server waits until the WAL to the backup's end is
    // archived, with no end of its own (and holds back the last bytes of the tar stream
    // meanwhile). Its notice starts our clock; a watchdog ends the wait at wal_timeout.
    let watch = WaitWatch::default();
    let stderr = watch.capture(&mut child);
    let watchdog = watch.start(child.id(), wal_timeout);
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut keep = [Kept {
        name: "backup_label",
        text: None,
    }];
    let stored = store_tar(session, stdout, &mut keep, progress);
    if stored.is_err() {
        let _ = child.kill();
    }
    let status = child.wait();
    let timed_out = watch.finish(watchdog);
    let stderr = stderr.join().unwrap_or_default();
    if timed_out {
        return Err(not_archived("the WAL up to the backup's end"));
    }
    let status = status.map_err(|e| SourceError::Invalid(format!("pg_basebackup: {e}")))?;
    if !status.success() {
        return Err(SourceError::Invalid(format!(
            "pg_basebackup of {} failed: {}; no snapshot was written",
            url.server(),
            reason(&stderr)
        )));
    }
    let (root, stats) = stored?;
    let label_text = keep[0].text.take().ok_or_else(|| {
        SourceError::Invalid("pg_basebackup sent no backup_label; not a base backup".into())
    })?;
    let start = label_field(&label_text, "START WAL LOCATION")
        .and_then(|v| parse_lsn(v.split_whitespace().next()?))
        .ok_or_else(|| SourceError::Invalid("backup_label has no START WAL LOCATION".into()))?;
    let timeline: u32 = label_field(&label_text, "START TIMELINE")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1);
    let start_wal = segment_name(timeline, start, facts.segment_size);
    // PostgreSQL archives a `.backup` file when the backup ends, naming where it stopped.
    let history = format!("{start_wal}.{:08X}.backup", start % facts.segment_size);
    let deadline = Instant::now() + wal_timeout;
    let history_text = wait_for(repo, &facts.cluster, &history, deadline)?;
    let history_text = String::from_utf8_lossy(&history_text).into_owned();
    let end = label_field(&history_text, "STOP WAL LOCATION")
        .and_then(|v| parse_lsn(v.split_whitespace().next()?))
        .ok_or_else(|| SourceError::Invalid(format!("{history} has no STOP WAL LOCATION")))?;
    let end_wal = segment_name(
        timeline,
        end.saturating_sub(1).max(start),
        facts.segment_size,
    );
    wait_for(repo, &facts.cluster, &end_wal, deadline)?;
    Ok(BaseBackup {
        root,
        meta: PgBaseBackup {
            cluster: facts.cluster,
            server: url.server(),
            version: facts.version,
            timeline,
            start_lsn: format_lsn(start),
            end_lsn: format_lsn(end),
            start_wal,
            end_wal,
            wal_segment_size: facts.segment_size,
            finished: chrono::Utc::now(),
        },
        stats,
    })
}

/// The value of `KEY: value` in a backup label or backup history file.
pub fn label_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// Waits until the archive holds `file`; returns its contents.
fn wait_for(repo: &Repository, cluster: &str, file: &str, deadline: Instant) -> Result<Vec<u8>> {
    loop {
        if let Some(data) = repo.fetch_wal(cluster, file)? {
            return Ok(data);
        }
        if Instant::now() >= deadline {
            return Err(not_archived(&format!("WAL file {file}")));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn not_archived(what: &str) -> SourceError {
    SourceError::Invalid(format!(
        "{what} has not reached the repository's archive; the base backup is not usable \
         without it, so no snapshot was written. Is archive_command `lifeboat pg wal-push %p` \
         into this repository working? (`lifeboat pg setup` checks)"
    ))
}

/// Watches pg_basebackup's wait for the archive, and ends it after a timeout.
#[derive(Default, Clone)]
struct WaitWatch {
    waiting_since: Arc<Mutex<Option<Instant>>>,
    done: Arc<AtomicBool>,
    timed_out: Arc<AtomicBool>,
}

/// The notice PostgreSQL sends when the data is out and it waits for the archiver.
const WAITING_NOTICE: &str = "waiting for required WAL segments to be archived";

impl WaitWatch {
    /// Reads the child's stderr on a thread, noting when the wait begins; the thread
    /// returns the text.
    fn capture(&self, child: &mut Child) -> JoinHandle<String> {
        let pipe = child.stderr.take().expect("stderr is piped");
        let waiting_since = self.waiting_since.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in std::io::BufReader::new(pipe).lines().map_while(|l| l.ok()) {
                if line.contains(WAITING_NOTICE) {
                    *waiting_since.lock().expect("not poisoned") = Some(Instant::now());
                }
                if text.len() < 64 * 1024 {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            text
        })
    }

    fn start(&self, pid: u32, timeout: Duration) -> JoinHandle<()> {
        let watch = self.clone();
        std::thread::spawn(move || {
            while !watch.done.load(Ordering::SeqCst) {
                let since = *watch.waiting_since.lock().expect("not poisoned");
                if since.is_some_and(|t| t.elapsed() >= timeout) {
                    watch.timed_out.store(true, Ordering::SeqCst);
                    // SAFETY: kill(2) touches no memory. The child may be reaped between the check
                    // of `done` and this call; a pid reused in that instant is the (tiny) risk.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    }

    /// Stops the watchdog (the child has been reaped); whether it ended the wait.
    fn finish(&self, watchdog: JoinHandle<()>) -> bool {
        self.done.store(true, Ordering::SeqCst);
        let _ = watchdog.join();
        self.timed_out.load(Ordering::SeqCst)
    }
}
