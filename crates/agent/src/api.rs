//! `/api/v1/`: what the agent knows (status, jobs, drills, incidents, actions) and the
//! actions an operator may start. Every body is JSON, errors included (`{"error": ...}`);
//! `openapi.rs` describes these routes with the same types.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use axum::response::sse::{Event, KeepAlive, Sse};
use lifeboat_ops::point_in_time::PointInTime;
use lifeboat_ops::request::Request;
use lifeboat_ops::snapshots::SnapshotEntry;
use lifeboat_ops::source_kind::SourceKind;
use lifeboat_ops::timeline::TimelineReport;

use crate::actions::{Action, ActionKind, RestoreWanted};
use crate::http::{Role, Shared};

/// Every error the API answers with.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApiError {
    /// One line: what was wrong and, where there is one, what to do.
    pub error: String,
}

impl ApiError {
    pub fn new(message: impl Into<String>) -> ApiError {
        ApiError {
            error: message.into(),
        }
    }
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(ApiError::new(message))).into_response()
}

/// The body of a reading endpoint, for any token (or none, when none is configured).
fn read<T: Serialize>(shared: &Shared, headers: &HeaderMap, body: impl FnOnce() -> T) -> Response {
    match shared.role(headers) {
        Ok(_) => Json(body()).into_response(),
        Err(refused) => refused,
    }
}

/// The answer of a reading endpoint from the state database (not the status, which is
/// refreshed once a second, so what an action just did is there); `what` names it in the
/// error.
fn from_history<T: Serialize>(what: &str, read: anyhow::Result<T>) -> Response {
    match read {
        Ok(body) => Json(body).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the {what}: {e}"),
        ),
    }
}

/// Nothing, or the refusal to answer when the caller may not act.
// The refusal is returned as it is answered; boxing it would only add a step.
#[allow(clippy::result_large_err)]
fn operator(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let role = shared.role(headers)?;
    if !shared.has_operator_token() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "actions need an operator token: set token in the [agent] section of lifeboat.toml",
        ));
    }
    if role != Role::Operator {
        return Err(error(
            StatusCode::FORBIDDEN,
            "this token may only read; actions need the operator's token",
        ));
    }
    Ok(())
}

/// Whether the API asks for a token, so that a page can ask its user before calling it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Access {
    pub token_required: bool,
}

pub async fn access(State(shared): State<Shared>) -> Response {
    Json(Access {
        token_required: shared.token_required(),
    })
    .into_response()
}

pub async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}

pub async fn status(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    read(&shared, &headers, || {
        shared.status.lock().expect("status").clone()
    })
}

/// The newest jobs first; `?limit=N` (1 to 1000, default 50).
pub async fn jobs(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(refused) = shared.role(&headers) {
        return refused;
    }
    match limit(query.as_deref()) {
        Ok(limit) => from_history("job history", shared.state.recent_runs(limit)),
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

fn limit(query: Option<&str>) -> Result<u32, String> {
    let mut limit = 50;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("limit", value)) => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        format!("limit must be a number from 1 to 1000, not {value:?}")
                    })?;
            }
            _ => {
                return Err(format!(
                    "unknown query parameter {pair:?}; this endpoint takes limit"
                ))
            }
        }
    }
    Ok(limit)
}

pub async fn drills(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(refused) = shared.role(&headers) {
        return refused;
    }
    from_history("drill history", shared.state.drills())
}

/// Every drill recorded, newest first; `?limit=N` (1 to 1000, default 50).
pub async fn drill_history(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(refused) = shared.role(&headers) {
        return refused;
    }
    match limit(query.as_deref()) {
        Ok(limit) => from_history("drill history", shared.state.drill_history(limit)),
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

/// The alerts sent to each channel (and the ones that failed), newest first.
pub async fn alerts(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    read(&shared, &headers, || shared.deliveries.newest_first())
}

pub async fn incidents(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(refused) = shared.role(&headers) {
        return refused;
    }
    from_history("incidents", shared.state.open_incidents())
}

/// The body of `POST /api/v1/incidents/acknowledge`. (A key holds slashes, so it is not
/// a path segment.)
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    /// The incident's `key`, as `/api/v1/incidents` lists it.
    pub key: String,
}

/// Marks an open incident as seen (operator token): 200 with the incident.
pub async fn acknowledge(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = operator(&shared, &headers) {
        return refused;
    }
    // Parsed here rather than by axum's extractor, so a bad body gets a JSON error too.
    let wanted: Acknowledgement = match serde_json::from_slice(&body) {
        Ok(wanted) => wanted,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"key\": \"...\"}}: {e}"),
            )
        }
    };
    match shared.state.acknowledge_incident(&wanted.key) {
        Ok(Some(incident)) => Json(incident).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no open incident {:?}", wanted.key),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot record the acknowledgement: {e}"),
        ),
    }
}

pub async fn actions(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    read(&shared, &headers, || shared.actions.list())
}

pub async fn action(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = shared.role(&headers) {
        return refused;
    }
    match id.parse().ok().and_then(|id| shared.actions.get(id)) {
        Some(action) => Json(action).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no action {id:?}")),
    }
}

pub async fn run_backup(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(plan): Path<String>,
) -> Response {
    start(&shared, &headers, ActionKind::Backup, &plan)
}

pub async fn run_drill(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(plan): Path<String>,
) -> Response {
    start(&shared, &headers, ActionKind::Drill, &plan)
}

/// Queues an action: 202 with the action (and its URL in `Location`) to poll.
fn start(shared: &Shared, headers: &HeaderMap, kind: ActionKind, plan: &str) -> Response {
    if let Err(refused) = operator(shared, headers) {
        return refused;
    }
    if shared.config.plan(plan).is_none() {
        return error(StatusCode::NOT_FOUND, format!("no plan {plan:?}"));
    }
    if !shared.status.lock().expect("status").ready {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping");
    }
    accepted(
        shared.actions.request(kind, plan),
        &format!("plan {plan:?}"),
    )
}

/// 202 with a queued action (its URL in `Location`), or 409 with the same one pending.
fn accepted(queued: Result<Action, Box<Action>>, what: &str) -> Response {
    match queued {
        Ok(action) => (
            StatusCode::ACCEPTED,
            [(header::LOCATION, format!("/api/v1/actions/{}", action.id))],
            Json(action),
        )
            .into_response(),
        Err(pending) => error(
            StatusCode::CONFLICT,
            format!(
                "action {} already {} this for {what}; poll /api/v1/actions/{}",
                pending.id,
                match pending.state {
                    crate::actions::ActionState::Queued => "queues",
                    _ => "runs",
                },
                pending.id
            ),
        ),
    }
}

/// Follows one action as server-sent events: an `action` event with the action each time
/// it changes, the last once it has finished (then the stream ends).
pub async fn action_events(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = shared.role(&headers) {
        return refused;
    }
    let Some(id) = id
        .parse()
        .ok()
        .filter(|id| shared.actions.get(*id).is_some())
    else {
        return error(StatusCode::NOT_FOUND, format!("no action {id:?}"));
    };
    let actions = shared.actions.clone();
    // State: the last action sent (as JSON), and whether the stream is over.
    let events = futures_util::stream::unfold((String::new(), false), move |(sent, over)| {
        let actions = actions.clone();
        async move {
            if over {
                return None;
            }
            loop {
                // Forgotten (a hundred newer actions have finished): nothing more to say.
                let action = actions.get(id)?;
                let json = serde_json::to_string(&action).expect("actions serialize");
                if json != sent {
                    let event = Event::default().event("action").data(json.clone());
                    return Some((
                        Ok::<_, std::convert::Infallible>(event),
                        (json, action.finished.is_some()),
                    ));
                }
                tokio::time::sleep(EVENT_POLL).await;
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// How often a followed action is looked at; it changes a few times in its life.
const EVENT_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// The restore points of one source, read from its repository (by a `lifeboat request`
/// child): `?target=NAME` (default: the first target of its first plan).
pub async fn timeline(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(source): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(refused) = shared.role(&headers) {
        return refused;
    }
    let wanted = match target_parameter(query.as_deref()) {
        Ok(wanted) => wanted,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let (_, target) = match locate(&shared, &source, wanted.as_deref()) {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let request = Request::Timeline {
        source: source.clone(),
        target: Some(target.name.clone()),
    };
    let what = format!("the timeline of {source} from {}", target.name);
    from_repository::<TimelineReport>(&shared, target, request, &what).await
}

/// The report of `request` from a `lifeboat request` child against `target` (a child
/// opens the repository, not the HTTP thread); 502 naming `what` when it cannot be read.
async fn from_repository<R: serde::de::DeserializeOwned + Serialize + Send + 'static>(
    shared: &Shared,
    target: lifeboat_config::Target,
    request: Request,
    what: &str,
) -> Response {
    let asker = shared.asker.clone();
    let asked =
        tokio::task::spawn_blocking(move || asker.ask::<R>(Some(&target), &request, "request"))
            .await;
    match asked {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_GATEWAY, format!("cannot read {what}: {e}")),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading {what} stopped: {e}"),
        ),
    }
}

fn target_parameter(query: Option<&str>) -> Result<Option<String>, String> {
    Ok(parameters(query, &["target"])?.remove("target"))
}

/// The query's parameters, each one of `known` and not empty.
fn parameters(
    query: Option<&str>,
    known: &[&str],
) -> Result<std::collections::HashMap<String, String>, String> {
    let mut found = std::collections::HashMap::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some((name, value)) if known.contains(&name) && !value.is_empty() => {
                found.insert(name.to_string(), value.to_string());
            }
            _ => {
                return Err(format!(
                    "unknown or empty query parameter {pair:?}; this endpoint takes {}",
                    known.join(", ")
                ))
            }
        }
    }
    Ok(found)
}

/// The snapshots in a target (`?target=`, default the first target of lifeboat.toml),
/// of one source (`&source=`) or all, oldest first.
pub async fn snapshots(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(refused) = shared.role(&headers) {
        return refused;
    }
    let mut wanted = match parameters(query.as_deref(), &["target", "source"]) {
        Ok(wanted) => wanted,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let source = wanted.remove("source");
    let target = match (&source, wanted.remove("target")) {
        (Some(source), target) => match locate(&shared, source, target.as_deref()) {
            Ok((_, target)) => target,
            Err(refused) => return refused,
        },
        (None, Some(name)) => match shared.config.target(&name) {
            Some(target) => target.clone(),
            None => return error(StatusCode::NOT_FOUND, format!("no target {name:?}")),
        },
        (None, None) => match shared.config.targets.first() {
            Some(target) => target.clone(),
            None => return error(StatusCode::NOT_FOUND, "lifeboat.toml names no target"),
        },
    };
    let what = format!("the snapshots in {}", target.name);
    let request = Request::Snapshots { source };
    from_repository::<Vec<SnapshotEntry>>(&shared, target, request, &what).await
}

/// The plan that backs `source` up and the target to read it from (`wanted`, which must
/// be one of that source's plans' targets; else the first plan's first), or the answer
/// that says why not.
// The refusal is returned as it is answered; boxing it would only add a step.
#[allow(clippy::result_large_err)]
fn locate(
    shared: &Shared,
    source: &str,
    wanted: Option<&str>,
) -> Result<(String, lifeboat_config::Target), Response> {
    let config = &shared.config;
    let Some(entry) = config.source(source) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no source {source:?}"),
        ));
    };
    if SourceKind::of(&entry.location) == SourceKind::Command {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{source} is a command's output: it has snapshots, not a timeline; use `lifeboat snapshots --tag source:{source}`"),
        ));
    }
    let plans: Vec<_> = config
        .plans
        .iter()
        .filter(|p| p.sources.iter().any(|s| s == source))
        .collect();
    let found = plans.iter().find_map(|plan| {
        let name = match wanted {
            Some(wanted) => plan.targets.iter().find(|t| *t == wanted)?,
            None => plan.targets.first()?,
        };
        Some((plan.name.clone(), config.target(name)?.clone()))
    });
    found.ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            match wanted {
                Some(wanted) => format!("no plan writes {source} to a target {wanted:?}"),
                None => format!("no plan writes {source} anywhere"),
            },
        )
    })
}

/// The body of `POST /api/v1/sources/{source}/restore`.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// `latest`, an RFC 3339 time (as the timeline lists it), a time relative to now
    /// (`-10m`), or `tx:N` (right after a replicated transaction).
    #[schemars(schema_with = "moment_schema")]
    pub at: String,
    /// The target to restore from (default: the first target of the source's first plan).
    #[serde(default)]
    pub target: Option<String>,
}

/// Exactly what [`PointInTime::parse_for_restore`] reads, so that the document promises nothing it
/// refuses.
fn moment_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "latest, an RFC 3339 time, a time relative to now (-10m, -2h, -1d, -30s) or tx:N",
        "anyOf": [
            {"enum": ["latest", "now"]},
            {"type": "string", "format": "date-time"},
            {"type": "string", "pattern": "^-[0-9]{1,6}(s|m|min|h|d)$"},
            {"type": "string", "pattern": "^tx:[1-9][0-9]{0,18}$"},
        ],
    })
}

/// Restores a source as it was at a moment into the agent's scratch space (never over
/// live data): 202 with an action whose `restored` says where, once it has finished.
pub async fn restore(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(source): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = operator(&shared, &headers) {
        return refused;
    }
    let wanted: RestoreRequest = match serde_json::from_slice(&body) {
        Ok(wanted) => wanted,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"at\": \"...\", \"target\": \"...\"}}: {e}"),
            )
        }
    };
    let (plan, target) = match locate(&shared, &source, wanted.target.as_deref()) {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    if let Err(e) = PointInTime::parse_for_restore(&wanted.at, chrono::Utc::now()) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let is_server = shared
        .config
        .source(&source)
        .is_some_and(|s| matches!(SourceKind::of(&s.location), SourceKind::DatabaseServer(_)));
    if is_server {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{source} is a database server, which the API does not write to: restore a dump into a new database with `lifeboat restore SNAPSHOT --into URL`"),
        );
    }
    if !shared.status.lock().expect("status").ready {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping");
    }
    let asked = RestoreWanted {
        source: source.clone(),
        target: target.name,
        at: wanted.at,
    };
    accepted(
        shared.actions.request_restore(&plan, asked),
        &format!("source {source:?}"),
    )
}

pub async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint; see /api/v1/openapi.json",
    )
}

#[cfg(test)]
mod tests {
    use super::limit;

    #[test]
    fn the_limit_is_bounded_and_nothing_else_is_taken() {
        assert_eq!(limit(None), Ok(50));
        assert_eq!(limit(Some("limit=7")), Ok(7));
        assert!(limit(Some("limit=0")).is_err());
        assert!(limit(Some("limit=1001")).is_err());
        assert!(limit(Some("limit=x")).is_err());
        assert!(limit(Some("offset=3")).unwrap_err().contains("offset"));
    }

    #[test]
    fn only_a_target_is_taken_by_the_timeline() {
        use super::target_parameter;
        assert_eq!(target_parameter(None), Ok(None));
        assert_eq!(
            target_parameter(Some("target=offsite")),
            Ok(Some("offsite".into()))
        );
        assert!(target_parameter(Some("target=")).is_err());
        assert!(target_parameter(Some("at=latest"))
            .unwrap_err()
            .contains("at"));
    }
}
