//! `pg setup`: the settings that make a PostgreSQL server archive its WAL into a
//! repository (`wal_level`, `archive_mode`, `archive_command`, `archive_timeout`), applied
//! with `ALTER SYSTEM`, and the check that archiving works: a WAL file switched out on
//! purpose must reach the repository.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use lifeboat_repo::Repository;
use lifeboat_sources::postgres::Psql;

/// What a server needs, read from the server as it is.
#[derive(Debug, Clone)]
pub struct ArchiveSetup {
    /// The cluster's system identifier.
    pub cluster: String,
    /// Each setting with the value it needs (its current one where that will do).
    pub settings: Vec<(&'static str, String)>,
    /// `wal_level` or `archive_mode` must change, which takes a restart.
    pub restart_needed: bool,
    /// The server already runs this `archive_command`.
    pub command_in_place: bool,
}

impl ArchiveSetup {
    /// Nothing to change: archiving can be checked right away.
    pub fn in_effect(&self) -> bool {
        self.command_in_place && !self.restart_needed
    }
}

/// What the server behind `psql` needs to archive with `archive_command`, archiving a
/// WAL file at least every half `rpo` (and at least every 30 s at most).
pub fn plan(psql: &Psql, archive_command: &str, rpo: Duration) -> Result<ArchiveSetup> {
    let current = psql.query(
        None,
        "SELECT current_setting('wal_level'), current_setting('archive_mode'), \
         current_setting('archive_command'), system_identifier, \
         (SELECT setting FROM pg_settings WHERE name = 'archive_timeout') FROM pg_control_system()",
    )?;
    let fields: Vec<&str> = current.split('|').collect();
    let [wal_level, archive_mode, current_command, cluster, archive_timeout] = fields[..] else {
        bail!("unexpected answer from the server: {current:?}");
    };
    // A WAL file is archived when it fills or after archive_timeout: on a quiet server
    // the last minutes of commits would otherwise wait in an unfilled file, out of reach
    // of point-in-time recovery.
    let wanted_timeout = (rpo.as_secs() / 2).max(30);
    let current_timeout: u64 = archive_timeout.trim().parse().unwrap_or(0);
    let timeout = if current_timeout == 0 || current_timeout > wanted_timeout {
        wanted_timeout
    } else {
        current_timeout
    };
    let restart_needed = wal_level == "minimal" || archive_mode == "off";
    let keep_or = |current: &str, unusable: &str, wanted: &str| {
        if current == unusable { wanted } else { current }.to_string()
    };
    Ok(ArchiveSetup {
        cluster: cluster.to_string(),
        settings: vec![
            ("wal_level", keep_or(wal_level, "minimal", "replica")),
            ("archive_mode", keep_or(archive_mode, "off", "on")),
            ("archive_command", archive_command.to_string()),
            ("archive_timeout", format!("{timeout}s")),
        ],
        restart_needed,
        command_in_place: current_command == archive_command,
    })
}

/// A setting as `postgresql.conf` and `ALTER SYSTEM` take it.
pub fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Writes `setup`'s settings with `ALTER SYSTEM` (a superuser's) and reloads them.
pub fn apply(psql: &Psql, setup: &ArchiveSetup) -> Result<()> {
    for (name, value) in &setup.settings {
        psql.query(
            None,
            &format!("ALTER SYSTEM SET {name} = {}", quoted(value)),
        )?;
    }
    psql.query(None, "SELECT pg_reload_conf()")?;
    // The reload is asynchronous: give the archiver a moment to read it.
    std::thread::sleep(Duration::from_millis(500));
    Ok(())
}

/// Switches the server to a new WAL file and waits up to `within` for the one it left
/// to reach `repo`; returns that file's name.
pub fn check_archiving(
    repo: &Repository,
    psql: &Psql,
    cluster: &str,
    within: Duration,
) -> Result<String> {
    let file = psql.query(
        None,
        "SELECT pg_walfile_name(pg_create_restore_point('lifeboat setup check')), pg_switch_wal()",
    )?;
    let file = file.split('|').next().unwrap_or_default().to_string();
    let deadline = Instant::now() + within;
    while repo.fetch_wal(cluster, &file)?.is_none() {
        if Instant::now() >= deadline {
            let why = psql.query(
                None,
                "SELECT coalesce(last_failed_wal, '-') || ' at ' || coalesce(last_failed_time::text, '-') FROM pg_stat_archiver",
            )?;
            bail!(
                "WAL file {file} did not reach the repository within {}s (last archive failure: {why}); \
                 see the server log for archive_command's error (it runs as the server's user, \
                 which must be able to read the passphrase file and the keys and write the repository)",
                within.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(file)
}

/// Whether the server's user lacks access to the local repository at `root` (see
/// [`crate::pg::access`]).
pub fn access_problem(
    psql: &Psql,
    root: &std::path::Path,
    password_file: Option<&std::path::Path>,
) -> Option<String> {
    // Reading it needs a superuser or pg_read_all_settings, as applying does anyway.
    let data_directory = psql
        .query(None, "SELECT current_setting('data_directory')")
        .ok()?;
    crate::pg::access::problem(&data_directory, root, password_file)
}
