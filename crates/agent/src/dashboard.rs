//! The web dashboard at `/`: `dashboard/` (plain TypeScript compiled by tsc into
//! `dashboard/dist/`) embedded in the binary, so it works offline and needs no CDN. The
//! page holds no data: it reads `/api/v1/` with the token its user gives, so its files are
//! served without one. The Content-Security-Policy lets the page reach nothing
//! but this agent.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../../dashboard/index.html");
const JS: &str = "text/javascript; charset=utf-8";

/// The page's files under `/dashboard/`: its modules (by the names they import each
/// other with), its style and its icon.
const FILES: [(&str, &str, &str); 6] = [
    ("app.js", JS, include_str!("../../../dashboard/dist/app.js")),
    (
        "page.js",
        JS,
        include_str!("../../../dashboard/dist/page.js"),
    ),
    (
        "charts.js",
        JS,
        include_str!("../../../dashboard/dist/charts.js"),
    ),
    (
        "timeline.js",
        JS,
        include_str!("../../../dashboard/dist/timeline.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../../dashboard/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../../dashboard/icon.svg"),
    ),
];

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match FILES.iter().find(|(file_name, _, _)| *file_name == name) {
        Some((_, content_type, body)) => file(content_type, body),
        None => crate::api::not_found().await,
    }
}
