//! Helpers shared by the integration tests.

#![allow(dead_code)]

use lifeboat_config::{Config, ConfigErrors};

/// An environment with a few variables and nothing else.
pub fn env(name: &str) -> Option<String> {
    match name {
        "ALERT_WEBHOOK_URL" => Some("https://hooks.example/T000/secret-path".into()),
        "LIFEBOAT_PASSWORD" => Some("correct horse".into()),
        "LIFEBOAT_AGENT_TOKEN" => Some("agent-token-value".into()),
        "DB_PASSWORD" => Some("db-password-value".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, "lifeboat.toml", &env)
}

/// The errors of a config that must not parse, as (line, column, message).
pub fn errors(text: &str) -> Vec<(usize, usize, String)> {
    match parse(text) {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(errors) => errors
            .iter()
            .map(|e| (e.line, e.column, e.message.clone()))
            .collect(),
    }
}

/// The one error of a config, as (line, column, message).
pub fn error(text: &str) -> (usize, usize, String) {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.remove(0)
}

/// A valid source, target and plan, for tests that add one broken thing to it.
pub const BASE: &str = r#"
[[source]]
name = "app"
url = "sqlite:./data/app.db"
[[target]]
name = "local"
url = "/var/backups/lifeboat"
"#;
