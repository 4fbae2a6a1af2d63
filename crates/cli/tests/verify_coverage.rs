//! `verify` covers every object, in time linear in the repository, and damage heals
//! (issue 15 items 7, 8 and 14): stream segments and the PostgreSQL WAL archive are
//! checked (listing; `--read-data` reads them), a tree graph that shares subtrees is read
//! once per tree, and a damaged pack is stored again by the next backup or salvaged by
//! `repair` without a second repository.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestRepo, PASSWORD};
use lifeboat_repo::pack::BlobKind;
use lifeboat_repo::session::WriteSession;
use lifeboat_repo::tree::{Node, NodeType, Tree};
use lifeboat_repo::Repository;
use serde_json::{json, Value};

fn open(repo: &TestRepo) -> Repository {
    let storage = lifeboat_storage::Storage::open(&repo.url).unwrap();
    Repository::open(storage, PASSWORD.as_bytes()).unwrap()
}

/// `verify --json` with `args`, and its exit code.
fn verify(repo: &TestRepo, args: &[&str]) -> (Value, Option<i32>) {
    let mut all = vec!["--json", "verify"];
    all.extend_from_slice(args);
    let out = repo.run(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify {args:?}: {e}: {stderr}"));
    (json, out.status.code())
}

fn problem<'a>(report: &'a Value, object: &str) -> &'a Value {
    report["report"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["object"] == object)
        .unwrap_or_else(|| panic!("no problem with {object}: {report:#}"))
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn objects_under(repo: &TestRepo, dir: &str) -> Vec<PathBuf> {
    let dir = repo.repo_dir().join(dir);
    if !dir.exists() {
        return Vec::new();
    }
    let mut files = common::files_under(&dir);
    files.sort();
    files
}

// ---- item 7: stream segments -------------------------------------------------------

fn replicate_a_few_segments(repo: &TestRepo, db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);")
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.to_path_buf(), stop.clone());
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.busy_timeout(Duration::from_secs(10)).unwrap();
            while !stop.load(Ordering::Relaxed) {
                conn.execute("INSERT INTO t(v) VALUES (hex(randomblob(300)))", [])
                    .unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut replicator = repo
        .command()
        .args(["replicate", db.to_str().unwrap(), "--interval", "100ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) for a generation of at least four segments.
    let deadline = Instant::now() + Duration::from_secs(60);
    let segments = |repo: &TestRepo| objects_under(repo, "streams").len();
    while segments(repo) < 4 {
        assert!(
            Instant::now() < deadline,
            "replicate wrote too few segments"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    unsafe { libc::kill(replicator.id() as i32, libc::SIGTERM) };
    let status = replicator.wait().unwrap();
    assert!(status.success(), "replicate: {status}");
}

#[test]
fn verify_checks_every_segment_chain_and_read_data_reads_every_segment() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    replicate_a_few_segments(&repo, &db);
    let segments = objects_under(&repo, "streams");
    assert!(segments.len() >= 4);

    let (report, code) = verify(&repo, &["--read-data"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["report"]["segments"], segments.len());
    assert_eq!(report["report"]["segments_read"], segments.len());

    // A flipped byte in segment 2: found by reading, named with the restore points it
    // costs (segment 2 to the end of its generation) and the database.
    let second = segments
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("0000000002-")
        })
        .unwrap()
        .clone();
    let name = second
        .strip_prefix(repo.repo_dir())
        .unwrap()
        .display()
        .to_string();
    let original = std::fs::read(&second).unwrap();
    flip_byte(&second, original.len() / 2);
    let (plain, code) = verify(&repo, &[]);
    assert_eq!(code, Some(0), "plain verify reads no segment: {plain:#}");
    assert_eq!(plain["report"]["read_data_percent"], Value::Null);
    let (report, code) = verify(&repo, &["--read-data"]);
    assert_eq!(code, Some(3), "{report:#}");
    let found = problem(&report, &name);
    assert!(
        found["detail"]
            .as_str()
            .unwrap()
            .contains("does not match its name"),
        "{found}"
    );
    assert_eq!(found["source"], db.display().to_string());
    let lost = found["restore_points"][0].as_str().unwrap();
    assert!(lost.contains("segments 2 to"), "{lost}");
    // Restore agrees that the stream is broken there.
    let target = repo.path("latest.db");
    let args = [
        "restore",
        "--source",
        db.to_str().unwrap(),
        "--at",
        "latest",
        "--target",
    ];
    let mut restore = args.to_vec();
    restore.push(target.to_str().unwrap());
    let out = repo.run(&restore);
    assert!(!out.status.success(), "restore used the damaged segment");

    // A deleted segment: found from the listing alone.
    std::fs::write(&second, &original).unwrap();
    std::fs::remove_file(&second).unwrap();
    let (report, code) = verify(&repo, &[]);
    assert_eq!(code, Some(3), "{report:#}");
    let generation = Path::new(&name).parent().unwrap().display().to_string();
    let found = problem(&report, &format!("{generation}/0000000002"));
    assert!(
        found["detail"]
            .as_str()
            .unwrap()
            .contains("segment 2 is missing"),
        "{found}"
    );
    assert_eq!(found["source"], db.display().to_string());

    // A generation whose base snapshot is gone cannot be restored at all.
    std::fs::write(&second, &original).unwrap();
    repo.ok(&["verify", "--read-data"]);
    let base = Path::new(&generation)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let snapshot = objects_under(&repo, "snapshots")
        .into_iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(&base))
        .unwrap();
    std::fs::remove_file(snapshot).unwrap();
    let (report, code) = verify(&repo, &[]);
    assert_eq!(code, Some(3), "{report:#}");
    let found = problem(&report, &generation);
    assert!(
        found["detail"].as_str().unwrap().contains("base snapshot"),
        "{found}"
    );
    assert!(
        found["restore_points"][0]
            .as_str()
            .unwrap()
            .contains("segments 1 to"),
        "{found}"
    );
}

// ---- item 7: the PostgreSQL WAL archive --------------------------------------------

const CLUSTER: &str = "7311000000000000042";
const SEGMENT: u64 = 16 << 20;

fn wal_name(segno: u64) -> String {
    format!("00000001{:08X}{:08X}", segno / 256, segno % 256)
}

/// A data directory that is only a `pg_control` with the system identifier, which is
/// all `wal-push` reads when a file has no long page header.
fn fake_pgdata(repo: &TestRepo) -> PathBuf {
    let pgdata = repo.path("pgdata");
    std::fs::create_dir_all(pgdata.join("global")).unwrap();
    std::fs::create_dir_all(pgdata.join("pg_wal")).unwrap();
    let id: u64 = CLUSTER.parse().unwrap();
    std::fs::write(pgdata.join("global/pg_control"), id.to_le_bytes()).unwrap();
    pgdata
}

fn wal_push(repo: &TestRepo, pgdata: &Path, segno: u64) {
    let file = pgdata.join("pg_wal").join(wal_name(segno));
    // No long page header (bytes 2..4 clear), so the cluster comes from pg_control.
    let mut data = common::pseudo_random(64 * 1024, segno);
    data[..64].fill(0);
    std::fs::write(&file, data).unwrap();
    repo.ok(&[
        "pg",
        "wal-push",
        "--pgdata",
        pgdata.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
}

/// A base backup snapshot of the fake cluster needing WAL files 1 to 2.
fn base_backup_snapshot(repo: &TestRepo) -> String {
    let opened = open(repo);
    let session = WriteSession::start(&opened, "test").unwrap();
    let tree = session.store_tree(&Tree { nodes: vec![] }).unwrap();
    let finished = session.finish().unwrap();
    let snapshot = serde_json::from_value(json!({
        "version": 1,
        "time": "2026-12-01T10:00:00Z",
        "host": "db1",
        "username": "postgres",
        "paths": ["postgres://postgres@127.0.0.1:5999"],
        "source": {
            "kind": "pgbase", "cluster": CLUSTER, "server": "postgres://postgres@127.0.0.1:5999",
            "version": 15, "timeline": 1, "start_lsn": "0/1000028", "end_lsn": "0/2000100",
            "start_wal": wal_name(1), "end_wal": wal_name(2), "wal_segment_size": SEGMENT,
            "finished": "2026-12-01T10:00:05Z"
        },
        "tree": tree,
        "summary": {"files": 0, "dirs": 0, "total_bytes": 0, "new_bytes": 0,
                    "stored_bytes": 0, "new_blobs": 0, "duration_ms": 0}
    }))
    .unwrap();
    finished.save_snapshot(&snapshot).unwrap().to_hex()
}

#[test]
fn verify_finds_gaps_in_the_wal_archive_as_timeline_does_and_read_data_reads_every_file() {
    let repo = TestRepo::local();
    let pgdata = fake_pgdata(&repo);
    let base = base_backup_snapshot(&repo);
    for segno in [1, 2, 3, 5] {
        wal_push(&repo, &pgdata, segno);
    }

    // The gap after file 3: the same file `timeline` reports, and what it costs.
    let timeline = repo.json(&["timeline", "postgres://postgres@127.0.0.1:5999"]);
    let gap = timeline["clusters"][0]["base_backups"][0]["wal_gap"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(gap, wal_name(4));
    let (report, code) = verify(&repo, &[]);
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(report["report"]["wal_files"], 4);
    let found = problem(&report, &format!("wal/{CLUSTER}/{gap}"));
    assert!(found["detail"].as_str().unwrap().contains("gap"), "{found}");
    assert!(
        found["source"].as_str().unwrap().contains(CLUSTER),
        "{found}"
    );
    let lost = found["restore_points"][0].as_str().unwrap();
    assert!(
        lost.contains(&base[..8]) && lost.contains(&wal_name(3)),
        "{lost}"
    );
    assert_eq!(
        found["snapshots"],
        json!([]),
        "the base backup itself still recovers"
    );

    wal_push(&repo, &pgdata, 4);
    let (report, code) = verify(&repo, &["--read-data"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["report"]["wal_files_read"], 5);

    // A flipped byte in a file the base backup needs: found by reading, and the base
    // backup is named; one past its end costs the recovery past the file before it.
    let archive = repo.repo_dir().join("wal").join(CLUSTER);
    flip_byte(&archive.join(wal_name(2)), 100);
    flip_byte(&archive.join(wal_name(4)), 100);
    let (plain, code) = verify(&repo, &[]);
    assert_eq!(code, Some(0), "plain verify reads no WAL: {plain:#}");
    let (report, code) = verify(&repo, &["--read-data"]);
    assert_eq!(code, Some(3), "{report:#}");
    let needed = problem(&report, &format!("wal/{CLUSTER}/{}", wal_name(2)));
    assert_eq!(needed["snapshots"], json!([base]));
    let later = problem(&report, &format!("wal/{CLUSTER}/{}", wal_name(4)));
    assert_eq!(later["snapshots"], json!([]));
    let lost = later["restore_points"][0].as_str().unwrap();
    assert!(lost.contains(&wal_name(3)), "{lost}");

    // The base backup's first file deleted: it cannot be recovered at all.
    std::fs::remove_file(archive.join(wal_name(1))).unwrap();
    let (report, _) = verify(&repo, &[]);
    let first = problem(&report, &format!("wal/{CLUSTER}/{}", wal_name(1)));
    assert_eq!(first["snapshots"], json!([base]));
}

// ---- item 8: shared subtrees ----------------------------------------------------------

#[test]
fn a_tree_graph_that_shares_subtrees_is_verified_once_per_tree() {
    const DEPTH: usize = 60;
    let repo = TestRepo::local();
    let opened = open(&repo);
    let session = WriteSession::start(&opened, "test").unwrap();
    let content = session
        .store_blob(BlobKind::Data, b"leaf".to_vec())
        .unwrap();
    let mut file = Node::new("leaf.txt", NodeType::File);
    file.size = 4;
    file.content = vec![content];
    let mut tree = session.store_tree(&Tree { nodes: vec![file] }).unwrap();
    // Each level names the level below twice: 2^60 paths through 61 trees.
    for _ in 0..DEPTH {
        let mut a = Node::new("a", NodeType::Dir);
        a.subtree = Some(tree);
        let mut b = Node::new("b", NodeType::Dir);
        b.subtree = Some(tree);
        tree = session.store_tree(&Tree { nodes: vec![a, b] }).unwrap();
    }
    let finished = session.finish().unwrap();
    let snapshot = serde_json::from_value(json!({
        "version": 1, "time": "2026-12-01T10:00:00Z", "host": "h", "username": "u",
        "paths": ["/deep"], "source": {"kind": "files"}, "tree": tree,
        "summary": {"files": 1, "dirs": 120, "total_bytes": 4, "new_bytes": 0,
                    "stored_bytes": 0, "new_blobs": 0, "duration_ms": 0}
    }))
    .unwrap();
    finished.save_snapshot(&snapshot).unwrap();

    // A watchdog, not a measurement: the old walk would take 2^60 steps.
    let mut child = repo
        .command()
        .args(["--json", "verify", "--read-data"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "verify did not finish on a tree graph of {} trees",
                DEPTH + 1
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let report: Value = serde_json::from_str(&common::succeeded(&out)).unwrap();
    assert_eq!(report["report"]["trees"], DEPTH + 1, "{report:#}");
    assert_eq!(report["ok"], true);

    // A lost blob at the bottom is still charged to the snapshot above it.
    for pack in objects_under(&repo, "data") {
        std::fs::remove_file(pack).unwrap();
    }
    let (report, code) = verify(&repo, &[]);
    assert_eq!(code, Some(3));
    let problems = report["report"]["problems"].as_array().unwrap();
    assert!(!problems.is_empty());
    assert!(
        problems
            .iter()
            .all(|p| p["snapshots"].as_array().unwrap().len() == 1),
        "{report:#}"
    );
}

// ---- item 14: damaged packs heal ------------------------------------------------------

/// The pack holding the most bytes: the file content (trees are small).
fn largest_pack(repo: &TestRepo) -> PathBuf {
    objects_under(repo, "data")
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
}

fn source_tree(repo: &TestRepo) -> PathBuf {
    let src = repo.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big.bin"), common::pseudo_random(300_000, 7)).unwrap();
    std::fs::write(src.join("small.txt"), "hello").unwrap();
    src
}

#[test]
fn a_pack_verify_found_damaged_is_stored_again_by_the_next_backup() {
    let repo = TestRepo::local();
    let src = source_tree(&repo);
    let first = repo.backup(&[&src]);
    let pack = largest_pack(&repo);
    flip_byte(&pack, 100);
    let pack_name = pack
        .strip_prefix(repo.repo_dir())
        .unwrap()
        .display()
        .to_string();

    // Plain verify reads no data, and says so.
    let out = repo.run(&["verify"]);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not read"), "{said}");

    // Reading finds it, names the snapshot, and records it.
    let (report, code) = verify(&repo, &["--read-data"]);
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(problem(&report, &pack_name)["snapshots"], json!([first]));
    assert_eq!(
        report["report"]["recorded_damaged_packs"],
        json!([pack_name])
    );
    assert_eq!(objects_under(&repo, "damaged").len(), 1);

    // The next backup (no --force: the file is unchanged) stores the content again,
    // and every snapshot restores from the intact copy.
    let second = repo.backup(&[&src]);
    for (snapshot, name) in [(&second, "second"), (&first, "first")] {
        let restored = repo.restore(snapshot, name);
        assert_eq!(common::digest(&restored.join("src")), common::digest(&src));
    }
    // The damaged pack is still there: verify keeps saying so until repair removes it.
    let (report, code) = verify(&repo, &[]);
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(
        problem(&report, &pack_name)["snapshots"],
        json!([]),
        "nothing needs it now"
    );

    // prune never keeps the damaged copy instead of the good one.
    repo.ok(&["prune"]);
    let restored = repo.restore(&first, "after-prune");
    assert_eq!(common::digest(&restored.join("src")), common::digest(&src));

    repo.ok(&["repair"]);
    assert!(!pack.exists());
    assert!(objects_under(&repo, "damaged").is_empty());
    repo.ok(&["verify", "--read-data"]);
}

#[test]
fn repair_without_another_repository_salvages_intact_blobs_and_names_what_is_missing() {
    let repo = TestRepo::local();
    let src = source_tree(&repo);
    let first = repo.backup(&[&src]);
    let pack = largest_pack(&repo);
    flip_byte(&pack, 100);

    // The blob hit cannot be read anywhere: the snapshot that needs it is named.
    let out = repo.run(&["--json", "repair"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["lost_blobs"], 1, "{report:#}");
    assert_eq!(report["unrepairable"][0][0], first[..8]);
    assert!(!pack.exists(), "the damaged pack is gone");
    let (verified, code) = verify(&repo, &[]);
    assert_eq!(code, Some(3));
    assert!(
        verified["report"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["snapshots"] == json!([first])),
        "{verified:#}"
    );

    // The sources still hold the data: the next backup stores it again, and the old
    // snapshot is whole again too.
    repo.backup(&[&src]);
    repo.ok(&["verify", "--read-data"]);
    let restored = repo.restore(&first, "first");
    assert_eq!(common::digest(&restored.join("src")), common::digest(&src));
}
