//! What the agent knows right now, shared between its threads and served by the HTTP API
//! (`/api/v1/status` as JSON, `/metrics` in Prometheus' text format).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use crate::replicators::ReplicatorStatus;
use crate::state::TargetHistory;
pub use lifeboat_ops::RestorePointStatus;

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct AgentStatus {
    pub version: &'static str,
    pub started: Option<DateTime<Utc>>,
    pub ready: bool,
    pub plans: Vec<PlanStatus>,
    /// The newest restore point of each plan's source on each target (from `status`).
    pub restore_points: Vec<RestorePointStatus>,
    pub restore_points_checked: Option<DateTime<Utc>>,
    /// Why the last check could not measure them (the rows are then the previous check's).
    pub restore_points_error: Option<String>,
    pub replicators: Vec<ReplicatorStatus>,
    pub drills: Vec<crate::state::DrillStatus>,
    pub alert_channels: Vec<ChannelStatus>,
    pub open_incidents: Vec<Incident>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanStatus {
    pub name: String,
    pub schedule: Option<String>,
    /// The plan's recovery time objective: how long a drill may take.
    pub rto_seconds: Option<u64>,
    pub next_run: Option<DateTime<Utc>>,
    pub running: bool,
    pub targets: Vec<TargetStatus>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TargetStatus {
    pub target: String,
    #[serde(flatten)]
    pub history: TargetHistory,
}

/// One alert sent (or not) to one channel.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AlertDelivery {
    pub time: DateTime<Utc>,
    /// The channel's kind and host (never its URL's path or credentials).
    pub channel: String,
    /// The event's key, e.g. `failed/app/offsite`.
    pub key: String,
    /// `info`, `recovery`, `warning` or `failure`.
    pub severity: String,
    pub title: String,
    pub delivered: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ChannelStatus {
    pub channel: String,
    pub sent: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Incident {
    pub key: String,
    pub opened: DateTime<Utc>,
    pub detail: String,
    /// When someone said through the API that they are on it.
    pub acknowledged: Option<DateTime<Utc>>,
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl AgentStatus {
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
        let per_target = |f: &dyn Fn(&TargetHistory) -> Option<f64>| -> Vec<(String, f64)> {
            self.plans
                .iter()
                .flat_map(|p| {
                    p.targets.iter().filter_map(move |t| {
                        f(&t.history).map(|v| {
                            (
                                format!(
                                    "plan=\"{}\",target=\"{}\"",
                                    label(&p.name),
                                    label(&t.target)
                                ),
                                v,
                            )
                        })
                    })
                })
                .collect()
        };
        family(
            "lifeboat_agent_ready",
            "gauge",
            "1 once the agent runs its schedules.",
            vec![(String::new(), self.ready as u8 as f64)],
        );
        family(
            "lifeboat_job_last_success_timestamp_seconds",
            "gauge",
            "When the plan last succeeded on the target.",
            per_target(&|h| h.last_success.map(|t| t.timestamp() as f64)),
        );
        family(
            "lifeboat_job_last_duration_seconds",
            "gauge",
            "How long the plan's last run on the target took.",
            per_target(&|h| h.last_run.as_ref().map(|r| r.duration_ms as f64 / 1000.0)),
        );
        family(
            "lifeboat_job_last_stored_bytes",
            "gauge",
            "Bytes the plan's last run added to the target.",
            per_target(&|h| h.last_run.as_ref().map(|r| r.bytes as f64)),
        );
        family(
            "lifeboat_job_last_success",
            "gauge",
            "1 if the plan's last run on the target succeeded.",
            per_target(&|h| {
                h.last_run
                    .as_ref()
                    .and_then(|r| r.ok)
                    .map(|ok| ok as u8 as f64)
            }),
        );
        family(
            "lifeboat_job_runs_total",
            "counter",
            "Runs of the plan on the target.",
            per_target(&|h| Some(h.runs_total as f64)),
        );
        family(
            "lifeboat_job_failures_total",
            "counter",
            "Failed runs of the plan on the target.",
            per_target(&|h| Some(h.failures_total as f64)),
        );
        let points = |f: &dyn Fn(&RestorePointStatus) -> Option<f64>| -> Vec<(String, f64)> {
            self.restore_points
                .iter()
                .filter_map(|r| {
                    f(r).map(|v| {
                        (
                            format!(
                                "plan=\"{}\",source=\"{}\",target=\"{}\"",
                                label(&r.plan),
                                label(&r.source),
                                label(&r.target)
                            ),
                            v,
                        )
                    })
                })
                .collect()
        };
        family(
            "lifeboat_restore_point_age_seconds",
            "gauge",
            "Age of the newest restore point of the source on the target.",
            points(&|r| r.age_seconds),
        );
        family(
            "lifeboat_rpo_met",
            "gauge",
            "1 if the newest restore point is within the plan's RPO.",
            points(&|r| r.rpo_met.map(|m| m as u8 as f64)),
        );
        let drills = |f: &dyn Fn(&crate::state::DrillStatus) -> Option<f64>| -> Vec<(String, f64)> {
            self.drills
                .iter()
                .filter_map(|d| {
                    f(d).map(|v| {
                        (
                            format!(
                                "plan=\"{}\",source=\"{}\",target=\"{}\"",
                                label(&d.plan),
                                label(&d.source),
                                label(&d.target)
                            ),
                            v,
                        )
                    })
                })
                .collect()
        };
        family(
            "lifeboat_drill_last_success_timestamp_seconds",
            "gauge",
            "When a restore drill of the source from the target last passed.",
            drills(&|d| d.last_success.map(|t| t.timestamp() as f64)),
        );
        family(
            "lifeboat_drill_last_passed",
            "gauge",
            "1 if the newest restore drill passed.",
            drills(&|d| Some(d.passed as u8 as f64)),
        );
        family(
            "lifeboat_drill_last_rto_seconds",
            "gauge",
            "Recovery time measured by the newest restore drill.",
            drills(&|d| d.rto_seconds),
        );
        family(
            "lifeboat_replicator_up",
            "gauge",
            "1 while the continuous replicator runs.",
            self.replicators
                .iter()
                .map(|r| {
                    (
                        format!(
                            "plan=\"{}\",source=\"{}\",target=\"{}\"",
                            label(&r.plan),
                            label(&r.source),
                            label(&r.target)
                        ),
                        r.up as u8 as f64,
                    )
                })
                .collect(),
        );
        family(
            "lifeboat_alert_failures_total",
            "counter",
            "Alerts that could not be delivered, per channel.",
            self.alert_channels
                .iter()
                .map(|c| {
                    (
                        format!("channel=\"{}\"", label(&c.channel)),
                        c.failed as f64,
                    )
                })
                .collect(),
        );
        out
    }
}
