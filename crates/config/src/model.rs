//! The validated configuration: what the rest of Lifeboat consumes.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::schedule::Schedule;
use crate::secret::Secret;

/// A whole `lifeboat.toml`, checked: names are unique, plans refer to existing sources
/// and targets, schedules fire, and `${VAR}`s are filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub sources: Vec<Source>,
    pub targets: Vec<Target>,
    pub plans: Vec<Plan>,
    pub agent: AgentSettings,
    pub alerts: Vec<Alert>,
}

impl Config {
    /// The source called `name`.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The target called `name`.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// The plan called `name`.
    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.name == name)
    }
}

/// Something to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub location: SourceLocation,
    /// SQL queries that must return true after a restore.
    pub checks: Vec<String>,
    /// For a path: what its backups leave out.
    pub select: FileSelection,
}

/// What a backup of a directory leaves out (`backup --exclude`, `--exclude-if-present`,
/// `--one-file-system`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSelection {
    pub exclude: Vec<String>,
    pub exclude_if_present: Vec<String>,
    pub one_file_system: bool,
}

impl FileSelection {
    pub fn is_empty(&self) -> bool {
        self.exclude.is_empty() && self.exclude_if_present.is_empty() && !self.one_file_system
    }
}

/// Where a source's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLocation {
    /// A path, `sqlite:`/`file:` URL, or `postgres://`/`mysql://` URL.
    Url(String),
    /// A shell command whose standard output is stored.
    Command(String),
}

/// A repository that backups are written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub url: String,
    /// At most one of `password` and `password_file` is set; with neither, the password
    /// comes from `LIFEBOAT_PASSWORD` when the plan runs.
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
}

/// Which sources go to which targets, when, and what is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    /// Names of sources, each present in [`Config::sources`]; never empty.
    pub sources: Vec<String>,
    /// Names of targets, each present in [`Config::targets`]; never empty.
    pub targets: Vec<String>,
    /// Set unless the plan is continuous.
    pub schedule: Option<Schedule>,
    pub continuous: bool,
    pub keep: Option<Keep>,
    /// Recovery point objective; no shorter than the schedule's interval unless continuous.
    pub rpo: Option<Duration>,
    /// Recovery time objective.
    pub rto: Option<Duration>,
    /// When the agent drills the plan's sources.
    pub drill: Option<Schedule>,
    /// Which restore point those drills restore: `latest` or `random`.
    pub drill_at: String,
}

/// A retention policy (restic's forget rules); at least one rule is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keep {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    pub within: Option<Duration>,
    pub tags: Vec<String>,
}

impl Keep {
    /// Whether the policy would keep nothing at all (forget would delete everything).
    pub fn keeps_nothing(&self) -> bool {
        let counts = [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ];
        counts.iter().all(|&n| n == 0) && self.within.is_none() && self.tags.is_empty()
    }
}

/// The agent's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// Loopback unless `allow_remote` is set along with a token.
    pub listen: SocketAddr,
    /// Bearer token the HTTP API requires; the operator's, which may also start actions.
    pub token: Option<Secret>,
    /// A bearer token that may only read.
    pub read_token: Option<Secret>,
    /// Path of the agent's SQLite state database.
    pub state: Option<PathBuf>,
    /// Whether `listen` may be a non-loopback address.
    pub allow_remote: bool,
}

impl AgentSettings {
    pub const DEFAULT_LISTEN: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 7070);
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            listen: Self::DEFAULT_LISTEN,
            token: None,
            read_token: None,
            state: None,
            allow_remote: false,
        }
    }
}

/// Where failures are reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    /// http(s) for webhook, slack and ping; smtp(s) for email. Secret because webhook
    /// URLs are credentials.
    pub url: Secret,
    /// Sender (email only; set for email).
    pub from: Option<String>,
    /// Recipients (email only; non-empty for email).
    pub to: Vec<String>,
}

/// How an alert is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    Webhook,
    Slack,
    Ping,
    Email,
}
