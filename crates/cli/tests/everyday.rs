//! The everyday commands restic and borg users reach for: `dump`, `tag`, `unlock`, and the
//! shell completions and man pages generated from the command line's definition.

mod common;

use std::path::Path;

use common::paused::PausedBackup;
use common::TestRepo;

fn locks(repo: &TestRepo) -> usize {
    std::fs::read_dir(repo.repo_dir().join("locks"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn dump_writes_one_file_and_a_database_as_a_restore_would() {
    let repo = TestRepo::local();
    let app = repo.path("app");
    std::fs::create_dir_all(app.join("config")).unwrap();
    let payload = common::pseudo_random(3 << 20, 7);
    std::fs::write(app.join("config/blob.bin"), &payload).unwrap();
    let db = app.join("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);",
    )
    .unwrap();
    let id = repo.backup(&[&app]);

    let dump = |args: &[&str]| repo.command().arg("dump").args(args).output().unwrap();
    // As `ls` prints it, or without the leading slash.
    for path in ["/app/config/blob.bin", "app/config/blob.bin"] {
        let out = dump(&[&id[..8], path]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == payload, "{path}: the bytes differ");
    }
    drop(conn);
    let out = dump(&["latest", "/app/app.db"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = repo.path("dumped.db");
    std::fs::write(&copy, &out.stdout).unwrap();
    common::assert_integrity(&copy);
    let rows: i64 = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 6);

    let err = repo.fails(&["dump", "latest", "/app/config"], 1);
    assert!(
        err.contains("is a directory") && err.contains("--include"),
        "{err}"
    );
    let err = repo.fails(&["dump", "latest", "/app/nothing.txt"], 1);
    assert!(
        err.contains("/app/nothing.txt is not in this snapshot"),
        "{err}"
    );
}

#[test]
fn tag_rewrites_snapshots_under_new_ids_and_keeps_their_data() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "a").unwrap();
    let first = repo.backup(&[&data]);
    let second = repo.backup(&[&data]);

    let changed = repo.json(&["tag", &first[..8], "--add", "keep", "--add", "audit"]);
    let new_id = changed["changed"][0]["new"].as_str().unwrap().to_string();
    assert_ne!(new_id, first);
    let ids = repo.snapshot_ids();
    assert!(
        ids.contains(&new_id) && ids.contains(&second) && !ids.contains(&first),
        "{ids:?}"
    );
    let tagged = repo.json(&["snapshots", "--tag", "keep,audit"]);
    assert_eq!(tagged.as_array().unwrap().len(), 1, "{tagged}");
    assert_eq!(tagged[0]["id"], new_id.as_str());

    // By filter: every snapshot with the tag; --set replaces; nothing to change is no change.
    repo.ok(&["tag", "--tag", "keep", "--remove", "audit"]);
    let out = repo.json(&["tag", "--tag", "keep", "--remove", "audit"]);
    assert_eq!(out["changed"].as_array().unwrap().len(), 0, "{out}");
    repo.ok(&["tag", "latest", "--set", "nightly,web"]);
    let latest = repo.json(&["snapshots", "--tag", "nightly,web"]);
    assert_eq!(latest.as_array().unwrap().len(), 1, "{latest}");

    let err = repo.fails(&["tag", "latest"], 1);
    assert!(err.contains("--add"), "{err}");
    let err = repo.fails(&["tag", "latest", "--set", "a", "--add", "b"], 1);
    assert!(err.contains("--set replaces"), "{err}");

    // The rewritten snapshots restore, and verify finds the repository whole.
    let restored = repo.restore("latest", "restored");
    assert_eq!(std::fs::read(restored.join("data/a.txt")).unwrap(), b"a");
    repo.ok(&["verify", "--read-data"]);
}

#[test]
fn unlock_removes_what_protects_nothing_and_keeps_a_running_backup() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "a").unwrap();
    // A backup killed with its lock held leaves a lock of an exited process.
    let crashed = repo
        .command()
        .args(["backup", data.to_str().unwrap()])
        .env("LIFEBOAT_CRASH_AT", "session-started")
        .output()
        .unwrap();
    assert!(!crashed.status.success());
    assert_eq!(locks(&repo), 1);
    let running = PausedBackup::start(&repo, "walk-dir-listed", &data, "pause");
    assert_eq!(locks(&repo), 2);

    let out = repo.json(&["unlock"]);
    assert_eq!(out["removed"].as_array().unwrap().len(), 1, "{out}");
    assert!(
        out["removed"][0]["why"]
            .as_str()
            .unwrap()
            .contains("has exited"),
        "{out}"
    );
    assert_eq!(out["kept"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(locks(&repo), 1);
    running.finish();
    assert_eq!(locks(&repo), 0);
    let text = repo.ok(&["unlock"]);
    assert!(text.contains("0 lock(s) removed"), "{text}");
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_definition() {
    let repo = TestRepo::local();
    let bash = repo.ok(&["completions", "bash"]);
    assert!(
        bash.contains("complete") && bash.contains("restore-rows"),
        "{bash}"
    );
    let zsh = repo.ok(&["completions", "zsh"]);
    assert!(
        zsh.contains("#compdef lifeboat"),
        "{}",
        &zsh[..200.min(zsh.len())]
    );
    let page = repo.ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH lifeboat"),
        "{}",
        &page[..200]
    );
    let dir = repo.path("man1");
    repo.ok(&["man", "--dir", dir.to_str().unwrap()]);
    for page in ["lifeboat.1", "lifeboat-backup.1", "lifeboat-restore.1"] {
        assert!(Path::new(&dir.join(page)).exists(), "{page} missing");
    }
    let help = repo.ok(&["backup", "--help"]);
    assert!(
        help.contains("Global options:") && help.contains("--exclude"),
        "{help}"
    );
}

#[test]
fn stats_count_what_deduplication_and_compression_save() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    std::fs::create_dir_all(&data).unwrap();
    // Two copies of one incompressible file, and a very compressible one.
    let random = common::pseudo_random(2 << 20, 11);
    std::fs::write(data.join("a.bin"), &random).unwrap();
    std::fs::write(data.join("b.bin"), &random).unwrap();
    std::fs::write(data.join("zeros"), vec![0u8; 2 << 20]).unwrap();
    let first = repo.backup(&[&data]);
    repo.backup(&[&data]);

    let one = repo.json(&["stats", &first[..8]]);
    assert_eq!(one["snapshots"], 1);
    assert_eq!(one["logical_bytes"], 6 << 20, "{one}");
    let raw = one["raw_bytes"].as_u64().unwrap();
    // The second copy is stored once, and the zeros' chunks are one chunk many times:
    // unique data is the random 2 MiB and little more.
    assert!(raw > 2 << 20 && raw < 4 << 20, "{one}");
    let stored = one["stored_bytes"].as_u64().unwrap();
    assert!(
        stored < raw && stored > 2 << 20,
        "zeros compress, random does not: {one}"
    );
    assert!(one["dedup_ratio"].as_f64().unwrap() > 1.4, "{one}");
    assert!(one["repository"].is_null(), "{one}");

    // Both snapshots hold the same data: the repository stores it once.
    let all = repo.json(&["stats"]);
    assert_eq!(all["snapshots"], 2);
    assert_eq!(all["logical_bytes"], 12 << 20, "{all}");
    assert_eq!(all["raw_bytes"], one["raw_bytes"], "{all}");
    let repository = &all["repository"];
    assert_eq!(repository["unreferenced_stored_bytes"], 0, "{all}");
    let on_disk = common::dir_size(&repo.repo_dir());
    assert_eq!(
        repository["object_bytes"].as_u64().unwrap(),
        on_disk,
        "{all}"
    );
    let text = repo.ok(&["stats"]);
    assert!(
        text.contains("deduplication") && text.contains("repository:"),
        "{text}"
    );
}

#[test]
fn find_names_the_snapshots_holding_a_file_and_compare_lists_what_changed() {
    let repo = TestRepo::local();
    let app = repo.path("app");
    std::fs::create_dir_all(app.join("uploads/2026")).unwrap();
    std::fs::write(app.join("uploads/2026/Invoice-17.PDF"), "seventeen").unwrap();
    std::fs::write(app.join("uploads/2026/photo.jpg"), "photo").unwrap();
    std::fs::write(app.join("config.json"), "{}").unwrap();
    std::fs::write(app.join("old.txt"), "old").unwrap();
    let first = repo.backup(&[&app]);
    std::fs::remove_file(app.join("uploads/2026/Invoice-17.PDF")).unwrap();
    std::fs::remove_file(app.join("old.txt")).unwrap();
    std::fs::write(app.join("config.json"), "{\"debug\": true}").unwrap();
    std::fs::write(app.join("new.txt"), "new!").unwrap();
    std::fs::remove_file(app.join("uploads/2026/photo.jpg")).unwrap();
    std::os::unix::fs::symlink("config.json", app.join("uploads/2026/photo.jpg")).unwrap();
    let second = repo.backup(&[&app]);

    // By name anywhere, case folded on request; by whole path.
    let found = repo.json(&["find", "*.pdf", "-i"]);
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["snapshot"], first.as_str());
    assert_eq!(found[0]["path"], "/app/uploads/2026/Invoice-17.PDF");
    assert!(repo.json(&["find", "*.pdf"]).as_array().unwrap().is_empty());
    let both = repo.json(&["find", "/app/config.json"]);
    assert_eq!(both.as_array().unwrap().len(), 2, "{both}");
    let only = repo.json(&["find", "config.json", "--snapshot", &second[..8]]);
    assert_eq!(only.as_array().unwrap().len(), 1, "{only}");
    let text = repo.ok(&["find", "**/2026/*"]);
    assert!(text.contains("3 match(es) in 2 of 2 snapshot(s)"), "{text}");
    let err = repo.fails(&["find", "[oops"], 1);
    assert!(err.contains("[oops"), "{err}");

    let compared = repo.json(&["compare", &first[..8], &second[..8]]);
    let changes: Vec<(String, String)> = compared["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("modified", "/app/config.json"),
        ("added", "/app/new.txt"),
        ("removed", "/app/old.txt"),
        ("removed", "/app/uploads/2026/Invoice-17.PDF"),
        ("type", "/app/uploads/2026/photo.jpg"),
    ];
    assert_eq!(
        changes,
        expected
            .iter()
            .map(|(c, p)| (c.to_string(), p.to_string()))
            .collect::<Vec<_>>(),
        "{compared}"
    );
    assert_eq!(compared["added_bytes"], 4);
    assert_eq!(compared["removed_bytes"], 3 + 9);
    let same = repo.json(&["compare", "latest", &second[..8]]);
    assert!(same["changes"].as_array().unwrap().is_empty(), "{same}");
}

#[test]
fn bandwidth_limits_let_a_backup_and_a_restore_through_whole() {
    // The rate itself is checked without a clock in storage's throttle tests; here the
    // limits are taken from the command line and the environment and lose nothing.
    let repo = TestRepo::local();
    let data = repo.path("data");
    std::fs::create_dir_all(&data).unwrap();
    let payload = common::pseudo_random(1536 << 10, 5);
    std::fs::write(data.join("big.bin"), &payload).unwrap();
    let id = repo.ok(&[
        "backup",
        data.to_str().unwrap(),
        "--limit-upload",
        "1024",
        "--json",
    ]);
    assert!(id.contains("\"id\""), "{id}");
    let target = repo.path("restored");
    let out = repo
        .command()
        .env("LIFEBOAT_LIMIT_DOWNLOAD", "1024")
        .args(["restore", "latest", "--target", target.to_str().unwrap()])
        .output()
        .unwrap();
    common::succeeded(&out);
    assert!(std::fs::read(target.join("data/big.bin")).unwrap() == payload);
    let err = repo.fails(&["snapshots", "--limit-upload", "0"], 2);
    assert!(err.contains("limit-upload"), "{err}");
}

#[test]
fn mount_shows_every_snapshot_read_only_and_unmounts_on_sigterm() {
    if !common::is_root() || !Path::new("/dev/fuse").exists() {
        return common::skip("mounting FUSE needs root and /dev/fuse");
    }
    let repo = TestRepo::local();
    let app = repo.path("app");
    std::fs::create_dir_all(app.join("uploads")).unwrap();
    let big = common::pseudo_random(3 << 20, 9);
    std::fs::write(app.join("uploads/big.bin"), &big).unwrap();
    std::fs::write(app.join("notes.txt"), "first").unwrap();
    std::os::unix::fs::symlink("notes.txt", app.join("link")).unwrap();
    let db = app.join("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    // The database by itself too: its restore points appear under databases/.
    repo.backup(&[&db]);
    let first = repo.backup(&[&app]);

    let dir = repo.path("mnt");
    std::fs::create_dir_all(&dir).unwrap();
    let mut mounted = repo
        .command()
        .args(["mount", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Whatever happens below, nothing stays mounted after the test.
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    let _unmount = Unmount(dir.clone());
    let latest = dir.join("snapshots/latest");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !latest.join("app").exists() {
        if std::time::Instant::now() > deadline || mounted.try_wait().unwrap().is_some() {
            let _ = mounted.kill();
            let out = mounted.wait_with_output().unwrap();
            panic!("not mounted: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let seen = latest.join("app");
    assert!(std::fs::read(seen.join("uploads/big.bin")).unwrap() == big);
    assert_eq!(
        std::fs::read_to_string(seen.join("notes.txt")).unwrap(),
        "first"
    );
    assert_eq!(
        std::fs::read_link(seen.join("link")).unwrap(),
        Path::new("notes.txt")
    );
    // Read in pieces at odd offsets, as programs do.
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(seen.join("uploads/big.bin")).unwrap();
    let mut piece = vec![0; 100_000];
    file.read_exact_at(&mut piece, 1_500_001).unwrap();
    assert!(piece == big[1_500_001..1_600_001]);
    // The database, assembled from its pages, opens and answers.
    let copy = rusqlite::Connection::open_with_flags(
        format!("file:{}?immutable=1", seen.join("app.db").display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let sum: i64 = copy
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, 3);
    drop(copy);
    // Each restore point of a database, under its path: the snapshot of the file by
    // itself, and the one of the directory around it.
    let points: Vec<std::path::PathBuf> =
        std::fs::read_dir(dir.join("databases").join(db.strip_prefix("/").unwrap()))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    assert_eq!(points.len(), 2, "{points:?}");
    for point in &points {
        assert!(point.to_string_lossy().ends_with("Z.db"), "{points:?}");
        let point = rusqlite::Connection::open_with_flags(
            format!("file:{}?immutable=1", point.display()),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap();
        let count: i64 = point
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 2);
    }
    // Nothing can be written.
    let write = std::fs::write(seen.join("notes.txt"), "changed");
    assert!(write.is_err(), "a write succeeded");
    assert!(std::fs::create_dir(seen.join("new")).is_err());

    // A snapshot taken while mounted shows up; the first stays, under its time and id.
    std::fs::write(app.join("notes.txt"), "second").unwrap();
    repo.backup(&[&app]);
    let names: Vec<String> = std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let old = names
        .iter()
        .find(|n| n.ends_with(&first[..8]))
        .expect("the first snapshot's directory");
    assert_eq!(
        std::fs::read_to_string(dir.join("snapshots").join(old).join("app/notes.txt")).unwrap(),
        "first"
    );
    assert_eq!(
        std::fs::read_to_string(latest.join("app/notes.txt")).unwrap(),
        "second"
    );

    // SIGTERM unmounts and ends the process cleanly.
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(mounted.id() as i32, libc::SIGTERM) };
    let out = mounted.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "still mounted");
}
