//! Slack incoming webhooks (and the Slack-compatible endpoints of Mattermost and
//! Discord): `{"text": ...}`, the one field all of them accept.

use serde_json::json;

use crate::event::Event;
use crate::http::Http;
use crate::notifier::Context;

pub(crate) fn wants(event: &Event) -> bool {
    crate::webhook::wants(event)
}

pub(crate) fn deliver(
    http: &Http,
    url: &str,
    event: &Event,
    ctx: &Context<'_>,
) -> Result<(), String> {
    http.post_json(url, &body(event, ctx))
}

pub(crate) fn body(event: &Event, ctx: &Context<'_>) -> serde_json::Value {
    json!({ "text": escape(&format!("{}\n{}", event.title(), ctx.text(event))) })
}

/// Slack reads `<...>` as links and mentions and `&` as the start of an entity; its
/// documentation asks senders to escape exactly these three, or an error such as
/// "<stdin>: broken pipe" loses words.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(super::escape("a <b> & c"), "a &lt;b&gt; &amp; c");
    }
}
