//! The operations layer: Lifeboat's use cases as functions over typed requests and typed
//! reports, between the work crates (`repo`, `sources`) and the front ends (the `lifeboat`
//! binary, the agent). A report is one serde type, written by the binary as `--json` and
//! read back by the agent strictly (`report::parse`): a report that does not parse is an
//! error the agent turns into an incident, never a row of zeros.

pub mod backup;
pub mod drill;
pub mod forget;
pub mod meters;
pub mod mysql_pitr;
pub mod npm_project;
pub mod pg;
pub mod point_in_time;
pub mod protection;
pub mod report;
pub mod request;
pub mod restore;
pub mod restore_snapshot;
pub mod rows;
pub mod snapshots;
pub mod source_kind;
pub mod status;
pub mod subject;
pub mod tags;
pub mod timeline;

pub use report::{BackupReport, CheckResult, DrillReport, RestorePointStatus, StatusReport};

/// The error and its causes on one line, without repeating a cause already quoted.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

/// `text` as one shell word: as is when it is plain, else single-quoted. Used for the
/// commands Lifeboat writes for people (rollbacks, fixes) and for PostgreSQL
/// (`archive_command`, `restore_command`).
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._:@%+=,-".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
