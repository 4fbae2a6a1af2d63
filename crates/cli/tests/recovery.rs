//! Recovery paths a stranger can follow: sources named as lifeboat.toml names them, and a
//! lost host rebuilt by running the runbook's commands as printed, from the repository
//! alone (the agent keeps the configuration there).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::postgres::free_port;
use common::{TestRepo, PASSWORD};

fn app_database(path: &Path, customers: &[&str]) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode=wal; CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);",
    )
    .unwrap();
    for name in customers {
        db.execute("INSERT INTO customers(name) VALUES (?1)", [name])
            .unwrap();
    }
}

fn customers(path: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut statement = db
        .prepare("SELECT name FROM customers ORDER BY id")
        .unwrap();
    let names = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    names
}

#[test]
fn commands_that_take_a_source_take_its_name_from_the_configuration() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    app_database(&db, &["ada", "grace"]);
    let config = repo.path("lifeboat.toml");
    // The agent's token and an alert channel use variables this shell does not have:
    // commands that never use them must not need them.
    std::fs::write(
        &config,
        format!(
            r#"[[source]]
name = "app"
url = "sqlite:./app.db"
[[target]]
name = "local"
url = "{}"
[[plan]]
name = "app"
sources = ["app"]
targets = ["local"]
schedule = "every 1h"
rpo = "1h"
[agent]
token = "${{LIFEBOAT_AGENT_TOKEN}}"
[[alert]]
kind = "webhook"
url = "${{ALERT_WEBHOOK_URL}}"
"#,
            repo.url
        ),
    )
    .unwrap();
    repo.ok(&["backup", db.to_str().unwrap(), "--tag", "source:app"]);

    let by_name = |args: &[&str]| {
        let mut command = repo.command();
        command
            .args(args)
            .current_dir(repo.dir.path())
            .env("LIFEBOAT_CONFIG", &config)
            .env_remove("LIFEBOAT_REPO")
            .env_remove("LIFEBOAT_AGENT_TOKEN")
            .env_remove("ALERT_WEBHOOK_URL");
        command.output().unwrap()
    };
    let timeline = common::succeeded(&by_name(&["timeline", "app"]));
    assert!(timeline.contains("1 restore point(s)"), "{timeline}");
    let restored = repo.path("restored.db");
    common::succeeded(&by_name(&[
        "restore",
        "--source",
        "app",
        "--target",
        restored.to_str().unwrap(),
    ]));
    assert_eq!(customers(&restored), ["ada", "grace"]);
    let status = common::succeeded(&by_name(&["status", "app"]));
    assert!(status.contains("app / app -> local"), "{status}");
    assert!(status.contains("RPO met"), "{status}");
    common::succeeded(&by_name(&["plan"]));

    // A name the file does not have is one line naming the file's sources.
    let out = by_name(&["timeline", "shop"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no source \"shop\" in") && stderr.contains("(its sources: app)"),
        "{stderr}"
    );
    assert_eq!(by_name(&["status", "shop"]).status.code(), Some(2));
    // The agent itself still needs every variable.
    let out = by_name(&["agent"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LIFEBOAT_AGENT_TOKEN is not set"));
}

/// Runs `lifeboat agent` until `done` holds for the repository's snapshots, then stops it.
fn run_agent_until(config: &Path, repo: &TestRepo, done: impl Fn(&[serde_json::Value]) -> bool) {
    let mut agent = Command::new(common::lifeboat_bin())
        .args(["agent", "--config"])
        .arg(config)
        .env_remove("LIFEBOAT_REPO")
        .env_remove("LIFEBOAT_PASSWORD")
        .env_remove("LIFEBOAT_PASSWORD_FILE")
        .env("LIFEBOAT_CACHE_DIR", repo.path("agent-cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let snapshots = repo.json(&["snapshots"]);
        if done(snapshots.as_array().unwrap()) {
            break;
        }
        assert!(
            agent.try_wait().unwrap().is_none(),
            "the agent exited early"
        );
        assert!(
            Instant::now() < deadline,
            "the agent did not back up: {snapshots}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // SAFETY: kill(2) on the agent this test started.
    unsafe {
        libc::kill(agent.id() as i32, libc::SIGTERM);
    }
    let status = agent.wait().unwrap();
    assert!(status.success(), "{status}");
}

fn tagged(snapshots: &[serde_json::Value], tag: &str) -> usize {
    snapshots
        .iter()
        .filter(|s| s["tags"].as_array().unwrap().iter().any(|t| t == tag))
        .count()
}

#[test]
fn a_lost_host_is_rebuilt_by_running_the_runbook_as_printed() {
    let lab = tempfile::tempdir().unwrap();
    let lab = lab.path();
    let host = lab.join("host");
    let app = host.join("srv/app");
    std::fs::create_dir_all(app.join("uploads/avatars")).unwrap();
    app_database(&app.join("app.db"), &["ada", "grace", "edsger"]);
    std::fs::write(
        app.join("uploads/invoice-1.pdf"),
        common::pseudo_random(300_000, 1),
    )
    .unwrap();
    std::fs::write(
        app.join("uploads/avatars/ada.png"),
        common::pseudo_random(5_000, 2),
    )
    .unwrap();
    // The off-site repository and the passphrase file are what survive the host.
    let passphrase = lab.join("passphrase");
    std::fs::write(&passphrase, PASSWORD).unwrap();
    let repo = TestRepo::at(lab.join("offsite").to_str().unwrap(), Vec::new());
    repo.init();
    let config = app.join("lifeboat.toml");
    let config_text = format!(
        r#"[[source]]
name = "app"
url = "sqlite:./app.db"
checks = ["SELECT count(*) = 3 FROM customers"]
[[source]]
name = "uploads"
url = "./uploads"
[[target]]
name = "offsite"
url = "{}"
password_file = "{}"
[[plan]]
name = "app"
sources = ["app", "uploads"]
targets = ["offsite"]
schedule = "every 1h"
[agent]
listen = "127.0.0.1:{}"
state = "{}"
"#,
        repo.url,
        passphrase.display(),
        free_port(),
        lab.join("agent.db").display()
    );
    std::fs::write(&config, &config_text).unwrap();

    // The agent's first run backs up both sources and keeps the configuration.
    run_agent_until(&config, &repo, |s| {
        tagged(s, "plan:app") == 2 && tagged(s, "lifeboat:config") == 1
    });
    let uploads_before = common::digest(&app.join("uploads"));
    let out = Command::new(common::lifeboat_bin())
        .args(["plan", "--config"])
        .arg(&config)
        .env_remove("LIFEBOAT_REPO")
        .env_remove("LIFEBOAT_PASSWORD")
        .output()
        .unwrap();
    let runbook = common::succeeded(&out);
    let blocks = common::runbook_blocks(&runbook, "### The host is lost");
    assert_eq!(blocks.len(), 1, "{runbook}");
    let started = Instant::now();

    // The disaster: the host's files are gone.
    std::fs::remove_dir_all(&host).unwrap();

    // A new host: lifeboat on the PATH, nothing of Lifeboat's in the environment, the
    // block run as a shell script from an empty directory.
    let fresh = lab.join("new-host-cwd");
    std::fs::create_dir_all(&fresh).unwrap();
    let bin_dir = common::lifeboat_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-e", "-c", &blocks[0]])
        .current_dir(&fresh)
        .env_clear()
        .env("PATH", path)
        .env("HOME", lab.join("new-home"))
        .output()
        .unwrap();
    let recovered_in = started.elapsed();
    let stdout = common::succeeded(&out);
    assert!(stdout.contains("start the agent"), "{stdout}");
    assert!(stdout.contains("check(s) passed"), "{stdout}");

    assert_eq!(customers(&app.join("app.db")), ["ada", "grace", "edsger"]);
    assert_eq!(common::digest(&app.join("uploads")), uploads_before);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), config_text);
    common::assert_integrity(&app.join("app.db"));
    eprintln!("recovered the host in {:.1}s", recovered_in.as_secs_f64());

    // The same from the repository alone into a new root, without touching anything else.
    let root = lab.join("new-root");
    let listed = repo.ok(&["recover", "--root", root.to_str().unwrap()]);
    assert!(listed.contains("nothing written"), "{listed}");
    assert!(!root.exists(), "a listing wrote something");
    let mut command = repo.command();
    command.args(["recover", "--root", root.to_str().unwrap(), "--apply"]);
    common::succeeded(&command.output().unwrap());
    let under_root = |p: &Path| -> PathBuf { root.join(p.strip_prefix("/").unwrap()) };
    assert_eq!(
        customers(&under_root(&app.join("app.db"))),
        ["ada", "grace", "edsger"]
    );
    assert_eq!(
        common::digest(&under_root(&app.join("uploads"))),
        uploads_before
    );
    // Nothing is overwritten: a second recovery into the same root refuses each source.
    let out = repo.run(&["recover", "--root", root.to_str().unwrap(), "--apply"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exists; move it away"), "{stderr}");
}
