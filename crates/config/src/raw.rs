//! The file as written: serde structs that keep spans, and from which the JSON Schema is
//! generated (doc comments become the descriptions editors show).
//!
//! Values stay strings here (durations, schedules, addresses) so that interpolation and
//! validation run after parsing, with every span still pointing into the original text.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::spanned::Spanned;

/// The pattern of a duration: whole numbers with units w, d, h, m, s, largest first.
const DURATION_PATTERN: &str = "^([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$";

/// Lifeboat's configuration: what to back up (sources), where to (targets), when and how
/// long to keep it (plans), the agent that runs plans, and where to send alerts.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lifeboat.toml")]
pub(crate) struct RawConfig {
    /// Something to back up; give each a unique name.
    #[serde(default)]
    pub source: Vec<RawSource>,
    /// A repository that backups are written to.
    #[serde(default)]
    pub target: Vec<RawTarget>,
    /// Backs up sources into targets on a schedule, or continuously.
    #[serde(default)]
    pub plan: Vec<RawPlan>,
    /// The long-running agent that executes plans.
    pub agent: Option<RawAgent>,
    /// Where failures and missed objectives are reported.
    #[serde(default)]
    pub alert: Vec<RawAlert>,
}

/// A source: a database URL, a path, or a command whose standard output is stored.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = exactly_one_location)]
#[schemars(rename = "Source")]
pub(crate) struct RawSource {
    /// Unique among sources; plans refer to it.
    #[schemars(length(min = 1))]
    pub name: Spanned<String>,
    /// `sqlite:./app.db`, `postgres://...`, `mysql://...` or a path (relative paths are
    /// relative to this file). `${VAR}` is replaced from the environment.
    pub url: Option<Spanned<String>>,
    /// A shell command whose standard output is backed up (instead of url). `${VAR}` is
    /// replaced from the environment.
    pub command: Option<Spanned<String>>,
    /// SQL queries that must return true after a restore (restore drills run them).
    #[serde(default)]
    pub checks: Vec<String>,
    /// For a directory: patterns of what to leave out, as `backup --exclude` takes them
    /// (`*.log` a name anywhere, `/srv/app/tmp` a whole path, `**` spans directories).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// For a directory: leave out every directory holding a file of one of these names
    /// (e.g. `CACHEDIR.TAG`).
    #[serde(default)]
    pub exclude_if_present: Vec<String>,
    /// For a directory: do not cross into other file systems.
    #[serde(default)]
    pub one_file_system: bool,
}

/// A target: a repository location.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Target")]
pub(crate) struct RawTarget {
    /// Unique among targets; plans refer to it.
    #[schemars(length(min = 1))]
    pub name: Spanned<String>,
    /// A path (relative to this file), `file:///...`, `s3://bucket/prefix`,
    /// `gcs://bucket/prefix` or `azblob://container/prefix`. `${VAR}` is replaced from the
    /// environment.
    pub url: Spanned<String>,
    /// The repository password, usually `${SOME_VARIABLE}`. Without password and
    /// password_file, LIFEBOAT_PASSWORD is read when the plan runs.
    pub password: Option<Spanned<String>>,
    /// A file holding the repository password (relative to this file).
    pub password_file: Option<Spanned<String>>,
}

/// A plan: which sources go to which targets, when, and what is kept.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Plan")]
pub(crate) struct RawPlan {
    /// Unique among plans.
    #[schemars(length(min = 1))]
    pub name: Spanned<String>,
    /// Names of sources to back up.
    #[schemars(length(min = 1))]
    pub sources: Option<Spanned<Vec<Spanned<String>>>>,
    /// Names of targets to write to.
    #[schemars(length(min = 1))]
    pub targets: Option<Spanned<Vec<Spanned<String>>>>,
    /// `every 15m` (units w, d, h, m, s), or a cron pattern in UTC: 5 fields, 6 with
    /// seconds first, or @hourly, @daily, @weekly, @monthly, @yearly. Required unless
    /// continuous.
    pub schedule: Option<Spanned<String>>,
    /// Replicate the plan's SQLite and PostgreSQL sources continuously.
    #[serde(default)]
    pub continuous: bool,
    /// Which snapshots forget keeps; at least one rule.
    pub keep: Option<Spanned<RawKeep>>,
    /// Recovery point objective: the most data that may be lost, like `1m`. Must not be
    /// shorter than the schedule's interval unless continuous.
    #[schemars(length(min = 1), regex(pattern = DURATION_PATTERN))]
    pub rpo: Option<Spanned<String>>,
    /// Recovery time objective: how long a restore may take, like `10m`.
    #[schemars(length(min = 1), regex(pattern = DURATION_PATTERN))]
    pub rto: Option<Spanned<String>>,
    /// When the agent runs restore drills of the plan's sources (from each target), in
    /// the same forms as `schedule`, like `every 1d`.
    pub drill: Option<Spanned<String>>,
    /// Which restore point scheduled drills restore: `latest` (the default) or `random`
    /// (any point in the restore window, so old restore points are proven too).
    #[schemars(regex(pattern = r"^(latest|random)$"))]
    pub drill_at: Option<Spanned<String>>,
}

/// A retention policy, as in restic's forget: each rule keeps snapshots, the union is kept.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Keep")]
pub(crate) struct RawKeep {
    /// Keep the last n snapshots.
    #[serde(default)]
    pub last: u32,
    /// Keep the last snapshot of each of the last n hours.
    #[serde(default)]
    pub hourly: u32,
    /// Keep the last snapshot of each of the last n days.
    #[serde(default)]
    pub daily: u32,
    /// Keep the last snapshot of each of the last n weeks.
    #[serde(default)]
    pub weekly: u32,
    /// Keep the last snapshot of each of the last n months.
    #[serde(default)]
    pub monthly: u32,
    /// Keep the last snapshot of each of the last n years.
    #[serde(default)]
    pub yearly: u32,
    /// Keep every snapshot younger than this, like `30d`.
    #[schemars(length(min = 1), regex(pattern = DURATION_PATTERN))]
    pub within: Option<Spanned<String>>,
    /// Keep every snapshot with any of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The agent: runs plans and serves an HTTP API.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Agent")]
pub(crate) struct RawAgent {
    /// Address of the HTTP API, `IP:port` (`localhost:port` is 127.0.0.1). Only loopback
    /// addresses unless allow_remote is true and a token is set.
    #[schemars(extend("default" = "127.0.0.1:7070"))]
    pub listen: Option<Spanned<String>>,
    /// Bearer token the HTTP API requires, usually `${LIFEBOAT_AGENT_TOKEN}`: the operator's,
    /// which may also start actions (run a plan, run a drill).
    pub token: Option<Spanned<String>>,
    /// A second bearer token that may only read (status, history, metrics): for dashboards
    /// and monitoring. Usually `${LIFEBOAT_AGENT_READ_TOKEN}`.
    pub read_token: Option<Spanned<String>>,
    /// Path of the agent's SQLite state database (relative to this file).
    pub state: Option<String>,
    /// Allow listen on a non-loopback address; requires a token.
    #[serde(default)]
    pub allow_remote: bool,
}

/// Where an alert is sent.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = email_needs_from_and_to)]
#[schemars(rename = "Alert")]
pub(crate) struct RawAlert {
    /// How the alert is delivered.
    pub kind: Spanned<RawAlertKind>,
    /// http(s):// for webhook, slack and ping; smtp:// or smtps://host:port for email.
    /// `${VAR}` is replaced from the environment.
    pub url: Spanned<String>,
    /// Sender address (email only).
    pub from: Option<Spanned<String>>,
    /// Recipient addresses (email only).
    #[serde(default)]
    pub to: Vec<Spanned<String>>,
}

/// How an alert is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "AlertKind")]
pub(crate) enum RawAlertKind {
    /// POST a JSON body to url.
    Webhook,
    /// POST to a Slack incoming-webhook url.
    Slack,
    /// GET url after each successful run (a dead man's switch like healthchecks.io).
    Ping,
    /// Send an email through the SMTP server at url.
    Email,
}

fn exactly_one_location(schema: &mut schemars::Schema) {
    schema.insert(
        "oneOf".into(),
        json!([{ "required": ["url"] }, { "required": ["command"] }]),
    );
}

fn email_needs_from_and_to(schema: &mut schemars::Schema) {
    schema.insert(
        "if".into(),
        json!({ "properties": { "kind": { "const": "email" } } }),
    );
    schema.insert("then".into(), json!({ "required": ["from", "to"] }));
}
