//! S3 Object Lock: what makes a repository on S3 immutable for a while, even to a host that
//! holds its credentials (docs/FORMAT.md §5 "Object lock", README "Security: S3 Object Lock").
//!
//! OpenDAL has no object lock, so the five requests it needs (the bucket's lock
//! configuration; an object's version, mode and retain-until date; setting retention; and
//! deleting one version) are signed here with the credential chain OpenDAL uses (reqsign:
//! static keys from the URL, else the `AWS_*` variables, profiles, IMDS) and sent with reqwest.
//!
//! The rules, applied by [`crate::Storage`] once a policy is set:
//! - every object of a protected kind (everything but `locks/`, `prune/` and `damaged/`,
//!   which Lifeboat must be able to remove) gets `retain-until = now + period` right after
//!   it is written;
//! - a delete asks for the object's version first and refuses while it is retained; once
//!   expired it deletes that version, so nothing is left behind as a noncurrent version.
//!   (A plain S3 DELETE on a versioned bucket would only add a delete marker and report
//!   success, hiding the data without freeing it.)
//! - [`crate::Storage::extend_object_locks`] renews the retention of objects that are still
//!   needed, so immutability does not lapse for data older than the period.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use md5::Digest as _;
use reqsign_aws_v4::{
    Credential, DefaultCredentialProvider, RequestSigner, StaticCredentialProvider,
};
use reqsign_core::{Context, OsEnv, ProvideCredentialChain, Signer};
use serde::{Deserialize, Serialize};

use crate::first_line;

/// How S3 enforces the retention (the store's terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Nobody can delete or shorten the retention of a locked version, not even the account's
    /// root user, until it expires.
    Compliance,
    /// Users with `s3:BypassGovernanceRetention` can lift it; everybody else cannot.
    Governance,
}

impl LockMode {
    fn as_s3(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }

    pub fn parse(text: &str) -> Option<LockMode> {
        match text.to_ascii_lowercase().as_str() {
            "compliance" => Some(LockMode::Compliance),
            "governance" => Some(LockMode::Governance),
            _ => None,
        }
    }
}

impl std::fmt::Display for LockMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LockMode::Compliance => "compliance",
            LockMode::Governance => "governance",
        })
    }
}

/// A repository's object-lock policy: each object stays undeletable for `period_secs` after
/// it is written, and for as long again each time a prune finds it still needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockPolicy {
    pub mode: LockMode,
    pub period_secs: u64,
}

impl LockPolicy {
    /// The longest retention S3 accepts: 100 years.
    pub const MAX_PERIOD_SECS: u64 = 100 * 365 * 24 * 3600;

    /// The period, at most [`LockPolicy::MAX_PERIOD_SECS`], so `now + period` cannot
    /// overflow whatever a config says.
    pub fn period(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.period_secs.min(Self::MAX_PERIOD_SECS) as i64)
    }
}

/// What a store says about object lock on the repository's bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockSupport {
    /// Object lock is enabled on the bucket; its default retention, as the store states it
    /// (`COMPLIANCE 30 days`), if it has one.
    Enabled { default_retention: Option<String> },
    /// The store has object lock, but this bucket was created without it (it can only be
    /// turned on when a bucket is created, on most stores).
    NotEnabled,
    /// The store or the kind of location cannot lock objects; the reason says which.
    Unsupported(String),
}

/// What S3 says about one object's current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockState {
    pub version: Option<String>,
    pub mode: Option<LockMode>,
    pub retain_until: Option<DateTime<Utc>>,
}

impl LockState {
    /// The time until which the object cannot be deleted, if that is still ahead.
    pub fn held_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.retain_until.filter(|until| *until > now)
    }
}

/// Names of objects Lifeboat must be able to delete at any time: locks, prune notices and
/// damaged-pack notices. Everything else is data or what finds the data.
pub fn is_protected(name: &str) -> bool {
    let top = name.trim_start_matches('/').split('/').next().unwrap_or("");
    !matches!(top, "locks" | "prune" | "damaged")
}

/// An error of one object-lock request: what failed, with the store's code and message.
#[derive(Debug)]
pub(crate) enum LockError {
    NotFound,
    PermissionDenied(String),
    Failed(String),
}

/// Signs and sends object-lock requests for one bucket and prefix.
pub(crate) struct S3Lock {
    client: reqwest::Client,
    signer: Signer<Credential>,
    /// `http(s)://host[:port]/bucket` (path style) or `http(s)://bucket.host` (virtual host).
    bucket_url: String,
    /// The repository's prefix inside the bucket, without slashes at either end.
    prefix: String,
}

impl S3Lock {
    /// Resolves endpoint, region and credentials as OpenDAL's S3 service does for the same
    /// options and environment. Nothing is contacted yet.
    pub(crate) fn new(
        bucket: &str,
        prefix: &str,
        options: &[(String, String)],
        timeout: Duration,
    ) -> Result<S3Lock, String> {
        let option = |key: &str| {
            options
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let region = option("region")
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = option("endpoint")
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok())
            .or_else(|| std::env::var("AWS_S3_ENDPOINT").ok())
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            endpoint
        } else {
            format!("https://{endpoint}")
        };
        let endpoint = endpoint.trim_end_matches('/');
        let virtual_host = option("enable_virtual_host_style").is_some_and(|v| v == "true");
        let bucket_url = if virtual_host {
            endpoint.replacen("://", &format!("://{bucket}."), 1)
        } else {
            format!("{endpoint}/{bucket}")
        };
        let mut chain = ProvideCredentialChain::new();
        if let (Some(key), Some(secret)) = (option("access_key_id"), option("secret_access_key")) {
            let mut provider = StaticCredentialProvider::new(&key, &secret);
            if let Some(token) = option("session_token") {
                provider = provider.with_session_token(&token);
            }
            chain = chain.push(provider);
        }
        chain = chain.push(DefaultCredentialProvider::new());
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot start an HTTP client: {e}"))?;
        let context = Context::new()
            .with_file_read(reqsign_file_read_tokio::TokioFileRead)
            .with_env(OsEnv)
            .with_http_send(HttpSend(client.clone()));
        Ok(S3Lock {
            signer: Signer::new(context, chain, RequestSigner::new("s3", &region)),
            client,
            bucket_url,
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    fn object_url(&self, name: &str, query: &str) -> String {
        let key = if self.prefix.is_empty() {
            name.trim_start_matches('/').to_string()
        } else {
            format!("{}/{}", self.prefix, name.trim_start_matches('/'))
        };
        format!("{}/{}{query}", self.bucket_url, encode_key(&key))
    }

    async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<(http::StatusCode, http::HeaderMap, String), LockError> {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let (mut parts, ()) = request
            .body(())
            .map_err(|e| LockError::Failed(format!("bad request {url}: {e}")))?
            .into_parts();
        self.signer.sign(&mut parts, None).await.map_err(|e| {
            LockError::Failed(format!(
                "cannot sign the request: {}",
                first_line(&e.to_string())
            ))
        })?;
        let mut builder = self.client.request(parts.method, parts.uri.to_string());
        for (name, value) in parts.headers.iter() {
            if name != http::header::HOST {
                builder = builder.header(name, value);
            }
        }
        let response = builder.body(body).send().await.map_err(|e| {
            LockError::Failed(first_line(&crate::with_causes(
                e.to_string(),
                std::error::Error::source(&e),
            )))
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Ok((status, headers, text))
    }

    /// `GET ?object-lock` on the bucket.
    pub(crate) async fn probe(&self) -> Result<LockSupport, LockError> {
        let url = format!("{}?object-lock=", self.bucket_url);
        let (status, _, body) = self.send(http::Method::GET, &url, &[], Vec::new()).await?;
        let code = xml_value(&body, "Code");
        if status.is_success() {
            if !body.contains("ObjectLockConfiguration") {
                return Ok(LockSupport::Unsupported(
                    "the store answered a request for the bucket's object-lock configuration with something else: it does not implement S3 Object Lock".into(),
                ));
            }
            if xml_value(&body, "ObjectLockEnabled").as_deref() != Some("Enabled") {
                return Ok(LockSupport::NotEnabled);
            }
            let default_retention = xml_value(&body, "Mode").map(|mode| {
                let amount = xml_value(&body, "Days")
                    .map(|d| format!("{d} days"))
                    .or_else(|| xml_value(&body, "Years").map(|y| format!("{y} years")))
                    .unwrap_or_default();
                format!("{mode} {amount}").trim().to_string()
            });
            return Ok(LockSupport::Enabled { default_retention });
        }
        match code.as_deref() {
            Some("ObjectLockConfigurationNotFoundError") => Ok(LockSupport::NotEnabled),
            Some("NotImplemented") | Some("NotSupported") => Ok(LockSupport::Unsupported(
                "the store does not implement S3 Object Lock (it answered NotImplemented)".into(),
            )),
            _ if status == http::StatusCode::NOT_IMPLEMENTED => Ok(LockSupport::Unsupported(
                "the store does not implement S3 Object Lock (it answered 501)".into(),
            )),
            _ => Err(status_error(status, code, &body)),
        }
    }

    /// `HEAD` on the object: its current version and retention.
    pub(crate) async fn state(&self, name: &str) -> Result<LockState, LockError> {
        let url = self.object_url(name, "");
        let (status, headers, body) = self.send(http::Method::HEAD, &url, &[], Vec::new()).await?;
        if status == http::StatusCode::NOT_FOUND {
            return Err(LockError::NotFound);
        }
        if !status.is_success() {
            return Err(status_error(status, None, &body));
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(LockState {
            version: header("x-amz-version-id").filter(|v| !v.is_empty() && v != "null"),
            mode: header("x-amz-object-lock-mode").and_then(|m| LockMode::parse(&m)),
            retain_until: header("x-amz-object-lock-retain-until-date")
                .and_then(|d| DateTime::parse_from_rfc3339(&d).ok())
                .map(|d| d.with_timezone(&Utc)),
        })
    }

    /// `PUT ?retention` on the object's current version.
    pub(crate) async fn retain(
        &self,
        name: &str,
        mode: LockMode,
        until: DateTime<Utc>,
    ) -> Result<(), LockError> {
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
            mode.as_s3(),
            until.to_rfc3339_opts(SecondsFormat::Millis, true)
        )
        .into_bytes();
        // S3 requires a checksum of the body on every object-lock change.
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
        let url = self.object_url(name, "?retention=");
        let (status, _, text) = self
            .send(
                http::Method::PUT,
                &url,
                &[
                    ("content-md5", md5),
                    ("content-type", "application/xml".into()),
                ],
                body,
            )
            .await?;
        match status {
            s if s.is_success() => Ok(()),
            http::StatusCode::NOT_FOUND => Err(LockError::NotFound),
            s => Err(status_error(s, xml_value(&text, "Code"), &text)),
        }
    }

    /// `DELETE ?versionId=` (or a plain DELETE on an unversioned object).
    pub(crate) async fn delete_version(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), LockError> {
        let query = version
            .map(|v| format!("?versionId={}", encode_key(v).replace('/', "%2F")))
            .unwrap_or_default();
        let url = self.object_url(name, &query);
        let (status, _, text) = self
            .send(http::Method::DELETE, &url, &[], Vec::new())
            .await?;
        match status {
            s if s.is_success() => Ok(()),
            http::StatusCode::NOT_FOUND => Err(LockError::NotFound),
            s => Err(status_error(s, xml_value(&text, "Code"), &text)),
        }
    }
}

fn status_error(status: http::StatusCode, code: Option<String>, body: &str) -> LockError {
    let message = xml_value(body, "Message");
    let text = match (code, message) {
        (Some(code), Some(message)) => format!("{status}: {code}: {message}"),
        (Some(code), None) => format!("{status}: {code}"),
        _ => format!("{status}"),
    };
    if status == http::StatusCode::FORBIDDEN || status == http::StatusCode::UNAUTHORIZED {
        LockError::PermissionDenied(text)
    } else {
        LockError::Failed(text)
    }
}

/// The text of the first `<tag>...</tag>` in a small S3 XML document. S3's answers here are
/// a handful of flat elements; a full XML parser would add nothing.
fn xml_value(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].trim().to_string()).filter(|v| !v.is_empty())
}

/// Percent-encodes an object key for a URL path, keeping `/` (S3's URI encoding).
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// reqsign's HTTP sender (for credential providers such as IMDS and STS), on reqwest.
#[derive(Debug, Clone)]
struct HttpSend(reqwest::Client);

impl reqsign_core::HttpSend for HttpSend {
    async fn http_send(
        &self,
        req: http::Request<bytes::Bytes>,
    ) -> reqsign_core::Result<http::Response<bytes::Bytes>> {
        let failed = |e: reqwest::Error| {
            reqsign_core::Error::new(
                reqsign_core::ErrorKind::Unexpected,
                first_line(&e.to_string()),
            )
        };
        let (parts, body) = req.into_parts();
        let mut builder = self.0.request(parts.method, parts.uri.to_string());
        for (name, value) in parts.headers.iter() {
            builder = builder.header(name, value);
        }
        let response = builder.body(body).send().await.map_err(failed)?;
        let mut out = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            out = out.header(name, value);
        }
        let bytes = response.bytes().await.map_err(failed)?;
        out.body(bytes).map_err(|e| {
            reqsign_core::Error::new(reqsign_core::ErrorKind::Unexpected, e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_names_are_everything_but_locks_and_notices() {
        for name in [
            "config",
            "keys/ab",
            "data/ab/abcd",
            "index/ab",
            "snapshots/ab",
            "streams/a/b/1",
            "wal/7/0001",
            "drills/ab",
        ] {
            assert!(is_protected(name), "{name}");
        }
        for name in ["locks/ab", "prune/ab", "damaged/ab"] {
            assert!(!is_protected(name), "{name}");
        }
    }

    #[test]
    fn reads_the_lock_configuration_and_error_codes() {
        let enabled = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>30</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
        assert_eq!(
            xml_value(enabled, "ObjectLockEnabled").as_deref(),
            Some("Enabled")
        );
        assert_eq!(xml_value(enabled, "Days").as_deref(), Some("30"));
        assert_eq!(xml_value("<Error><Code></Code></Error>", "Code"), None);
        assert_eq!(xml_value("<Code>x", "Code"), None);
        assert_eq!(encode_key("a b/c+d"), "a%20b/c%2Bd");
    }
}
