//! The agent's HTTP side: `/livez`, `/readyz` (open, for process supervisors),
//! `/api/v1/openapi.json` and `/api/v1/access` (open: they describe, they hold nothing),
//! the dashboard's files at `/` (`dashboard.rs`; open, it holds no data), and `/metrics` and the
//! rest of `/api/v1/` (`api.rs`) behind bearer tokens with roles: the `token` of
//! `[agent]` may read and start actions, its `read_token` may only read. Without any
//! token the reading endpoints are open (loopback only) and actions are refused.
//! It listens on loopback unless the configuration explicitly allows otherwise.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use lifeboat_config::Config;

use crate::actions::Actions;
use crate::alerting::DeliveryLog;
use crate::api;
use crate::asking::Asker;
use crate::dashboard;
use crate::state::State as JobState;
use crate::status::AgentStatus;

#[derive(Clone)]
pub(crate) struct Shared {
    pub status: Arc<Mutex<AgentStatus>>,
    pub actions: Arc<Actions>,
    pub config: Arc<Config>,
    pub state: Arc<JobState>,
    /// Answers what only the repository knows (a source's timeline).
    pub asker: Arc<Asker>,
    pub deliveries: DeliveryLog,
    tokens: Tokens,
}

/// What the HTTP side shares with the agent's loop.
pub(crate) struct Parts {
    pub status: Arc<Mutex<AgentStatus>>,
    pub actions: Arc<Actions>,
    pub config: Arc<Config>,
    pub state: Arc<JobState>,
    pub asker: Arc<Asker>,
    pub deliveries: DeliveryLog,
}

#[derive(Clone)]
struct Tokens {
    operator: Option<String>,
    read: Option<String>,
}

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Read,
    Operator,
}

/// Binds at once (so a taken port is an error the caller sees) and serves on its own
/// thread until the process ends.
pub(crate) fn serve(addr: SocketAddr, parts: Parts) -> anyhow::Result<SocketAddr> {
    let Parts {
        status,
        actions,
        config,
        state,
        asker,
        deliveries,
    } = parts;
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("the agent cannot listen on {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let secret = |s: &Option<lifeboat_config::Secret>| s.as_ref().map(|t| t.expose().to_string());
    let tokens = Tokens {
        operator: secret(&config.agent.token),
        read: secret(&config.agent.read_token),
    };
    let remote_allowed = config.agent.allow_remote;
    let shared = Shared {
        status,
        actions,
        config,
        state,
        asker,
        deliveries,
        tokens,
    };
    let app = Router::new()
        .route("/", get(dashboard::index))
        .route("/dashboard/{module}", get(dashboard::asset))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/access", get(api::access))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/jobs", get(api::jobs))
        .route("/api/v1/drills", get(api::drills))
        .route("/api/v1/drills/history", get(api::drill_history))
        .route("/api/v1/incidents", get(api::incidents))
        .route("/api/v1/alerts", get(api::alerts))
        .route("/api/v1/incidents/acknowledge", post(api::acknowledge))
        .route("/api/v1/actions", get(api::actions))
        .route("/api/v1/actions/{id}", get(api::action))
        .route("/api/v1/actions/{id}/events", get(api::action_events))
        .route("/api/v1/snapshots", get(api::snapshots))
        .route("/api/v1/sources/{source}/timeline", get(api::timeline))
        .route("/api/v1/sources/{source}/restore", post(api::restore))
        .route("/api/v1/plans/{plan}/backup", post(api::run_backup))
        .route("/api/v1/plans/{plan}/drill", post(api::run_drill))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            remote_allowed,
            refuse_other_hosts,
        ))
        .with_state(shared);
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        if let Err(e) = axum::serve(listener, app).await {
                            tracing::error!("the HTTP server stopped: {e}");
                        }
                    }
                    Err(e) => tracing::error!("the HTTP server cannot start: {e}"),
                }
            });
        })?;
    Ok(bound)
}

impl Shared {
    /// The caller's role, or the 401 to answer. With no token configured at all, anyone
    /// who can reach the (loopback) port may read, and nobody may act.
    // The refusal is returned as it is answered; boxing it would only add a step.
    #[allow(clippy::result_large_err)]
    pub(crate) fn role(&self, headers: &HeaderMap) -> Result<Role, Response> {
        let Tokens { operator, read } = &self.tokens;
        if operator.is_none() && read.is_none() {
            return Ok(Role::Read);
        }
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .unwrap_or_default();
        if operator.as_deref().is_some_and(|t| same(given, t)) {
            return Ok(Role::Operator);
        }
        if read.as_deref().is_some_and(|t| same(given, t)) {
            return Ok(Role::Read);
        }
        Err(unauthorized())
    }

    pub(crate) fn token_required(&self) -> bool {
        self.tokens.operator.is_some() || self.tokens.read.is_some()
    }

    pub(crate) fn has_operator_token(&self) -> bool {
        self.tokens.operator.is_some()
    }
}

/// A web page on another site can point its own name at 127.0.0.1 (DNS rebinding) and
/// then read what this agent serves without a token as if it were that site. Its requests
/// carry its name in `Host`; an agent on loopback answers only requests that name it by
/// IP address or as `localhost`. (One allowed off the machine requires a token, and is
/// reached by whatever name its operators give it.)
async fn refuse_other_hosts(
    State(remote_allowed): State<bool>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("?"));
    match host {
        Some(host) if !remote_allowed && !names_this_machine(host) => (
            StatusCode::FORBIDDEN,
            axum::Json(api::ApiError::new(
                "the agent answers only requests that name it by IP address or as localhost",
            )),
        )
            .into_response(),
        _ => next.run(request).await,
    }
}

/// `Host` names an IP address (v4, or v6 in brackets) or localhost, with or without a port.
fn names_this_machine(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Compared in constant time: the token guards an API on the network.
fn same(given: &str, token: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The token of an `Authorization: Bearer TOKEN` value. The scheme is case-insensitive
/// and may be followed by several spaces (RFC 7235 section 2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(api::ApiError::new("a bearer token is required")),
    )
        .into_response()
}

async fn readyz(State(shared): State<Shared>) -> Response {
    if shared.status.lock().expect("status").ready {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(refused) = shared.role(&headers) {
        return refused;
    }
    let text = shared.status.lock().expect("status").metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, names_this_machine};

    #[test]
    fn only_addresses_and_localhost_name_the_agent() {
        for host in [
            "127.0.0.1:7070",
            "127.0.0.1",
            "localhost:7070",
            "LOCALHOST",
            "[::1]:7070",
            "10.0.0.5:80",
        ] {
            assert!(names_this_machine(host), "{host}");
        }
        for host in [
            "evil.example:7070",
            "evil.example",
            "127.0.0.1.evil.example:7070",
            "localhost.evil:7070",
            "[evil]:7070",
            "",
        ] {
            assert!(!names_this_machine(host), "{host}");
        }
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR   t0k"] {
            assert_eq!(bearer_token(value), Some("t0k"), "{value}");
        }
        for value in ["Basic t0k", "Bearert0k", "t0k", ""] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }
}
