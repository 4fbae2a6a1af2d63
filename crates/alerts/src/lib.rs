//! Delivers Lifeboat's alerts to the channels of `[[alert]]`: generic JSON webhooks,
//! Slack-style incoming webhooks, healthchecks.io-style pings and email over SMTP.
//!
//! The caller decides *when* to alert (once per incident, using [`Event::key`]); this
//! crate decides *how*: [`Notifier::send`] formats the [`Event`] for each channel that
//! cares about it, delivers it with a timeout and one retry, and returns a [`Delivery`]
//! per channel. Alert URLs are secrets (their paths carry tokens), so nothing this crate
//! returns contains a URL's path, query or credentials.
//!
//! ```no_run
//! use lifeboat_alerts::{Event, Notifier};
//! # let alerts: Vec<lifeboat_config::Alert> = Vec::new();
//! let notifier = Notifier::new(&alerts, "db1.example.com");
//! let event = Event::JobFailed {
//!     plan: "app".into(),
//!     target: "offsite".into(),
//!     error: "storage: connection reset".into(),
//! };
//! for delivery in notifier.send(&event) {
//!     if let Err(e) = delivery.result {
//!         eprintln!("alert via {} failed: {e}", delivery.channel);
//!     }
//! }
//! ```

mod email;
mod event;
mod http;
mod notifier;
mod ping;
mod redact;
mod slack;
mod webhook;

pub use event::{Event, Severity};
pub use notifier::{Delivery, Notifier, DEFAULT_TIMEOUT};
