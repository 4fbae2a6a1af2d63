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
    common::ledger_counter(path)
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
    common::succeeded(&out);
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

/// A database of `rows` orders with text bodies, a few MiB, in `journal_mode`.
fn create_orders_db(path: &Path, journal_mode: &str, rows: i64) {
    let db = Connection::open(path).unwrap();
    db.pragma_update(None, "journal_mode", journal_mode)
        .unwrap();
    db.execute_batch(
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT NOT NULL, body TEXT NOT NULL, qty INTEGER NOT NULL);
         CREATE INDEX orders_customer ON orders(customer);",
    )
    .unwrap();
    let tx = db.unchecked_transaction().unwrap();
    for i in 0..rows {
        tx.execute(
            "INSERT INTO orders(id, customer, body, qty) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                i,
                format!("c{}", i % 977),
                format!("order {i} {}", "lorem ipsum ".repeat((i % 40) as usize)),
                i % 9
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// Updates one row in a hundred, spread over the table.
fn update_one_percent(path: &Path, round: i64) {
    let db = Connection::open(path).unwrap();
    db.execute(
        "UPDATE orders SET qty = qty + ?1, body = body || ' changed' WHERE id % 100 = ?1",
        [round],
    )
    .unwrap();
}

/// Every row, in order, as one string: equal strings mean equal SQL content.
fn table_dump(path: &Path) -> String {
    let db = Connection::open(path).unwrap();
    let mut statement = db
        .prepare("SELECT id, customer, body, qty FROM orders ORDER BY id")
        .unwrap();
    let rows = statement
        .query_map([], |r| {
            Ok(format!(
                "{}|{}|{}|{}",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?
            ))
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
}

/// The first row that differs between two dumps, if any (whole dumps are too long to print).
fn first_difference(a: &str, b: &str) -> Option<(String, String)> {
    let (mut a_rows, mut b_rows) = (a.lines(), b.lines());
    loop {
        match (a_rows.next(), b_rows.next()) {
            (None, None) => return None,
            (x, y) if x == y => continue,
            (x, y) => return Some((x.unwrap_or("<end>").into(), y.unwrap_or("<end>").into())),
        }
    }
}

fn assert_same_rows(restored: &Path, live: &Path) {
    assert_eq!(
        first_difference(&table_dump(restored), &table_dump(live)),
        None
    );
}

fn backup_json(repo: &TestRepo, path: &Path) -> serde_json::Value {
    repo.json(&["backup", path.to_str().unwrap()])
}

fn restore_db(repo: &TestRepo, id: &str, name: &str) -> std::path::PathBuf {
    repo.restore(id, name).join("app.db")
}

fn incremental_backup_stores_only_changed_pages(journal_mode: &str) {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    create_orders_db(&db, journal_mode, 20_000);
    let first = backup_json(&repo, &db);
    let pages = first["summary"]["database_pages"].as_u64().unwrap();
    assert!(pages > 500, "{first}");
    assert_eq!(first["summary"]["changed_pages"], pages);
    let state1 = table_dump(&db);

    update_one_percent(&db, 7);
    let second = backup_json(&repo, &db);
    let changed = second["summary"]["changed_pages"].as_u64().unwrap();
    assert!(changed > 0, "{second}");
    assert!(
        changed * 4 < pages,
        "1% of rows changed but {changed} of {pages} pages were stored: {second}"
    );
    let new_bytes = second["summary"]["new_bytes"].as_u64().unwrap();
    let total = second["summary"]["total_bytes"].as_u64().unwrap();
    assert!(new_bytes * 4 < total, "{second}");

    // Both restore points restore to exactly their own content.
    let restored2 = restore_db(&repo, second["id"].as_str().unwrap(), "r2");
    assert_same_rows(&restored2, &db);
    assert!(first_difference(&table_dump(&restored2), &state1).is_some());
    let restored1 = restore_db(&repo, first["id"].as_str().unwrap(), "r1");
    assert_eq!(first_difference(&table_dump(&restored1), &state1), None);

    // A third round stacks on the second map.
    update_one_percent(&db, 8);
    let third = backup_json(&repo, &db);
    assert!(third["summary"]["changed_pages"].as_u64().unwrap() * 4 < pages);
    let restored3 = restore_db(&repo, third["id"].as_str().unwrap(), "r3");
    assert_same_rows(&restored3, &db);
    repo.ok(&["verify", "--read-data"]);
}

#[test]
fn incremental_backup_of_a_rollback_journal_database() {
    incremental_backup_stores_only_changed_pages("delete");
}

#[test]
fn incremental_backup_of_a_wal_database() {
    incremental_backup_stores_only_changed_pages("wal");
}

#[test]
fn lost_damaged_or_stale_page_cache_costs_a_full_read_never_a_wrong_page() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    create_orders_db(&db, "wal", 10_000);
    backup_json(&repo, &db);
    let cache_dir = repo.path("cache");
    let cache_file = || {
        let mut files: Vec<_> = walk_files(&cache_dir);
        assert_eq!(files.len(), 1, "one cache file per database: {files:?}");
        files.pop().unwrap()
    };

    // Lost: every page is read, but unchanged aligned groups deduplicate by id.
    update_one_percent(&db, 1);
    fs::remove_file(cache_file()).unwrap();
    let lost = backup_json(&repo, &db);
    assert_eq!(
        lost["summary"]["changed_pages"], lost["summary"]["database_pages"],
        "{lost}"
    );
    let restored = restore_db(&repo, lost["id"].as_str().unwrap(), "lost");
    assert_same_rows(&restored, &db);

    // Damaged: ignored.
    update_one_percent(&db, 2);
    let mut damaged = fs::read(cache_file()).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;
    fs::write(cache_file(), damaged).unwrap();
    let after_damage = backup_json(&repo, &db);
    assert_eq!(
        after_damage["summary"]["changed_pages"],
        after_damage["summary"]["database_pages"]
    );
    let restored = restore_db(&repo, after_damage["id"].as_str().unwrap(), "damaged");
    assert_same_rows(&restored, &db);
}

#[test]
fn a_stale_page_cache_is_refused() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    create_orders_db(&db, "delete", 10_000);
    backup_json(&repo, &db);
    let cache_file = walk_files(&repo.path("cache")).pop().unwrap();
    let stale = fs::read(&cache_file).unwrap();
    let bump = |delta: i64| {
        Connection::open(&db)
            .unwrap()
            .execute(
                "UPDATE orders SET qty = qty + ?1 WHERE id % 100 = 5",
                [delta],
            )
            .unwrap();
    };
    bump(1);
    backup_json(&repo, &db);
    // Back to the first state's rows (same-size in-place updates): most pages are now
    // byte-identical to the first snapshot's, and differ from the parent's. A cache of
    // the first snapshot's hashes would make the backup keep the parent's changed pages.
    bump(-1);
    fs::write(&cache_file, &stale).unwrap();
    let third = backup_json(&repo, &db);
    let restored = restore_db(&repo, third["id"].as_str().unwrap(), "stale");
    assert_same_rows(&restored, &db);
    assert_eq!(
        third["summary"]["changed_pages"],
        third["summary"]["database_pages"]
    );
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn timeline_and_restore_of_a_database_as_of_a_time() {
    let repo = TestRepo::local();
    let app = repo.path("app");
    fs::create_dir_all(&app).unwrap();
    let db = app.join("app.db");
    create_orders_db(&db, "wal", 2_000);
    // One restore point from a backup of the directory, one of the file itself.
    let first = repo.backup(&[&app]);
    let state1 = table_dump(&db);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    update_one_percent(&db, 4);
    let second = repo.backup(&[&db]);

    let timeline = repo.json(&["timeline", db.to_str().unwrap()]);
    let points = timeline["restore_points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{timeline}");
    assert_eq!(points[0]["snapshot"], first.as_str());
    assert_eq!(points[1]["snapshot"], second.as_str());
    assert_eq!(timeline["window"]["from"], points[0]["time"]);

    // As of the first point's second: the first state.
    let out1 = repo.path("as-of-first.db");
    let restored = repo.json(&[
        "restore",
        "--source",
        db.to_str().unwrap(),
        "--at",
        points[0]["time"].as_str().unwrap(),
        "--target",
        out1.to_str().unwrap(),
    ]);
    assert_eq!(restored["restore_point"]["snapshot"], first.as_str());
    assert_eq!(first_difference(&table_dump(&out1), &state1), None);

    // Latest, through the URL form JS tools use.
    let out2 = repo.path("latest.db");
    let url = format!("sqlite:{}", db.display());
    let text = repo.ok(&[
        "restore",
        "--source",
        &url,
        "--at",
        "-0s",
        "--target",
        out2.to_str().unwrap(),
    ]);
    assert!(
        text.contains(&second[..8]) && text.contains("integrity_check"),
        "{text}"
    );
    assert_same_rows(&out2, &db);

    // Before the window, an existing target, a source never backed up: clear errors.
    let err = repo.fails(
        &[
            "restore",
            "--source",
            db.to_str().unwrap(),
            "--at",
            "2001-01-01T00:00:00Z",
            "--target",
            repo.path("x.db").to_str().unwrap(),
        ],
        1,
    );
    assert!(
        err.contains("before the restore window")
            && err.contains(&points[0]["time"].as_str().unwrap()[..16]),
        "{err}"
    );
    let err = repo.fails(
        &[
            "restore",
            "--source",
            db.to_str().unwrap(),
            "--target",
            out2.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("already exists"), "{err}");
    let err = repo.fails(&["timeline", "/nowhere/else.db"], 1);
    assert!(err.contains("no restore point"), "{err}");
    let err = repo.fails(
        &[
            "restore",
            "--source",
            db.to_str().unwrap(),
            "--at",
            "yesterday",
            "--target",
            repo.path("y.db").to_str().unwrap(),
        ],
        2,
    );
    assert!(err.contains("cannot read the time"), "{err}");
}
