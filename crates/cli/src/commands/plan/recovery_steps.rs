//! The runbook's "What to do when": commands that run as printed on the host, or on a new
//! one that has only lifeboat, the repository URL and its passphrase. Sources are named
//! as lifeboat.toml names them; the file is named by its absolute path, which `recover`
//! restores it to. Tests run these blocks as they are written (tests/recovery.rs for a
//! host, tests/pg_physical.rs for a PostgreSQL server).

use std::fmt::Write as _;

use lifeboat_config::{Config, SourceLocation, Target};
use lifeboat_storage::Location;

use super::restored_copy;
use crate::commands::shell_word;
use lifeboat_ops::protection::Medium;

/// A repository that holds base backups (and so archived WAL) of a PostgreSQL server.
pub(super) struct Pitr<'a> {
    /// As the base backups record it: a URL without password or database.
    pub server: String,
    pub version: u32,
    pub target: &'a Target,
}

pub(super) fn write_recovery_steps(
    out: &mut String,
    config: &Config,
    config_path: &str,
    pitr: &[Pitr],
) {
    let config_word = shell_word(config_path);
    let offsite = config.targets.iter().find(|t| Medium::of(t).offsite);
    // Recovery reads the off-site copy when there is one: the host's own disks may have
    // gone with it.
    let survivor = offsite.or(config.targets.first());
    let _ = writeln!(
        out,
        "Run these on the app host as they are (they read `{config_path}`). Each block is one shell session.\n"
    );

    if let Some(survivor) = survivor {
        write_host_lost(out, config, survivor, offsite.is_some(), &config_word);
    }

    for source in &config.sources {
        let SourceLocation::Url(url) = &source.location else {
            continue;
        };
        let name = shell_word(&source.name);
        let sqlite = url.starts_with("sqlite:") || url.starts_with("file:") || url.ends_with(".db");
        let database = url.starts_with("postgres") || url.starts_with("mysql");
        let _ = writeln!(out, "### {}\n", source.name);
        if sqlite {
            let live = lifeboat_sources::sqlite::path_from_url(url)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| url.clone());
            let restored = shell_word(&format!("{live}.restored"));
            let _ = writeln!(out, "**Rows deleted or changed by mistake** (keep the app running):\n\n```sh\nexport LIFEBOAT_CONFIG={config_word}\nlifeboat diff {name} --from -1h                      # what changed, by primary key\nlifeboat restore-rows {name} --at -1h --table TABLE --where \"id IN (...)\"            # preview\nlifeboat restore-rows {name} --at -1h --table TABLE --where \"id IN (...)\" --apply    # put back, one transaction\n```\n");
            let _ = writeln!(out, "**A bad migration** (stop the app first):\n\n```sh\nexport LIFEBOAT_CONFIG={config_word}\nlifeboat timeline {name}                             # restore points, to the transaction\nlifeboat restore --source {name} --at TIME_BEFORE_MIGRATION --target {restored}\n# check it, then move it over {live} (and delete the live file's -wal and -shm)\n```\n");
        } else if database {
            let _ = writeln!(out, "**A dropped table or a bad migration:** restore the newest good dump into a new database, check it, then switch the app over:\n\n```sh\nexport LIFEBOAT_CONFIG={config_word}\nlifeboat timeline {name}\nlifeboat snapshots --tag source:{}\nlifeboat restore SNAPSHOT --into {}   # a new database; row counts are checked\n```\nPostgreSQL clusters with WAL archiving recover to any second: `lifeboat pg restore --help`.\n", source.name, restored_copy(url));
            if let Some(held) = pitr.iter().find(|p| same_server(&p.server, url)) {
                write_server_lost(out, held);
            }
        } else {
            let _ = writeln!(out, "**Files deleted or overwritten:**\n\n```sh\nexport LIFEBOAT_CONFIG={config_word}\nlifeboat snapshots --tag source:{}\nlifeboat restore SNAPSHOT --target /tmp/restore --include PATH   # then copy back what is needed\n```\n", source.name);
        }
    }

    let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
    let _ = writeln!(out, "### A storage target is lost or damaged\n");
    match names.as_slice() {
        [] => {}
        [only] => {
            let _ = writeln!(out, "There is no second copy to repair from: `repair` stores again what is intact and names what is lost. Add a second target.\n\n```sh\nexport LIFEBOAT_CONFIG={config_word}\nlifeboat verify                                   # which snapshots are damaged\nlifeboat repair --to {only}\n```\n");
        }
        [first, .., last] => {
            let (good, other) = match offsite {
                Some(t) => (
                    t.name.as_str(),
                    if t.name == *first { *last } else { *first },
                ),
                None => (*last, *first),
            };
            let _ = writeln!(out, "```sh\nexport LIFEBOAT_CONFIG={config_word}\nlifeboat verify                                   # which target, which snapshots\nlifeboat repair --from {good} --to {other}   # put damaged data back from the other copy (or the other way round)\nlifeboat copy --from {good} --to NEW_TARGET     # rebuild a lost target from a surviving one\n```\n");
        }
    }
    let _ = writeln!(out, "### Ransomware on the app host\n");
    match offsite {
        Some(offsite) => {
            let _ = writeln!(out, "Assume the host and everything on it is hostile, including its copy of the passphrases and storage credentials. From a clean machine: recover from the off-site target (`{}`) with credentials kept off the host (the steps of \"The host is lost\"), drill it (`lifeboat drill SOURCE --target {}`), rotate every passphrase (`lifeboat key passwd`) and storage key, and only then point a rebuilt app at the restored data.\n", offsite.name, offsite.name);
        }
        None => {
            let _ = writeln!(out, "Every target is on this host's disks, so ransomware on the host can reach every copy: add an off-site target. Until then, from a clean machine that can read a target, follow \"The host is lost\" and rotate every passphrase (`lifeboat key passwd`).\n");
        }
    }
    let servers: Vec<&str> = config
        .targets
        .iter()
        .filter(|t| matches!(Location::parse(&t.url), Ok(Location::Server { .. })))
        .map(|t| t.name.as_str())
        .collect();
    if !servers.is_empty() {
        let _ = writeln!(out, "For the holder of the admin token of `lifeboat serve` ({}): on the server, revoke the app host's token at once (`lifeboat serve token list`, then `lifeboat serve token remove NAME`); an append token could add junk snapshots but not delete or change any, so every earlier restore point is still there. Run no `forget` or `prune` until the recovery is done: list the snapshots and pick the last one from before the attack (`lifeboat snapshots`, with a read or admin token), verify it (`lifeboat verify --read-data`), recover from it (`lifeboat recover --at TIME`), then give the rebuilt host a new append token.\n", servers.join(", "));
    }
}

/// "The host is lost": `recover` from the surviving target, as the runbook's test runs it.
fn write_host_lost(
    out: &mut String,
    config: &Config,
    survivor: &Target,
    offsite: bool,
    config_word: &str,
) {
    let url = Location::parse(&survivor.url)
        .map(|l| l.display())
        .unwrap_or_else(|_| survivor.url.clone());
    let repo = shell_word(&url);
    let passphrase = match (&survivor.password_file, &survivor.password) {
        (Some(file), _) => format!(
            "export LIFEBOAT_PASSWORD_FILE={}   # the passphrase file, copied back from where it is kept\n",
            shell_word(&file.display().to_string())
        ),
        _ => String::new(),
    };
    let _ = writeln!(out, "### The host is lost\n");
    if !offsite {
        let _ = writeln!(
            out,
            "No target is off-site: this works only if `{}` survived (another disk or a mount). ",
            survivor.name
        );
    }
    let credentials = match Location::parse(&survivor.url) {
        Ok(Location::Service { .. }) => " and its storage credentials (see the table at the end)",
        Ok(Location::Server { .. }) => {
            " and a read or admin token of its server in `LIFEBOAT_SERVER_TOKEN` (see the table at the end)"
        }
        _ => "",
    };
    let continuous = if config.plans.iter().any(|p| p.continuous) {
        " and replication"
    } else {
        ""
    };
    let _ = writeln!(out, "On a new host with lifeboat installed and the passphrase of `{}`{credentials} (typed at the prompt, or in `LIFEBOAT_PASSWORD_FILE`): the repository holds the configuration too, so this puts back {} and every source, checks each, and prints what to start next (the agent, which resumes the schedules{continuous}).\n", survivor.name, config_word);
    let _ = writeln!(out, "```sh\n{passphrase}lifeboat recover --repo {repo}            # what it protects, and where each source goes\nlifeboat recover --repo {repo} --apply    # restore and check everything\n```\n");
}

/// Whether a source URL and a base backup's server name the same host and port.
fn same_server(server: &str, url: &str) -> bool {
    let address = |text: &str| {
        let parsed = lifeboat_sources::database_url::DatabaseUrl::parse(text)?.ok()?;
        Some((parsed.host()?, parsed.port().unwrap_or(5432)))
    };
    address(server).is_some_and(|a| Some(a) == address(url))
}

/// "The database server is lost": the whole cluster back from its base backups and
/// archived WAL, on a new server, as `tests/pg_physical.rs` runs it.
fn write_server_lost(out: &mut String, held: &Pitr) {
    let target = held.target;
    let repo = shell_word(
        &Location::parse(&target.url)
            .map(|l| l.display())
            .unwrap_or_else(|_| target.url.clone()),
    );
    let passphrase = match &target.password_file {
        Some(file) => format!(
            "export LIFEBOAT_PASSWORD_FILE={}   # the passphrase file, copied back from where it is kept\n",
            shell_word(&file.display().to_string())
        ),
        None => "export LIFEBOAT_PASSWORD_FILE=...   # a file holding the passphrase\n".into(),
    };
    let port = lifeboat_sources::database_url::DatabaseUrl::parse(&held.server)
        .and_then(Result::ok)
        .and_then(|u| u.port())
        .unwrap_or(5432);
    let _ = writeln!(out, "**The database server is lost** (`{}` holds its base backups and archived WAL): on a new server with PostgreSQL {} installed, as the user that will own the cluster (`postgres`), with `PGDATA` naming an empty directory for it. This recovers every database of the cluster to the newest archived moment (`--at TIME` for an earlier one), keeps archiving its new timeline into the repository, and starts it on port {port} (listening on 127.0.0.1; set `listen_addresses` before pointing other hosts at it):\n", target.name, held.version);
    let _ = writeln!(out, "```sh\nexport LIFEBOAT_REPO={repo}\n{passphrase}lifeboat timeline {}      # base backups, and the newest moment the archive reaches\nlifeboat pg restore --at latest --target-dir \"$PGDATA\" --archive --start --port {port}\n```\n", shell_word(&held.server));
}
