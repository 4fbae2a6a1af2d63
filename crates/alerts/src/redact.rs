//! Keeps alert URLs out of everything this crate prints.
//!
//! Slack and healthchecks URLs carry their token in the path, webhook URLs often in the
//! query, SMTP URLs a password in the userinfo. Delivery results end up in logs and in
//! the agent's API, so descriptions name only the kind and the host, and error text is
//! scrubbed of every part of the URL that could be a credential.

use lifeboat_config::AlertKind;
use percent_encoding::percent_decode_str;
use url::Url;

/// "slack hooks.slack.com", "email smtp.example.com:587": enough to tell channels apart.
pub(crate) fn describe(kind: AlertKind, url: &str) -> String {
    let kind = kind_name(kind);
    match Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{kind} {host}:{port}"),
            (Some(host), None) => format!("{kind} {host}"),
            (None, _) => format!("{kind} (URL without a host)"),
        },
        Err(_) => format!("{kind} (unparsable URL)"),
    }
}

pub(crate) fn kind_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Webhook => "webhook",
        AlertKind::Slack => "slack",
        AlertKind::Ping => "ping",
        AlertKind::Email => "email",
    }
}

/// Removes the URL's secret-bearing parts from `message` and makes it one line.
///
/// Libraries put the request URL into their errors and servers echo paths back in
/// their bodies; rather than trusting every layer, the finished text is scrubbed.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let mut secrets: Vec<String> = vec![url.to_string()];
    if let Ok(u) = Url::parse(url) {
        secrets.push(u.as_str().to_string());
        let path = u.path();
        if path.len() > 1 {
            secrets.push(path.to_string());
            secrets.push(path.trim_matches('/').to_string());
            // A lone token may be quoted without its neighbours ("no hook named X").
            // Short segments such as "hooks" or "services" are not secret and would
            // only blank out ordinary words.
            secrets.extend(
                path.split('/')
                    .filter(|s| s.len() >= 8)
                    .map(|s| s.to_string()),
            );
        }
        if let Some(query) = u.query() {
            secrets.push(query.to_string());
        }
        for part in [u.username(), u.password().unwrap_or("")] {
            if !part.is_empty() {
                secrets.push(part.to_string());
                secrets.push(percent_decode_str(part).decode_utf8_lossy().into_owned());
            }
        }
    }
    // Longest first, so a whole URL goes before its path is found inside it.
    secrets.retain(|s| !s.is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = one_line(message);
    for secret in &secrets {
        out = replace_words(&out, secret);
    }
    out
}

/// Replaces `secret` where it stands as a word of its own. A short user name or
/// password ("u", "pw") also occurs inside ordinary words ("Connection refused"), and
/// blanking those would garble the message without hiding anything.
fn replace_words(text: &str, secret: &str) -> String {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(secret) {
        let before = rest[..at].chars().next_back().or(out.chars().next_back());
        let after = rest[at + secret.len()..].chars().next();
        // A secret that itself starts or ends inside a word (a path, a URL) is
        // replaced wherever it occurs.
        let starts_word = secret.chars().next().is_some_and(|c| is_word(Some(c)));
        let ends_word = secret.chars().next_back().is_some_and(|c| is_word(Some(c)));
        let inside_word = (starts_word && is_word(before)) || (ends_word && is_word(after));
        out.push_str(&rest[..at]);
        if !inside_word {
            out.push_str("***");
            rest = &rest[at + secret.len()..];
        } else {
            // Keep one character and look again after it.
            let step = rest[at..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[at..at + step]);
            rest = &rest[at + step..];
        }
    }
    out.push_str(rest);
    out
}

/// Joins lines and squeezes whitespace: delivery errors are shown in one-line lists.
pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_only_kind_and_host() {
        let url = "https://user:pw@hooks.slack.com/services/T000/B000/XXXXXXXXXXXX?x=1";
        assert_eq!(describe(AlertKind::Slack, url), "slack hooks.slack.com");
        assert_eq!(
            describe(AlertKind::Email, "smtp://u:p@mail.example.com:587"),
            "email mail.example.com:587"
        );
        assert_eq!(
            describe(AlertKind::Webhook, "not a url /secret"),
            "webhook (unparsable URL)"
        );
    }

    #[test]
    fn scrubbing_removes_path_query_and_userinfo() {
        let url = "http://al%40ice:p%40ss@127.0.0.1:9/hooks/SECRET-TOKEN?key=QUERYSECRET";
        let message = format!(
            "error sending request for url ({url}):\n  404 no hook /hooks/SECRET-TOKEN; \
             SECRET-TOKEN key=QUERYSECRET user al@ice pass p@ss"
        );
        let out = scrub(&message, url);
        for leak in [
            "SECRET-TOKEN",
            "QUERYSECRET",
            "p@ss",
            "p%40ss",
            "al@ice",
            "/hooks",
        ] {
            assert!(!out.contains(leak), "{leak} in {out}");
        }
        assert!(!out.contains('\n'));
        assert!(out.contains("404 no hook"), "{out}");
    }

    #[test]
    fn short_credentials_do_not_garble_words() {
        let url = "smtp://u:pw@mail.example.com";
        let out = scrub("Connection refused for u (password pw, u:pw)", url);
        assert_eq!(out, "Connection refused for *** (password ***, ***:***)");
        assert_eq!(replace_words("tokentoken token", "token"), "tokentoken ***");
    }
}
