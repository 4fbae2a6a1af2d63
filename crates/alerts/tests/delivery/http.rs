use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lifeboat_alerts::{Event, Notifier};
use lifeboat_config::AlertKind;

use crate::servers::{closed_port, HttpServer, SilentServer};
use crate::{alert, assert_no_secrets, job_failed, TIMEOUT};

#[test]
fn webhook_posts_the_event_as_json() {
    let server = HttpServer::start(200);
    let notifier = Notifier::new(&[alert(AlertKind::Webhook, &server.url("/hook"))], "db1")
        .with_timeout(TIMEOUT);

    let deliveries = notifier.send(&job_failed());

    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].result, Ok(()));
    assert_eq!(
        deliveries[0].channel,
        format!("webhook 127.0.0.1:{}", server.port())
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let agent = request.header("user-agent").unwrap();
    assert_eq!(agent, format!("lifeboat/{}", env!("CARGO_PKG_VERSION")));
    let body = request.json();
    assert_eq!(body["event"], "job_failed");
    assert_eq!(body["severity"], "failure");
    assert_eq!(body["title"], "lifeboat: plan app failed on target offsite");
    assert_eq!(body["key"], "failed/app/offsite");
    assert_eq!(body["plan"], "app");
    assert_eq!(body["target"], "offsite");
    assert_eq!(body["source"], serde_json::Value::Null);
    assert_eq!(body["error"], "storage: bucket backups-eu is gone");
    assert_eq!(body["host"], "db1");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("error: storage: bucket backups-eu is gone"),
        "{text}"
    );
    assert!(text.contains("host: db1"), "{text}");
    let time: DateTime<Utc> = body["time"].as_str().unwrap().parse().unwrap();
    assert!((Utc::now() - time).num_seconds().abs() < 60);
}

#[test]
fn webhook_carries_event_specific_fields() {
    let server = HttpServer::start(200);
    let notifier = Notifier::new(&[alert(AlertKind::Webhook, &server.url("/"))], "db1");
    let newest: DateTime<Utc> = "2025-01-01T02:00:00Z".parse().unwrap();

    notifier.send(&Event::RpoMissed {
        plan: "app".into(),
        source: "db".into(),
        target: "offsite".into(),
        newest: Some(newest),
        objective: Duration::from_secs(3600),
    });

    let body = server.requests()[0].json();
    assert_eq!(body["event"], "rpo_missed");
    assert_eq!(body["severity"], "warning");
    assert_eq!(body["source"], "db");
    assert_eq!(body["newest"], "2025-01-01T02:00:00Z");
    assert_eq!(body["objective_seconds"], 3600);
}

#[test]
fn slack_gets_one_text_field() {
    let server = HttpServer::start(200);
    let notifier = Notifier::new(
        &[alert(AlertKind::Slack, &server.url("/services/T/B/X"))],
        "db1",
    );

    let deliveries = notifier.send(&job_failed());

    assert!(deliveries[0].is_ok(), "{deliveries:?}");
    let requests = server.requests();
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    let body = requests[0].json();
    let fields = body.as_object().unwrap();
    assert_eq!(fields.keys().collect::<Vec<_>>(), ["text"]);
    let text = body["text"].as_str().unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    assert_eq!(first, "lifeboat: plan app failed on target offsite");
    assert!(
        rest.contains("storage: bucket backups-eu is gone"),
        "{rest}"
    );
}

#[test]
fn pings_go_to_start_success_and_fail() {
    let server = HttpServer::start(200);
    // A trailing slash, as copied from a dashboard, must not give `//start`.
    let notifier = Notifier::new(
        &[alert(AlertKind::Ping, &server.url("/ping/abc-123/"))],
        "db1",
    );
    let (plan, target) = ("app".to_string(), "offsite".to_string());
    let events = [
        Event::JobStarted {
            plan: plan.clone(),
            target: target.clone(),
        },
        Event::JobSucceeded {
            plan: plan.clone(),
            target: target.clone(),
            summary: "3 files".into(),
        },
        job_failed(),
        Event::RpoMissed {
            plan: plan.clone(),
            source: "db".into(),
            target: target.clone(),
            newest: None,
            objective: Duration::from_secs(60),
        },
        Event::DrillFailed {
            plan: plan.clone(),
            source: "db".into(),
            target: target.clone(),
            reason: "integrity_check failed".into(),
        },
    ];
    for event in &events {
        let deliveries = notifier.send(event);
        assert_eq!(deliveries.len(), 1, "{event:?}");
        assert!(deliveries[0].is_ok(), "{deliveries:?}");
    }
    // The success ping already told the service; a recovery adds nothing.
    let recovered = Event::Recovered {
        plan,
        target,
        what: "backups to offsite succeed again".into(),
        incident_started: Utc::now(),
    };
    assert!(notifier.send(&recovered).is_empty());

    let requests = server.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/ping/abc-123/start",
            "/ping/abc-123",
            "/ping/abc-123/fail",
            "/ping/abc-123/fail",
            "/ping/abc-123/fail"
        ]
    );
    assert!(requests[1].text().contains("summary: 3 files"));
    assert!(requests[2]
        .text()
        .contains("storage: bucket backups-eu is gone"));
    assert!(requests[4].text().contains("integrity_check failed"));
}

#[test]
fn starts_and_successes_reach_only_pings() {
    let webhook = HttpServer::start(200);
    let ping = HttpServer::start(200);
    let notifier = Notifier::new(
        &[
            alert(AlertKind::Webhook, &webhook.url("/")),
            alert(AlertKind::Slack, &webhook.url("/")),
            alert(AlertKind::Ping, &ping.url("/p")),
        ],
        "db1",
    );
    let started = Event::JobStarted {
        plan: "app".into(),
        target: "offsite".into(),
    };

    let deliveries = notifier.send(&started);

    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].channel.starts_with("ping "));
    assert!(webhook.requests().is_empty());
    assert_eq!(ping.requests().len(), 1);
}

#[test]
fn a_server_error_is_named_and_retried_once() {
    // The server echoes the path, as many do in their error pages.
    let server = HttpServer::answering(500, "no hook at /hooks/SECRET-TOKEN");
    let url = server.url("/hooks/SECRET-TOKEN");
    let notifier = Notifier::new(&[alert(AlertKind::Webhook, &url)], "db1").with_timeout(TIMEOUT);

    let deliveries = notifier.send(&job_failed());

    let error = deliveries[0].result.clone().unwrap_err();
    assert!(error.contains("500"), "{error}");
    assert!(!error.contains('\n'));
    assert_eq!(server.requests().len(), 2, "one try and one retry");
    assert_no_secrets(&deliveries, &["SECRET-TOKEN", "/hooks"]);
}

#[test]
fn a_client_error_is_not_retried() {
    let server = HttpServer::answering(404, "no_service");
    let notifier = Notifier::new(
        &[alert(
            AlertKind::Slack,
            &server.url("/services/T/B/TOKEN123456"),
        )],
        "db1",
    );

    let deliveries = notifier.send(&job_failed());

    let error = deliveries[0].result.clone().unwrap_err();
    assert!(
        error.contains("404") && error.contains("no_service"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 1);
    assert_no_secrets(&deliveries, &["TOKEN123456", "/services"]);
}

#[test]
fn an_unreachable_receiver_fails_within_the_timeout() {
    let port = closed_port();
    let url = format!("http://alice:hunter2pw@127.0.0.1:{port}/hooks/SECRET-TOKEN?key=QUERYSECRET");
    let notifier = Notifier::new(&[alert(AlertKind::Webhook, &url)], "db1").with_timeout(TIMEOUT);

    let started = Instant::now();
    let deliveries = notifier.send(&job_failed());

    // Two attempts and the pause between them.
    assert!(
        started.elapsed() < 2 * TIMEOUT + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let error = deliveries[0].result.clone().unwrap_err();
    assert!(error.contains("connect"), "{error}");
    assert_eq!(deliveries[0].channel, format!("webhook 127.0.0.1:{port}"));
    assert_no_secrets(
        &deliveries,
        &[
            "SECRET-TOKEN",
            "/hooks",
            "QUERYSECRET",
            "alice",
            "hunter2pw",
        ],
    );
}

#[test]
fn a_hung_receiver_times_out() {
    let silent = SilentServer::start();
    let url = format!("http://127.0.0.1:{}/hooks/SECRET-TOKEN", silent.port());
    let timeout = Duration::from_secs(1);
    let notifier = Notifier::new(&[alert(AlertKind::Webhook, &url)], "db1").with_timeout(timeout);

    let started = Instant::now();
    let deliveries = notifier.send(&job_failed());

    assert!(
        started.elapsed() < 2 * timeout + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let error = deliveries[0].result.clone().unwrap_err();
    assert!(error.contains("timed out"), "{error}");
    assert_no_secrets(&deliveries, &["SECRET-TOKEN", "/hooks"]);
}

#[test]
fn a_failing_channel_does_not_stop_the_next() {
    let broken = HttpServer::start(500);
    let working = HttpServer::start(200);
    let notifier = Notifier::new(
        &[
            alert(
                AlertKind::Webhook,
                &format!("http://127.0.0.1:{}/x", closed_port()),
            ),
            alert(AlertKind::Webhook, &broken.url("/x")),
            alert(AlertKind::Slack, &working.url("/x")),
        ],
        "db1",
    )
    .with_timeout(TIMEOUT);

    let deliveries = notifier.send(&job_failed());

    let ok: Vec<bool> = deliveries.iter().map(|d| d.is_ok()).collect();
    assert_eq!(ok, [false, false, true], "{deliveries:?}");
    assert_eq!(working.requests().len(), 1);
}
