//! Delivery against real servers on loopback: what each channel sends, retries,
//! timeouts, isolation between channels, and that no secret leaks into results.

mod email;
mod http;
mod servers;

use std::time::Duration;

use lifeboat_alerts::Event;
use lifeboat_config::{Alert, AlertKind, Secret};

/// Short, so the failure tests finish quickly; each test stays within a few of these.
const TIMEOUT: Duration = Duration::from_secs(2);

fn alert(kind: AlertKind, url: &str) -> Alert {
    Alert {
        kind,
        url: Secret::new(url),
        from: None,
        to: Vec::new(),
    }
}

fn job_failed() -> Event {
    Event::JobFailed {
        plan: "app".into(),
        target: "offsite".into(),
        error: "storage: bucket backups-eu is gone".into(),
    }
}

/// Asserts that none of `secrets` occurs in what the caller gets back.
fn assert_no_secrets(deliveries: &[lifeboat_alerts::Delivery], secrets: &[&str]) {
    let shown = format!("{deliveries:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret:?} leaked into {shown}");
    }
}
