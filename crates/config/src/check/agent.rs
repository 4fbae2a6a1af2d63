//! `[agent]`: where the HTTP API listens, and who may call it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::Checker;
use crate::model::AgentSettings;
use crate::raw::RawAgent;
use crate::secret::Secret;

/// `None` when a problem was reported; the defaults when `[agent]` is absent.
pub(super) fn check(c: &mut Checker<'_>, raw: Option<&RawAgent>) -> Option<AgentSettings> {
    let Some(raw) = raw else {
        return Some(AgentSettings::default());
    };
    let token = raw
        .token
        .as_ref()
        .map(|t| c.non_empty(t, "token").map(Secret::new));
    let read_token = raw
        .read_token
        .as_ref()
        .map(|t| c.non_empty(t, "read_token").map(Secret::new));
    if let (Some(Some(read)), Some(Some(operator)), Some(written)) =
        (&read_token, &token, &raw.read_token)
    {
        // The same secret in both roles would give every dashboard the operator's rights.
        if read.expose() == operator.expose() {
            c.error(
                &written.span,
                "read_token is the same as token; give each role its own",
            );
        }
    }
    let remote_allowed = raw.allow_remote && raw.token.is_some();
    let listen = match &raw.listen {
        None => Some(AgentSettings::DEFAULT_LISTEN),
        Some(text) => match parse_listen(&text.value) {
            None => {
                c.error(
                    &text.span,
                    format!(
                        "listen address {:?} is not IP:port, like 127.0.0.1:7070",
                        text.value
                    ),
                );
                None
            }
            // The API can start and stop backups: off the machine only on purpose, and
            // never without a token.
            Some(addr) if !(addr.ip().is_loopback() || remote_allowed) => {
                c.error(
                    &text.span,
                    format!(
                        "agent would listen on {addr}, which is not a loopback address; \
                         set allow_remote = true and a token to accept connections from other hosts"
                    ),
                );
                None
            }
            Some(addr) => Some(addr),
        },
    };
    // `None` inside: refused (the error is recorded) or left out (see `Needs`).
    let token = token.flatten();
    Some(AgentSettings {
        listen: listen?,
        token,
        read_token: read_token.flatten(),
        state: raw.state.as_ref().map(PathBuf::from),
        allow_remote: raw.allow_remote,
    })
}

fn parse_listen(text: &str) -> Option<SocketAddr> {
    if let Some(port) = text.strip_prefix("localhost:") {
        return Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port.parse().ok()?)));
    }
    text.parse().ok()
}
