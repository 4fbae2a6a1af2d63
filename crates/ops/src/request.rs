//! A use case asked for as data. The agent writes one request as JSON to the standard
//! input of a `lifeboat request` child (never as arguments, which every user on the
//! host can read in the process list) and reads back the use case's typed report.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "operation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The restore points of a source of `lifeboat.toml`: a
    /// [`TimelineReport`](crate::timeline::TimelineReport).
    Timeline {
        source: String,
        /// The target to read from (default: the first target of the source's plan).
        target: Option<String>,
    },
    /// The source as it was at `at`, restored into the directory `into`, which must not
    /// exist yet (it is made, readable by its owner only): a
    /// [`RestoreReport`](crate::restore::RestoreReport).
    Restore {
        source: String,
        target: Option<String>,
        /// `latest`, an RFC 3339 time, a relative time (`-10m`) or `tx:N`.
        at: String,
        into: PathBuf,
    },
    /// A restore drill of a source from a target: a
    /// [`DrillReport`](crate::report::DrillReport), passed or not.
    Drill {
        source: String,
        target: Option<String>,
        /// `latest`, `random` or a time.
        at: String,
    },
    /// Every plan's sources (or these) measured against their RPO on each target: a
    /// [`StatusReport`](crate::report::StatusReport).
    Status { sources: Vec<String> },
    /// The snapshots of the repository the child was given, oldest first (of one source
    /// of `lifeboat.toml`: those tagged with it): a list of
    /// [`SnapshotEntry`](crate::snapshots::SnapshotEntry).
    Snapshots { source: Option<String> },
    /// A backup of a source of `lifeboat.toml` (its location and selection read from the
    /// file) into the repository the child was given, tagged `tags`: a
    /// [`BackupReport`](crate::report::BackupReport).
    Backup { source: String, tags: Vec<String> },
    /// The snapshots of a plan of `lifeboat.toml` (those tagged with it) thinned to the
    /// plan's `keep`: a [`ForgetReport`](crate::forget::ForgetReport).
    Forget { plan: String },
}

impl Request {
    /// Reads one request; the error names what was wrong with it.
    pub fn parse(text: &str) -> Result<Request, String> {
        serde_json::from_str(text).map_err(|e| format!("cannot read the request: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_unknown_fields_are_refused() {
        let restore = Request::Restore {
            source: "app-db".into(),
            target: None,
            at: "tx:7".into(),
            into: "/var/lib/lifeboat/restores/1".into(),
        };
        let text = serde_json::to_string(&restore).unwrap();
        assert!(text.contains(r#""operation":"restore""#), "{text}");
        assert_eq!(Request::parse(&text), Ok(restore));
        assert!(Request::parse(
            r#"{"operation":"timeline","source":"a","target":null,"force":true}"#
        )
        .unwrap_err()
        .contains("force"));
        assert!(Request::parse(r#"{"operation":"drop_everything"}"#).is_err());
    }
}
