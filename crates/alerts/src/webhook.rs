//! Generic webhook: a JSON document with the event's facts as separate fields, so a
//! receiver can route on `event`/`severity` without parsing prose.

use chrono::SecondsFormat;
use serde_json::{json, Map, Value};

use crate::event::Event;
use crate::http::Http;
use crate::notifier::Context;

/// People are told about problems and their end; starts and routine successes are for
/// ping channels.
pub(crate) fn wants(event: &Event) -> bool {
    !matches!(event, Event::JobStarted { .. } | Event::JobSucceeded { .. })
}

pub(crate) fn deliver(
    http: &Http,
    url: &str,
    event: &Event,
    ctx: &Context<'_>,
) -> Result<(), String> {
    http.post_json(url, &body(event, ctx))
}

pub(crate) fn body(event: &Event, ctx: &Context<'_>) -> Value {
    let rfc3339 = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut doc = json!({
        "event": event.name(),
        "severity": event.severity().as_str(),
        "title": event.title(),
        "text": ctx.text(event),
        "key": event.key(),
        "plan": event.plan(),
        "target": event.target(),
        "source": event.source(),
        "error": event.error(),
        "host": ctx.host,
        "time": rfc3339(ctx.now),
        "version": env!("CARGO_PKG_VERSION"),
    });
    // Event-specific fields, typed (times as RFC 3339, durations in seconds) rather
    // than only inside `text`.
    let extra: Map<String, Value> = match event {
        Event::JobStarted { .. } | Event::JobFailed { .. } | Event::ObjectiveUnchecked { .. } => {
            Map::new()
        }
        Event::JobSucceeded { summary, .. } => {
            [("summary".into(), json!(summary))].into_iter().collect()
        }
        Event::RpoMissed {
            newest, objective, ..
        } => [
            ("newest".into(), json!(newest.map(rfc3339))),
            ("objective_seconds".into(), json!(objective.as_secs())),
        ]
        .into_iter()
        .collect(),
        Event::Recovered {
            what,
            incident_started,
            ..
        } => [
            ("what".into(), json!(what)),
            ("incident_started".into(), json!(rfc3339(*incident_started))),
        ]
        .into_iter()
        .collect(),
        Event::JobWarnings { warnings, .. } => {
            [("warnings".into(), json!(warnings))].into_iter().collect()
        }
        Event::DrillFailed { reason, .. } => {
            [("reason".into(), json!(reason))].into_iter().collect()
        }
        Event::ReplicatorDown { since, error, .. } => [
            ("since".into(), json!(rfc3339(*since))),
            ("error".into(), json!(error)),
        ]
        .into_iter()
        .collect(),
    };
    if let Value::Object(fields) = &mut doc {
        fields.extend(extra);
    }
    doc
}
