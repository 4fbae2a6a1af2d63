//! MySQL/MariaDB point-in-time recovery on a throwaway MariaDB server of the test's own
//! (binary log on, ROW format, small files so the log rotates): the binlog streamed into
//! the repository (killed -9 and restarted mid-way), a dump taken under write load, a
//! `DROP TABLE` at a noted moment, and recovery to just before it and to the latest
//! moment, each checked against a ledger whose total never changes.

mod common;

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::mariadb::MariaDb;
use common::TestRepo;

const ACCOUNTS: i64 = 10;
const OPENING: i64 = 1000;

/// `count` transfers between accounts, each one transaction that also journals itself.
fn transfers(db: &MariaDb, count: u64, seed: u64) {
    let mut child = db
        .client(Some("ledger"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut state = seed;
    for _ in 0..count {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let from = (state >> 33) as i64 % ACCOUNTS + 1;
        let to = (state >> 40) as i64 % ACCOUNTS + 1;
        let amount = (state >> 50) as i64 % 50 + 1;
        writeln!(
            stdin,
            "START TRANSACTION; UPDATE accounts SET balance = balance - {amount} WHERE id = {from}; \
             UPDATE accounts SET balance = balance + {amount} WHERE id = {to}; \
             INSERT INTO journal (src, dst, amount) VALUES ({from}, {to}, {amount}); COMMIT;"
        )
        .unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success(), "transfers failed");
}

fn streamer(repo: &TestRepo, db: &MariaDb) -> Child {
    repo.command()
        .args([
            "mysql",
            "binlog-stream",
            &db.url(None),
            "--interval",
            "200ms",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The server's clock (the binlog's), as RFC 3339.
fn server_now(db: &MariaDb) -> String {
    db.sql(
        None,
        "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ')",
    )
}

fn total(db: &MariaDb, database: &str) -> i64 {
    db.number(database, "SELECT SUM(balance) FROM accounts")
}

#[test]
fn recovers_to_just_before_a_dropped_table_and_to_the_latest_moment() {
    let Some(db) = MariaDb::start() else { return };
    let repo = TestRepo::local();
    db.sql(None, "CREATE DATABASE ledger");
    db.sql(
        Some("ledger"),
        "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL); \
         CREATE TABLE journal (id BIGINT AUTO_INCREMENT PRIMARY KEY, src INT, dst INT, amount INT); \
         CREATE TABLE notes (id INT PRIMARY KEY, body TEXT); \
         INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    );
    for id in 1..=ACCOUNTS {
        db.sql(
            Some("ledger"),
            &format!("INSERT INTO accounts VALUES ({id}, {OPENING})"),
        );
    }

    let mut stream = streamer(&repo, &db);
    // The dump is taken while transfers run: it must be one consistent state with its
    // binlog position, or the replay double-counts.
    std::thread::scope(|s| {
        let load = s.spawn(|| transfers(&db, 1500, 1));
        std::thread::sleep(Duration::from_millis(300));
        repo.ok(&["backup", &db.url(Some("ledger"))]);
        load.join().unwrap();
    });
    // A streamer killed mid-way resumes where the archive ends.
    unsafe { libc::kill(stream.id() as i32, libc::SIGKILL) };
    stream.wait().unwrap();
    transfers(&db, 300, 2);
    let stream = streamer(&repo, &db);
    transfers(&db, 300, 3);

    // The moment to go back to: nothing commits in the second around it.
    std::thread::sleep(Duration::from_millis(1100));
    let before_drop = server_now(&db);
    let journal_then = db.number("ledger", "SELECT COUNT(*) FROM journal");
    std::thread::sleep(Duration::from_millis(1100));
    db.sql(Some("ledger"), "DROP TABLE notes");
    transfers(&db, 200, 4);
    let journal_latest = db.number("ledger", "SELECT COUNT(*) FROM journal");
    std::thread::sleep(Duration::from_millis(1000));
    unsafe { libc::kill(stream.id() as i32, libc::SIGTERM) };
    let out = stream.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "binlog-stream: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Whatever the stopped streamer had not stored, a catch-up run stores.
    repo.ok(&["mysql", "binlog-stream", &db.url(None), "--once"]);

    let before = repo.json(&[
        "restore",
        &db.url(Some("ledger")),
        "--at",
        &before_drop,
        "--into",
        &db.url(Some("ledger_before")),
    ]);
    assert!(before["transactions"].as_u64().unwrap() > 0, "{before}");
    assert_eq!(
        db.number("ledger_before", "SELECT COUNT(*) FROM journal"),
        journal_then
    );
    assert_eq!(
        db.number("ledger_before", "SELECT COUNT(*) FROM notes"),
        3,
        "the table dropped after the moment is back"
    );
    assert_eq!(total(&db, "ledger_before"), ACCOUNTS * OPENING);
    let tables: Vec<&str> = before["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tables, ["accounts", "journal", "notes"]);

    repo.ok(&[
        "restore",
        &db.url(Some("ledger")),
        "--at",
        "latest",
        "--into",
        &db.url(Some("ledger_latest")),
    ]);
    assert_eq!(
        db.number("ledger_latest", "SELECT COUNT(*) FROM journal"),
        journal_latest
    );
    assert_eq!(total(&db, "ledger_latest"), ACCOUNTS * OPENING);
    assert_eq!(
        db.sql(
            None,
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'ledger_latest' AND table_name = 'notes'"
        ),
        "0"
    );
    // The live database was never touched by the replays.
    assert_eq!(
        db.number("ledger", "SELECT COUNT(*) FROM journal"),
        journal_latest
    );

    // A moment the archive cannot vouch for is refused before anything is created.
    let out = repo.run(&[
        "restore",
        &db.url(Some("ledger")),
        "--at",
        "2999-01-01T00:00:00Z",
        "--into",
        &db.url(Some("ledger_future")),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("past what the binlog archive reaches"),
        "{stderr}"
    );
    assert_eq!(
        db.sql(
            None,
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'ledger_future'"
        ),
        "0"
    );

    let timeline = repo.json(&["timeline", &db.url(Some("ledger"))]);
    let binlog = &timeline["binlog"];
    assert_eq!(binlog["gap"], serde_json::Value::Null, "{timeline}");
    assert!(timeline["dumps"][0]["binlog"]
        .as_str()
        .unwrap()
        .starts_with("binlog."));
    assert!(
        timeline["window"]["to"].as_str().unwrap() > timeline["dumps"][0]["time"].as_str().unwrap(),
        "the archive extends the window past the dump: {timeline}"
    );
    let text = repo.ok(&["timeline", &db.url(Some("ledger"))]);
    assert!(
        text.contains("point-in-time recovery from each dump"),
        "{text}"
    );

    let verify = repo.ok(&["verify", "--read-data"]);
    assert!(verify.contains("binlog pieces"), "{verify}");

    // A copy carries the archive, filed under the server's name in the other key.
    let other = TestRepo::local();
    let out = other
        .command()
        .args(["copy", "--from", &repo.url, "--to", &other.url, "--json"])
        .env("LIFEBOAT_FROM_PASSWORD", common::PASSWORD)
        .output()
        .unwrap();
    let copied: serde_json::Value = serde_json::from_str(&common::succeeded(&out)).unwrap();
    assert!(
        copied["binlog_pieces_copied"].as_u64().unwrap() > 0,
        "{copied}"
    );
    other.ok(&[
        "restore",
        &db.url(Some("ledger")),
        "--into",
        &db.url(Some("ledger_copied")),
    ]);
    assert_eq!(
        db.number("ledger_copied", "SELECT COUNT(*) FROM journal"),
        journal_latest
    );

    // A newer dump: forget drops the binlog files only the older one replayed from.
    repo.ok(&["backup", &db.url(Some("ledger"))]);
    let out = repo.run(&[
        "restore",
        &db.url(Some("ledger")),
        "--into",
        &db.url(Some("ledger_unarchived")),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the binlog archive does not hold"),
        "a dump newer than the archive is refused: {out:?}"
    );
    repo.ok(&["mysql", "binlog-stream", &db.url(None), "--once"]);
    let forgot = repo.json(&["forget", "--keep-last", "1"]);
    assert!(
        forgot["removed_binlog_pieces"].as_u64().unwrap() > 0,
        "{forgot}"
    );
    repo.ok(&["verify"]);
    repo.ok(&[
        "restore",
        &db.url(Some("ledger")),
        "--into",
        &db.url(Some("ledger_after_forget")),
    ]);
    assert_eq!(
        db.number("ledger_after_forget", "SELECT COUNT(*) FROM journal"),
        journal_latest
    );

    // A drill recovers through the binlog into a scratch database and drops it.
    for at in ["latest", "random"] {
        let drill = repo.json(&["drill", &db.url(Some("ledger")), "--at", at]);
        assert_eq!(drill["passed"], true, "{drill}");
        assert!(
            drill["checks"][0]["check"]
                .as_str()
                .unwrap()
                .contains("binlog replayed"),
            "{drill}"
        );
    }
    assert_eq!(
        db.sql(
            None,
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE 'ledger_lifeboat_drill_%'"
        ),
        "0"
    );

    // DDL that names the database itself would, replayed under another name, change the
    // original: refused before anything is created.
    db.sql(
        Some("ledger"),
        "CREATE TABLE ledger.extra (id INT PRIMARY KEY)",
    );
    repo.ok(&["mysql", "binlog-stream", &db.url(None), "--once"]);
    let out = repo.run(&[
        "restore",
        &db.url(Some("ledger")),
        "--into",
        &db.url(Some("ledger_renamed")),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("names database `ledger` itself"),
        "{stderr}"
    );
    assert_eq!(
        db.sql(
            None,
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'ledger_renamed'"
        ),
        "0"
    );
}
