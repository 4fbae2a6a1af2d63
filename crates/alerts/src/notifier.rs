//! Sends one event to every configured channel and reports each delivery.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_config::{Alert, AlertKind};

use crate::event::Event;
use crate::http::Http;
use crate::redact::{describe, scrub};
use crate::{email, ping, slack, webhook};

/// How long one delivery attempt may take unless [`Notifier::with_timeout`] says
/// otherwise: long enough for a slow mail server, short enough that a dead receiver
/// does not hold up the next channel for long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers events to the alert channels of a configuration.
///
/// Blocking: call it from a thread that may block (`spawn_blocking` in async code, not
/// an async task; it runs its own short-lived runtime for HTTP). Channels are tried one
/// after another, each attempt bounded by the timeout, with one retry for unreachable
/// receivers and 5xx (HTTP) or 4xx (SMTP) answers; so one channel takes at most about
/// twice the timeout.
#[derive(Debug, Clone)]
pub struct Notifier {
    alerts: Vec<Alert>,
    host: String,
    timeout: Duration,
}

/// The outcome for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The channel's kind and host, e.g. "slack hooks.slack.com": never the URL's path,
    /// query or credentials, which are secrets.
    pub channel: String,
    /// `Err` is one line, also free of the URL's secrets.
    pub result: Result<(), String>,
}

impl Delivery {
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// What every channel needs besides the event: fixed once per [`Notifier::send`], so
/// all channels report the same time.
pub(crate) struct Context<'a> {
    pub(crate) host: &'a str,
    pub(crate) now: DateTime<Utc>,
    pub(crate) timeout: Duration,
}

impl Context<'_> {
    /// The event's details and the host they happened on: the body of every message.
    pub(crate) fn text(&self, event: &Event) -> String {
        format!("{}\nhost: {}", event.details(self.now), self.host)
    }
}

impl Notifier {
    /// `host` names this machine in messages, so alerts from several hosts can be told
    /// apart.
    pub fn new(alerts: &[Alert], host: impl Into<String>) -> Notifier {
        Notifier {
            alerts: alerts.to_vec(),
            host: host.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Bounds each delivery attempt (connect, send and answer) by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Notifier {
        self.timeout = timeout;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// The channels, described as in [`Delivery::channel`].
    pub fn channels(&self) -> Vec<String> {
        self.alerts
            .iter()
            .map(|a| describe(a.kind, a.url.expose()))
            .collect()
    }

    /// Sends `event` to every channel that cares about it (see [`Event`]) and returns
    /// one [`Delivery`] per channel tried, in configuration order. A failing channel does
    /// not stop the others.
    pub fn send(&self, event: &Event) -> Vec<Delivery> {
        let ctx = Context {
            host: &self.host,
            now: Utc::now(),
            timeout: self.timeout,
        };
        // Set up on first use: an event that only email (or nobody) wants starts no
        // runtime.
        let mut http: Option<Result<Http, String>> = None;
        let mut deliveries = Vec::new();
        for alert in &self.alerts {
            let wanted = match alert.kind {
                AlertKind::Webhook => webhook::wants(event),
                AlertKind::Slack => slack::wants(event),
                AlertKind::Ping => ping::wants(event),
                AlertKind::Email => email::wants(event),
            };
            if !wanted {
                continue;
            }
            let url = alert.url.expose();
            let result = match alert.kind {
                AlertKind::Email => email::deliver(alert, event, &ctx),
                kind => match http.get_or_insert_with(|| Http::new(self.timeout)) {
                    Err(e) => Err(e.clone()),
                    Ok(http) => match kind {
                        AlertKind::Webhook => webhook::deliver(http, url, event, &ctx),
                        AlertKind::Slack => slack::deliver(http, url, event, &ctx),
                        _ => ping::deliver(http, url, event, &ctx),
                    },
                },
            };
            deliveries.push(Delivery {
                channel: describe(alert.kind, url),
                // The one place every error passes: scrubbing here covers all channels.
                result: result.map_err(|e| scrub(&e, url)),
            });
        }
        deliveries
    }
}
