//! Email over SMTP with lettre's blocking transport (std sockets, no runtime).
//!
//! `smtp://host:port` speaks plain SMTP and upgrades with STARTTLS when the server
//! offers it; `smtps://host:port` is TLS from the first byte. Credentials come from the
//! URL's userinfo, percent-decoded (`smtp://alerts%40example.com:p%40ss@host:587`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::Error as SmtpError;
use lettre::{Message, SmtpTransport, Transport};
use lifeboat_config::Alert;
use percent_encoding::percent_decode_str;
use url::Url;

use crate::event::{human_duration, Event};
use crate::notifier::Context;

/// Same pause as HTTP's before its one retry.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

pub(crate) fn wants(event: &Event) -> bool {
    crate::webhook::wants(event)
}

pub(crate) fn deliver(alert: &Alert, event: &Event, ctx: &Context<'_>) -> Result<(), String> {
    let server = Server::parse(alert.url.expose())?;
    let message = message(alert, event, ctx)?;
    let transport = server.transport(ctx)?;
    let first = match transport.send(&message) {
        Ok(_) => return Ok(()),
        Err(e) if worth_retrying(&e) => describe(&e, ctx.timeout),
        Err(e) => return Err(describe(&e, ctx.timeout)),
    };
    std::thread::sleep(RETRY_PAUSE);
    match transport.send(&message) {
        Ok(_) => Ok(()),
        Err(e) => {
            let second = describe(&e, ctx.timeout);
            if second == first {
                Err(format!("{second} (tried twice)"))
            } else {
                Err(format!("{second} (first try: {first})"))
            }
        }
    }
}

/// Connection trouble and 4xx replies ("try again later", greylisting) are what SMTP
/// means to be retried; a 5xx reply or a TLS or address problem will not change, and
/// after a timeout the server may have taken the mail (and a retry doubles the wait).
fn worth_retrying(e: &SmtpError) -> bool {
    if e.is_transient() {
        return true;
    }
    !(is_timeout(e) || e.is_permanent() || e.is_response() || e.is_client() || e.is_tls())
}

/// lettre's `is_timeout` looks for `TimedOut` only, but an expired socket read timeout
/// shows up on Unix as `WouldBlock` ("Resource temporarily unavailable").
fn is_timeout(e: &SmtpError) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            );
        }
        source = err.source();
    }
    false
}

fn describe(e: &SmtpError, timeout: Duration) -> String {
    if is_timeout(e) {
        format!("SMTP: timed out after {}", human_duration(timeout))
    } else {
        format!("SMTP: {e}")
    }
}

struct Server {
    host: String,
    port: u16,
    implicit_tls: bool,
    credentials: Option<Credentials>,
}

impl Server {
    fn parse(url: &str) -> Result<Server, String> {
        let url = Url::parse(url).map_err(|e| format!("invalid email URL: {e}"))?;
        let (implicit_tls, default_port) = match url.scheme() {
            "smtp" => (false, 25),
            "smtps" => (true, 465),
            other => {
                return Err(format!(
                    "email URLs are smtp:// or smtps://, not {other}://"
                ))
            }
        };
        let host = match url.host() {
            // lettre wants the bare address; `host_str` keeps IPv6 brackets.
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err("email URL has no host".to_string()),
        };
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let credentials = (!url.username().is_empty()).then(|| {
            Credentials::new(decode(url.username()), decode(url.password().unwrap_or("")))
        });
        Ok(Server {
            host,
            port: url.port().unwrap_or(default_port),
            implicit_tls,
            credentials,
        })
    }

    fn transport(self, ctx: &Context<'_>) -> Result<SmtpTransport, String> {
        let tls_parameters =
            TlsParameters::new(self.host.clone()).map_err(|e| format!("cannot set up TLS: {e}"))?;
        let tls = if self.implicit_tls {
            Tls::Wrapper(tls_parameters)
        } else {
            // Not `Required`: plain servers on a private network or loopback are a
            // choice the configuration made by writing smtp://.
            Tls::Opportunistic(tls_parameters)
        };
        // `builder_dangerous` is lettre's name for "I choose the TLS mode myself".
        let mut builder = SmtpTransport::builder_dangerous(self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(ctx.timeout))
            .hello_name(hello_name(ctx.host));
        if let Some(credentials) = self.credentials {
            builder = builder.credentials(credentials);
        }
        Ok(builder.build())
    }
}

/// EHLO with this machine's name when it is a plausible domain, as RFC 5321 asks;
/// otherwise lettre's default ("localhost"), which servers accept.
fn hello_name(host: &str) -> ClientId {
    if is_domain(host) {
        ClientId::Domain(host.to_string())
    } else {
        ClientId::default()
    }
}

fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn message(alert: &Alert, event: &Event, ctx: &Context<'_>) -> Result<Message, String> {
    let from = alert
        .from
        .as_deref()
        .ok_or("email alert has no from address")?;
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("invalid from address {from:?}: {e}"))?;
    if alert.to.is_empty() {
        return Err("email alert has no recipients".to_string());
    }
    let mut builder = Message::builder()
        .from(from)
        .subject(event.title())
        .date(SystemTime::from(ctx.now))
        .message_id(Some(message_id(ctx)))
        .user_agent(concat!("lifeboat/", env!("CARGO_PKG_VERSION")).to_string())
        // RFC 3834: keeps vacation responders from answering a robot.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ))
        .header(ContentType::TEXT_PLAIN);
    for to in &alert.to {
        let mailbox: Mailbox = to
            .parse()
            .map_err(|e| format!("invalid recipient address {to:?}: {e}"))?;
        builder = builder.to(mailbox);
    }
    let body = format!(
        "{}\n\n{}\n\n-- \nSent by lifeboat {} on {}.\n",
        event.title(),
        ctx.text(event),
        env!("CARGO_PKG_VERSION"),
        ctx.host
    );
    builder
        .body(body)
        .map_err(|e| format!("cannot build the email: {e}"))
}

/// `<time.pid.counter@host>`: unique without a random source, as RFC 5322 wants.
fn message_id(ctx: &Context<'_>) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let domain = if is_domain(ctx.host) {
        ctx.host
    } else {
        "lifeboat.invalid"
    };
    format!(
        "<{}.{}.{}@{domain}>",
        ctx.now.timestamp_nanos_opt().unwrap_or_default(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_server_port_tls_and_decoded_credentials() {
        let s =
            Server::parse("smtp://alerts%40example.com:p%40ss%3Aw@mail.example.com:587").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.implicit_tls),
            ("mail.example.com", 587, false)
        );
        let expected = Credentials::new("alerts@example.com".into(), "p@ss:w".into());
        assert_eq!(s.credentials, Some(expected));

        let s = Server::parse("smtps://[::1]").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.implicit_tls),
            ("::1", 465, true)
        );
        assert!(s.credentials.is_none());

        assert!(Server::parse("http://mail.example.com").is_err());
    }

    #[test]
    fn only_plausible_domains_name_the_client() {
        assert!(is_domain("backup-01.example.com"));
        assert!(is_domain("db1"));
        assert!(!is_domain("my host"));
        assert!(!is_domain(""));
        assert!(!is_domain("a..b"));
    }
}
