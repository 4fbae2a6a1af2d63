//! `/api/v1/`: what the agent knows (status, jobs, drills, incidents, actions) and the
//! actions an operator may start. Every body is JSON, errors included (`{"error": ...}`);
//! `openapi.rs` describes these routes with the same types.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use crate::actions::ActionKind;
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
    match shared.actions.request(kind, plan) {
        Ok(action) => (
            StatusCode::ACCEPTED,
            [(header::LOCATION, format!("/api/v1/actions/{}", action.id))],
            Json(action),
        )
            .into_response(),
        Err(pending) => error(
            StatusCode::CONFLICT,
            format!(
                "action {} already {} this for plan {plan:?}; poll /api/v1/actions/{}",
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
}
