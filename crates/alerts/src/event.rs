//! What happened, in the words a person reading an alert needs.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Something worth telling a person (or a dead man's switch) about.
///
/// Which channels care: ping channels get `JobStarted`, `JobSucceeded` and the failures;
/// webhook, Slack and email get failures, warnings and recoveries. A success is news to a
/// person only after a failure, which the caller says with [`Event::Recovered`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A plan's run towards one target began (pings `/start`, so a hung job shows up).
    JobStarted { plan: String, target: String },
    /// A plan's run towards one target finished; `summary` is one line such as
    /// "12 files, 3.4 MB added".
    JobSucceeded {
        plan: String,
        target: String,
        summary: String,
    },
    /// A plan's run towards one target failed.
    JobFailed {
        plan: String,
        target: String,
        error: String,
    },
    /// A plan's run saved its snapshots, but skipped some paths or stored them as plain
    /// bytes (`lifeboat backup` exited 6); one `source: path: problem` each.
    JobWarnings {
        plan: String,
        target: String,
        warnings: Vec<String>,
    },
    /// The newest restore point of `source` on `target` is older than the plan's recovery
    /// point objective (or there is none yet).
    RpoMissed {
        plan: String,
        source: String,
        target: String,
        newest: Option<DateTime<Utc>>,
        objective: Duration,
    },
    /// Whether `plan` meets its recovery point objective on `target` could not be measured
    /// (`lifeboat status` gave no readable report; `error` says why): monitoring is blind.
    ObjectiveUnchecked {
        plan: String,
        target: String,
        error: String,
    },
    /// An incident is over; `what` says what works again, e.g.
    /// "backups to offsite succeed again".
    Recovered {
        plan: String,
        target: String,
        what: String,
        incident_started: DateTime<Utc>,
    },
    /// A restore drill of `source` from `target` did not give back a working copy.
    DrillFailed {
        plan: String,
        source: String,
        target: String,
        reason: String,
    },
    /// The continuous replication of `source` to `target` has not run since `since`: its
    /// replicator keeps stopping (`error` is why), so new commits are not protected.
    ReplicatorDown {
        plan: String,
        source: String,
        target: String,
        since: DateTime<Utc>,
        error: String,
    },
}

/// How bad an event is; receivers route or colour by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Recovery,
    Warning,
    Failure,
}

impl Severity {
    /// The lower-case name used in webhook bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Recovery => "recovery",
            Severity::Warning => "warning",
            Severity::Failure => "failure",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// The machine-readable name used as the webhook's `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            Event::JobStarted { .. } => "job_started",
            Event::JobSucceeded { .. } => "job_succeeded",
            Event::JobFailed { .. } => "job_failed",
            Event::JobWarnings { .. } => "job_warnings",
            Event::RpoMissed { .. } => "rpo_missed",
            Event::ObjectiveUnchecked { .. } => "objective_unchecked",
            Event::Recovered { .. } => "recovered",
            Event::DrillFailed { .. } => "drill_failed",
            Event::ReplicatorDown { .. } => "replicator_down",
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            Event::JobStarted { .. } | Event::JobSucceeded { .. } => Severity::Info,
            Event::Recovered { .. } => Severity::Recovery,
            // Late is not yet lost: the next run may still catch up.
            Event::RpoMissed { .. } => Severity::Warning,
            // The snapshot is there; what it lacks needs a person, not a pager at night.
            Event::JobWarnings { .. } => Severity::Warning,
            // Nobody would hear of a missed objective while this lasts.
            Event::JobFailed { .. }
            | Event::DrillFailed { .. }
            | Event::ReplicatorDown { .. }
            | Event::ObjectiveUnchecked { .. } => Severity::Failure,
        }
    }

    pub fn plan(&self) -> &str {
        match self {
            Event::JobStarted { plan, .. }
            | Event::JobSucceeded { plan, .. }
            | Event::JobFailed { plan, .. }
            | Event::JobWarnings { plan, .. }
            | Event::RpoMissed { plan, .. }
            | Event::ObjectiveUnchecked { plan, .. }
            | Event::Recovered { plan, .. }
            | Event::DrillFailed { plan, .. }
            | Event::ReplicatorDown { plan, .. } => plan,
        }
    }

    pub fn target(&self) -> &str {
        match self {
            Event::JobStarted { target, .. }
            | Event::JobSucceeded { target, .. }
            | Event::JobFailed { target, .. }
            | Event::JobWarnings { target, .. }
            | Event::RpoMissed { target, .. }
            | Event::ObjectiveUnchecked { target, .. }
            | Event::Recovered { target, .. }
            | Event::DrillFailed { target, .. }
            | Event::ReplicatorDown { target, .. } => target,
        }
    }

    /// The source, for the events that concern one.
    pub fn source(&self) -> Option<&str> {
        match self {
            Event::RpoMissed { source, .. }
            | Event::DrillFailed { source, .. }
            | Event::ReplicatorDown { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The error or reason, for the events that are failures.
    pub fn error(&self) -> Option<&str> {
        match self {
            Event::JobFailed { error, .. }
            | Event::ReplicatorDown { error, .. }
            | Event::ObjectiveUnchecked { error, .. } => Some(error),
            Event::DrillFailed { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// One line, used as the email subject and the first line of chat messages.
    pub fn title(&self) -> String {
        match self {
            Event::JobStarted { plan, target } => {
                format!("lifeboat: plan {plan} started on target {target}")
            }
            Event::JobSucceeded { plan, target, .. } => {
                format!("lifeboat: plan {plan} succeeded on target {target}")
            }
            Event::JobFailed { plan, target, .. } => {
                format!("lifeboat: plan {plan} failed on target {target}")
            }
            Event::JobWarnings {
                plan,
                target,
                warnings,
            } => format!(
                "lifeboat: plan {plan} on target {target} skipped or degraded {} path(s)",
                warnings.len()
            ),
            Event::RpoMissed {
                plan,
                source,
                target,
                objective,
                ..
            } => format!(
                "lifeboat: plan {plan} missed its {} recovery point objective for source {source} on target {target}",
                human_duration(*objective)
            ),
            Event::ObjectiveUnchecked { plan, target, .. } => format!(
                "lifeboat: cannot tell whether plan {plan} meets its recovery point objective on target {target}"
            ),
            Event::Recovered { plan, target, .. } => {
                format!("lifeboat: plan {plan} recovered on target {target}")
            }
            Event::DrillFailed {
                plan,
                source,
                target,
                ..
            } => format!(
                "lifeboat: restore drill of source {source} from target {target} failed (plan {plan})"
            ),
            Event::ReplicatorDown {
                plan,
                source,
                target,
                ..
            } => format!(
                "lifeboat: replication of source {source} to target {target} is down (plan {plan})"
            ),
        }
    }

    /// Names the incident, so the caller alerts once per incident rather than once per
    /// failing run: the same plan failing on the same target again has the same key.
    pub fn key(&self) -> String {
        match self {
            Event::JobStarted { plan, target } => format!("started/{plan}/{target}"),
            Event::JobSucceeded { plan, target, .. } => format!("succeeded/{plan}/{target}"),
            Event::JobFailed { plan, target, .. } => format!("failed/{plan}/{target}"),
            Event::JobWarnings { plan, target, .. } => format!("warnings/{plan}/{target}"),
            Event::RpoMissed {
                plan,
                source,
                target,
                ..
            } => format!("rpo/{plan}/{source}/{target}"),
            Event::ObjectiveUnchecked { plan, target, .. } => {
                format!("unchecked/{plan}/{target}")
            }
            Event::Recovered { plan, target, .. } => format!("recovered/{plan}/{target}"),
            Event::DrillFailed {
                plan,
                source,
                target,
                ..
            } => format!("drill/{plan}/{source}/{target}"),
            Event::ReplicatorDown {
                plan,
                source,
                target,
                ..
            } => format!("replicator/{plan}/{source}/{target}"),
        }
    }

    /// The facts below the title, one `name: value` per line. `now` turns times into
    /// ages ("26h ago"), which is what a person paged at night wants to read.
    pub fn details(&self, now: DateTime<Utc>) -> String {
        let mut out = String::new();
        let mut line = |name: &str, value: &str| {
            // Multi-line errors stay readable but cannot fake further fields.
            let value = value.trim_end().replace('\n', "\n    ");
            let _ = writeln!(out, "{name}: {value}");
        };
        line("plan", self.plan());
        if let Some(source) = self.source() {
            line("source", source);
        }
        line("target", self.target());
        match self {
            Event::JobStarted { .. } => {}
            Event::JobSucceeded { summary, .. } => line("summary", summary),
            Event::JobFailed { error, .. } | Event::ObjectiveUnchecked { error, .. } => {
                line("error", error)
            }
            Event::JobWarnings { warnings, .. } => {
                for warning in warnings {
                    line("warning", warning);
                }
            }
            Event::RpoMissed {
                newest, objective, ..
            } => {
                let newest = match newest {
                    Some(t) => format!("{} ({})", format_time(*t), ago(*t, now)),
                    None => "none yet".to_string(),
                };
                line("newest restore point", &newest);
                line("objective", &human_duration(*objective));
            }
            Event::Recovered {
                what,
                incident_started,
                ..
            } => {
                line("recovered", what);
                line(
                    "incident started",
                    &format!(
                        "{} (lasted {})",
                        format_time(*incident_started),
                        human_duration(since(*incident_started, now))
                    ),
                );
            }
            Event::DrillFailed { reason, .. } => line("reason", reason),
            Event::ReplicatorDown { since, error, .. } => {
                line(
                    "down since",
                    &format!("{} ({})", format_time(*since), ago(*since, now)),
                );
                line("error", error);
            }
        }
        out.truncate(out.trim_end().len());
        out
    }
}

fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn since(t: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    // A clock that went backwards gives 0 rather than a panic or a negative age.
    (now - t).to_std().unwrap_or_default()
}

fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ago", human_duration(since(t, now)))
}

/// "45s", "30m", "26h", "2d 3h": the two largest units, which is all a reader compares.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n != 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn failed() -> Event {
        Event::JobFailed {
            plan: "app".into(),
            target: "offsite".into(),
            error: "storage: timed out\nafter 3 tries".into(),
        }
    }

    #[test]
    fn titles_keys_and_severities() {
        let e = failed();
        assert_eq!(e.title(), "lifeboat: plan app failed on target offsite");
        assert_eq!(e.key(), "failed/app/offsite");
        assert_eq!(e.severity(), Severity::Failure);
        assert_eq!(e.name(), "job_failed");

        let rpo = Event::RpoMissed {
            plan: "app".into(),
            source: "db".into(),
            target: "offsite".into(),
            newest: None,
            objective: Duration::from_secs(3600),
        };
        assert_eq!(rpo.key(), "rpo/app/db/offsite");
        assert_eq!(rpo.severity(), Severity::Warning);
        assert!(rpo.title().contains("1h"), "{}", rpo.title());
        for e in [e, rpo] {
            assert!(!e.title().contains('\n'));
        }
    }

    #[test]
    fn details_are_name_value_lines() {
        let now = Utc.with_ymd_and_hms(2025, 1, 2, 4, 0, 0).unwrap();
        let text = failed().details(now);
        assert_eq!(
            text,
            "plan: app\ntarget: offsite\nerror: storage: timed out\n    after 3 tries"
        );

        let rpo = Event::RpoMissed {
            plan: "app".into(),
            source: "db".into(),
            target: "offsite".into(),
            newest: Some(Utc.with_ymd_and_hms(2025, 1, 1, 2, 0, 0).unwrap()),
            objective: Duration::from_secs(24 * 3600),
        };
        let text = rpo.details(now);
        assert!(
            text.contains("newest restore point: 2025-01-01 02:00:00 UTC (1d 2h ago)"),
            "{text}"
        );
        assert!(text.contains("objective: 1d"), "{text}");

        let recovered = Event::Recovered {
            plan: "app".into(),
            target: "offsite".into(),
            what: "backups to offsite succeed again".into(),
            incident_started: Utc.with_ymd_and_hms(2025, 1, 2, 3, 30, 0).unwrap(),
        };
        assert!(recovered.details(now).contains("(lasted 30m)"));
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human_duration(Duration::ZERO), "0s");
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(human_duration(Duration::from_secs(3660)), "1h 1m");
        assert_eq!(human_duration(Duration::from_secs(93_784)), "1d 2h");
        assert_eq!(human_duration(Duration::from_secs(86_400 + 5)), "1d");
    }
}
