//! `lifeboat.toml`: parsing and validation.
//!
//! ```toml
//! [[source]]
//! name = "app"
//! url = "sqlite:./data/app.db"
//!
//! [[target]]
//! name = "local"
//! url = "/var/backups/lifeboat"
//!
//! [[plan]]
//! name = "app"
//! sources = ["app"]
//! targets = ["local"]
//! schedule = "every 15m"
//! keep = { last = 10, daily = 7 }
//! ```
//!
//! [`Config::load`] reads a file; [`Config::parse`] checks text. Either returns the typed
//! [`Config`] or every problem found, each with the line and column of the offending
//! value ([`ConfigErrors`]). Checking happens in stages, each only if the one before
//! passed: TOML syntax, unknown keys (all of them), value types, then the rules between
//! values (all of them): unique names, plans that name existing sources and targets,
//! schedules that fire, objectives that can be met, alerts that can be delivered.
//!
//! `${VAR}` in url, command, password, token and alert url/from/to is replaced from the
//! environment (`$${` is a literal `${`); a missing variable is an error that names it
//! (except, with [`Needs::Repositories`], in the agent's token and alert channels).
//! Passwords, tokens and alert URLs are [`Secret`]s, which never print.
//!
//! The agent's `listen` must be a loopback address unless `[agent]` sets both
//! `allow_remote = true` and a `token`: the API can start backups and restores.
//!
//! ```
//! use lifeboat_config::Config;
//!
//! let text = "[agent]\nlisten = \"0.0.0.0:7070\"\n";
//! let errors = Config::parse(text, "lifeboat.toml", &|name| std::env::var(name).ok())
//!     .unwrap_err();
//! assert!(errors.to_string().starts_with("lifeboat.toml:2:10: agent would listen on 0.0.0.0:7070"));
//! ```
//!
//! [`json_schema`] describes the file for editors; it is kept in
//! `docs/lifeboat.schema.json` (a test fails when that copy is stale).

mod check;
mod duration;
mod error;
mod interpolate;
mod keys;
mod load;
mod model;
mod paths;
mod raw;
mod schedule;
mod schema;
mod secret;
mod spanned;

pub use duration::{format_duration, parse_duration, DurationError};

/// How much of the file a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The agent, and `config check`: every `${VAR}` must be set.
    Everything,
    /// Commands that read sources, targets and plans (`status`, `plan`, `restore`, ...):
    /// an `[agent]` token or `[[alert]]` channel whose variable is unset is left out, so
    /// that a recovery host without the agent's secrets can still use the file.
    Repositories,
}
pub use error::{ConfigError, ConfigErrors};
pub use load::dotenv_in;
pub use model::{
    AgentSettings, Alert, AlertKind, Config, FileSelection, Keep, Plan, Source, SourceLocation,
    Target,
};
pub use schedule::{Schedule, ScheduleError};
pub use schema::json_schema;
pub use secret::Secret;
