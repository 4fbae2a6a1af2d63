//! Live SQLite databases: consistent snapshots while an app writes, in WAL and rollback
//! mode, detected inside directories, restored without stale -wal/-shm and checked.

mod common;

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::TestRepo;
use rusqlite::Connection;

/// Every transaction inserts a +x and a -x row into `ledger` and bumps `counter`, so any
/// consistent state has sum(amount) = 0, an even row count and counter = rows / 2.
fn create_app_db(path: &Path, journal_mode: &str) {
    let db = Connection::open(path).unwrap();
    db.pragma_update(None, "journal_mode", journal_mode)
        .unwrap();
    db.execute_batch(
        "CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE ledger(id INTEGER PRIMARY KEY, account INTEGER NOT NULL REFERENCES accounts(id), amount INTEGER NOT NULL, memo TEXT);
         CREATE TABLE counter(n INTEGER NOT NULL);
         INSERT INTO counter VALUES (0);
         INSERT INTO accounts(id, name) VALUES (1, 'a'), (2, 'b');",
    )
    .unwrap();
}

fn write_transactions(path: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut db = Connection::open(&path).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        db.pragma_update(None, "foreign_keys", "ON").unwrap();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let tx = db.transaction().unwrap();
            let x = (n % 997) as i64 + 1;
            let memo = "m".repeat((n % 300) as usize);
            tx.execute(
                "INSERT INTO ledger(account, amount, memo) VALUES (1, ?1, ?2)",
                rusqlite::params![x, memo],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO ledger(account, amount, memo) VALUES (2, ?1, ?2)",
                rusqlite::params![-x, memo],
            )
            .unwrap();
            tx.execute("UPDATE counter SET n = n + 1", []).unwrap();
            tx.commit().unwrap();
            n += 1;
        }
        n
    })
}

fn assert_consistent(path: &Path) -> i64 {
    let db = Connection::open(path).unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let (rows, sum): (i64, i64) = db
        .query_row(
            "SELECT count(*), coalesce(sum(amount), 0) FROM ledger",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let counter: i64 = db
        .query_row("SELECT n FROM counter", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, 0, "a half-applied transaction was captured");
    assert_eq!(
        rows,
        counter * 2,
        "rows and counter disagree: torn snapshot"
    );
    counter
}

fn snapshots_under_writes(journal_mode: &str) {
    let repo = TestRepo::local();
    let app = repo.path("app");
    fs::create_dir_all(&app).unwrap();
    let db = app.join("app.db");
    create_app_db(&db, journal_mode);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = write_transactions(&db, stop.clone());
    let mut ids = Vec::new();
    for _ in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(300));
        ids.push(repo.backup(&[&db]));
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 0);
    let mut previous = -1;
    for (i, id) in ids.iter().enumerate() {
        let out = repo.restore(id, &format!("out{i}"));
        let restored = out.join("app.db");
        assert!(!out.join("app.db-wal").exists() && !out.join("app.db-journal").exists());
        let counter = assert_consistent(&restored);
        assert!(counter >= previous, "snapshots went back in time");
        previous = counter;
    }
}

#[test]
fn wal_database_under_writes_snapshots_consistently() {
    snapshots_under_writes("wal");
}

#[test]
fn rollback_journal_database_under_writes_snapshots_consistently() {
    snapshots_under_writes("delete");
}

#[test]
fn uncheckpointed_wal_content_is_in_the_snapshot_and_stale_wal_is_removed() {
    let repo = TestRepo::local();
    let app = repo.path("app");
    fs::create_dir_all(&app).unwrap();
    let db_path = app.join("app.db");
    create_app_db(&db_path, "wal");
    let db = Connection::open(&db_path).unwrap();
    db.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    for i in 0..200 {
        db.execute(
            "INSERT INTO ledger(account, amount) VALUES (1, ?1), (2, ?2)",
            rusqlite::params![i, -i],
        )
        .unwrap();
        db.execute("UPDATE counter SET n = n + 1", []).unwrap();
    }
    fs::write(app.join("photo.jpg"), b"jpeg").unwrap();
    // The database inside a directory is found by its header; its -wal and -shm are not
    // stored separately (the consistent copy holds their committed content).
    let id = repo.backup(&[&app]);
    let listing = repo.ok(&["ls", &id]);
    assert!(
        listing.contains("app.db")
            && !listing.contains("app.db-wal")
            && !listing.contains("app.db-shm"),
        "{listing}"
    );
    drop(db);

    // A stale -wal from some other state sits where we restore: it must not be applied.
    let target = repo.path("restore");
    fs::create_dir_all(target.join("app")).unwrap();
    fs::write(
        target.join("app/app.db-wal"),
        common::pseudo_random(100_000, 3),
    )
    .unwrap();
    fs::write(target.join("app/app.db-shm"), vec![0u8; 32768]).unwrap();
    repo.fails(&["restore", &id, "--target", target.to_str().unwrap()], 1);
    let out = repo.ok(&[
        "restore",
        &id,
        "--target",
        target.to_str().unwrap(),
        "--force",
    ]);
    assert!(out.contains("integrity_check"), "{out}");
    assert!(!target.join("app/app.db-wal").exists());
    assert_eq!(assert_consistent(&target.join("app/app.db")), 200);
}

#[test]
fn database_urls_as_js_tools_write_them() {
    let repo = TestRepo::local();
    let dir = repo.path("prisma");
    fs::create_dir_all(&dir).unwrap();
    create_app_db(&dir.join("dev.db"), "wal");
    let out = repo
        .command()
        .current_dir(&dir)
        .args(["backup", "file:./dev.db"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = repo.json(&["snapshots"]);
    assert_eq!(
        list[0]["paths"][0],
        dir.join("dev.db").display().to_string()
    );

    fs::write(dir.join("not.db"), b"plain text, not a database").unwrap();
    let out = repo
        .command()
        .current_dir(&dir)
        .args(["backup", "sqlite:./not.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a SQLite database"), "{stderr}");
}
