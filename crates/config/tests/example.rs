//! The documented example parses into the expected model.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use lifeboat_config::{
    AgentSettings, Alert, AlertKind, Config, Keep, Schedule, Secret, SourceLocation,
};

const EXAMPLE: &str = r#"
[[source]]
name = "app"
url = "sqlite:./data/app.db"      # or a path, postgres://..., mysql://..., or instead: command = "..."
checks = ["SELECT count(*) > 0 FROM customers"]   # optional: SQL that must return true after a restore (used by drills later)
[[source]]
name = "uploads"
url = "./uploads"
[[target]]
name = "local"
url = "/var/backups/lifeboat"
password_file = "/etc/lifeboat/local.pass"   # optional; or password = "${LIFEBOAT_PASSWORD}"; neither = the LIFEBOAT_PASSWORD env at run time
[[target]]
name = "offsite"
url = "s3://bucket/prefix"
[[plan]]
name = "app"
sources = ["app", "uploads"]
targets = ["local", "offsite"]
schedule = "every 15m"            # or cron: "*/15 * * * *" (5 fields; 6 with seconds allowed)
continuous = true                 # optional, default false: continuous replication of the plan's SQLite/PG sources
keep = { last = 10, hourly = 24, daily = 7, weekly = 4, monthly = 12 }   # also yearly, within = "30d", tags = ["..."]
rpo = "1m"                        # optional durations
rto = "10m"
[agent]
listen = "127.0.0.1:7070"          # default 127.0.0.1:7070
# token = "${LIFEBOAT_AGENT_TOKEN}"  optional bearer token for the HTTP API
# state = "/var/lib/lifeboat/agent.db"  optional path of the agent's SQLite state DB
[[alert]]
kind = "webhook"                  # also "slack", "ping", "email"
url = "${ALERT_WEBHOOK_URL}"
# email: kind = "email", url = "smtp://host:port" (or smtps://), from = "...", to = ["..."]
"#;

#[test]
fn the_example_yields_the_expected_model() {
    let config = common::parse(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));

    let app = config.source("app").unwrap();
    assert_eq!(
        app.location,
        SourceLocation::Url("sqlite:./data/app.db".into())
    );
    assert_eq!(app.checks, ["SELECT count(*) > 0 FROM customers"]);
    assert_eq!(
        config.source("uploads").unwrap().location,
        SourceLocation::Url("./uploads".into())
    );
    assert_eq!(config.sources.len(), 2);

    let local = config.target("local").unwrap();
    assert_eq!(local.url, "/var/backups/lifeboat");
    assert_eq!(local.password, None);
    assert_eq!(
        local.password_file.as_deref(),
        Some(std::path::Path::new("/etc/lifeboat/local.pass"))
    );
    let offsite = config.target("offsite").unwrap();
    assert_eq!(offsite.url, "s3://bucket/prefix");
    assert_eq!((&offsite.password, &offsite.password_file), (&None, &None));

    assert_eq!(config.plans.len(), 1);
    let plan = config.plan("app").unwrap();
    assert_eq!(plan.sources, ["app", "uploads"]);
    assert_eq!(plan.targets, ["local", "offsite"]);
    assert_eq!(
        plan.schedule,
        Some(Schedule::Every(Duration::from_secs(900)))
    );
    assert!(plan.continuous);
    assert_eq!(
        plan.keep,
        Some(Keep {
            last: 10,
            hourly: 24,
            daily: 7,
            weekly: 4,
            monthly: 12,
            ..Keep::default()
        })
    );
    assert_eq!(plan.rpo, Some(Duration::from_secs(60)));
    assert_eq!(plan.rto, Some(Duration::from_secs(600)));

    assert_eq!(
        config.agent,
        AgentSettings {
            listen: "127.0.0.1:7070".parse::<SocketAddr>().unwrap(),
            token: None,
            read_token: None,
            state: None,
            allow_remote: false,
        }
    );
    assert_eq!(
        config.alerts,
        [Alert {
            kind: AlertKind::Webhook,
            url: Secret::new("https://hooks.example/T000/secret-path"),
            from: None,
            to: vec![],
        }]
    );
    assert!(config.source("nope").is_none());
    assert!(config.target("nope").is_none());
}

#[test]
fn secrets_do_not_reach_debug_output() {
    let text = r#"
[[target]]
name = "t"
url = "/backups"
password = "${LIFEBOAT_PASSWORD}"
[agent]
token = "${LIFEBOAT_AGENT_TOKEN}"
[[alert]]
kind = "slack"
url = "${ALERT_WEBHOOK_URL}"
"#;
    let config = common::parse(text).unwrap();
    let target = config.target("t").unwrap();
    assert_eq!(target.password.as_ref().unwrap().expose(), "correct horse");
    assert_eq!(
        config.agent.token.as_ref().unwrap().expose(),
        "agent-token-value"
    );
    let debug = format!("{config:?} {config:#?}");
    for secret in ["correct horse", "agent-token-value", "secret-path"] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    assert!(debug.contains("***"));
}

#[test]
fn an_empty_file_is_an_empty_config() {
    let config = common::parse("").unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.agent.listen, AgentSettings::DEFAULT_LISTEN);
    assert_eq!(
        common::parse("# just a comment\n").unwrap(),
        Config::default()
    );
}

#[test]
fn the_rest_of_the_format_parses() {
    let text = r#"
[[source]]
name = "db"
command = "pg_dump --dbname=postgres://app:${DB_PASSWORD}@db/app"
[[source]]
name = "shop"
url = "mysql://root:$${not-a-var}@localhost/shop"
[[target]]
name = "t"
url = "/backups"
[[plan]]
name = "nightly"
sources = ["db", "shop"]
targets = ["t"]
schedule = "30 2 * * *"
rpo = "1d"
keep = { yearly = 3, within = "30d", tags = ["release"] }
[[plan]]
name = "live"
sources = ["db"]
targets = ["t"]
continuous = true
[agent]
listen = "0.0.0.0:7070"
allow_remote = true
token = "${LIFEBOAT_AGENT_TOKEN}"
state = "/var/lib/lifeboat/agent.db"
[[alert]]
kind = "email"
url = "smtps://mail.example:465"
from = "lifeboat@example.com"
to = ["ops@example.com", "dba@example.com"]
[[alert]]
kind = "ping"
url = "https://hc-ping.example/uuid"
"#;
    let config = common::parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.source("db").unwrap().location,
        SourceLocation::Command("pg_dump --dbname=postgres://app:db-password-value@db/app".into())
    );
    assert_eq!(
        config.source("shop").unwrap().location,
        SourceLocation::Url("mysql://root:${not-a-var}@localhost/shop".into())
    );
    let nightly = config.plan("nightly").unwrap();
    assert!(matches!(nightly.schedule, Some(Schedule::Cron(_))));
    assert_eq!(nightly.schedule.as_ref().unwrap().to_string(), "30 2 * * *");
    assert_eq!(nightly.rpo, Some(Duration::from_secs(86400)));
    let keep = nightly.keep.as_ref().unwrap();
    assert_eq!(keep.yearly, 3);
    assert_eq!(keep.within, Some(Duration::from_secs(30 * 86400)));
    assert_eq!(keep.tags, ["release"]);
    let live = config.plan("live").unwrap();
    assert_eq!((live.schedule.as_ref(), live.continuous), (None, true));
    assert_eq!(config.agent.listen, "0.0.0.0:7070".parse().unwrap());
    assert!(config.agent.allow_remote);
    assert_eq!(
        config.agent.state.as_deref(),
        Some(std::path::Path::new("/var/lib/lifeboat/agent.db"))
    );
    assert_eq!(config.alerts[0].kind, AlertKind::Email);
    assert_eq!(
        config.alerts[0].from.as_deref(),
        Some("lifeboat@example.com")
    );
    assert_eq!(config.alerts[0].to, ["ops@example.com", "dba@example.com"]);
    assert_eq!(config.alerts[1].kind, AlertKind::Ping);
}

#[test]
fn localhost_listen_means_loopback() {
    let config = common::parse("[agent]\nlisten = \"localhost:9000\"\n").unwrap();
    assert_eq!(config.agent.listen, "127.0.0.1:9000".parse().unwrap());
    let config = common::parse("[agent]\nlisten = \"[::1]:9000\"\n").unwrap();
    assert_eq!(config.agent.listen, "[::1]:9000".parse().unwrap());
}
