//! Every flag of the `lifeboat` command line, in one place. Nothing below this module
//! knows clap exists: commands receive these plain structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Backup and disaster recovery for the data behind CRUD applications",
    after_help = "Exit codes: 0 success, 1 failure, 2 bad usage, 3 damage found by verify, \
                  4 wrong passphrase, 5 repository missing or storage unreachable."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Repository: a path, file:///path, s3://bucket/prefix, gcs://..., azblob://...,
    /// or a Lifeboat server, lifeboat+https://host:port (token in LIFEBOAT_SERVER_TOKEN).
    #[arg(long, short = 'r', env = "LIFEBOAT_REPO", global = true)]
    pub repo: Option<String>,
    /// Read the passphrase from this file (else LIFEBOAT_PASSWORD, else a prompt).
    #[arg(long, env = "LIFEBOAT_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Run this shell command and read the passphrase from the first line it prints
    /// (a secret manager: `pass show lifeboat`); --password-file wins over it.
    #[arg(long, env = "LIFEBOAT_PASSWORD_COMMAND", global = true)]
    pub password_command: Option<String>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars and no informational messages.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Let the commands Lifeboat runs for you (run --snapshot-before, --stdin-from-command,
    /// --to-command) see this variable of Lifeboat's own (e.g. LIFEBOAT_PASSWORD), which
    /// they are otherwise not given (repeatable).
    #[arg(long = "pass-env", value_name = "NAME", global = true)]
    pub pass_env: Vec<String>,
    /// Send at most this many KiB per second to the repository (all threads together).
    #[arg(long, value_name = "KIB_PER_S", env = "LIFEBOAT_LIMIT_UPLOAD", global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit_upload: Option<u64>,
    /// Read at most this many KiB per second from the repository.
    #[arg(long, value_name = "KIB_PER_S", env = "LIFEBOAT_LIMIT_DOWNLOAD", global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit_download: Option<u64>,
    /// More log output (repeat for more).
    #[arg(long, short = 'v', action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new, empty repository.
    Init(InitArgs),
    /// Back up files and directories, or a command's output.
    Backup(BackupArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// List the files in a snapshot.
    Ls(LsArgs),
    /// Restore a snapshot into a directory, a file or a command.
    Restore(RestoreArgs),
    /// Replicate a WAL-mode SQLite database continuously (foreground; stop with Ctrl-C or SIGTERM).
    Replicate(ReplicateArgs),
    /// List the restore points of a database (or file): the window you can restore from.
    Timeline(TimelineArgs),
    /// Run one operation described as JSON on standard input (a timeline, or a restore
    /// into a new directory) and print its report as JSON: how the agent asks, so that
    /// nothing it is asked shows in the process list.
    Request(RequestArgs),
    /// Check the repository: every reference resolves; with --read-data, every byte.
    Verify(VerifyArgs),
    /// PostgreSQL physical backups, WAL archiving and point-in-time recovery.
    Pg(PgArgs),
    /// MySQL/MariaDB binary log archiving (point-in-time recovery: `restore mysql://… --at`).
    Mysql(MysqlArgs),
    /// Remove the snapshots a retention policy does not keep (pinned ones always stay).
    Forget(ForgetArgs),
    /// Free the space of data no snapshot needs; safe while backups run (two phases:
    /// packs are condemned first and deleted once the backups that were running have ended).
    Prune(PruneArgs),
    /// Run a command (a migration, say) with a pinned snapshot taken just before it; if it
    /// fails, print the one command that rolls the data back.
    Run(RunArgs),
    /// Manage passphrases (key slots).
    Key(KeyArgs),
    /// Write the disaster-recovery runbook from lifeboat.toml and the drill history.
    Plan(RunbookArgs),
    /// Restore drill: restore a restore point into a scratch place, check it (integrity,
    /// row counts, the source's checks), measure RTO and RPO, record the result.
    Drill(DrillArgs),
    /// Rebuild a lost host: list what the repository protects (the configuration the
    /// agent stored in it, or lifeboat.toml) and, with --apply, restore every source to
    /// its place (or under --root), check each, and say what to start next.
    Recover(RecoverArgs),
    /// Rows inserted, updated and deleted (by primary key) in a SQLite or PostgreSQL
    /// database between two restore points.
    Diff(DiffArgs),
    /// Put chosen rows of a table back from a restore point into the live SQLite or
    /// PostgreSQL database, in one transaction (a preview unless --apply).
    RestoreRows(RestoreRowsArgs),
    /// Copy snapshots, stream segments and archived WAL that one repository has and
    /// another lacks (the keys may differ); incremental.
    Copy(CopyArgs),
    /// Repair damaged or missing packs. With --from: store their blobs again from the other
    /// repository's copy of each affected snapshot. Without: store their intact blobs
    /// again, drop them, and name the snapshots still missing data (the next backup of
    /// their sources stores it again).
    Repair(RepairArgs),
    /// Check lifeboat.toml, or print its JSON Schema.
    Config(ConfigArgs),
    /// For each plan's sources and targets in lifeboat.toml: the newest restore point and
    /// whether the recovery point objective is met (exit 1 if one is not).
    Status(StatusArgs),
    /// Run the plans of lifeboat.toml: schedules, continuous replication, retention, RPO
    /// checks and alerts; serves /metrics, /livez, /readyz and /api/v1/status on loopback.
    Agent(AgentArgs),
    /// Serve the repository (--repo) to other Lifeboat hosts over HTTPS, each with its own
    /// token: `append` (add backups, never delete or change them), `read`, `admin`.
    Serve(ServeArgs),
    /// Write one file of a snapshot to standard output (a SQLite database as the checked
    /// file a restore writes).
    Dump(DumpArgs),
    /// Add, remove or set the tags of snapshots.
    Tag(TagArgs),
    /// Which snapshots hold files whose name (or path) matches a pattern.
    Find(FindArgs),
    /// Which files two snapshots differ in (added, removed, modified).
    Compare(CompareArgs),
    /// Show the snapshots as a read-only file system (FUSE) at DIR until Ctrl-C or
    /// SIGTERM: DIR/snapshots/TIME-ID/..., DIR/snapshots/latest.
    Mount(MountArgs),
    /// Sizes: as restored, unique after deduplication, stored after compression; for the
    /// whole repository or the snapshots chosen.
    Stats(StatsArgs),
    /// Remove lock objects that protect nothing (expired, or left by an exited process).
    Unlock(UnlockArgs),
    /// Print a shell completion script: `lifeboat completions bash >
    /// /etc/bash_completion.d/lifeboat` (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory:
    /// `lifeboat man | man -l -`, `lifeboat man --dir /usr/local/share/man/man1`.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// A snapshot id (or unique prefix), or "latest" (the newest the filters match).
    pub snapshot: String,
    /// The file's path in the snapshot, as `lifeboat ls` prints it.
    pub path: PathBuf,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// Snapshot ids (or unique prefixes), or "latest"; without any, every snapshot the
    /// filters match.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Add this tag (repeatable).
    #[arg(long, value_name = "TAG")]
    pub add: Vec<String>,
    /// Remove this tag (repeatable).
    #[arg(long, value_name = "TAG")]
    pub remove: Vec<String>,
    /// Replace every tag with these (comma-separated; empty to clear).
    #[arg(long, value_name = "TAGS")]
    pub set: Option<String>,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Debug, Args)]
pub struct FindArgs {
    /// Patterns: `*.pdf` matches a name anywhere, `/app/uploads/*.pdf` a whole path; `**`
    /// spans directories (repeatable: any of them).
    #[arg(required = true, value_name = "PATTERN")]
    pub patterns: Vec<String>,
    /// Only in this snapshot (repeatable; default: every snapshot the filters match).
    #[arg(long = "snapshot", value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Match without regard to case.
    #[arg(long, short = 'i')]
    pub ignore_case: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Debug, Args)]
pub struct MountArgs {
    /// An empty directory to mount on.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The older snapshot: an id (or unique prefix), or "latest".
    pub from: String,
    /// The newer snapshot: an id (or unique prefix), or "latest".
    pub to: String,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Snapshot ids (or unique prefixes), or "latest"; without any, every snapshot the
    /// filters match (and, with no filter, the whole repository).
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove live locks too (only when you know their holder is dead, e.g. a host that is
    /// gone: a backup running without its lock can lose data to a prune).
    #[arg(long)]
    pub remove_all: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write lifeboat.1 and a page per command (lifeboat-backup.1, ...) here instead.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// Address to listen on (HTTPS only; loopback unless you say otherwise).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: std::net::SocketAddr,
    /// Certificate chain (PEM). Without --cert and --key, a self-signed certificate is
    /// made once and kept in the state directory; its fingerprint is printed at startup.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub state: ServeStateArgs,
}

#[derive(Debug, Args)]
pub struct ServeStateArgs {
    /// The server's own files: the token file, the self-signed certificate, lock owners
    /// (default: $XDG_STATE_HOME/lifeboat/serve, else ~/.local/state/lifeboat/serve).
    #[arg(long, env = "LIFEBOAT_SERVE_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// The token file (default: tokens.json in the state directory).
    #[arg(long, global = true)]
    pub tokens: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Manage the server's tokens (stored hashed; a new token is printed once).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Add a token and print it (the only time it is shown).
    Add {
        /// A name for the client, shown in the server's log (e.g. the host name).
        name: String,
        /// What the token may do: append (add backups), read, or admin (everything).
        #[arg(long, value_enum)]
        role: TokenRole,
    },
    /// List the tokens: names, roles, when added.
    List,
    /// Remove a token; the server refuses it from the next request on.
    Remove {
        /// The name it was added under (`token list` shows them).
        name: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TokenRole {
    /// Restore, verify, drills.
    Read,
    /// Read, and add backups (new objects only): what an app host gets.
    Append,
    /// Everything: forget, prune, key changes.
    Admin,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub file: ConfigFileArgs,
    /// How often the newest restore points are measured against the RPOs.
    #[arg(long, value_parser = duration, default_value = "30s")]
    pub check_every: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Report every problem in the file (with line and column), or summarize the plans.
    Check(ConfigCheckArgs),
    /// Print the JSON Schema of lifeboat.toml (for editors).
    Schema,
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    #[command(flatten)]
    pub file: ConfigFileArgs,
    /// Also contact every remote target (S3, ...) to check that it holds a repository;
    /// local targets are always checked.
    #[arg(long)]
    pub probe: bool,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Restore under this directory instead of the paths the configuration names.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Only this plan's sources (default: every plan).
    #[arg(long)]
    pub plan: Option<String>,
    /// With a lifeboat.toml and no --repo: read from this target of it (default: the
    /// first target of each plan that opens).
    #[arg(long)]
    pub from: Option<String>,
    /// The restore point: latest, RFC 3339 or relative (-10m, -2h).
    #[arg(long, default_value = "latest", allow_hyphen_values = true, value_parser = point_in_time)]
    pub at: String,
    /// Restore; without it, only list what would be restored and where.
    #[arg(long)]
    pub apply: bool,
    #[command(flatten)]
    pub file: ConfigFileArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only these sources (names of lifeboat.toml); all of them when none is given.
    pub sources: Vec<String>,
    #[command(flatten)]
    pub file: ConfigFileArgs,
}

#[derive(Debug, Args)]
pub struct ConfigFileArgs {
    /// The configuration file.
    #[arg(
        long,
        short = 'c',
        env = "LIFEBOAT_CONFIG",
        default_value = "lifeboat.toml",
        value_parser = config_file
    )]
    pub config: PathBuf,
}

/// `lifeboat.toml` when it is not in the current directory is looked for upwards, up to
/// the repository's root (the first directory with a .git), as JavaScript tools find
/// their configuration from any folder of a project (a monorepo's package included).
fn config_file(text: &str) -> Result<PathBuf, String> {
    let given = PathBuf::from(text);
    if text != "lifeboat.toml" || given.exists() {
        return Ok(given);
    }
    let Ok(cwd) = std::env::current_dir() else {
        return Ok(given);
    };
    for dir in cwd.ancestors() {
        let candidate = dir.join("lifeboat.toml");
        if candidate.is_file() {
            return Ok(candidate);
        }
        if dir.join(".git").exists() {
            break;
        }
    }
    Ok(given)
}

#[derive(Debug, Args)]
pub struct KdfArgs {
    /// Argon2id memory in MiB for the new key slot.
    #[arg(long, default_value_t = 32)]
    pub kdf_memory_mib: u32,
    /// Argon2id passes for the new key slot.
    #[arg(long, default_value_t = 4)]
    pub kdf_iterations: u32,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Lock every object for this long with S3 Object Lock (`30d`, `12w`): nobody, not even
    /// a host holding the repository's credentials, can delete it before; `prune` renews
    /// what is still needed. The bucket must have been created with object lock enabled.
    #[arg(long, value_name = "PERIOD", value_parser = lock_period)]
    pub object_lock: Option<std::time::Duration>,
    /// `compliance` (nobody can lift the lock, not even the account's root user) or
    /// `governance` (users with s3:BypassGovernanceRetention can).
    #[arg(long, requires = "object_lock", default_value = "compliance", value_parser = lock_mode)]
    pub object_lock_mode: lifeboat_storage::LockMode,
    /// Also set up the JavaScript project around the current directory: a lifeboat.toml
    /// next to package.json (DATABASE_URL, the uploads folder, this repository) and the
    /// npm scripts `backup`, `backup:status` and `db:migrate:safe` (for Prisma, Drizzle,
    /// Knex or Sequelize); nothing that exists is overwritten.
    #[arg(long)]
    pub npm: bool,
}

fn lock_period(text: &str) -> Result<std::time::Duration, String> {
    let period = lifeboat_config::parse_duration(text).map_err(|e| e.to_string())?;
    if period.as_secs() > lifeboat_storage::LockPolicy::MAX_PERIOD_SECS {
        return Err(format!(
            "{text:?} is too long: S3 keeps an object locked for at most 100 years"
        ));
    }
    Ok(period)
}

fn lock_mode(text: &str) -> Result<lifeboat_storage::LockMode, String> {
    lifeboat_storage::LockMode::parse(text)
        .ok_or_else(|| format!("{text:?} is not a lock mode; use compliance or governance"))
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Files and directories, SQLite databases (paths, sqlite:/file: URLs), or databases
    /// on one PostgreSQL or MySQL/MariaDB server (postgres://, mysql:// URLs). With
    /// nothing given, DATABASE_URL.
    #[arg(conflicts_with = "stdin_from_command")]
    pub paths: Vec<PathBuf>,
    /// Back up the standard output of this shell command instead of paths.
    #[arg(long, requires = "name")]
    pub stdin_from_command: Option<String>,
    /// The file name under which a command's output is stored.
    #[arg(long)]
    pub name: Option<String>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Pin the snapshot: retention policies never remove it.
    #[arg(long)]
    pub pin: bool,
    /// Read every file again instead of trusting an unchanged size, mtime and inode.
    #[arg(long)]
    pub force: bool,
    /// Save no snapshot when nothing changed since the newest snapshot of the same paths
    /// and tags from this host (the agent stores lifeboat.toml this way).
    #[arg(long, conflicts_with = "stdin_from_command")]
    pub skip_if_unchanged: bool,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Read everything and say what would be stored; write nothing to the repository.
    #[arg(long, conflicts_with = "skip_if_unchanged")]
    pub dry_run: bool,
    /// The host name recorded in the snapshot (and whose snapshots are the parent).
    #[arg(long, env = "LIFEBOAT_HOST")]
    pub host: Option<String>,
    /// Back up every source of this plan of lifeboat.toml to each of its targets, tagged
    /// as the agent tags its backups (what `npm run backup` runs after `init --npm`).
    #[arg(long, conflicts_with_all = ["paths", "stdin_from_command", "skip_if_unchanged", "dry_run", "host"])]
    pub plan: Option<String>,
    #[command(flatten)]
    pub file: ConfigFileArgs,
}

/// What a backup of files leaves out and where it reads its paths, as restic's options.
#[derive(Debug, Args, Default, Clone)]
pub struct SelectArgs {
    /// Leave out what matches this pattern (repeatable): `*.log` matches a name anywhere,
    /// `/srv/app/tmp` a whole path, `**` spans directories.
    #[arg(long = "exclude", short = 'e', value_name = "PATTERN")]
    pub excludes: Vec<String>,
    /// Like --exclude, ignoring case.
    #[arg(long = "iexclude", value_name = "PATTERN")]
    pub iexcludes: Vec<String>,
    /// Read --exclude patterns from this file, one per line (# starts a comment).
    #[arg(long = "exclude-file", value_name = "FILE")]
    pub exclude_files: Vec<PathBuf>,
    /// Read --iexclude patterns from this file.
    #[arg(long = "iexclude-file", value_name = "FILE")]
    pub iexclude_files: Vec<PathBuf>,
    /// Leave out every directory holding a file of this name (e.g. CACHEDIR.TAG).
    #[arg(long = "exclude-if-present", value_name = "NAME")]
    pub exclude_if_present: Vec<String>,
    /// Do not cross into other file systems (their mount points are kept, empty).
    #[arg(long, short = 'x')]
    pub one_file_system: bool,
    /// Read the paths to back up from this file, one per line (# starts a comment).
    #[arg(
        long = "files-from",
        value_name = "FILE",
        conflicts_with = "stdin_from_command"
    )]
    pub files_from: Vec<PathBuf>,
}

/// Which snapshots count (and which one `latest` is), as restic's filters.
#[derive(Debug, Args, Default)]
pub struct SnapshotFilterArgs {
    /// Only snapshots from this host (repeatable: any of them).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only snapshots carrying this tag; "a,b" means both (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only snapshots that include this path (absolute, or a database URL as backed up;
    /// repeatable: all of them).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
}

impl SnapshotFilterArgs {
    pub fn filter(&self) -> lifeboat_repo::snapshot_filter::SnapshotFilter {
        lifeboat_repo::snapshot_filter::SnapshotFilter {
            hosts: self.hosts.clone(),
            tags: self.tags.clone(),
            paths: self.paths.iter().map(|p| snapshot_path(p)).collect(),
        }
    }
}

/// A path as snapshots record it: absolute and normalised (`./db/../app.db` from /srv
/// is `/srv/app.db`); a URL is kept as written.
fn snapshot_path(text: &str) -> String {
    if text.contains("://") {
        return text.to_string();
    }
    let path = PathBuf::from(text);
    let absolute = if path.is_absolute() {
        path
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut normal = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal.display().to_string()
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// A snapshot id (or unique prefix), or "latest" (the newest the filters match).
    pub snapshot: String,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A snapshot id (or unique prefix), or "latest" (the newest the filters match); or
    /// a mysql:// URL naming a database to recover to --at into --into.
    #[arg(required_unless_present = "source")]
    pub snapshot: Option<String>,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Restore one database (or file) as it was at --at, from whichever restore point
    /// holds it: its path as backed up, or a sqlite:/file: URL.
    /// A source name of lifeboat.toml (read from the repository its plan writes to) is
    /// accepted too.
    #[arg(long, conflicts_with_all = ["snapshot", "include", "to_command"])]
    pub source: Option<String>,
    /// With --source naming a source of lifeboat.toml: read from this target of the file
    /// instead of its plan's first.
    #[arg(long, requires = "source")]
    pub from: Option<String>,
    #[command(flatten)]
    pub file: ConfigFileArgs,
    /// With --source: RFC 3339 (2026-11-26T09:30:00Z), relative (-10m, -2h, -1d), latest,
    /// or tx:N (right after the replicated transaction N, as `timeline` lists them).
    /// For a MySQL/MariaDB database: latest, a time, or gtid:DOMAIN-SERVER-SEQUENCE.
    #[arg(long, allow_hyphen_values = true, value_parser = restore_moment)]
    pub at: Option<String>,
    /// Where to restore: a directory (or, for a command snapshot or --source, a file).
    #[arg(long, required_unless_present_any = ["to_command", "into"])]
    pub target: Option<PathBuf>,
    /// For a command or database snapshot: pipe the stream (or the dump) into this
    /// shell command's stdin.
    #[arg(long, conflicts_with = "target")]
    pub to_command: Option<String>,
    /// For a database snapshot: restore into this database (postgres://…/newdb or
    /// mysql://…/newdb), created if missing; a non-empty one only with --force, which
    /// drops and recreates it.
    #[arg(long, conflicts_with_all = ["target", "to_command"])]
    pub into: Option<String>,
    /// For a database snapshot holding several databases: which one.
    #[arg(long)]
    pub database: Option<String>,
    /// Restore only this path (relative to the snapshot root); repeatable.
    #[arg(long)]
    pub include: Vec<PathBuf>,
    /// Restore into a non-empty directory (or over an existing file), replacing what is there.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ReplicateArgs {
    /// The database: a path or a sqlite:/file: URL.
    pub database: String,
    /// Ship committed transactions this often (e.g. 500ms, 1s): a commit reaches the
    /// repository within about this long (the default keeps it well under a second).
    #[arg(long, default_value = "500ms", value_parser = duration)]
    pub interval: std::time::Duration,
    /// Take a new base snapshot (a new generation) this often (e.g. 1h, 30m).
    #[arg(long, default_value = "1h", value_parser = duration)]
    pub base_every: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    #[command(flatten)]
    pub file: ConfigFileArgs,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// A source name of lifeboat.toml, or the database's path as backed up, a sqlite:/file:
    /// URL, or a postgres:// or mysql:// server (with or without a database).
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// List every stream segment on its own line instead of one line per continuous run.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct MysqlArgs {
    #[command(subcommand)]
    pub command: MysqlCommand,
}

#[derive(Debug, Subcommand)]
pub enum MysqlCommand {
    /// Archive the server's binary log into the repository as it is written (a
    /// replication client, `mariadb-binlog --read-from-remote-server`); resumes where the
    /// archive ends.
    BinlogStream(MysqlBinlogStreamArgs),
}

#[derive(Debug, Args)]
pub struct MysqlBinlogStreamArgs {
    /// The server: mysql://user@host:port (a database in the URL is ignored), or a
    /// source name of lifeboat.toml.
    pub source: String,
    /// Store what arrived at least this often: a commit reaches the repository within
    /// about this long.
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub interval: std::time::Duration,
    /// Archive up to the end of the server's current binlog file, then exit.
    #[arg(long)]
    pub once: bool,
    /// With a source name: write to this target of lifeboat.toml instead of its plan's first.
    #[arg(long)]
    pub from: Option<String>,
    #[command(flatten)]
    pub file: ConfigFileArgs,
}

#[derive(Debug, Args)]
pub struct PgArgs {
    #[command(subcommand)]
    pub command: PgCommand,
}

#[derive(Debug, Subcommand)]
pub enum PgCommand {
    /// Take a base backup (pg_basebackup) of a server that archives its WAL here.
    Basebackup(PgBasebackupArgs),
    /// archive_command: archive one WAL file; exits 0 only once it is durable.
    WalPush(PgWalPushArgs),
    /// restore_command: fetch one archived WAL file; exit 1 means not in the archive.
    WalFetch(PgWalFetchArgs),
    /// Restore a cluster as of a time, LSN or restore point into an empty directory.
    Restore(PgRestoreArgs),
    /// Print (or --apply) the settings that archive WAL here, and check a file arrives.
    Setup(PgSetupArgs),
}

#[derive(Debug, Args)]
pub struct PgBasebackupArgs {
    /// The server: postgres://user@host:port/db (default: DATABASE_URL).
    pub url: Option<String>,
    /// How long to wait for the WAL up to the backup's end to reach the archive.
    #[arg(long, default_value = "60s", value_parser = duration)]
    pub wal_timeout: std::time::Duration,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Pin the snapshot: retention policies never remove it.
    #[arg(long)]
    pub pin: bool,
}

#[derive(Debug, Args)]
pub struct PgWalPushArgs {
    /// The file PostgreSQL hands over (%p), relative to the data directory.
    pub path: PathBuf,
    /// The data directory (PostgreSQL runs archive_command inside it).
    #[arg(long, default_value = ".")]
    pub pgdata: PathBuf,
}

#[derive(Debug, Args)]
pub struct PgWalFetchArgs {
    /// The WAL file PostgreSQL asks for (%f).
    pub file: String,
    /// Where to write it (%p).
    pub dest: PathBuf,
    /// The cluster's system identifier (default: read from the data directory).
    #[arg(long)]
    pub cluster: Option<String>,
    /// The data directory (PostgreSQL runs restore_command inside it).
    #[arg(long, default_value = ".")]
    pub pgdata: PathBuf,
    /// Also fetch this many following segments ahead, into <pgdata>/lifeboat-prefetch
    /// (opening the repository costs more than a segment; 0 turns it off).
    #[arg(long, default_value_t = 8)]
    pub prefetch: u32,
}

#[derive(Debug, Args)]
pub struct PgRestoreArgs {
    /// latest, a time (RFC 3339 or relative like -10m), an LSN (0/3000028), or the name
    /// of a restore point made with pg_create_restore_point.
    #[arg(long, default_value = "latest", allow_hyphen_values = true)]
    pub at: String,
    /// An empty (or new) directory for the cluster.
    #[arg(long)]
    pub target_dir: PathBuf,
    /// The cluster's system identifier, when the repository holds several.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Recover along this timeline (default: the base backup's, never silently `latest`).
    #[arg(long)]
    pub timeline: Option<u32>,
    /// Keep the server's WAL archiving: for a cluster that replaces the lost primary, so
    /// its new timeline is archived too (default: a recovered copy does not archive).
    #[arg(long)]
    pub archive: bool,
    /// Start the server on --port and wait until recovery has finished.
    #[arg(long, requires = "port")]
    pub start: bool,
    /// The port for --start (the server listens on 127.0.0.1 only).
    #[arg(long)]
    pub port: Option<u16>,
    /// How long --start waits for recovery to finish.
    #[arg(long, default_value = "10m", value_parser = duration)]
    pub wait: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct PgSetupArgs {
    /// The server: postgres://user@host:port/db (default: DATABASE_URL).
    pub url: Option<String>,
    /// Change the settings with ALTER SYSTEM (needs a superuser) instead of printing them.
    #[arg(long)]
    pub apply: bool,
    /// The recovery point objective (e.g. 5m, the plan's `rpo`): a quiet server then
    /// archives its WAL at least twice that often (archive_timeout), so point-in-time
    /// recovery reaches within it.
    #[arg(long, default_value = "5m", value_parser = duration)]
    pub rpo: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Remove exactly these snapshots (ids or unique prefixes) instead of applying a
    /// policy.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Keep the N newest snapshots (of each group: host and paths).
    #[arg(long, default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest snapshot of each of the N newest hours that have one.
    #[arg(long, default_value_t = 0)]
    pub keep_hourly: u32,
    /// Keep the newest snapshot of each of the N newest days that have one.
    #[arg(long, default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest snapshot of each of the N newest weeks that have one.
    #[arg(long, default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep the newest snapshot of each of the N newest months that have one.
    #[arg(long, default_value_t = 0)]
    pub keep_monthly: u32,
    /// Keep the newest snapshot of each of the N newest years that have one.
    #[arg(long, default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep every snapshot this close to the group's newest (e.g. 7d, 12h).
    #[arg(long, value_parser = duration)]
    pub keep_within: Option<std::time::Duration>,
    /// Keep every snapshot with this tag (repeatable).
    #[arg(long = "keep-tag")]
    pub keep_tags: Vec<String>,
    /// Only consider the snapshots these match (e.g. --tag plan:app, as the agent tags
    /// them).
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Show what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Repack partly used packs until unused data is at most this percentage of used data.
    #[arg(long, default_value_t = 5.0, value_name = "PCT")]
    pub max_unused: f64,
    /// Only delete packs condemned at least this long ago (on top of waiting for the
    /// backups that were running when they were condemned).
    #[arg(long, value_parser = duration)]
    pub grace: Option<std::time::Duration>,
    /// Show what would be condemned and repacked; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Take a pinned snapshot of each source before running the command.
    #[arg(long, required = true)]
    pub snapshot_before: bool,
    /// What to snapshot: a path, a sqlite:/file: URL, or a postgres:// or mysql:// URL
    /// (repeatable; default: DATABASE_URL).
    #[arg(long)]
    pub source: Vec<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also download and check data: all of it, or a percentage of packs (e.g. =10).
    #[arg(long, num_args = 0..=1, default_missing_value = "100", value_name = "PCT")]
    pub read_data: Option<f64>,
    /// Verify every target of this lifeboat.toml instead of --repo.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunbookArgs {
    /// md or html.
    #[arg(long, default_value = "md")]
    pub format: String,
    /// Write here instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub file: ConfigFileArgs,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// Which restore point: latest, random, or a time (RFC 3339 or -10m); for a physical
    /// drill also an LSN or a named restore point.
    #[arg(long, default_value = "latest", allow_hyphen_values = true)]
    pub at: String,
    /// PostgreSQL: drill a base backup and the archived WAL in a throwaway cluster (the
    /// default when the repository holds base backups of the server but no dumps).
    #[arg(long)]
    pub physical: bool,
}

/// Which source, from which repository: shared by drill, diff and restore-rows.
#[derive(Debug, Args)]
pub struct SubjectArgs {
    /// A source name of lifeboat.toml, or the path/URL that was backed up (with --repo).
    pub source: String,
    /// The target to read from (default: the first target of a plan with the source).
    #[arg(long)]
    pub target: Option<String>,
    #[command(flatten)]
    pub file: ConfigFileArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// The older restore point (RFC 3339 or relative like -1h).
    #[arg(long, allow_hyphen_values = true)]
    pub from: String,
    /// The newer restore point (default: latest).
    #[arg(long, default_value = "latest", allow_hyphen_values = true)]
    pub to: String,
    /// Only this table.
    #[arg(long)]
    pub table: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestoreRowsArgs {
    /// The source; its live database is where the rows go back.
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// The restore point holding the rows (RFC 3339 or relative like -1h).
    #[arg(long, allow_hyphen_values = true)]
    pub at: String,
    /// The table the rows are in.
    #[arg(long)]
    pub table: String,
    /// Which rows: an SQL condition on the table, e.g. "id IN (17, 42)".
    #[arg(long = "where")]
    pub condition: String,
    /// Write them (otherwise only show what would change).
    #[arg(long)]
    pub apply: bool,
    /// Also put back, in the same transaction, the rows of other tables that reference
    /// the chosen ones through ON DELETE CASCADE and are missing now (a cascade deleted
    /// them with the rows).
    #[arg(long)]
    pub with_children: bool,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Copy from: a target name of lifeboat.toml, or a repository URL (its passphrase:
    /// LIFEBOAT_FROM_PASSWORD_FILE or LIFEBOAT_FROM_PASSWORD, else the usual one).
    #[arg(long)]
    pub from: String,
    /// Copy to: a target name, or a repository URL (the usual passphrase).
    #[arg(long)]
    pub to: String,
    /// The configuration that names the targets.
    #[command(flatten)]
    pub file: ConfigFileArgs,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Repair from this repository's copies: a target name of lifeboat.toml, or a
    /// repository URL (its passphrase: LIFEBOAT_FROM_PASSWORD_FILE or
    /// LIFEBOAT_FROM_PASSWORD, else the usual one).
    #[arg(long)]
    pub from: Option<String>,
    /// The repository to repair: a target name, or a repository URL (default: --repo).
    #[arg(long)]
    pub to: Option<String>,
    /// The configuration that names the targets.
    #[command(flatten)]
    pub file: ConfigFileArgs,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List key slots.
    List,
    /// Add a key slot for a new passphrase (LIFEBOAT_NEW_PASSWORD, --new-password-file or a prompt).
    Add(NewKeyArgs),
    /// Remove a key slot by id (not the one in use).
    Remove {
        /// The slot's id, as `key list` prints it.
        id: String,
    },
    /// Change the passphrase of the slot in use.
    Passwd(NewKeyArgs),
}

#[derive(Debug, Args)]
pub struct NewKeyArgs {
    /// Read the new passphrase from this file.
    #[arg(long, env = "LIFEBOAT_NEW_PASSWORD_FILE")]
    pub new_password_file: Option<PathBuf>,
    #[command(flatten)]
    pub kdf: KdfArgs,
}

/// Checks a restore time (or `tx:N`) when the command line is read, so a bad one is a
/// usage error.
/// Checks `restore --at` when the command line is read: latest, a time, `tx:N`, or a
/// MySQL GTID (`gtid:0-1-42`).
fn restore_moment(text: &str) -> Result<String, String> {
    if let Some(gtid) = text.trim().strip_prefix("gtid:") {
        return gtid
            .parse::<lifeboat_sources::mysql::events::Gtid>()
            .map(|_| text.to_string());
    }
    lifeboat_ops::point_in_time::PointInTime::parse_for_restore(text, chrono::Utc::now())
        .map(|_| text.to_string())
}

/// Checks a time (no `tx:N`) when the command line is read.
fn point_in_time(text: &str) -> Result<String, String> {
    lifeboat_sources::timeline::parse_time(text, chrono::Utc::now())
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

/// `500ms`, `1s`, `15m`, `1h`, `1d`.
fn duration(text: &str) -> Result<std::time::Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: ms, s, m, h or d"))?;
    let amount: u64 = text[..split]
        .parse()
        .map_err(|_| format!("{text:?} is not a duration"))?;
    let seconds = |n: u64| std::time::Duration::from_secs(n);
    match &text[split..] {
        "ms" => Ok(std::time::Duration::from_millis(amount)),
        "s" => Ok(seconds(amount)),
        "m" => Ok(seconds(amount * 60)),
        "h" => Ok(seconds(amount * 3600)),
        "d" => Ok(seconds(amount * 86400)),
        unit => Err(format!(
            "unknown unit {unit:?} in {text:?}: use ms, s, m, h or d"
        )),
    }
    .and_then(|d| {
        if d.is_zero() {
            Err("a duration must be more than zero".into())
        } else {
            Ok(d)
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    /// Every option that takes a time accepts a relative time with a leading `-`, written
    /// as the README and the runbook write it (`--at -1h`, not only `--at=-1h`).
    #[test]
    fn time_options_take_relative_times_after_a_space() {
        for line in [
            "lifeboat diff app --from -1h",
            "lifeboat diff app --from -2h --to -1h",
            "lifeboat restore-rows app --at -1h --table customers --where id=1",
            "lifeboat drill app --at -10m",
            "lifeboat restore --source app --at -10m --target ./restored.db",
            "lifeboat recover --at -2h",
            "lifeboat pg restore --at -10m --target-dir /tmp/x",
        ] {
            let argv = line.split_whitespace();
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!("{line}: {e}");
            }
        }
    }

    /// `--help` documents every command, argument and flag (clap's own consistency checks
    /// run too); the generated man pages and completions come from the same definitions.
    #[test]
    fn every_command_and_flag_is_documented() {
        use clap::CommandFactory;
        let command = Cli::command();
        command.clone().debug_assert();
        let mut undocumented = Vec::new();
        let mut stack = vec![(String::from("lifeboat"), command)];
        while let Some((path, command)) = stack.pop() {
            if command.get_about().is_none() && path != "lifeboat help" {
                undocumented.push(path.clone());
            }
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    undocumented.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                stack.push((format!("{path} {}", sub.get_name()), sub.clone()));
            }
        }
        assert!(undocumented.is_empty(), "undocumented: {undocumented:#?}");
    }
}
