//! Actions asked for through the API: run a plan's backups now, or its restore drills, or
//! restore one source into scratch space. The HTTP side queues them; the agent's loop
//! starts each as it starts a scheduled job (so a backup or drill never runs beside the
//! same plan's scheduled run; restores run one at a time), and the outcome is read back
//! from the job history (a restore's, from its report). Each has an id the caller polls
//! or follows.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use lifeboat_ops::restore::RestoreReport;
use schemars::JsonSchema;
use serde::Serialize;

/// How many finished actions are kept for polling; older ones are forgotten.
const KEPT: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Back up each source of the plan to each of its targets, then apply its retention.
    Backup,
    /// Restore each source of the plan from each target into scratch space and check it.
    Drill,
    /// Restore one source, as it was at a moment, into the agent's scratch space.
    Restore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Action {
    pub id: u64,
    pub kind: ActionKind,
    /// The plan (for a restore, the first plan that backs its source up).
    pub plan: String,
    /// A restore's source, target and moment (`at` as it was asked for).
    pub source: Option<String>,
    pub target: Option<String>,
    pub at: Option<String>,
    pub requested: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub state: ActionState,
    /// What failed, one `target: error` (or `source from target: reason`) per failure.
    pub error: Option<String>,
    /// What a finished restore wrote, and where.
    pub restored: Option<RestoreReport>,
}

/// What a restore action restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreWanted {
    pub source: String,
    pub target: String,
    pub at: String,
}

#[derive(Default)]
pub struct Actions {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    last_id: u64,
    list: Vec<Action>,
}

impl Actions {
    /// Queues `kind` for `plan`, unless one is queued or running already (then `Err` with
    /// that one: asking twice does not run twice).
    pub fn request(&self, kind: ActionKind, plan: &str) -> Result<Action, Box<Action>> {
        self.queue(kind, plan, None)
    }

    /// Queues a restore of `wanted`, unless the same restore is queued or running.
    pub fn request_restore(
        &self,
        plan: &str,
        wanted: RestoreWanted,
    ) -> Result<Action, Box<Action>> {
        self.queue(ActionKind::Restore, plan, Some(wanted))
    }

    fn queue(
        &self,
        kind: ActionKind,
        plan: &str,
        wanted: Option<RestoreWanted>,
    ) -> Result<Action, Box<Action>> {
        let mut inner = self.inner.lock().expect("actions");
        let (source, target, at) = match wanted {
            Some(w) => (Some(w.source), Some(w.target), Some(w.at)),
            None => (None, None, None),
        };
        if let Some(pending) = inner.list.iter().find(|a| {
            a.kind == kind
                && a.plan == plan
                && (a.source.as_ref(), a.target.as_ref(), a.at.as_ref())
                    == (source.as_ref(), target.as_ref(), at.as_ref())
                && matches!(a.state, ActionState::Queued | ActionState::Running)
        }) {
            return Err(Box::new(pending.clone()));
        }
        inner.last_id += 1;
        let action = Action {
            id: inner.last_id,
            kind,
            plan: plan.to_string(),
            source,
            target,
            at,
            requested: Utc::now(),
            started: None,
            finished: None,
            state: ActionState::Queued,
            error: None,
            restored: None,
        };
        inner.list.push(action.clone());
        let finished = inner.list.iter().filter(|a| a.finished.is_some()).count();
        if finished > KEPT {
            let mut excess = finished - KEPT;
            inner.list.retain(|a| {
                let drop = excess > 0 && a.finished.is_some();
                excess -= usize::from(drop);
                !drop
            });
        }
        Ok(action)
    }

    pub fn queued(&self) -> Vec<Action> {
        let inner = self.inner.lock().expect("actions");
        let queued = inner.list.iter().filter(|a| a.state == ActionState::Queued);
        queued.cloned().collect()
    }

    pub fn started(&self, id: u64) {
        self.update(id, |a| {
            a.state = ActionState::Running;
            a.started = Some(Utc::now());
        });
    }

    /// The action that is running `kind` for `plan`, if any.
    pub fn running(&self, kind: ActionKind, plan: &str) -> Option<Action> {
        let inner = self.inner.lock().expect("actions");
        let mut running = inner
            .list
            .iter()
            .filter(|a| a.state == ActionState::Running);
        running.find(|a| a.kind == kind && a.plan == plan).cloned()
    }

    pub fn finished(&self, id: u64, error: Option<String>) {
        self.update(id, |a| {
            a.state = match error {
                None => ActionState::Succeeded,
                Some(_) => ActionState::Failed,
            };
            a.error = error;
            a.finished = Some(Utc::now());
        });
    }

    /// Completes a restore with its report, or its error.
    pub fn finished_restore(&self, id: u64, outcome: Result<RestoreReport, String>) {
        self.update(id, |a| {
            match outcome {
                Ok(report) => {
                    a.state = ActionState::Succeeded;
                    a.restored = Some(report);
                }
                Err(error) => {
                    a.state = ActionState::Failed;
                    a.error = Some(error);
                }
            }
            a.finished = Some(Utc::now());
        });
    }

    /// Whether any restore is running (they run one at a time: each writes a whole copy).
    pub fn restoring(&self) -> bool {
        let inner = self.inner.lock().expect("actions");
        inner
            .list
            .iter()
            .any(|a| a.kind == ActionKind::Restore && a.state == ActionState::Running)
    }

    pub fn get(&self, id: u64) -> Option<Action> {
        let inner = self.inner.lock().expect("actions");
        inner.list.iter().find(|a| a.id == id).cloned()
    }

    /// Every action kept, newest first.
    pub fn list(&self) -> Vec<Action> {
        let inner = self.inner.lock().expect("actions");
        inner.list.iter().rev().cloned().collect()
    }

    fn update(&self, id: u64, change: impl FnOnce(&mut Action)) {
        let mut inner = self.inner.lock().expect("actions");
        if let Some(action) = inner.list.iter_mut().find(|a| a.id == id) {
            change(action);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_twice_gives_the_pending_action_and_finished_ones_are_kept_bounded() {
        let actions = Actions::default();
        let first = actions.request(ActionKind::Backup, "app").unwrap();
        assert_eq!(
            actions.request(ActionKind::Backup, "app").unwrap_err().id,
            first.id
        );
        let drill = actions.request(ActionKind::Drill, "app").unwrap();
        assert_ne!(drill.id, first.id);
        actions.started(first.id);
        assert_eq!(
            actions.running(ActionKind::Backup, "app").unwrap().id,
            first.id
        );
        actions.finished(first.id, Some("local: disk full".into()));
        let done = actions.get(first.id).unwrap();
        assert_eq!(done.state, ActionState::Failed);
        assert_eq!(done.error.as_deref(), Some("local: disk full"));
        assert_eq!(actions.queued().len(), 1);
        for _ in 0..(KEPT + 10) {
            let a = actions.request(ActionKind::Backup, "app").unwrap();
            actions.finished(a.id, None);
        }
        assert!(actions.list().len() <= KEPT + 2, "{}", actions.list().len());
        assert_eq!(actions.list().last().unwrap().kind, ActionKind::Drill);
    }
}
