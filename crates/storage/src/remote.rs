//! The client of `lifeboat serve` (protocol: docs/SERVER.md): objects over HTTPS with a
//! bearer token. The token comes from `LIFEBOAT_SERVER_TOKEN` only (never a URL or an
//! argument, which end up in logs and process lists). The server's certificate is checked
//! against the system's roots, or, when a fingerprint is pinned, against that SHA-256 of
//! its DER bytes (the handshake signature is still verified with the provider's
//! algorithms, so only the key holder can answer).

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::{first_line, ObjectInfo, StorageError, StorageOptions, SMALL_OBJECT};

/// The environment variable that holds the client's token.
pub const TOKEN_ENV: &str = "LIFEBOAT_SERVER_TOKEN";
/// The environment variable that pins the server's certificate (`sha256:<hex>`).
pub const FINGERPRINT_ENV: &str = "LIFEBOAT_SERVER_FINGERPRINT";
/// The response header that carries an object's size on `HEAD`.
pub const SIZE_HEADER: &str = "x-lifeboat-size";
/// The response header that repeats a refusal's reason (a `HEAD` answer has no body).
pub const REASON_HEADER: &str = "x-lifeboat-reason";

/// `sha256:<hex>` of a certificate's DER bytes: what `lifeboat serve` prints and clients pin.
pub fn certificate_fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// The token's name and role, as the server reports them (`GET /v1/whoami`).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct ServerAccess {
    pub token: String,
    pub role: String,
}

/// One object of a listing, as the server sends it.
#[derive(serde::Deserialize)]
struct Listed {
    name: String,
    size: u64,
}

pub(crate) struct Remote {
    client: reqwest::Client,
    /// `https://host:port`
    base: String,
    location: String,
    token: String,
    options: StorageOptions,
}

/// What a request returned: status, the size header, the body.
struct Reply {
    status: reqwest::StatusCode,
    size: Option<u64>,
    reason: Option<String>,
    body: bytes::Bytes,
}

impl Remote {
    pub(crate) fn new(
        authority: &str,
        url_fingerprint: Option<&str>,
        location: String,
        options: StorageOptions,
    ) -> crate::Result<Remote> {
        let bad = |reason: String| StorageError::BadLocation {
            url: location.clone(),
            reason,
        };
        let token = std::env::var(TOKEN_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                bad(format!(
                    "set {TOKEN_ENV} to the token `lifeboat serve token add` printed"
                ))
            })?;
        let env_fingerprint = match std::env::var(FINGERPRINT_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                Some(crate::location::parse_fingerprint(&v).map_err(bad)?)
            }
            _ => None,
        };
        let pinned = match (url_fingerprint, env_fingerprint) {
            (Some(a), Some(b)) if a != b => {
                return Err(bad(format!(
                    "the URL pins {a} but {FINGERPRINT_ENV} pins {b}"
                )))
            }
            (Some(a), _) => Some(a.to_string()),
            (None, b) => b,
        };
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .connect_timeout(options.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("lifeboat/", env!("CARGO_PKG_VERSION")));
        if let Some(pinned) = &pinned {
            builder = builder.tls_backend_preconfigured(pinned_config(pinned).map_err(bad)?);
        }
        let client = builder
            .build()
            .map_err(|e| bad(format!("cannot set up HTTPS: {}", chain(&e))))?;
        Ok(Remote {
            client,
            base: format!("https://{authority}"),
            location,
            token,
            options,
        })
    }

    fn url(&self, kind: &str, name: &str) -> String {
        format!("{}/v1/{kind}/{name}", self.base)
    }

    /// Sends one request, retrying transport failures and 5xx answers (never a refused
    /// certificate: a wrong fingerprint does not get better).
    async fn send(
        &self,
        op: &'static str,
        name: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
        timeout: Duration,
    ) -> crate::Result<Reply> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            let result = async {
                let response = build()
                    .bearer_auth(&self.token)
                    .timeout(timeout)
                    .send()
                    .await?;
                let status = response.status();
                let size = response
                    .headers()
                    .get(SIZE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                let reason = response
                    .headers()
                    .get(REASON_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>(Reply {
                    status,
                    size,
                    reason,
                    body,
                })
            }
            .await;
            let retry_detail = match result {
                Ok(reply) if !reply.status.is_server_error() => return Ok(reply),
                Ok(reply) => format!("HTTP {}: {}", reply.status, body_line(&reply.body)),
                Err(e) => {
                    let detail = chain(&e);
                    if let Some(start) = detail.find(MISMATCH) {
                        // Said plainly, without the layers of HTTP client around it.
                        return Err(self.failed(
                            op,
                            name,
                            format!(
                                "{} (the server prints its fingerprint when it starts; check {FINGERPRINT_ENV} or ?fingerprint=)",
                                &detail[start..]
                            ),
                        ));
                    }
                    if detail.contains("certificate") {
                        return Err(self.failed(op, name, detail));
                    }
                    detail
                }
            };
            if attempt >= self.options.retries {
                return Err(self.failed(op, name, retry_detail));
            }
            attempt += 1;
            tracing::debug!(
                "retrying {op} {name} (attempt {attempt}) in {:.1}s: {retry_detail}",
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(4));
        }
    }

    fn failed(&self, op: &'static str, path: &str, detail: String) -> StorageError {
        StorageError::Failed {
            location: self.location.clone(),
            op,
            path: path.to_string(),
            detail,
        }
    }

    /// Maps a non-success answer to the error callers understand.
    fn refused(&self, op: &'static str, path: &str, reply: &Reply) -> StorageError {
        let location = self.location.clone();
        let path = path.to_string();
        let detail = match &reply.reason {
            Some(reason) if reply.body.is_empty() => first_line(reason),
            _ => body_line(&reply.body),
        };
        match reply.status.as_u16() {
            404 => StorageError::NotFound { location, path },
            416 => StorageError::Truncated {
                location,
                path,
                detail,
            },
            401 | 403 => StorageError::PermissionDenied {
                location,
                path,
                detail: format!("the server refused: {detail}"),
            },
            _ => StorageError::Failed {
                location,
                op,
                path,
                detail: format!("HTTP {}: {detail}", reply.status),
            },
        }
    }

    fn io_timeout(&self, len: u64) -> Duration {
        if len <= SMALL_OBJECT {
            self.options.io_timeout
        } else {
            self.options.large_io_timeout
        }
    }

    pub(crate) async fn write(&self, name: &str, bytes: Vec<u8>) -> crate::Result<()> {
        let timeout = self.io_timeout(bytes.len() as u64);
        let body = bytes::Bytes::from(bytes);
        let url = self.url("objects", name);
        let reply = self
            .send(
                "write",
                name,
                || self.client.put(&url).body(body.clone()),
                timeout,
            )
            .await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(self.refused("write", name, &reply))
        }
    }

    pub(crate) async fn read(&self, name: &str, large: bool) -> crate::Result<Vec<u8>> {
        let timeout = if large {
            self.options.large_io_timeout
        } else {
            self.options.io_timeout
        };
        let url = self.url("objects", name);
        let reply = self
            .send("read", name, || self.client.get(&url), timeout)
            .await?;
        if reply.status.is_success() {
            Ok(reply.body.to_vec())
        } else {
            Err(self.refused("read", name, &reply))
        }
    }

    pub(crate) async fn read_range(
        &self,
        name: &str,
        offset: u64,
        len: u64,
    ) -> crate::Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let url = self.url("objects", name);
        let range = format!("bytes={offset}-{}", offset + len - 1);
        let reply = self
            .send(
                "read",
                name,
                || {
                    self.client
                        .get(&url)
                        .header(reqwest::header::RANGE, range.as_str())
                },
                self.io_timeout(len),
            )
            .await?;
        if reply.status == reqwest::StatusCode::PARTIAL_CONTENT {
            Ok(reply.body.to_vec())
        } else {
            Err(self.refused("read", name, &reply))
        }
    }

    pub(crate) async fn size(&self, name: &str) -> crate::Result<u64> {
        let url = self.url("objects", name);
        let reply = self
            .send(
                "stat",
                name,
                || self.client.head(&url),
                self.options.request_timeout,
            )
            .await?;
        if !reply.status.is_success() {
            return Err(self.refused("stat", name, &reply));
        }
        reply
            .size
            .ok_or_else(|| self.failed("stat", name, format!("no {SIZE_HEADER} header")))
    }

    pub(crate) async fn list(&self, dir: &str) -> crate::Result<Vec<ObjectInfo>> {
        let dir = dir.trim_matches('/');
        let url = self.url("list", dir);
        let reply = self
            .send(
                "list",
                dir,
                || self.client.get(&url),
                self.options.large_io_timeout,
            )
            .await?;
        if !reply.status.is_success() {
            return Err(self.refused("list", dir, &reply));
        }
        let listed: Vec<Listed> = serde_json::from_slice(&reply.body)
            .map_err(|e| self.failed("list", dir, format!("the listing is not JSON: {e}")))?;
        let mut objects: Vec<ObjectInfo> = listed
            .into_iter()
            .map(|l| ObjectInfo {
                name: l.name,
                size: l.size,
            })
            .collect();
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(objects)
    }

    pub(crate) async fn delete(&self, name: &str) -> crate::Result<()> {
        let url = self.url("objects", name);
        let reply = self
            .send(
                "delete",
                name,
                || self.client.delete(&url),
                self.options.request_timeout,
            )
            .await?;
        if reply.status.is_success() || reply.status == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(self.refused("delete", name, &reply))
        }
    }

    pub(crate) async fn whoami(&self) -> crate::Result<ServerAccess> {
        let url = format!("{}/v1/whoami", self.base);
        let reply = self
            .send(
                "ask",
                "whoami",
                || self.client.get(&url),
                self.options.request_timeout,
            )
            .await?;
        if !reply.status.is_success() {
            return Err(self.refused("ask", "whoami", &reply));
        }
        serde_json::from_slice(&reply.body).map_err(|e| {
            self.failed(
                "ask",
                "whoami",
                format!("not the answer of a Lifeboat server: {e}"),
            )
        })
    }
}

/// The first line of an error body, bounded (a proxy's HTML page must not flood a log).
fn body_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned();
    let line = first_line(&text);
    if line.is_empty() {
        "(no reason given)".into()
    } else {
        line
    }
}

/// An error and its causes on one line (reqwest's own message is only "error sending
/// request"; the reason, e.g. the fingerprint mismatch, is further down).
fn chain(e: &dyn std::error::Error) -> String {
    crate::with_causes(first_line(&e.to_string()), e.source())
}

fn pinned_config(fingerprint: &str) -> std::result::Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertificate {
        fingerprint: fingerprint.to_string(),
        algorithms: provider.signature_verification_algorithms,
    };
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        })
}

/// Accepts exactly the certificate whose SHA-256 is pinned, whatever its names and dates
/// (a self-signed certificate has neither a CA nor a renewal), and checks that the server
/// holds its key.
#[derive(Debug)]
struct PinnedCertificate {
    fingerprint: String,
    algorithms: WebPkiSupportedAlgorithms,
}

/// How the error of a connection to a server with another certificate starts.
const MISMATCH: &str = "the server's certificate has fingerprint";

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let found = certificate_fingerprint(end_entity);
        if found == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            // `General`, whose text rustls shows as it is (an `OtherError` is shown by Debug).
            Err(rustls::Error::General(format!(
                "{MISMATCH} {found}, not the pinned {}",
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
