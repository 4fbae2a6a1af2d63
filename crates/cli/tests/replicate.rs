//! Continuous replication of a live WAL database: segments every interval, restore to any
//! restore point, one replicator per stream, survival of its own kill -9.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestRepo;
use rusqlite::Connection;

/// Each transaction inserts +x and -x and bumps a counter: any consistent state has
/// sum = 0 and rows = 2 × counter.
fn create_ledger(path: &Path) {
    let db = Connection::open(path).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE ledger(id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, memo TEXT);
         CREATE TABLE counter(n INTEGER NOT NULL); INSERT INTO counter VALUES (0);",
    )
    .unwrap();
}

fn writer(path: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut db = Connection::open(&path).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        let mut n = 0i64;
        while !stop.load(Ordering::Relaxed) {
            let tx = db.transaction().unwrap();
            let memo = "m".repeat((n % 500) as usize);
            tx.execute(
                "INSERT INTO ledger(amount, memo) VALUES (?1, ?2), (-?1, ?2)",
                rusqlite::params![n % 97 + 1, memo],
            )
            .unwrap();
            tx.execute("UPDATE counter SET n = n + 1", []).unwrap();
            tx.commit().unwrap();
            n += 1;
            if n % 500 == 0 {
                // The app's own checkpoints must not break the stream.
                let _ = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    })
}

fn counter(path: &Path) -> i64 {
    common::ledger_counter(path)
}

fn start_replicator(repo: &TestRepo, db: &Path) -> Child {
    repo.command()
        .args(["replicate", db.to_str().unwrap(), "--interval", "200ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) -> std::process::Output {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "replicate did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// How many base snapshots the timeline of `db` holds, and the timeline itself.
fn base_snapshots(repo: &TestRepo, db: &Path) -> (usize, serde_json::Value) {
    let timeline = repo.json(&["timeline", db.to_str().unwrap()]);
    let bases = timeline["restore_points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "snapshot")
        .count();
    (bases, timeline)
}

fn restore_at(
    repo: &TestRepo,
    db: &Path,
    at: &str,
    name: &str,
) -> (std::path::PathBuf, serde_json::Value) {
    let out = repo.path(name);
    let json = repo.json(&[
        "restore",
        "--source",
        db.to_str().unwrap(),
        "--at",
        at,
        "--target",
        out.to_str().unwrap(),
    ]);
    (out, json)
}

#[test]
fn replicated_database_restores_to_every_restore_point_and_the_last_commit() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    create_ledger(&db);
    let stop_writing = Arc::new(AtomicBool::new(false));
    let app = writer(&db, stop_writing.clone());
    let replicator = start_replicator(&repo, &db);
    std::thread::sleep(Duration::from_millis(2500));

    // A second replicator of the same database is refused while the first runs.
    let err = repo.fails(&["replicate", db.to_str().unwrap()], 1);
    assert!(err.contains("another replicator"), "{err}");

    std::thread::sleep(Duration::from_millis(1000));
    stop_writing.store(true, Ordering::Relaxed);
    app.join().unwrap();
    let final_count = counter(&db);
    assert!(final_count > 100, "the app wrote too little: {final_count}");
    let out = stop(replicator);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let timeline = repo.json(&["timeline", db.to_str().unwrap()]);
    let points = timeline["restore_points"].as_array().unwrap();
    let segments: Vec<_> = points.iter().filter(|p| p["kind"] == "segment").collect();
    assert!(points[0]["kind"] == "snapshot", "{timeline}");
    assert!(
        segments.len() >= 5,
        "expected a segment every 200 ms: {timeline}"
    );

    // The latest point holds every committed transaction.
    let (latest, json) = restore_at(&repo, &db, "latest", "latest.db");
    assert_eq!(json["restore_point"]["kind"], "segment");
    assert_eq!(counter(&latest), final_count);
    assert!(!repo.path("latest.db-wal").exists());

    // Every earlier point is a consistent state, and they only move forward.
    let mut previous = -1;
    for (i, segment) in segments.iter().enumerate().step_by(3) {
        let at = segment["time"].as_str().unwrap();
        let (restored, json) = restore_at(&repo, &db, at, &format!("point{i}.db"));
        assert_eq!(json["restore_point"]["kind"], "segment", "{json}");
        let n = counter(&restored);
        assert!(n >= previous && n <= final_count, "{n} after {previous}");
        previous = n;
    }
}

#[test]
fn replicator_killed_and_restarted_rebases_and_loses_nothing_committed() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    create_ledger(&db);
    let stop_writing = Arc::new(AtomicBool::new(false));
    let app = writer(&db, stop_writing.clone());
    let mut first = start_replicator(&repo, &db);
    std::thread::sleep(Duration::from_millis(1500));
    first.kill().unwrap();
    first.wait().unwrap();
    // Its lease belongs to a dead process: a new replicator takes over at once.
    let second = start_replicator(&repo, &db);
    std::thread::sleep(Duration::from_millis(1500));
    stop_writing.store(true, Ordering::Relaxed);
    app.join().unwrap();
    let final_count = counter(&db);
    let out = stop(second);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (bases, timeline) = base_snapshots(&repo, &db);
    assert_eq!(bases, 2, "the restart takes a new base: {timeline}");
    // The second base is an incremental backup on the first.
    let snapshots = repo.json(&["snapshots"]);
    let list = snapshots.as_array().unwrap();
    assert_eq!(list[1]["parent"], list[0]["id"], "{snapshots}");
    let (latest, _) = restore_at(&repo, &db, "latest", "latest.db");
    assert_eq!(counter(&latest), final_count);
}

#[test]
fn replicate_refuses_what_it_cannot_follow() {
    let repo = TestRepo::local();
    let rollback = repo.path("rollback.db");
    Connection::open(&rollback)
        .unwrap()
        .execute_batch("CREATE TABLE t(v)")
        .unwrap();
    let err = repo.fails(&["replicate", rollback.to_str().unwrap()], 1);
    assert!(err.contains("needs WAL"), "{err}");
    let text = repo.path("notes.txt");
    std::fs::write(&text, "not a database").unwrap();
    let err = repo.fails(&["replicate", text.to_str().unwrap()], 1);
    assert!(err.contains("not a SQLite database"), "{err}");
    let err = repo.fails(
        &["replicate", rollback.to_str().unwrap(), "--interval", "0s"],
        2,
    );
    assert!(err.contains("more than zero"), "{err}");

    // A database replaced under the replicator (a restore moved over it, say) stops it.
    let replaced = repo.path("replaced.db");
    create_ledger(&replaced);
    let replicator = start_replicator(&repo, &replaced);
    std::thread::sleep(Duration::from_millis(800));
    let other = repo.path("other.db");
    create_ledger(&other);
    std::fs::rename(&other, &replaced).unwrap();
    let out = stop(replicator);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("replaced by another file"), "{stderr}");

    // A database deleted under the replicator stops it with an error that says so.
    let db = repo.path("app.db");
    create_ledger(&db);
    let replicator = start_replicator(&repo, &db);
    std::thread::sleep(Duration::from_millis(800));
    std::fs::remove_file(&db).unwrap();
    let out = stop(replicator);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("deleted while replicating"), "{stderr}");
}

/// An app that commits and closes its connection at once (here: the sqlite3 shell, one
/// process per transaction). If the replicator's read transaction were not really held (a
/// plain open and close of the database file drops the process's POSIX locks), the
/// closing app would checkpoint and delete the -wal before its last transactions were
/// shipped.
#[test]
fn transactions_of_short_lived_connections_are_shipped() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    create_ledger(&db);
    let replicator = start_replicator(&repo, &db);
    std::thread::sleep(Duration::from_millis(600));
    for i in 1..=40 {
        let sql = format!(
            "BEGIN; INSERT INTO ledger(amount) VALUES ({i}), (-{i}); UPDATE counter SET n = n + 1; COMMIT;"
        );
        // Like any app next to a replicator (or another writer), it waits for the lock
        // rather than failing at once.
        let status = std::process::Command::new("sqlite3")
            .args(["-cmd", ".timeout 5000"])
            .arg(&db)
            .arg(sql)
            .status()
            .expect("the sqlite3 shell is installed");
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(15));
    }
    assert_eq!(counter(&db), 40);
    std::thread::sleep(Duration::from_millis(700));
    let out = stop(replicator);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (latest, _) = restore_at(&repo, &db, "latest", "latest.db");
    assert_eq!(counter(&latest), 40);
    // Held properly, the replicator's read transaction kept the shell from removing the
    // log it had not read, so no tick had to fall back to a new base snapshot.
    let (bases, timeline) = base_snapshots(&repo, &db);
    assert_eq!(bases, 1, "{timeline}");
}

/// A full repository disk: segments wait in memory (the replicator says so) and are
/// shipped once there is room again; nothing committed is lost. Needs root for tmpfs.
#[test]
fn full_repository_disk_delays_segments_and_loses_nothing() {
    if unsafe { libc::geteuid() } != 0 {
        common::skip("mounting a tmpfs needs root");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let mount = scratch.path().join("small");
    std::fs::create_dir_all(&mount).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mount)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs");
    let repo = TestRepo::at(&mount.join("repo").display().to_string(), Vec::new());
    repo.init();
    let db = repo.path("app.db");
    create_ledger(&db);
    let replicator = start_replicator(&repo, &db);
    let stop_writing = Arc::new(AtomicBool::new(false));
    let app = writer(&db, stop_writing.clone());
    std::thread::sleep(Duration::from_millis(800));

    // Fill the disk, let the app write on for a while, then make room again.
    let filler = mount.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        while file.write_all(&[7u8; 65536]).is_ok() {}
        while file.write_all(&[7u8; 4096]).is_ok() {}
        while file.write_all(&[7u8; 1]).is_ok() {}
    }
    // Long enough for a write to fail after the storage layer's retries (~1.5 s).
    std::thread::sleep(Duration::from_millis(3500));
    std::fs::remove_file(&filler).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    stop_writing.store(true, Ordering::Relaxed);
    app.join().unwrap();
    let final_count = counter(&db);
    std::thread::sleep(Duration::from_millis(2000));
    let out = stop(replicator);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let (latest, _) = restore_at(&repo, &db, "latest", "latest.db");
    let restored = counter(&latest);
    let _ = std::process::Command::new("umount").arg(&mount).status();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("wait for the next tick"), "{stderr}");
    assert_eq!(restored, final_count);
}

#[test]
fn forgetting_a_base_snapshot_removes_the_stream_segments_of_its_generation() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    create_ledger(&db);
    let stop_writing = Arc::new(AtomicBool::new(false));
    let writing = writer(&db, stop_writing.clone());
    let replicator = start_replicator(&repo, &db);
    std::thread::sleep(Duration::from_millis(1500));
    let segments = || walk_files(&repo.repo_dir().join("streams"));

    // While the replicator runs, its base stays whatever the policy says.
    repo.ok(&["backup", db.to_str().unwrap()]);
    let report = repo.json(&["forget", "--keep-last", "1"]);
    assert_eq!(report["removed_snapshots"], 0, "{report}");
    assert!(report.to_string().contains("live replication"), "{report}");

    stop_writing.store(true, Ordering::Relaxed);
    writing.join().unwrap();
    let out = stop(replicator);
    common::succeeded(&out);
    assert!(segments() > 0, "the replicator shipped no segment");

    // Stopped, and older than a newer plain backup: the base and its segments go.
    repo.ok(&["backup", db.to_str().unwrap()]);
    let report = repo.json(&["forget", "--keep-last", "1"]);
    assert_eq!(report["removed_snapshots"], 2, "{report}");
    assert_eq!(
        segments(),
        0,
        "segments of a forgotten base are left: {report}"
    );
    let (bases, timeline) = base_snapshots(&repo, &db);
    assert_eq!(bases, 1, "{timeline}");
    let restored = repo.path("restored.db");
    repo.ok(&[
        "restore",
        "--source",
        db.to_str().unwrap(),
        "--target",
        restored.to_str().unwrap(),
    ]);
    assert_eq!(counter(&restored), counter(&db));
}

fn walk_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        walk_files(&path)
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn restore_to_a_transaction_stops_right_after_it_and_numbers_run_on_across_restarts() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    create_ledger(&db);
    let stop_writing = Arc::new(AtomicBool::new(false));
    let app = writer(&db, stop_writing.clone());
    for _ in 0..2 {
        let replicator = start_replicator(&repo, &db);
        std::thread::sleep(Duration::from_millis(1200));
        let out = stop(replicator);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop_writing.store(true, Ordering::Relaxed);
    app.join().unwrap();

    // Every segment names the transactions it holds; numbers run on across segments and
    // across the restart (a new generation), never starting again at 1.
    let (bases, timeline) = base_snapshots(&repo, &db);
    assert_eq!(bases, 2, "{timeline}");
    let ranges: Vec<(u64, u64)> = timeline["restore_points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "segment")
        .map(|p| {
            let t = &p["transactions"];
            (t["first"].as_u64().unwrap(), t["last"].as_u64().unwrap())
        })
        .collect();
    assert!(ranges.len() >= 4, "{timeline}");
    assert_eq!(ranges[0].0, 1, "{timeline}");
    for pair in ranges.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].1 + 1,
            "a gap or a restart in the numbers: {ranges:?}"
        );
    }

    // Inside a segment: each transaction adds exactly one to the counter, and the last
    // one of a segment is that segment's restore point.
    let (first, last) = *ranges
        .iter()
        .find(|(first, last)| last > first)
        .expect("a segment with several transactions");
    let at_transaction = |number: u64| {
        let (file, restored) = restore_at(
            &repo,
            &db,
            &format!("tx:{number}"),
            &format!("tx{number}.db"),
        );
        assert_eq!(restored["restore_point"]["transaction"], number);
        counter(&file)
    };
    let counters: Vec<i64> = (first..=last.min(first + 9)).map(at_transaction).collect();
    for pair in counters.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "{counters:?}");
    }
    let at_last = at_transaction(last);
    assert_eq!(at_last, counters[0] + (last - first) as i64);
    let segment_time = timeline["restore_points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["transactions"]["last"] == last)
        .unwrap()["time"]
        .as_str()
        .unwrap()
        .to_string();
    let (at_segment, _) = restore_at(&repo, &db, &segment_time, "segment.db");
    assert_eq!(counter(&at_segment), at_last);

    // People read one line per base and one per continuous run of its segments, with the
    // run's transaction range; --all lists every segment.
    let grouped = repo.ok(&["timeline", db.to_str().unwrap()]);
    let lines: Vec<&str> = grouped.lines().skip(1).collect();
    assert_eq!(lines.len(), 4, "{grouped}");
    let runs: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains(" on snapshot "))
        .collect();
    assert_eq!(runs.len(), 2, "{grouped}");
    let last_of_first_run = ranges
        .iter()
        .zip(ranges.iter().skip(1))
        .find(|(a, b)| b.0 == a.1 + 1 && runs[1].contains(&format!("transactions {}-", b.0)))
        .map(|(a, _)| a.1)
        .expect("the second run starts right after the first");
    assert!(
        runs[0].ends_with(&format!("transactions 1-{last_of_first_run}")),
        "{grouped}"
    );
    assert!(
        runs[1].ends_with(&format!("-{}", ranges.last().unwrap().1)),
        "{grouped}"
    );
    let all = repo.ok(&["timeline", db.to_str().unwrap(), "--all"]);
    assert_eq!(all.lines().count(), 1 + 2 + ranges.len(), "{all}");

    // Outside the window, or not a number: a clear error.
    let beyond = format!("tx:{}", ranges.last().unwrap().1 + 1000);
    let target = repo.path("beyond.db");
    let err = repo.fails(
        &[
            "restore",
            "--source",
            db.to_str().unwrap(),
            "--at",
            &beyond,
            "--target",
            target.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        err.contains("not in the restore window") && err.contains("run from 1 to"),
        "{err}"
    );
    assert!(!target.exists());
    let err = repo.fails(
        &[
            "restore",
            "--source",
            db.to_str().unwrap(),
            "--at",
            "tx:x",
            "--target",
            target.to_str().unwrap(),
        ],
        2,
    );
    assert!(err.contains("cannot read the transaction"), "{err}");
}
