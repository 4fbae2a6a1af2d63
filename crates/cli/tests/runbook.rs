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
    // One target: nothing to repair from, and no off-site copy to point at.
    assert!(before.contains("lifeboat repair --to local"), "{before}");
    assert!(!before.contains("repair --from"), "{before}");
    assert!(!before.contains("off-site target (`local`)"), "{before}");
    assert!(before.contains("lifeboat recover --repo"), "{before}");
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

    // What a reader sees in a browser: Debian's chromium, through playwright-core.
    let page = repo.path("runbook.html");
    std::fs::write(&page, &html).unwrap();
    let screenshot = repo.path("runbook.png");
    let seen = render_in_chromium(&page, &screenshot);
    assert_eq!(seen["title"], "Disaster-recovery runbook", "{seen}");
    let headings: Vec<&str> = seen["headings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert!(headings.contains(&"Gaps"), "{headings:?}");
    assert!(seen["tables"].as_u64().unwrap() >= 2, "{seen}");
    assert!(seen["rows"].as_u64().unwrap() >= 4, "{seen}");
    let text = seen["text"].as_str().unwrap();
    assert!(text.contains("source app has no off-site copy"), "{text}");
    assert!(text.contains("lifeboat restore-rows app"), "{text}");
    assert!(
        !text.contains("**") && !text.contains("<td"),
        "markup shows: {text}"
    );
    assert!(
        !text.contains(PASSWORD),
        "the rendered runbook shows a passphrase"
    );
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen}");
    assert_eq!(
        seen["requests"],
        serde_json::json!([]),
        "the page is not self-contained: {seen}"
    );
    assert_eq!(
        seen["overflow_px"], 0,
        "the page is wider than a 1024 px window"
    );
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
    if let Ok(keep) = std::env::var("LIFEBOAT_KEEP_SCREENSHOT") {
        std::fs::copy(&screenshot, keep).unwrap();
    }
}

/// Renders `page` headless in /usr/bin/chromium with tests/browser/render.js; returns
/// what the page showed (see that script).
fn render_in_chromium(page: &std::path::Path, screenshot: &std::path::Path) -> serde_json::Value {
    let browser = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/browser` first (.ci/run does)"
    );
    common::browser::run(
        &browser.join("render.js"),
        &[page.as_os_str(), screenshot.as_os_str()],
        std::time::Duration::from_secs(90),
    )
}
