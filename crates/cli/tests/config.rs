//! `lifeboat config check|schema` on real files.

mod common;

use std::process::Command;

fn check(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(common::lifeboat_bin());
    cmd.current_dir(dir)
        .args(["config", "check"])
        .env_remove("LIFEBOAT_CONFIG")
        .env_remove("ALERT_WEBHOOK_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

const README_EXAMPLE: &str = r#"
[[source]]
name = "app"
url = "sqlite:./data/app.db"
[[source]]
name = "uploads"
url = "./uploads"
[[target]]
name = "local"
url = "/var/backups/lifeboat"
[[target]]
name = "offsite"
url = "s3://bucket/prefix"
[[plan]]
name = "app"
sources = ["app", "uploads"]
targets = ["local", "offsite"]
schedule = "every 15m"
continuous = true
keep = { last = 10, hourly = 24, daily = 7, weekly = 4, monthly = 12 }
rpo = "1m"
rto = "10m"
[agent]
listen = "127.0.0.1:7070"
[[alert]]
kind = "webhook"
url = "${ALERT_WEBHOOK_URL}"
"#;

#[test]
fn the_issue_example_checks_and_mistakes_are_named_with_line_and_column() {
    let repo = common::TestRepo::at("", Vec::new());
    let dir = repo.dir.path();
    let local = dir.join("backups");
    let example = README_EXAMPLE.replace("/var/backups/lifeboat", &local.display().to_string());
    std::fs::write(dir.join("lifeboat.toml"), &example).unwrap();

    // A local target that holds no repository is not "ok": it is named, with the fix.
    let out = check(dir, &[("ALERT_WEBHOOK_URL", "https://hooks.example/abc")]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "target local: {} does not exist; create it with `lifeboat init --repo {}`",
            local.display(),
            local.display()
        )),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT READY"));
    std::fs::create_dir(&local).unwrap();
    let out = check(dir, &[("ALERT_WEBHOOK_URL", "https://hooks.example/abc")]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no repository"));
    common::TestRepo::at(&local.display().to_string(), Vec::new()).init();

    let out = check(dir, &[("ALERT_WEBHOOK_URL", "https://hooks.example/abc")]);
    let stdout = common::succeeded(&out);
    assert!(
        stdout.contains("ok (2 source(s), 2 target(s), 1 plan(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("plan app: app, uploads -> local, offsite"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("hooks.example"),
        "a secret was printed: {stdout}"
    );

    // A missing variable is named, with where it is used; exit code 2.
    let out = check(dir, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lifeboat.toml:27:8: environment variable ALERT_WEBHOOK_URL is not set"),
        "{stderr}"
    );

    // A plan naming a target that does not exist, and an impossible schedule.
    let broken = example
        .replace(
            r#"targets = ["local", "offsite"]"#,
            r#"targets = ["local", "ofsite"]"#,
        )
        .replace(r#"schedule = "every 15m""#, r#"schedule = "0 0 31 2 *""#);
    std::fs::write(dir.join("lifeboat.toml"), broken).unwrap();
    let out = check(dir, &[("ALERT_WEBHOOK_URL", "https://hooks.example/abc")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lifeboat.toml:17:21:"), "{stderr}");
    assert!(stderr.contains("ofsite"), "{stderr}");
    assert!(stderr.contains("lifeboat.toml:18:12:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_missing_file_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("lifeboat.toml"), "{stderr}");
}

#[test]
fn the_schema_printed_is_the_published_one() {
    let out = Command::new(common::lifeboat_bin())
        .args(["config", "schema"])
        .output()
        .unwrap();
    let printed: serde_json::Value = serde_json::from_str(&common::succeeded(&out)).unwrap();
    let published: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/lifeboat.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(printed, published);
}

/// `lifeboat config schema | head -1`: a reader that stops early is not a crash (it was a
/// panic: "failed printing to stdout: Broken pipe").
#[test]
fn a_closed_standard_output_ends_the_output_quietly() {
    let mut child = Command::new(common::lifeboat_bin())
        .args(["config", "schema"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
