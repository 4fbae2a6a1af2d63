//! `[[alert]]`: the URL scheme fits the kind, and email has a sender and recipients.

use super::Checker;
use crate::model::{Alert, AlertKind};
use crate::raw::{RawAlert, RawAlertKind};
use crate::secret::Secret;

pub(super) fn check(c: &mut Checker<'_>, raw: &RawAlert) -> Option<Alert> {
    let kind = match raw.kind.value {
        RawAlertKind::Webhook => AlertKind::Webhook,
        RawAlertKind::Slack => AlertKind::Slack,
        RawAlertKind::Ping => AlertKind::Ping,
        RawAlertKind::Email => AlertKind::Email,
    };
    let (schemes, kind_name): (&[&str], &str) = match kind {
        AlertKind::Email => (&["smtp://", "smtps://"], "email"),
        AlertKind::Webhook => (&["http://", "https://"], "webhook"),
        AlertKind::Slack => (&["http://", "https://"], "slack"),
        AlertKind::Ping => (&["http://", "https://"], "ping"),
    };
    let url = c.non_empty(&raw.url, "alert url");
    let mut ok = url.is_some();
    if let Some(url) = &url {
        let lower = url.to_ascii_lowercase();
        if !schemes.iter().any(|s| lower.starts_with(s)) {
            // The URL itself is a secret (webhook URLs carry tokens): name the rule only.
            c.error(
                &raw.url.span,
                format!("{kind_name} alerts need an {} url", schemes.join(" or ")),
            );
            ok = false;
        }
    }
    let from = raw.from.as_ref().map(|f| c.non_empty(f, "from"));
    let to: Vec<Option<String>> = raw.to.iter().map(|t| c.non_empty(t, "to")).collect();
    if kind == AlertKind::Email {
        if raw.from.is_none() {
            c.error(
                &raw.kind.span,
                "an email alert needs from = \"sender address\"",
            );
            ok = false;
        }
        if raw.to.is_empty() {
            c.error(
                &raw.kind.span,
                "an email alert needs to = [\"recipient\", ...]",
            );
            ok = false;
        }
    } else {
        let misplaced = raw.from.iter().chain(raw.to.first());
        for value in misplaced {
            c.error(&value.span, "from and to apply only to email alerts");
            ok = false;
        }
    }
    let from = match from {
        Some(f) => Some(f?),
        None => None,
    };
    let to: Option<Vec<String>> = to.into_iter().collect();
    if !ok {
        return None;
    }
    Some(Alert {
        kind,
        url: Secret::new(url?),
        from,
        to: to?,
    })
}
