//! `lifeboat plan`: the runbook names where things are, what was measured and the gaps,
//! and never a secret.

mod common;

use common::{TestRepo, PASSWORD};

#[test]
fn the_runbook_shows_protection_measurements_gaps_and_no_secrets() {
    let repo = TestRepo::local();
    let dir = repo.dir.path();
    let db = dir.join("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE customers(id INTEGER PRIMARY KEY); INSERT INTO customers VALUES (1);",
        )
        .unwrap();
    std::fs::create_dir_all(dir.join("uploads")).unwrap();
    let config = dir.join("lifeboat.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[source]]
name = "app"
url = "sqlite:./app.db"
checks = ["SELECT count(*) > 0 FROM customers"]
[[source]]
name = "uploads"
url = "./uploads"
[[target]]
name = "local"
url = "{}"
password = "${{RUNBOOK_PW}}"
[[plan]]
name = "app"
sources = ["app", "uploads"]
targets = ["local"]
schedule = "every 1h"
rpo = "2h"
rto = "10m"
"#,
            repo.url
        ),
    )
    .unwrap();
    let plan = |format: &str| {
        let out = repo
            .command()
            .args(["plan", "--format", format])
            .env("LIFEBOAT_CONFIG", &config)
            .env("RUNBOOK_PW", PASSWORD)
            .output()
            .unwrap();
        common::succeeded(&out)
    };
    let before = plan("md");
    assert!(
        before.contains("| app | SQLite | 1 (local) | local disk | **no** |"),
        "{before}"
    );
    assert!(
        before.contains("source **app** has no off-site copy"),
        "{before}"
    );
    assert!(
        before.contains("app on local: no drill in the last 30 days"),
        "{before}"
    );
    assert!(before.contains("lifeboat restore-rows app"), "{before}");
    assert!(before.contains("lifeboat repair --from"), "{before}");
    assert!(!before.contains(PASSWORD), "the runbook shows a passphrase");

    // Back up (tagged as the agent does) and drill: the runbook shows what was measured.
    repo.ok(&["backup", db.to_str().unwrap(), "--tag", "source:app"]);
    let out = repo
        .command()
        .args(["drill", "app"])
        .env("LIFEBOAT_CONFIG", &config)
        .env("RUNBOOK_PW", PASSWORD)
        .output()
        .unwrap();
    common::succeeded(&out);
    let after = plan("md");
    assert!(!after.contains("app on local: no drill"), "{after}");
    let row = after
        .lines()
        .find(|l| l.starts_with("| app | app | local |"))
        .expect("a row for app on local");
    assert!(row.contains("passed") && row.contains("ago"), "{row}");
    assert!(!after.contains(PASSWORD));

    let html = plan("html");
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains("<table>") && html.contains("<h2>Gaps</h2>"),
        "{html}"
    );
    assert!(!html.contains("**"), "unrendered markdown: {html}");
}
