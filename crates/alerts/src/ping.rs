//! healthchecks.io-style pings: `<url>/start` when a job begins, `<url>` when it
//! succeeds and `<url>/fail` when it fails. The service itself raises the alarm when an
//! expected ping does not come, which catches the case nothing else can: lifeboat not
//! running at all.

use url::Url;

use crate::event::Event;
use crate::http::Http;
use crate::notifier::Context;

/// healthchecks.io keeps the first 100 kB of a ping's body; an error never needs that.
const MAX_BODY: usize = 10_000;

/// `Recovered` sends nothing: the success ping that precedes it already closed the
/// incident on the service's side.
pub(crate) fn wants(event: &Event) -> bool {
    suffix(event).is_some()
}

fn suffix(event: &Event) -> Option<&'static str> {
    match event {
        Event::JobStarted { .. } => Some("/start"),
        Event::JobSucceeded { .. } => Some(""),
        Event::JobFailed { .. }
        | Event::RpoMissed { .. }
        | Event::ObjectiveUnchecked { .. }
        | Event::DrillFailed { .. }
        | Event::ReplicatorDown { .. } => Some("/fail"),
        // The run's success ping already went out: the snapshot was saved.
        Event::Recovered { .. } | Event::JobWarnings { .. } => None,
    }
}

pub(crate) fn deliver(
    http: &Http,
    url: &str,
    event: &Event,
    ctx: &Context<'_>,
) -> Result<(), String> {
    let Some(suffix) = suffix(event) else {
        return Ok(());
    };
    let url = ping_url(url, suffix)?;
    // The body shows up in the check's log on the service: say what happened.
    let mut body = format!("{}\n{}", event.title(), ctx.text(event));
    if body.len() > MAX_BODY {
        let mut end = MAX_BODY;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
    }
    http.post(url.as_str(), "text/plain; charset=utf-8", body.into_bytes())
}

/// Appends `suffix` to the path, keeping the query (`?create=1`) where it was and not
/// doubling a trailing slash.
pub(crate) fn ping_url(base: &str, suffix: &str) -> Result<Url, String> {
    let mut url = Url::parse(base).map_err(|e| format!("invalid ping URL: {e}"))?;
    let path = format!("{}{suffix}", url.path().trim_end_matches('/'));
    url.set_path(if path.is_empty() { "/" } else { &path });
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::ping_url;

    #[test]
    fn suffixes_join_without_double_slashes() {
        let cases = [
            (
                "https://hc-ping.com/abc",
                "/start",
                "https://hc-ping.com/abc/start",
            ),
            (
                "https://hc-ping.com/abc/",
                "/start",
                "https://hc-ping.com/abc/start",
            ),
            ("https://hc-ping.com/abc/", "", "https://hc-ping.com/abc"),
            (
                "https://hc-ping.com/abc?create=1",
                "/fail",
                "https://hc-ping.com/abc/fail?create=1",
            ),
            ("http://127.0.0.1:8000", "", "http://127.0.0.1:8000/"),
            (
                "http://127.0.0.1:8000/",
                "/fail",
                "http://127.0.0.1:8000/fail",
            ),
        ];
        for (base, suffix, want) in cases {
            assert_eq!(
                ping_url(base, suffix).unwrap().as_str(),
                want,
                "{base} + {suffix:?}"
            );
        }
    }
}
