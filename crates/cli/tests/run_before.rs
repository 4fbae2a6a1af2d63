//! `lifeboat run --snapshot-before -- CMD`: a pinned snapshot before a risky command, and
//! a printed rollback command that really puts the data back when the command fails.

mod common;

use std::process::Command;

use common::{lifeboat_bin, TestRepo, PASSWORD};

/// Runs the rollback line lifeboat printed, as a person would paste it into a shell.
fn run_printed(repo: &TestRepo, line: &str) {
    let bin_dir = lifeboat_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let out = Command::new("sh")
        .args(["-c", line])
        .env("PATH", path)
        .env("LIFEBOAT_PASSWORD", PASSWORD)
        .env("LIFEBOAT_CACHE_DIR", repo.path("cache"))
        .env_remove("LIFEBOAT_REPO")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rows(db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_failed_migration_prints_the_command_that_rolls_the_database_back() {
    let repo = TestRepo::local();
    let data = repo.path("app data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO customers (name) SELECT 'c' || i FROM n;",
    )
    .unwrap();
    drop(conn);
    let url = format!("sqlite:{}", db.display());

    // A migration that deletes data and then fails.
    let migration = format!(
        "sqlite3 '{}' 'DELETE FROM customers WHERE id > 10; ALTER TABLE customers ADD COLUMN x;' && exit 7",
        db.display()
    );
    let out = repo
        .command()
        .args([
            "run",
            "--snapshot-before",
            "--source",
            &url,
            "--",
            "sh",
            "-c",
            &migration,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(7),
        "the command's exit code: {stderr}"
    );
    assert_eq!(rows(&db), 10);
    let rollback = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("lifeboat --repo"))
        .unwrap_or_else(|| panic!("no rollback command printed: {stderr}"));
    run_printed(&repo, rollback);
    assert_eq!(rows(&db), 500, "the rollback did not restore the rows");

    // A command that succeeds leaves its pinned snapshot and exits 0.
    let out = repo
        .command()
        .args(["run", "--snapshot-before", "--source", &url, "--", "true"])
        .output()
        .unwrap();
    common::succeeded(&out);
    let snapshots = repo.json(&["snapshots"]);
    let snapshots = snapshots.as_array().unwrap();
    assert_eq!(snapshots.len(), 2);
    assert!(snapshots
        .iter()
        .all(|s| s["pinned"] == true && s["tags"][0] == "before-run"));

    // No source and no DATABASE_URL is a usage error, and nothing runs.
    let out = repo
        .command()
        .env_remove("DATABASE_URL")
        .args([
            "run",
            "--snapshot-before",
            "--",
            "touch",
            repo.path("ran").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!repo.path("ran").exists());
}
