//! The HTTP endpoints (docs/SERVER.md): objects, listings and `whoami`, each request
//! authenticated by its bearer token and judged by the token's role (`roles.rs`). Storage
//! calls are blocking and run on tokio's blocking threads. Every refusal is logged with
//! the token's name (never the token), the method and the object.
// A refusal is an HTTP response, made once per request and returned at once: boxing it
// to make `Result<_, Response>` smaller would only add an allocation.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lifeboat_storage::{Storage, StorageError};

use crate::names::{self, printable};
use crate::roles::{self, Role};
use crate::state::LockOwners;
use crate::tokens;

/// The largest object accepted: above any object of the format (index files are bounded
/// at 512 MiB, packs are far smaller), and bounds what one upload holds in memory.
const MAX_OBJECT: usize = 1 << 30;

#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    storage: Storage,
    tokens: PathBuf,
    owners: LockOwners,
    /// Objects being written: a second write of one name waits its turn (503, retried by
    /// the client), so "does it exist?" and "write it" cannot interleave with another.
    writing: Mutex<HashSet<String>>,
}

impl App {
    pub fn new(storage: Storage, tokens: PathBuf, owners: LockOwners) -> App {
        App(Arc::new(Inner {
            storage,
            tokens,
            owners,
            writing: Mutex::new(HashSet::new()),
        }))
    }
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/v1/whoami", get(whoami))
        .route(
            "/v1/objects/{*name}",
            get(get_object)
                .head(head_object)
                .put(put_object)
                .delete(delete_object),
        )
        .route("/v1/list/{*dir}", get(list))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .with_state(app)
}

struct Caller {
    name: String,
    role: Role,
}

/// A one-line answer. The line goes in a header too: the answer to a HEAD has no body.
fn text(status: StatusCode, line: String) -> Response {
    let mut response = (status, format!("{line}\n")).into_response();
    if !status.is_success() {
        if let Ok(value) = HeaderValue::from_str(&line) {
            response
                .headers_mut()
                .insert(lifeboat_storage::REASON_HEADER, value);
        }
    }
    response
}

/// Logs a refusal and answers it with one line.
fn refuse(caller: &Caller, method: &Method, object: &str, verb: &str, extra: &str) -> Response {
    let reason = format!(
        "token '{}' has role {}, which cannot {verb} {}{extra} ({} {})",
        caller.name,
        caller.role.as_str(),
        printable(object),
        caller.role.as_str(),
        caller.role.summary()
    );
    tracing::warn!(
        token = %caller.name,
        role = %caller.role.as_str(),
        method = %method,
        object = %printable(object),
        "refused: {reason}"
    );
    text(StatusCode::FORBIDDEN, reason)
}

fn unauthorized(method: &Method, object: &str, reason: &str) -> Response {
    tracing::warn!(method = %method, object = %printable(object), "refused: {reason}");
    let mut response = text(StatusCode::UNAUTHORIZED, reason.to_string());
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"lifeboat\""),
    );
    response
}

/// The caller, from `Authorization: Bearer <token>` (the scheme in any case).
fn authenticate(
    app: &App,
    headers: &HeaderMap,
    method: &Method,
    object: &str,
) -> Result<Caller, Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let Some(presented) = presented else {
        return Err(unauthorized(
            method,
            object,
            "a token is needed (Authorization: Bearer <token>; clients read LIFEBOAT_SERVER_TOKEN)",
        ));
    };
    let entries = match tokens::load(&app.0.tokens) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!("{e}");
            return Err(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server cannot read its token file".into(),
            ));
        }
    };
    match tokens::authenticate(&entries, presented) {
        Some(entry) => Ok(Caller {
            name: entry.name.clone(),
            role: entry.role,
        }),
        None => Err(unauthorized(
            method,
            object,
            "the token is not known to this server (mistyped, or removed)",
        )),
    }
}

fn bad_name(method: &Method, object: &str, reason: String) -> Response {
    tracing::warn!(method = %method, object = %printable(object), "refused: {reason}");
    text(StatusCode::BAD_REQUEST, reason)
}

/// The answer for a failed storage call; the details go to the server's log too.
fn storage_failure(e: StorageError) -> Response {
    let status = match &e {
        StorageError::NotFound { .. } => StatusCode::NOT_FOUND,
        StorageError::Truncated { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        StorageError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => {
            tracing::error!("{e}");
            StatusCode::BAD_GATEWAY
        }
    };
    text(status, e.to_string())
}

/// Runs a blocking storage call on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(storage_failure(e)),
        Err(e) => {
            tracing::error!("a storage call failed: {e}");
            Err(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".into(),
            ))
        }
    }
}

async fn whoami(State(app): State<App>, headers: HeaderMap) -> Response {
    match authenticate(&app, &headers, &Method::GET, "whoami") {
        Ok(caller) => Json(lifeboat_storage::ServerAccess {
            token: caller.name,
            role: caller.role.as_str().to_string(),
        })
        .into_response(),
        Err(response) => response,
    }
}

/// `Range: bytes=FIRST-LAST` (one range, both ends given): offset and length. A range
/// longer than any object is refused before anything is allocated for it.
fn parse_range(value: &HeaderValue) -> Option<(u64, u64)> {
    let (first, last) = value
        .to_str()
        .ok()?
        .strip_prefix("bytes=")?
        .split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    let len = last.checked_sub(first)?.checked_add(1)?;
    (len <= MAX_OBJECT as u64 && first.checked_add(len).is_some()).then_some((first, len))
}

async fn get_object(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let method = Method::GET;
    if let Err(response) = authenticate(&app, &headers, &method, &name) {
        return response;
    }
    if let Err(reason) = names::check_object(&name) {
        return bad_name(&method, &name, reason);
    }
    let storage = app.0.storage.clone();
    match headers.get(header::RANGE) {
        Some(range) => {
            let Some((offset, len)) = parse_range(range) else {
                return text(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "only one range, bytes=FIRST-LAST, is served".into(),
                );
            };
            match blocking(move || storage.read_range(&name, offset, len)).await {
                Ok(bytes) => {
                    let content_range =
                        format!("bytes {offset}-{}/*", offset + bytes.len() as u64 - 1);
                    (
                        StatusCode::PARTIAL_CONTENT,
                        [(header::CONTENT_RANGE, content_range)],
                        bytes,
                    )
                        .into_response()
                }
                Err(response) => response,
            }
        }
        None => match blocking(move || storage.read(&name)).await {
            Ok(bytes) => (StatusCode::OK, bytes).into_response(),
            Err(response) => response,
        },
    }
}

async fn head_object(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let method = Method::HEAD;
    if let Err(response) = authenticate(&app, &headers, &method, &name) {
        return response;
    }
    if let Err(reason) = names::check_object(&name) {
        return bad_name(&method, &name, reason);
    }
    let storage = app.0.storage.clone();
    match blocking(move || storage.size(&name)).await {
        Ok(size) => (
            StatusCode::OK,
            [(lifeboat_storage::SIZE_HEADER, size.to_string())],
        )
            .into_response(),
        Err(response) => response,
    }
}

async fn list(State(app): State<App>, Path(dir): Path<String>, headers: HeaderMap) -> Response {
    let method = Method::GET;
    let dir = dir.trim_end_matches('/').to_string();
    if let Err(response) = authenticate(&app, &headers, &method, &dir) {
        return response;
    }
    if let Err(reason) = names::check_directory(&dir) {
        return bad_name(&method, &dir, reason);
    }
    let storage = app.0.storage.clone();
    match blocking(move || storage.list(&dir)).await {
        Ok(objects) => Json(
            objects
                .into_iter()
                .map(|o| serde_json::json!({"name": o.name, "size": o.size}))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(response) => response,
    }
}

/// Holds one object name in `writing` until dropped.
struct WriteClaim {
    app: App,
    name: String,
}

impl Drop for WriteClaim {
    fn drop(&mut self) {
        self.app
            .0
            .writing
            .lock()
            .expect("writing set")
            .remove(&self.name);
    }
}

fn claim(app: &App, name: &str) -> Option<WriteClaim> {
    let fresh = app
        .0
        .writing
        .lock()
        .expect("writing set")
        .insert(name.to_string());
    fresh.then(|| WriteClaim {
        app: app.clone(),
        name: name.to_string(),
    })
}

enum Stored {
    Written,
    AlreadyThere,
    Different,
}

async fn put_object(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let method = Method::PUT;
    let caller = match authenticate(&app, &headers, &method, &name) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if let Err(reason) = names::check_object(&name) {
        return bad_name(&method, &name, reason);
    }
    if !roles::may_create(caller.role, &name) {
        return refuse(&caller, &method, &name, "write", "");
    }
    // Read only after the checks: a refused client never makes the server hold its body.
    let bytes = match axum::body::to_bytes(body, MAX_OBJECT).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the upload failed or is over {MAX_OBJECT} bytes: {e}"),
            )
        }
    };
    let Some(claim) = claim(&app, &name) else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} is being written by another request; retry",
                printable(&name)
            ),
        );
    };
    let storage = app.0.storage.clone();
    let owners = app.0.owners.clone();
    let (role, token, object) = (caller.role, caller.name.clone(), name.clone());
    let stored = blocking(move || {
        let _claim = claim;
        if !roles::may_overwrite(role) {
            match storage.size(&object) {
                Ok(size) if size != bytes.len() as u64 => return Ok(Stored::Different),
                Ok(_) if storage.read(&object)?[..] == bytes[..] => {
                    return Ok(Stored::AlreadyThere)
                }
                Ok(_) => return Ok(Stored::Different),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        // Without a copy when the body arrived in one piece.
        storage.write(&object, Vec::from(bytes))?;
        if role != Role::Admin && object.starts_with("locks/") {
            if let Err(e) = owners.record(&object, &token) {
                tracing::error!("cannot record who created {object}: {e}");
            }
        }
        Ok(Stored::Written)
    })
    .await;
    match stored {
        Ok(Stored::Written) => text(StatusCode::CREATED, "stored".into()),
        Ok(Stored::AlreadyThere) => text(StatusCode::OK, "already stored, with these bytes".into()),
        Ok(Stored::Different) => refuse(
            &caller,
            &method,
            &name,
            "overwrite",
            ", which exists with other content",
        ),
        Err(response) => response,
    }
}

async fn delete_object(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let method = Method::DELETE;
    let caller = match authenticate(&app, &headers, &method, &name) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if let Err(reason) = names::check_object(&name) {
        return bad_name(&method, &name, reason);
    }
    let storage = app.0.storage.clone();
    let owners = app.0.owners.clone();
    let own = owners.owner(&name).as_deref() == Some(caller.name.as_str());
    if !roles::may_delete(caller.role, &name, own) {
        // A lock already gone needs no permission to stay gone (a retried release).
        if caller.role == Role::Append && name.starts_with("locks/") {
            let object = name.clone();
            let storage = storage.clone();
            if let Ok(false) = blocking(move || storage.exists(&object)).await {
                return StatusCode::NO_CONTENT.into_response();
            }
        }
        let extra = if name.starts_with("locks/") && caller.role == Role::Append {
            ", a lock another token created"
        } else {
            ""
        };
        return refuse(&caller, &method, &name, "delete", extra);
    }
    let object = name.clone();
    match blocking(move || {
        storage.delete(&object)?;
        owners.forget(&object);
        Ok(())
    })
    .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_single_ranges_are_served() {
        let range = |text: &str| parse_range(&HeaderValue::from_str(text).unwrap());
        assert_eq!(range("bytes=0-0"), Some((0, 1)));
        assert_eq!(range("bytes=10-19"), Some((10, 10)));
        for bad in [
            "bytes=5-4",
            "bytes=0-18446744073709551615",
            "bytes=18446744073709551615-18446744073709551615",
            "bytes=0-99999999999",
            "bytes=-5",
            "bytes=5-",
            "bytes=0-1,4-5",
            "items=0-1",
        ] {
            assert_eq!(range(bad), None, "{bad}");
        }
    }
}
