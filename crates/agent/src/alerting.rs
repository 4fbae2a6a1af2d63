//! When to alert: ping channels hear every job (healthchecks.io counts them), the other
//! channels hear once per incident (a target failing, an objective missed) and once when
//! it is over. A channel that fails is logged and shown in the status; it never changes a
//! job's result.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_alerts::{Event, Notifier};
use lifeboat_config::{AlertKind, Config};

use crate::state::State;
use crate::status::{AgentStatus, ChannelStatus};

pub struct Alerting {
    pings: Notifier,
    others: Notifier,
    state: Arc<State>,
    status: Arc<Mutex<AgentStatus>>,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

impl Alerting {
    pub fn new(config: &Config, state: Arc<State>, status: Arc<Mutex<AgentStatus>>) -> Alerting {
        let (pings, others): (Vec<_>, Vec<_>) = config
            .alerts
            .iter()
            .cloned()
            .partition(|a| a.kind == AlertKind::Ping);
        Alerting {
            pings: Notifier::new(&pings, host()),
            others: Notifier::new(&others, host()),
            state,
            status,
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
            match delivery.result {
                Ok(()) => channel.sent += 1,
                Err(e) => {
                    tracing::warn!("alert to {} failed: {e}", channel.channel);
                    channel.failed += 1;
                    channel.last_error = Some(e);
                }
            }
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
                if let Some(opened) = self.close(&key) {
                    self.deliver(
                        &self.others,
                        &Event::Recovered {
                            plan: plan.into(),
                            target: target.into(),
                            what: format!("backups of plan {plan} to {target} succeed again"),
                            incident_started: opened,
                        },
                    );
                }
            }
            Err(error) => {
                let event = Event::JobFailed {
                    plan: plan.into(),
                    target: target.into(),
                    error: error.clone(),
                };
                self.deliver(&self.pings, &event);
                if self.open(&key, error) {
                    self.deliver(&self.others, &event);
                }
            }
        }
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
            if let Some(opened) = self.close(&key) {
                self.deliver(
                    &self.others,
                    &Event::Recovered {
                        plan: plan.into(),
                        target: target.into(),
                        what: format!("{source} on {target} is within its RPO again"),
                        incident_started: opened,
                    },
                );
            }
        } else if self.open(
            &key,
            &format!("{source} on {target}: no restore point within the RPO"),
        ) {
            self.deliver(
                &self.others,
                &Event::RpoMissed {
                    plan: plan.into(),
                    source: source.into(),
                    target: target.into(),
                    newest,
                    objective,
                },
            );
        }
    }

    /// A drill's outcome: a failure (or an RTO over the objective) is an incident.
    pub fn drill(&self, plan: &str, source: &str, target: &str, failure: Option<String>) {
        let key = format!("drill/{plan}/{source}/{target}");
        match failure {
            None => {
                if let Some(opened) = self.close(&key) {
                    self.deliver(
                        &self.others,
                        &Event::Recovered {
                            plan: plan.into(),
                            target: target.into(),
                            what: format!("restore drills of {source} from {target} pass again"),
                            incident_started: opened,
                        },
                    );
                }
            }
            Some(reason) => {
                let event = Event::DrillFailed {
                    plan: plan.into(),
                    source: source.into(),
                    target: target.into(),
                    reason: reason.clone(),
                };
                self.deliver(&self.pings, &event);
                if self.open(&key, &reason) {
                    self.deliver(&self.others, &event);
                }
            }
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
