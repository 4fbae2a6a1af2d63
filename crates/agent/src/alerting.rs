//! When to alert: ping channels hear every job (healthchecks.io counts them), the other
//! channels hear once per incident (a target failing, an objective missed) and once when
//! it is over. A channel that fails is logged and shown in the status; it never changes a
//! job's result.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_alerts::{Event, Notifier};
use lifeboat_config::{AlertKind, Config};

use crate::replicators::ReplicatorStatus;
use crate::state::State;
use crate::status::{AgentStatus, AlertDelivery, ChannelStatus};

/// How many deliveries `/api/v1/alerts` shows; older ones are forgotten.
const KEPT_DELIVERIES: usize = 200;

/// The newest alert deliveries, shared with the HTTP side.
#[derive(Clone, Default)]
pub struct DeliveryLog(Arc<Mutex<VecDeque<AlertDelivery>>>);

impl DeliveryLog {
    fn record(&self, delivery: AlertDelivery) {
        let mut log = self.0.lock().expect("deliveries");
        if log.len() == KEPT_DELIVERIES {
            log.pop_front();
        }
        log.push_back(delivery);
    }

    /// The newest first.
    pub fn newest_first(&self) -> Vec<AlertDelivery> {
        let log = self.0.lock().expect("deliveries");
        log.iter().rev().cloned().collect()
    }
}

pub struct Alerting {
    /// Each plan with an RPO and each of its targets: what a status check measures.
    objectives: Vec<(String, String)>,
    pings: Notifier,
    others: Notifier,
    state: Arc<State>,
    status: Arc<Mutex<AgentStatus>>,
    deliveries: DeliveryLog,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

impl Alerting {
    pub fn new(
        config: &Config,
        state: Arc<State>,
        status: Arc<Mutex<AgentStatus>>,
        deliveries: DeliveryLog,
    ) -> Alerting {
        let (pings, others): (Vec<_>, Vec<_>) = config
            .alerts
            .iter()
            .cloned()
            .partition(|a| a.kind == AlertKind::Ping);
        let objectives = config
            .plans
            .iter()
            .filter(|p| p.rpo.is_some())
            .flat_map(|p| p.targets.iter().map(|t| (p.name.clone(), t.clone())))
            .collect();
        Alerting {
            objectives,
            pings: Notifier::new(&pings, host()),
            others: Notifier::new(&others, host()),
            state,
            status,
            deliveries,
        }
    }

    fn deliver(&self, notifier: &Notifier, event: &Event) {
        let deliveries = notifier.send(event);
        let mut status = self.status.lock().expect("status");
        for delivery in deliveries {
            let index = match status
                .alert_channels
                .iter()
                .position(|c| c.channel == delivery.channel)
            {
                Some(i) => i,
                None => {
                    status.alert_channels.push(ChannelStatus {
                        channel: delivery.channel.clone(),
                        ..Default::default()
                    });
                    status.alert_channels.len() - 1
                }
            };
            let channel = &mut status.alert_channels[index];
            match &delivery.result {
                Ok(()) => channel.sent += 1,
                Err(e) => {
                    tracing::warn!("alert to {} failed: {e}", channel.channel);
                    channel.failed += 1;
                    channel.last_error = Some(e.clone());
                }
            }
            self.deliveries.record(AlertDelivery {
                time: Utc::now(),
                channel: delivery.channel,
                key: event.key(),
                severity: event.severity().as_str().to_string(),
                title: event.title(),
                delivered: delivery.result.is_ok(),
                error: delivery.result.err(),
            });
        }
    }

    pub fn job_started(&self, plan: &str, target: &str) {
        self.deliver(
            &self.pings,
            &Event::JobStarted {
                plan: plan.into(),
                target: target.into(),
            },
        );
    }

    pub fn job_finished(&self, plan: &str, target: &str, result: &Result<String, String>) {
        let key = format!("failed/{plan}/{target}");
        match result {
            Ok(summary) => {
                self.deliver(
                    &self.pings,
                    &Event::JobSucceeded {
                        plan: plan.into(),
                        target: target.into(),
                        summary: summary.clone(),
                    },
                );
                self.resolved(&key, plan, target, || {
                    format!("backups of plan {plan} to {target} succeed again")
                });
            }
            Err(error) => {
                let event = Event::JobFailed {
                    plan: plan.into(),
                    target: target.into(),
                    error: error.clone(),
                };
                self.deliver(&self.pings, &event);
                self.incident(&key, error, &event);
            }
        }
    }

    /// Paths a run's snapshots lack or hold as plain bytes: a warning incident while runs
    /// keep having them, over with the first run that has none. Call only for runs that
    /// saved their snapshots.
    pub fn job_warnings(&self, plan: &str, target: &str, warnings: &[String]) {
        let key = format!("warnings/{plan}/{target}");
        if warnings.is_empty() {
            self.resolved(&key, plan, target, || {
                format!("backups of plan {plan} to {target} store every path again")
            });
            return;
        }
        let event = Event::JobWarnings {
            plan: plan.into(),
            target: target.into(),
            warnings: warnings.to_vec(),
        };
        self.incident(&key, &warnings.join("; "), &event);
    }

    /// An objective check: `newest` is the newest restore point, `met` whether it is
    /// within `objective`.
    pub fn objective(
        &self,
        plan: &str,
        source: &str,
        target: &str,
        newest: Option<DateTime<Utc>>,
        objective: std::time::Duration,
        met: bool,
    ) {
        let key = format!("rpo/{plan}/{source}/{target}");
        if met {
            self.resolved(&key, plan, target, || {
                format!("{source} on {target} is within its RPO again")
            });
        } else {
            let event = Event::RpoMissed {
                plan: plan.into(),
                source: source.into(),
                target: target.into(),
                newest,
                objective,
            };
            let detail = format!("{source} on {target}: no restore point within the RPO");
            self.incident(&key, &detail, &event);
        }
    }

    /// Whether a status check measured the restore points (`None`) or why it could not: a
    /// check that cannot run leaves every objective unwatched, which is an incident on each
    /// plan's targets until a check runs again.
    pub fn measured(&self, error: Option<&str>) {
        for (plan, target) in &self.objectives {
            let key = format!("unchecked/{plan}/{target}");
            match error {
                None => self.resolved(&key, plan, target, || {
                    format!("the restore points of plan {plan} on {target} are measured again")
                }),
                Some(error) => {
                    let event = Event::ObjectiveUnchecked {
                        plan: plan.clone(),
                        target: target.clone(),
                        error: error.to_string(),
                    };
                    self.incident(
                        &key,
                        &format!("restore points not measured: {error}"),
                        &event,
                    );
                }
            }
        }
    }

    /// A drill's outcome: a failure (or an RTO over the objective) is an incident.
    pub fn drill(&self, plan: &str, source: &str, target: &str, failure: Option<String>) {
        let key = format!("drill/{plan}/{source}/{target}");
        match failure {
            None => self.resolved(&key, plan, target, || {
                format!("restore drills of {source} from {target} pass again")
            }),
            Some(reason) => {
                let event = Event::DrillFailed {
                    plan: plan.into(),
                    source: source.into(),
                    target: target.into(),
                    reason: reason.clone(),
                };
                self.deliver(&self.pings, &event);
                self.incident(&key, &reason, &event);
            }
        }
    }

    /// A continuous replicator: down for longer than the plan's RPO (at most a minute)
    /// is an incident (a replicator that restarts in a loop protects nothing), over once
    /// it stays up again.
    pub fn replicator(&self, replicator: &ReplicatorStatus, now: DateTime<Utc>) {
        let ReplicatorStatus {
            plan,
            source,
            target,
            ..
        } = replicator;
        let key = format!("replicator/{plan}/{source}/{target}");
        if replicator.up {
            self.resolved(&key, plan, target, || {
                format!("replication of {source} to {target} runs again")
            });
        } else if let (true, Some(since)) = (replicator.down_too_long(now), replicator.down_since) {
            let error = replicator
                .last_error
                .clone()
                .unwrap_or_else(|| "it keeps stopping".into());
            let event = Event::ReplicatorDown {
                plan: plan.clone(),
                source: source.clone(),
                target: target.clone(),
                since,
                error: error.clone(),
            };
            // Once per incident on every channel: a replicator restarting in a loop would
            // otherwise ping /fail every minute.
            if self.open(&key, &format!("replication of {source} is down: {error}")) {
                self.deliver(&self.others, &event);
                self.deliver(&self.pings, &event);
            }
        }
    }

    /// Tells the non-ping channels about `event` if it opens the incident `key`.
    fn incident(&self, key: &str, detail: &str, event: &Event) {
        if self.open(key, detail) {
            self.deliver(&self.others, event);
        }
    }

    /// Closes the incident `key`; if it was open, sends the recovery notice.
    fn resolved(&self, key: &str, plan: &str, target: &str, what: impl FnOnce() -> String) {
        if let Some(opened) = self.close(key) {
            self.deliver(
                &self.others,
                &Event::Recovered {
                    plan: plan.into(),
                    target: target.into(),
                    what: what(),
                    incident_started: opened,
                },
            );
        }
    }

    fn open(&self, key: &str, detail: &str) -> bool {
        self.state.open_incident(key, detail).unwrap_or_else(|e| {
            tracing::warn!("cannot record incident {key}: {e}");
            true
        })
    }

    fn close(&self, key: &str) -> Option<DateTime<Utc>> {
        self.state.close_incident(key).unwrap_or_else(|e| {
            tracing::warn!("cannot record the end of incident {key}: {e}");
            None
        })
    }
}
