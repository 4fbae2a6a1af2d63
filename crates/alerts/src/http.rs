//! One HTTP POST with a timeout and a single retry, shared by webhook, Slack and ping.
//!
//! reqwest's async client is driven by a current-thread runtime that lives only as long
//! as one [`Notifier::send`](crate::Notifier::send): the caller needs no runtime of its
//! own, and nothing is left behind that could panic when dropped inside an async context.
//! (reqwest's `blocking` feature would do the same with an extra thread, but it changes
//! reqwest's feature set and so would recompile reqwest and opendal in workspace builds.)

use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use tokio::runtime::Runtime;

use crate::event::human_duration;
use crate::redact::one_line;

/// A pause before the retry: long enough for a restarting receiver or a dropped
/// connection to come back, short enough not to hold up the other channels.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How much of an error response's body is quoted: Slack and friends explain themselves
/// there ("invalid_token", "no_service"), but a whole HTML error page is noise.
const QUOTED_BODY: usize = 200;

pub(crate) struct Http {
    runtime: Runtime,
    client: reqwest::Client,
    timeout: Duration,
}

enum Attempt {
    Done,
    /// Worth one more try: the receiver was unreachable or had a server error.
    Retry(String),
    Failed(String),
}

impl Http {
    pub(crate) fn new(timeout: Duration) -> Result<Http, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
        // reqwest is built without a TLS provider of its own (see Cargo.toml): the
        // process default must be there first. Installing it again changes nothing.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("lifeboat/", env!("CARGO_PKG_VERSION")))
            // A redirected POST turns into a GET that delivers nothing; better to say so
            // (as a failed delivery naming the 3xx) than to report success.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", chain(&e)))?;
        Ok(Http {
            runtime,
            client,
            timeout,
        })
    }

    /// POSTs `value` as JSON (webhooks, Slack).
    pub(crate) fn post_json(&self, url: &str, value: &serde_json::Value) -> Result<(), String> {
        let body = serde_json::to_vec(value).map_err(|e| e.to_string())?;
        self.post(url, "application/json", body)
    }

    /// POSTs `body` to `url`; `Err` is one line, not yet scrubbed of the URL's secrets.
    pub(crate) fn post(
        &self,
        url: &str,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Result<(), String> {
        match self.attempt(url, content_type, body.clone()) {
            Attempt::Done => Ok(()),
            Attempt::Failed(e) => Err(e),
            Attempt::Retry(first) => {
                std::thread::sleep(RETRY_PAUSE);
                match self.attempt(url, content_type, body) {
                    Attempt::Done => Ok(()),
                    Attempt::Failed(e) | Attempt::Retry(e) if e == first => {
                        Err(format!("{e} (tried twice)"))
                    }
                    Attempt::Failed(e) | Attempt::Retry(e) => {
                        Err(format!("{e} (first try: {first})"))
                    }
                }
            }
        }
    }

    fn attempt(&self, url: &str, content_type: &'static str, body: Vec<u8>) -> Attempt {
        self.runtime.block_on(async {
            let response = self
                .client
                .post(url)
                .header(CONTENT_TYPE, HeaderValue::from_static(content_type))
                .body(body)
                .send()
                .await;
            let mut response = match response {
                Ok(r) => r,
                Err(e) if e.is_connect() => return Attempt::Retry(self.describe(e)),
                // A timeout after connecting may have delivered already; a second try
                // would risk a duplicate alert and double the wait.
                Err(e) => return Attempt::Failed(self.describe(e)),
            };
            let status = response.status();
            if status.is_success() {
                return Attempt::Done;
            }
            let mut quoted = Vec::new();
            while quoted.len() < QUOTED_BODY {
                match response.chunk().await {
                    Ok(Some(chunk)) => quoted.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            let quoted = one_line(&String::from_utf8_lossy(&quoted));
            let quoted: String = quoted.chars().take(QUOTED_BODY).collect();
            let mut message = format!("HTTP {status}");
            if !quoted.is_empty() {
                message = format!("{message}: {quoted}");
            }
            if status.is_server_error() {
                Attempt::Retry(message)
            } else {
                Attempt::Failed(message)
            }
        })
    }

    fn describe(&self, e: reqwest::Error) -> String {
        let when = if e.is_connect() { " connecting" } else { "" };
        if e.is_timeout() {
            return format!("timed out{when} after {}", human_duration(self.timeout));
        }
        // reqwest puts the URL into its message; `without_url` drops it (and `scrub`
        // catches anything that still slips through).
        let e = e.without_url();
        if e.is_connect() {
            // The innermost cause ("Connection refused (os error 111)") is the news;
            // the layers above it only say "client error (Connect)".
            let mut innermost: &dyn std::error::Error = &e;
            while let Some(next) = innermost.source() {
                innermost = next;
            }
            return format!("cannot connect: {innermost}");
        }
        chain(&e)
    }
}

/// An error and its causes, "a: b: c", skipping causes the message already repeats.
fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = s.source();
    }
    one_line(&message)
}
