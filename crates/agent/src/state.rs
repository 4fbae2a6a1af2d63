//! The agent's own SQLite database: job history (which also says when each plan last
//! ran, so a restart neither repeats nor skips runs) and open incidents (so an alert goes
//! out once per incident, across restarts).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use schemars::JsonSchema;
use serde::Serialize;

use crate::status::Incident;

pub struct State {
    db: Mutex<Connection>,
}

/// One finished (or running) job.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Run {
    pub id: i64,
    pub plan: String,
    pub target: String,
    pub kind: String,
    pub scheduled_for: DateTime<Utc>,
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    pub ok: Option<bool>,
    pub error: Option<String>,
    pub bytes: u64,
    pub duration_ms: u64,
}

/// One drill's outcome, as `lifeboat drill --json` reports it.
#[derive(Debug, Clone)]
pub struct Drill {
    pub finished: DateTime<Utc>,
    pub passed: bool,
    pub reason: Option<String>,
    pub rto_seconds: Option<f64>,
    pub rpo_seconds: Option<f64>,
}

/// The newest drill of a plan's source on a target.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DrillStatus {
    pub plan: String,
    pub source: String,
    pub target: String,
    pub finished: DateTime<Utc>,
    pub passed: bool,
    pub reason: Option<String>,
    pub rto_seconds: Option<f64>,
    pub rpo_seconds: Option<f64>,
    pub last_success: Option<DateTime<Utc>>,
}

/// One drill as it was recorded.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DrillRecord {
    pub plan: String,
    pub source: String,
    pub target: String,
    pub finished: DateTime<Utc>,
    pub passed: bool,
    pub reason: Option<String>,
    /// Start to a checked, queryable copy.
    pub rto_seconds: Option<f64>,
    /// Age of the restore point the drill restored.
    pub rpo_seconds: Option<f64>,
}

/// Per plan and target: what the metrics and the status API show.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct TargetHistory {
    pub last_success: Option<DateTime<Utc>>,
    pub last_run: Option<Run>,
    pub failures_total: u64,
    pub runs_total: u64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    plan TEXT NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    ok INTEGER,
    error TEXT,
    bytes INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_plan ON runs (plan, target, id);
CREATE TABLE IF NOT EXISTS drills (
    id INTEGER PRIMARY KEY,
    plan TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    finished TEXT NOT NULL,
    passed INTEGER NOT NULL,
    reason TEXT,
    rto_ms INTEGER,
    rpo_ms INTEGER
);
CREATE TABLE IF NOT EXISTS incidents (
    key TEXT PRIMARY KEY,
    opened TEXT NOT NULL,
    detail TEXT NOT NULL
);
";

fn time(text: String) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

/// A `runs` row, its columns in the order the queries select them.
fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: row.get(0)?,
        plan: row.get(1)?,
        target: row.get(2)?,
        kind: row.get(3)?,
        scheduled_for: time(row.get(4)?),
        started: time(row.get(5)?),
        finished: row.get::<_, Option<String>>(6)?.map(time),
        ok: row.get(7)?,
        error: row.get(8)?,
        bytes: row.get::<_, i64>(9)? as u64,
        duration_ms: row.get::<_, i64>(10)? as u64,
    })
}

/// The job history names plans, sources and errors: it is the owner's alone. The file is
/// created 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm` the database
/// file's mode), and an older, world-readable one is made private, companions included.
fn make_private(path: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the agent's state {}", path.display()))?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e)
                    .with_context(|| format!("cannot make {} private", Path::new(&file).display()))
            }
            _ => {}
        }
    }
    Ok(())
}

impl State {
    pub fn open(path: &Path) -> Result<State> {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        make_private(path)?;
        let db = Connection::open(path)
            .with_context(|| format!("cannot open the agent's state {}", path.display()))?;
        db.pragma_update(None, "journal_mode", "wal")?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.execute_batch(SCHEMA)
            .with_context(|| format!("{} is not an agent state database", path.display()))?;
        // Added after the first release of the table: older state databases gain it here.
        let acknowledged = db
            .prepare("SELECT 1 FROM pragma_table_info('incidents') WHERE name = 'acknowledged'")?
            .exists([])?;
        if !acknowledged {
            db.execute_batch("ALTER TABLE incidents ADD COLUMN acknowledged TEXT")?;
        }
        Ok(State { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().expect("state database")
    }

    /// Jobs a previous agent left running were cut off when it stopped or died.
    pub fn close_abandoned(&self) -> Result<usize> {
        Ok(self.db().execute(
            "UPDATE runs SET finished = ?1, ok = 0, error = 'abandoned: the agent stopped'
             WHERE finished IS NULL",
            params![Utc::now().to_rfc3339()],
        )?)
    }

    pub fn start_run(
        &self,
        plan: &str,
        target: &str,
        kind: &str,
        scheduled_for: DateTime<Utc>,
    ) -> Result<i64> {
        let db = self.db();
        db.execute(
            "INSERT INTO runs (plan, target, kind, scheduled_for, started) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![plan, target, kind, scheduled_for.to_rfc3339(), Utc::now().to_rfc3339()],
        )?;
        Ok(db.last_insert_rowid())
    }

    pub fn finish_run(
        &self,
        id: i64,
        result: &Result<u64, String>,
        duration_ms: u64,
    ) -> Result<()> {
        let (ok, error, bytes) = match result {
            Ok(bytes) => (true, None, *bytes),
            Err(e) => (false, Some(e.as_str()), 0),
        };
        self.db().execute(
            "UPDATE runs SET finished = ?2, ok = ?3, error = ?4, bytes = ?5, duration_ms = ?6 WHERE id = ?1",
            params![id, Utc::now().to_rfc3339(), ok, error, bytes as i64, duration_ms as i64],
        )?;
        Ok(())
    }

    /// The slot the plan's newest backup run was scheduled for.
    pub fn last_scheduled(&self, plan: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .db()
            .query_row(
                "SELECT max(scheduled_for) FROM runs WHERE plan = ?1 AND kind = 'backup'",
                params![plan],
                |row| row.get::<_, Option<String>>(0),
            )?
            .map(time))
    }

    /// The newest `limit` jobs of every plan and target, newest first.
    pub fn recent_runs(&self, limit: u32) -> Result<Vec<Run>> {
        let db = self.db();
        let mut query = db.prepare(
            "SELECT id, plan, target, kind, scheduled_for, started, finished, ok, error, bytes, duration_ms
             FROM runs ORDER BY id DESC LIMIT ?1",
        )?;
        let runs = query
            .query_map(params![limit], run_from_row)?
            .collect::<rusqlite::Result<Vec<Run>>>()?;
        Ok(runs)
    }

    pub fn history(&self, plan: &str, target: &str) -> Result<TargetHistory> {
        let db = self.db();
        let (runs_total, failures_total): (i64, i64) = db.query_row(
            "SELECT count(*), coalesce(sum(ok = 0), 0) FROM runs WHERE plan = ?1 AND target = ?2",
            params![plan, target],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let last_success = db
            .query_row(
                "SELECT max(finished) FROM runs WHERE plan = ?1 AND target = ?2 AND ok = 1",
                params![plan, target],
                |row| row.get::<_, Option<String>>(0),
            )?
            .map(time);
        let last_run = db
            .query_row(
                "SELECT id, plan, target, kind, scheduled_for, started, finished, ok, error, bytes, duration_ms
                 FROM runs WHERE plan = ?1 AND target = ?2 ORDER BY id DESC LIMIT 1",
                params![plan, target],
                run_from_row,
            )
            .optional()?;
        Ok(TargetHistory {
            last_success,
            last_run,
            failures_total: failures_total as u64,
            runs_total: runs_total as u64,
        })
    }

    pub fn record_drill(
        &self,
        plan: &str,
        source: &str,
        target: &str,
        slot: DateTime<Utc>,
        drill: &Drill,
    ) -> Result<()> {
        self.db().execute(
            "INSERT INTO drills (plan, source, target, scheduled_for, finished, passed, reason, rto_ms, rpo_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                plan,
                source,
                target,
                slot.to_rfc3339(),
                drill.finished.to_rfc3339(),
                drill.passed,
                drill.reason,
                drill.rto_seconds.map(|s| (s * 1000.0) as i64),
                drill.rpo_seconds.map(|s| (s * 1000.0) as i64)
            ],
        )?;
        Ok(())
    }

    pub fn last_drill_slot(&self, plan: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .db()
            .query_row(
                "SELECT max(scheduled_for) FROM drills WHERE plan = ?1",
                params![plan],
                |row| row.get::<_, Option<String>>(0),
            )?
            .map(time))
    }

    /// The newest drill of each plan, source and target, and when one last passed.
    pub fn drills(&self) -> Result<Vec<DrillStatus>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT d.plan, d.source, d.target, d.finished, d.passed, d.reason, d.rto_ms, d.rpo_ms,
                    (SELECT max(finished) FROM drills p
                     WHERE p.plan = d.plan AND p.source = d.source AND p.target = d.target AND p.passed = 1)
             FROM drills d
             WHERE d.id = (SELECT max(id) FROM drills e
                           WHERE e.plan = d.plan AND e.source = d.source AND e.target = d.target)
             ORDER BY d.plan, d.source, d.target",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(DrillStatus {
                plan: row.get(0)?,
                source: row.get(1)?,
                target: row.get(2)?,
                finished: time(row.get(3)?),
                passed: row.get(4)?,
                reason: row.get(5)?,
                rto_seconds: row.get::<_, Option<i64>>(6)?.map(|ms| ms as f64 / 1000.0),
                rpo_seconds: row.get::<_, Option<i64>>(7)?.map(|ms| ms as f64 / 1000.0),
                last_success: row.get::<_, Option<String>>(8)?.map(time),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest `limit` drills of every source, newest first.
    pub fn drill_history(&self, limit: u32) -> Result<Vec<DrillRecord>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT plan, source, target, finished, passed, reason, rto_ms, rpo_ms
             FROM drills ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit], |row| {
            Ok(DrillRecord {
                plan: row.get(0)?,
                source: row.get(1)?,
                target: row.get(2)?,
                finished: time(row.get(3)?),
                passed: row.get(4)?,
                reason: row.get(5)?,
                rto_seconds: row.get::<_, Option<i64>>(6)?.map(|ms| ms as f64 / 1000.0),
                rpo_seconds: row.get::<_, Option<i64>>(7)?.map(|ms| ms as f64 / 1000.0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Opens an incident; true when it was not open already (so an alert is due).
    pub fn open_incident(&self, key: &str, detail: &str) -> Result<bool> {
        Ok(self.db().execute(
            "INSERT OR IGNORE INTO incidents (key, opened, detail) VALUES (?1, ?2, ?3)",
            params![key, Utc::now().to_rfc3339(), detail],
        )? == 1)
    }

    /// Closes an incident; returns when it opened, if it was open (a recovery to report).
    pub fn close_incident(&self, key: &str) -> Result<Option<DateTime<Utc>>> {
        let db = self.db();
        let opened = db
            .query_row(
                "SELECT opened FROM incidents WHERE key = ?1",
                params![key],
                |row| row.get::<_, String>(0),
            )
            .optional()?;
        db.execute("DELETE FROM incidents WHERE key = ?1", params![key])?;
        Ok(opened.map(time))
    }

    pub fn open_incidents(&self) -> Result<Vec<Incident>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT key, opened, detail, acknowledged FROM incidents ORDER BY opened, key",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(Incident {
                key: row.get(0)?,
                opened: time(row.get(1)?),
                detail: row.get(2)?,
                acknowledged: row.get::<_, Option<String>>(3)?.map(time),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks an open incident as seen by a person (the first time counts); `None` when no
    /// incident of that key is open. Alerting does not change: it already said it once.
    pub fn acknowledge_incident(&self, key: &str) -> Result<Option<Incident>> {
        let changed = self.db().execute(
            "UPDATE incidents SET acknowledged = coalesce(acknowledged, ?2) WHERE key = ?1",
            params![key, Utc::now().to_rfc3339()],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        Ok(self.open_incidents()?.into_iter().find(|i| i.key == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_state_database_gains_acknowledgements_and_keeps_its_incidents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE incidents (key TEXT PRIMARY KEY, opened TEXT NOT NULL, detail TEXT NOT NULL);
             INSERT INTO incidents VALUES ('failed/app/local', '2026-12-01T00:00:00Z', 'disk full');",
        )
        .unwrap();
        drop(old);
        let state = State::open(&path).unwrap();
        let open = state.open_incidents().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].acknowledged, None);
        let first = state
            .acknowledge_incident("failed/app/local")
            .unwrap()
            .unwrap();
        assert!(first.acknowledged.is_some());
        // The first acknowledgement counts; a second does not move it.
        let again = state
            .acknowledge_incident("failed/app/local")
            .unwrap()
            .unwrap();
        assert_eq!(again.acknowledged, first.acknowledged);
        assert!(state
            .acknowledge_incident("failed/app/other")
            .unwrap()
            .is_none());
        drop(state);
        // Opening it again does not add the column twice.
        State::open(&path).unwrap();
    }

    #[test]
    fn the_state_database_is_private() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/agent.db");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        {
            let state = State::open(&path).unwrap();
            state
                .start_run("app", "local", "backup", Utc::now())
                .unwrap();
            for file in ["agent.db", "agent.db-wal", "agent.db-shm"] {
                assert_eq!(mode(&dir.path().join("state").join(file)), 0o600, "{file}");
            }
            assert_eq!(mode(&dir.path().join("state")), 0o700);
        }
        // A database an older agent left world-readable is made private.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        State::open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn runs_and_incidents_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/agent.db");
        let slot = Utc::now();
        {
            let state = State::open(&path).unwrap();
            let ok = state.start_run("app", "local", "backup", slot).unwrap();
            state.finish_run(ok, &Ok(123), 40).unwrap();
            let bad = state.start_run("app", "local", "backup", slot).unwrap();
            state
                .finish_run(bad, &Err("storage unreachable".into()), 5)
                .unwrap();
            state.start_run("app", "local", "backup", slot).unwrap();
            assert!(state.open_incident("failed/app/local", "x").unwrap());
            assert!(!state.open_incident("failed/app/local", "x").unwrap());
        }
        let state = State::open(&path).unwrap();
        assert_eq!(state.close_abandoned().unwrap(), 1);
        let history = state.history("app", "local").unwrap();
        assert_eq!(history.runs_total, 3);
        assert_eq!(history.failures_total, 2);
        assert!(history.last_success.is_some());
        let last = history.last_run.unwrap();
        assert_eq!(last.error.as_deref(), Some("abandoned: the agent stopped"));
        assert_eq!(
            state.last_scheduled("app").unwrap().map(|t| t.timestamp()),
            Some(slot.timestamp())
        );
        assert!(!state.open_incident("failed/app/local", "x").unwrap());
        assert!(state.close_incident("failed/app/local").unwrap().is_some());
        assert!(state.close_incident("failed/app/local").unwrap().is_none());
    }
}
