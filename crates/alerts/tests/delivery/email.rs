use std::time::{Duration, Instant};

use lifeboat_alerts::Notifier;
use lifeboat_config::{Alert, AlertKind};

use crate::servers::{closed_port, SmtpBehaviour, SmtpServer};
use crate::{alert, assert_no_secrets, job_failed, TIMEOUT};

fn email(url: &str) -> Alert {
    Alert {
        from: Some("Lifeboat <lifeboat@example.com>".into()),
        to: vec![
            "ops@example.com".into(),
            "Oncall <oncall@example.com>".into(),
        ],
        ..alert(AlertKind::Email, url)
    }
}

/// The value of header `name` in a raw message (the first line of it).
fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    let head = data.split("\r\n\r\n").next()?;
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

#[test]
fn an_email_reaches_every_recipient_with_the_details() {
    let server = SmtpServer::start(SmtpBehaviour::default());
    let notifier = Notifier::new(&[email(&server.url())], "db1.example.com").with_timeout(TIMEOUT);

    let deliveries = notifier.send(&job_failed());

    assert_eq!(deliveries[0].result, Ok(()), "{deliveries:?}");
    assert_eq!(
        deliveries[0].channel,
        format!("email 127.0.0.1:{}", server.port())
    );
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "<lifeboat@example.com>");
    assert_eq!(mail.to, ["<ops@example.com>", "<oncall@example.com>"]);
    let data = &mail.data;
    assert_eq!(
        header(data, "Subject"),
        Some("lifeboat: plan app failed on target offsite")
    );
    assert_eq!(
        header(data, "From"),
        Some("Lifeboat <lifeboat@example.com>")
    );
    let to = header(data, "To").unwrap();
    assert!(
        to.contains("ops@example.com") && to.contains("Oncall <oncall@example.com>"),
        "{to}"
    );
    assert!(header(data, "Date").is_some(), "{data}");
    let id = header(data, "Message-ID").unwrap();
    assert!(
        id.starts_with('<') && id.ends_with("@db1.example.com>"),
        "{id}"
    );
    let body = data.split_once("\r\n\r\n").unwrap().1;
    assert!(
        body.contains("storage: bucket backups-eu is gone"),
        "{body}"
    );
    assert!(body.contains("host: db1.example.com"), "{body}");
}

#[test]
fn credentials_in_the_url_are_decoded_and_never_shown() {
    let server = SmtpServer::start(SmtpBehaviour {
        auth: true,
        ..SmtpBehaviour::default()
    });
    let url = format!(
        "smtp://alerts%40example.com:p%40ss%20w%3Ard@127.0.0.1:{}",
        server.port()
    );
    let notifier = Notifier::new(&[email(&url)], "db1").with_timeout(TIMEOUT);

    let deliveries = notifier.send(&job_failed());

    assert!(deliveries[0].is_ok(), "{deliveries:?}");
    // base64("\0alerts@example.com\0p@ss w:rd")
    let auth = server.mails()[0].auth.clone();
    assert_eq!(
        auth.as_deref(),
        Some("AGFsZXJ0c0BleGFtcGxlLmNvbQBwQHNzIHc6cmQ=")
    );
    assert_no_secrets(&deliveries, &["alerts", "p%40ss", "p@ss"]);
}

#[test]
fn a_permanent_rejection_is_named_and_not_retried() {
    let server = SmtpServer::start(SmtpBehaviour {
        reject: Some(("RCPT TO:", "550 5.1.1 no such user")),
        ..SmtpBehaviour::default()
    });
    let mut alert = email(&server.url());
    alert.to.truncate(1);
    let notifier = Notifier::new(&[alert], "db1").with_timeout(TIMEOUT);

    let deliveries = notifier.send(&job_failed());

    let error = deliveries[0].result.clone().unwrap_err();
    assert!(
        error.contains("550") && error.contains("no such user"),
        "{error}"
    );
    assert_eq!(server.connections(), 1);
    assert!(server.mails().is_empty());
}

#[test]
fn a_temporary_rejection_is_retried_once() {
    let server = SmtpServer::start(SmtpBehaviour {
        reject: Some(("MAIL FROM:", "451 4.3.0 try again later")),
        ..SmtpBehaviour::default()
    });
    let notifier = Notifier::new(&[email(&server.url())], "db1").with_timeout(TIMEOUT);

    let deliveries = notifier.send(&job_failed());

    let error = deliveries[0].result.clone().unwrap_err();
    assert!(error.contains("451"), "{error}");
    assert_eq!(server.connections(), 2);
}

#[test]
fn credentials_the_server_cannot_take_fail_without_showing_them() {
    let server = SmtpServer::start(SmtpBehaviour::default());
    let url = format!("smtp://bob:s3cretpass@127.0.0.1:{}", server.port());
    let notifier = Notifier::new(&[email(&url)], "db1").with_timeout(TIMEOUT);

    let deliveries = notifier.send(&job_failed());

    assert!(deliveries[0].result.is_err(), "{deliveries:?}");
    assert!(server.mails().is_empty());
    assert_no_secrets(&deliveries, &["s3cretpass", "bob"]);
}

#[test]
fn an_unreachable_mail_server_fails_within_the_timeout() {
    let url = format!("smtp://bob:s3cretpass@127.0.0.1:{}", closed_port());
    let notifier = Notifier::new(&[email(&url)], "db1").with_timeout(TIMEOUT);

    let started = Instant::now();
    let deliveries = notifier.send(&job_failed());

    assert!(started.elapsed() < 2 * TIMEOUT + Duration::from_secs(1));
    assert!(deliveries[0].result.is_err());
    assert_no_secrets(&deliveries, &["s3cretpass", "bob"]);
}
