//! Point-in-time recovery: pick the base backup that ends before the target, restore
//! it into an empty directory, and write the recovery settings that replay the archived
//! WAL (through `lifeboat pg wal-fetch`) up to the target and no further, on a pinned
//! timeline. Optionally start the server on a port and wait until it is promoted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::snapshot::{PgBaseBackup, SnapshotSource, StoredSnapshot};
use lifeboat_repo::Repository;

use super::wal::{format_lsn, parse_lsn};
use crate::restore::{restore_tree, RestoreOptions};
use crate::tool::{self, Tool};
use crate::{Progress, Result, SourceError};

#[derive(Debug, Clone, PartialEq)]
pub enum RecoveryTarget {
    /// The end of the archived WAL.
    Latest,
    Time(chrono::DateTime<chrono::Utc>),
    Lsn(u64),
    /// A restore point made with `pg_create_restore_point(name)`.
    Name(String),
}

impl RecoveryTarget {
    pub fn describe(&self) -> String {
        match self {
            RecoveryTarget::Latest => "the end of the archived WAL".into(),
            RecoveryTarget::Time(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            RecoveryTarget::Lsn(lsn) => format!("LSN {}", format_lsn(*lsn)),
            RecoveryTarget::Name(name) => format!("restore point {name:?}"),
        }
    }
}

/// The base backups in `snapshots` (of `cluster`, if given), oldest first.
pub fn base_backups<'a>(
    snapshots: &'a [StoredSnapshot],
    cluster: Option<&str>,
) -> Vec<(&'a StoredSnapshot, &'a PgBaseBackup)> {
    snapshots
        .iter()
        .filter_map(|s| match &s.snapshot.source {
            SnapshotSource::PgBase(meta) => Some((s, meta)),
            _ => None,
        })
        .filter(|(_, meta)| cluster.is_none_or(|c| meta.cluster == c))
        .collect()
}

/// The newest base backup that ends before `target`.
pub fn choose_base<'a>(
    bases: &[(&'a StoredSnapshot, &'a PgBaseBackup)],
    target: &RecoveryTarget,
) -> Result<(&'a StoredSnapshot, &'a PgBaseBackup)> {
    let clusters: std::collections::BTreeSet<&str> =
        bases.iter().map(|(_, m)| m.cluster.as_str()).collect();
    if clusters.len() > 1 {
        return Err(SourceError::Invalid(format!(
            "the repository holds base backups of several clusters ({}); choose one with --cluster",
            clusters.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let usable = |meta: &PgBaseBackup| match target {
        RecoveryTarget::Time(t) => meta.finished <= *t,
        RecoveryTarget::Lsn(lsn) => parse_lsn(&meta.end_lsn).is_some_and(|end| end <= *lsn),
        RecoveryTarget::Latest | RecoveryTarget::Name(_) => true,
    };
    bases
        .iter()
        .rev()
        .find(|(_, meta)| usable(meta))
        .copied()
        .ok_or_else(|| match bases.first() {
            None => SourceError::Invalid(
                "the repository holds no PostgreSQL base backup (take one with `lifeboat pg basebackup`)"
                    .into(),
            ),
            Some((_, oldest)) => SourceError::Invalid(format!(
                "no base backup ends before {}: the oldest ended at {} (LSN {})",
                target.describe(),
                oldest.finished.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                oldest.end_lsn
            )),
        })
}

pub struct RecoverySettings {
    pub target: RecoveryTarget,
    /// The command PostgreSQL runs to fetch WAL (`%f %p` filled in by the server).
    pub restore_command: String,
    /// Follow this timeline instead of the base backup's.
    pub timeline: Option<u32>,
    /// Keep the server's archive settings: the recovered cluster replaces the lost primary
    /// and archives its new timeline (and its `.history` file) into the repository.
    pub keep_archiving: bool,
}

/// Restores `base` into `dir` (which must be empty or missing) and writes the recovery
/// settings. Unless told to keep archiving, the restored cluster does not archive
/// (`archive_mode = off`): a copy made to look at the past must not write into the
/// archive of the server it came from.
pub fn prepare(
    repo: &Repository,
    index: &MasterIndex,
    base: &StoredSnapshot,
    meta: &PgBaseBackup,
    dir: &Path,
    settings: &RecoverySettings,
    progress: &dyn Progress,
) -> Result<()> {
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(SourceError::Invalid(format!(
            "{} is not empty; restore a cluster into a new or empty directory",
            dir.display()
        )));
    }
    restore_tree(
        repo,
        index,
        base.snapshot.tree,
        dir,
        &RestoreOptions::default(),
        progress,
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| SourceError::io(dir, e))?;
    remove_runtime_leftovers(dir)?;
    for (file, default) in [
        ("postgresql.conf", "# Written by lifeboat: the original kept its settings elsewhere.\n"),
        ("pg_hba.conf", "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"),
    ] {
        let path = dir.join(file);
        if !path.exists() {
            std::fs::write(&path, default).map_err(|e| SourceError::io(&path, e))?;
        }
    }
    let signal = dir.join("recovery.signal");
    std::fs::write(&signal, "").map_err(|e| SourceError::io(&signal, e))?;
    let target = &settings.target;
    let quote = |v: &str| format!("'{}'", v.replace('\'', "''"));
    let timeline = settings.timeline.unwrap_or(meta.timeline);
    let mut conf = format!(
        "\n# Written by lifeboat pg restore: recover base backup {} to {}.\n\
         restore_command = {}\n\
         recovery_target_timeline = '{timeline}'\n\
         recovery_target_action = 'promote'\n",
        base.id.short(),
        target.describe(),
        quote(&settings.restore_command)
    );
    if !settings.keep_archiving {
        conf.push_str("archive_mode = 'off'\n");
    }
    match target {
        RecoveryTarget::Latest => {}
        RecoveryTarget::Time(t) => conf.push_str(&format!(
            "recovery_target_time = {}\n",
            quote(&t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string())
        )),
        RecoveryTarget::Lsn(lsn) => {
            conf.push_str(&format!("recovery_target_lsn = '{}'\n", format_lsn(*lsn)))
        }
        RecoveryTarget::Name(name) => {
            conf.push_str(&format!("recovery_target_name = {}\n", quote(name)))
        }
    }
    let auto = dir.join("postgresql.auto.conf");
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&auto)
        .and_then(|mut f| f.write_all(conf.as_bytes()))
        .map_err(|e| SourceError::io(&auto, e))?;
    Ok(())
}

/// A server tool of exactly `major` (the server binary must match the data directory).
pub(crate) fn server_tool(name: &str, major: u32) -> Result<Tool> {
    let dirs = [
        std::env::var_os("LIFEBOAT_PG_BIN").map(PathBuf::from),
        Some(PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"))),
        Some(PathBuf::from(format!("/usr/pgsql-{major}/bin"))),
        Some(PathBuf::from(format!(
            "/opt/homebrew/opt/postgresql@{major}/bin"
        ))),
    ];
    dirs.into_iter()
        .flatten()
        .map(|d| d.join(name))
        .chain(tool::in_path(name))
        .filter_map(|p| tool::probe(&p))
        .find(|t| t.major == major)
        .ok_or_else(|| {
            SourceError::Invalid(format!(
                "{name} of PostgreSQL {major} not found; install postgresql-{major} \
                 or set LIFEBOAT_PG_BIN to its bin directory"
            ))
        })
}

/// Starts the recovered cluster in `dir` on 127.0.0.1:`port` and waits until recovery
/// has finished and the server is promoted, or fails with the line of its log that says
/// why. The server keeps running.
/// Removes what a running server left in the data directory that a base backup copied: a
/// `postmaster.pid`, and the lock files of sockets kept there (`.s.PGSQL.5432.lock`,
/// which pg_basebackup does not leave out). A recovered server started on the same port
/// would read the old server's pid in one and refuse to start while any process of that
/// pid lives, on a new host as on the old.
fn remove_runtime_leftovers(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| SourceError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SourceError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "postmaster.pid" || name.starts_with(".s.PGSQL.") {
            std::fs::remove_file(entry.path()).map_err(|e| SourceError::io(entry.path(), e))?;
        }
    }
    Ok(())
}

pub fn start(dir: &Path, port: u16, timeout: Duration) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Err(SourceError::Invalid(
            "PostgreSQL refuses to run as root: run `lifeboat pg restore --start` as the user \
             that will own the cluster (e.g. runuser -u postgres -- lifeboat ...)"
                .into(),
        ));
    }
    let version_file = dir.join("PG_VERSION");
    let major: u32 = std::fs::read_to_string(&version_file)
        .map_err(|e| SourceError::io(&version_file, e))?
        .trim()
        .parse()
        .map_err(|_| SourceError::Invalid(format!("{}: not a version", version_file.display())))?;
    let pg_ctl = server_tool("pg_ctl", major)?;
    let pg_isready = server_tool("pg_isready", major)?;
    let controldata = server_tool("pg_controldata", major)?;
    let log = dir.join("lifeboat-recovery.log");
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}'",
        dir.display()
    );
    let mut command = pg_ctl.command();
    command
        .arg("-D")
        .arg(dir)
        .arg("-l")
        .arg(&log)
        .args(["-o", &options, "-W", "start"]);
    tool::output(command, "pg_ctl start")?;
    // Recovery is over when PostgreSQL has removed recovery.signal (it does on reaching
    // the target) and then written "in production" to pg_control (after the end-of-
    // recovery checkpoint). Neither alone will do: a base backup's pg_control already says
    // "in production", and the signal goes before the checkpoint.
    let signal = dir.join("recovery.signal");
    let started = Instant::now();
    let deadline = started + timeout;
    let pid = dir.join("postmaster.pid");
    let mut seen_running = false;
    loop {
        seen_running |= pid.exists();
        let ready = || {
            let mut command = pg_isready.command();
            command.args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()]);
            command.status().is_ok_and(|s| s.success())
        };
        let in_production = || {
            let mut command = controldata.command();
            command.arg("-D").arg(dir);
            tool::output(command, "pg_controldata").is_ok_and(|out| {
                out.lines().any(|l| {
                    l.starts_with("Database cluster state:") && l.ends_with("in production")
                })
            })
        };
        if !signal.exists() && in_production() && ready() {
            let _ = std::fs::remove_dir_all(dir.join(super::wal::PREFETCH_DIR));
            return Ok(());
        }
        // pg_ctl -W returns before the postmaster writes its pid file.
        let died = if seen_running {
            !pid.exists()
        } else {
            started.elapsed() > Duration::from_secs(30)
        };
        if died || Instant::now() >= deadline {
            let why = last_error(&log).unwrap_or_else(|| "recovery did not finish in time".into());
            return Err(SourceError::Invalid(format!(
                "the recovered server did not come up: {why} (log: {})",
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .find(|l| l.contains("FATAL") || l.contains("PANIC"))
        .map(|l| l.trim().to_string())
}

/// Stops a server started by [`start`] (tests, drills).
pub fn stop(dir: &Path) -> Result<()> {
    let version_file = dir.join("PG_VERSION");
    let major: u32 = std::fs::read_to_string(&version_file)
        .map_err(|e| SourceError::io(&version_file, e))?
        .trim()
        .parse()
        .unwrap_or(0);
    let mut command: Command = server_tool("pg_ctl", major)?.command();
    command.arg("-D").arg(dir).args(["-m", "fast", "stop"]);
    tool::output(command, "pg_ctl stop").map(|_| ())
}
