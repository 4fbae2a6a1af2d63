//! `lifeboat copy`: restore points move between repositories with different keys, stream
//! segments with their bases, and copying again adds only what is new.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{digest, pseudo_random, TestRepo, PASSWORD};

const OTHER_PASSWORD: &str = "a different passphrase entirely";

/// A second repository with its own passphrase, hence its own master key.
fn other_repo() -> TestRepo {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("repo").display().to_string();
    let repo = TestRepo {
        dir,
        url,
        extra_env: vec![("LIFEBOAT_PASSWORD".into(), OTHER_PASSWORD.into())],
    };
    repo.init();
    repo
}

fn copy(from: &TestRepo, to: &TestRepo) -> serde_json::Value {
    let out = to
        .command()
        .args(["copy", "--from", &from.url, "--to", &to.url, "--json"])
        .env("LIFEBOAT_FROM_PASSWORD", PASSWORD)
        .env("LIFEBOAT_CONFIG", to.dir.path().join("none.toml"))
        .output()
        .unwrap();
    serde_json::from_str(&common::succeeded(&out)).unwrap()
}

#[test]
fn copy_moves_snapshots_and_streams_between_keys_incrementally() {
    let a = TestRepo::local();
    let b = other_repo();
    let data = a.path("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("big"), pseudo_random(3 << 20, 1)).unwrap();
    std::fs::write(data.join("sub/small"), "small").unwrap();
    a.backup(&[&data]);

    // A replicated SQLite database: a base snapshot and segments.
    let db = a.path("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA journal_mode=wal; CREATE TABLE t(n INTEGER);")
        .unwrap();
    let mut replicator = a
        .command()
        .args(["replicate", db.to_str().unwrap(), "--interval", "100ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for n in 0..20 {
        conn.execute("INSERT INTO t VALUES (?1)", [n]).unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(replicator.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while replicator.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "replicate ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let timeline_a = a.json(&["timeline", db.to_str().unwrap()]);
    let points_a = timeline_a["restore_points"].as_array().unwrap().len();
    assert!(points_a >= 3, "{timeline_a}");

    let report = copy(&a, &b);
    assert_eq!(report["snapshots_copied"], 2, "{report}");
    assert!(report["segments_copied"].as_u64().unwrap() >= 2, "{report}");
    b.ok(&["verify", "--read-data"]);
    let files_snapshot = b
        .json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tags"].as_array().unwrap().is_empty())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .unwrap();
    let restored = b.restore(&files_snapshot, "restored-files");
    assert_eq!(digest(&restored.join("data")), digest(&data));

    // The stream came along: the same window, and the latest point has every row.
    let timeline_b = b.json(&["timeline", db.to_str().unwrap()]);
    assert_eq!(
        timeline_b["restore_points"].as_array().unwrap().len(),
        points_a,
        "{timeline_b}"
    );
    assert_eq!(timeline_b["window"], timeline_a["window"]);
    let target = b.path("restored.db");
    b.ok(&[
        "restore",
        "--source",
        db.to_str().unwrap(),
        "--at",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]);
    let rows: i64 = rusqlite::Connection::open(&target)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 20);

    // Again: nothing new. After a new backup: only that, and little data.
    let again = copy(&a, &b);
    assert_eq!(again["snapshots_copied"], 0, "{again}");
    assert_eq!(again["segments_copied"], 0, "{again}");
    assert_eq!(again["snapshots_present"], 2);
    std::fs::write(data.join("sub/small"), "changed").unwrap();
    a.backup(&[&data]);
    let third = copy(&a, &b);
    assert_eq!(third["snapshots_copied"], 1, "{third}");
    assert!(
        third["stored_bytes"].as_u64().unwrap() < 100_000,
        "unchanged data was copied again: {third}"
    );
    b.ok(&["verify"]);

    // A copy of a copy keeps the lineage: copying B back into A adds nothing.
    let out = a
        .command()
        .args(["copy", "--from", &b.url, "--to", &a.url, "--json"])
        .env("LIFEBOAT_FROM_PASSWORD", OTHER_PASSWORD)
        .env("LIFEBOAT_CONFIG", a.dir.path().join("none.toml"))
        .output()
        .unwrap();
    let back: serde_json::Value = serde_json::from_str(&common::succeeded(&out)).unwrap();
    assert_eq!(back["snapshots_copied"], 0, "{back}");
}

#[test]
fn copy_with_a_wrong_source_passphrase_fails_cleanly() {
    let a = TestRepo::local();
    let b = other_repo();
    let out = b
        .command()
        .args(["copy", "--from", &a.url, "--to", &b.url])
        .env("LIFEBOAT_FROM_PASSWORD", "wrong")
        .env("LIFEBOAT_CONFIG", b.dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn targets_of_the_configuration_are_copied_by_name_and_all_verified() {
    let a = TestRepo::local();
    let b = other_repo();
    let data = a.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "content").unwrap();
    a.backup(&[&data]);
    let config = a.path("lifeboat.toml");
    std::fs::write(
        &config,
        format!(
            "[[target]]\nname = \"local\"\nurl = \"{}\"\n[[target]]\nname = \"offsite\"\nurl = \"{}\"\npassword = \"${{OFFSITE_PASSWORD}}\"\n",
            a.url, b.url
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        a.command()
            .args(args)
            .env("LIFEBOAT_CONFIG", &config)
            .env("OFFSITE_PASSWORD", OTHER_PASSWORD)
            .output()
            .unwrap()
    };
    common::succeeded(&run(&["copy", "--from", "local", "--to", "offsite"]));
    let out = common::succeeded(&run(&["verify", "--config", config.to_str().unwrap()]));
    assert_eq!(out.matches("no problems found").count(), 2, "{out}");
    assert_eq!(b.snapshot_ids().len(), 1);

    // Damage in one target is found and named; the other is still checked.
    let pack = walk(&std::path::Path::new(&b.url).join("data"));
    let mut bytes = std::fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&pack, bytes).unwrap();
    let out = run(&[
        "verify",
        "--read-data",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("target local") && stdout.contains("target offsite"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("offsite"));
}

/// The first file under `dir`.
fn walk(dir: &std::path::Path) -> std::path::PathBuf {
    let entry = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .next()
        .unwrap_or_else(|| panic!("nothing under {}", dir.display()));
    let path = entry.path();
    if path.is_dir() {
        walk(&path)
    } else {
        path
    }
}

#[test]
fn repair_puts_back_damaged_and_missing_packs_from_the_other_copy() {
    let a = TestRepo::local();
    let b = other_repo();
    let data = a.path("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..3u64 {
        std::fs::write(data.join(format!("f{i}")), pseudo_random(1 << 20, 20 + i)).unwrap();
    }
    a.backup(&[&data]);
    copy(&a, &b);
    let packs: Vec<_> = common::files_under(&std::path::Path::new(&b.url).join("data"));
    assert!(!packs.is_empty());
    // B's own snapshot, of which A has no copy, shares nothing with the damage below.
    let own = b.path("own");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("x"), "only in b").unwrap();
    b.backup(&[&own]);

    // One pack of the copied data flipped, one deleted.
    let mut bytes = std::fs::read(&packs[0]).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&packs[0], bytes).unwrap();
    if packs.len() > 1 {
        std::fs::remove_file(&packs[1]).unwrap();
    }
    b.fails(&["verify", "--read-data"], 3);

    let out = b
        .command()
        .args(["repair", "--from", &a.url, "--to", &b.url, "--json"])
        .env("LIFEBOAT_FROM_PASSWORD", PASSWORD)
        .env("LIFEBOAT_CONFIG", b.dir.path().join("none.toml"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&common::succeeded(&out)).unwrap();
    assert!(
        !report["repaired_snapshots"].as_array().unwrap().is_empty(),
        "{report}"
    );
    b.ok(&["verify", "--read-data"]);
    for snapshot in b.json(&["snapshots"]).as_array().unwrap() {
        let id = snapshot["id"].as_str().unwrap();
        let restored = b.restore(id, &format!("restored-{}", &id[..8]));
        let path = std::path::Path::new(snapshot["paths"][0].as_str().unwrap());
        let name = path.file_name().unwrap();
        assert_eq!(digest(&restored.join(name)), digest(path), "{snapshot}");
    }
}

// A snapshot with no copy elsewhere cannot be repaired, and repair says so.
#[test]
fn repair_refuses_to_invent_what_the_other_repository_lacks() {
    let a = TestRepo::local();
    let b = other_repo();
    let own = b.path("own");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("x"), pseudo_random(100_000, 9)).unwrap();
    b.backup(&[&own]);
    for pack in common::files_under(&std::path::Path::new(&b.url).join("data")) {
        std::fs::remove_file(pack).unwrap();
    }
    let out = b
        .command()
        .args(["repair", "--from", &a.url, "--to", &b.url])
        .env("LIFEBOAT_FROM_PASSWORD", PASSWORD)
        .env("LIFEBOAT_CONFIG", b.dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("NOT repaired: the other repository has no copy"),
        "{stdout}"
    );
}
