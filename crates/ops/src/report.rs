//! What the use cases report. Each type is both what `lifeboat <command> --json` prints
//! and what the agent reads back, so the two cannot drift apart: fields are required and
//! unknown ones refused, and [`parse`] says which command's report could not be read.

use chrono::{DateTime, Utc};
use lifeboat_repo::snapshot::{SnapshotSummary, SnapshotWarning};
use lifeboat_repo::Id;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `lifeboat backup --json`: the snapshot saved (or, with `--skip-if-unchanged`, the one
/// that already holds the same tree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupReport {
    pub id: Id,
    pub short_id: String,
    /// When the source was read: the snapshot's time, or when nothing had changed.
    pub time: DateTime<Utc>,
    /// Nothing changed since snapshot `id`, so no snapshot was saved.
    pub skipped: bool,
    pub summary: SnapshotSummary,
    /// Packs a damaged-pack notice asked this backup to store again.
    pub recovered_packs: u64,
    /// Paths the snapshot lacks or holds in a lesser form (`backup` then exits 6).
    pub warnings: Vec<SnapshotWarning>,
    /// The command that puts this snapshot back over the live data (a database, or the
    /// files where they were), ready to paste: what `run --snapshot-before` prints when
    /// the command it guards fails. None for a command's output or a dry run.
    pub rollback: Option<String>,
}

/// `lifeboat drill --json`, and the record kept in the repository (`drills/<id>`). Unknown
/// fields are accepted here alone: records written by a later version must stay readable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    pub time: DateTime<Utc>,
    pub host: String,
    pub source: String,
    pub passed: bool,
    /// Why it failed, in one line.
    pub reason: Option<String>,
    pub restore_point: Option<DateTime<Utc>>,
    pub snapshot: Option<String>,
    /// Start to a checked, queryable copy.
    pub rto_seconds: f64,
    /// Age of the restore point when the drill started.
    pub rpo_seconds: Option<f64>,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub check: String,
    pub passed: bool,
    pub detail: Option<String>,
}

/// `lifeboat status --json`: the newest restore point of every plan's source on each of
/// its targets, measured against the plan's RPO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    pub time: DateTime<Utc>,
    /// No row misses its RPO.
    pub ok: bool,
    pub restore_points: Vec<RestorePointStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestorePointStatus {
    pub plan: String,
    pub source: String,
    pub target: String,
    pub newest: Option<DateTime<Utc>>,
    pub age_seconds: Option<f64>,
    pub rpo_seconds: Option<u64>,
    /// `None` when the plan has no RPO; `Some(false)` also when the target could not be
    /// read (`error` says why).
    pub rpo_met: Option<bool>,
    pub error: Option<String>,
}

/// Reads the report `lifeboat <command> --json` printed, or says in one line why not.
pub fn parse<T: DeserializeOwned>(command: &str, stdout: &str) -> Result<T, String> {
    if stdout.trim().is_empty() {
        return Err(format!("lifeboat {command} printed no report"));
    }
    serde_json::from_str(stdout)
        .map_err(|e| format!("lifeboat {command} printed a report that cannot be read: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> StatusReport {
        StatusReport {
            time: Utc::now(),
            ok: false,
            restore_points: vec![RestorePointStatus {
                plan: "app".into(),
                source: "db".into(),
                target: "local".into(),
                newest: None,
                age_seconds: None,
                rpo_seconds: Some(60),
                rpo_met: Some(false),
                error: Some("storage: timed out".into()),
            }],
        }
    }

    #[test]
    fn a_report_reads_back_as_written() {
        let report = status();
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(parse::<StatusReport>("status", &text).unwrap(), report);
    }

    #[test]
    fn a_missing_or_foreign_report_is_an_error_not_a_default() {
        let empty = parse::<StatusReport>("status", "  \n").unwrap_err();
        assert_eq!(empty, "lifeboat status printed no report");
        // The shape of an older or unrelated report: no `restore_points`.
        let other = parse::<StatusReport>("status", r#"{"time":"2026-12-03T00:00:00Z","ok":true}"#)
            .unwrap_err();
        assert!(other.contains("restore_points"), "{other}");
        let mut value = serde_json::to_value(status()).unwrap();
        value["restore_points"][0]["surprise"] = 1.into();
        let unknown = parse::<StatusReport>("status", &value.to_string()).unwrap_err();
        assert!(unknown.contains("surprise"), "{unknown}");
    }
}
