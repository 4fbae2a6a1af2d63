//! kill -9 during a backup, at chosen points of the write order and at random times:
//! earlier snapshots stay restorable, `verify` passes, no half-written snapshot shows,
//! and the next backup succeeds and reuses what was already uploaded.

mod common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use common::{digest, pseudo_random, TestRepo};

const BIG: usize = 48 * 1024 * 1024;

struct Setup {
    repo: TestRepo,
    first: String,
    first_digest: std::collections::BTreeMap<String, String>,
    src: std::path::PathBuf,
}

fn setup() -> Setup {
    let repo = TestRepo::local();
    let src = repo.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("small.txt"), b"before the crash").unwrap();
    let first = repo.backup(&[&src]);
    let first_digest = digest(&src);
    // Random data: ~6 packs of 8 MiB, none of it known to the repository yet.
    fs::write(src.join("big.bin"), pseudo_random(BIG, 77)).unwrap();
    Setup {
        repo,
        first,
        first_digest,
        src,
    }
}

fn backup_command(setup: &Setup) -> std::process::Command {
    let mut cmd = setup.repo.command();
    cmd.args(["backup", "--json"]).arg(&setup.src);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// What must hold after any crash; returns the bytes the next backup stored.
fn check_after_crash(setup: &Setup) -> u64 {
    let repo = &setup.repo;
    assert_eq!(
        repo.snapshot_ids(),
        vec![setup.first.clone()],
        "a half-written snapshot is visible"
    );
    repo.ok(&["verify", "--read-data"]);
    let out = repo.restore(&setup.first, "restored-first");
    assert_eq!(digest(&out.join("src")), setup.first_digest);
    let next = repo.json(&["backup", setup.src.to_str().unwrap()]);
    let out = repo.restore("latest", "restored-next");
    assert_eq!(digest(&out.join("src")), digest(&setup.src));
    repo.ok(&["verify", "--read-data"]);
    assert!(
        !repo.repo_dir().join("locks").exists()
            || fs::read_dir(repo.repo_dir().join("locks")).unwrap().count() <= 1,
        "locks pile up"
    );
    next["summary"]["stored_bytes"].as_u64().unwrap()
}

fn crash_at(point: &str) -> u64 {
    let setup = setup();
    let status = backup_command(&setup)
        .env("LIFEBOAT_CRASH_AT", point)
        .status()
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the backup should have been killed at {point}: {status}"
    );
    check_after_crash(&setup)
}

#[test]
fn killed_after_the_first_pack() {
    let stored = crash_at("pack-stored:1");
    assert!(stored < BIG as u64 + 1024 * 1024, "{stored}");
}

#[test]
fn killed_after_three_packs_reuses_them() {
    // No index file was written yet: the next backup indexes the three packs it finds.
    let stored = crash_at("pack-stored:3");
    assert!(
        stored < BIG as u64 - 2 * 8 * 1024 * 1024,
        "uploaded packs were not reused: {stored}"
    );
}

#[test]
fn killed_after_the_last_index_before_the_snapshot() {
    let stored = crash_at("snapshot-write:1");
    assert!(
        stored < 64 * 1024,
        "everything was uploaded, yet {stored} bytes were stored again"
    );
}

#[test]
fn killed_after_an_index_file() {
    let stored = crash_at("index-stored:1");
    assert!(stored < 64 * 1024, "{stored}");
}

#[test]
fn killed_at_random_moments() {
    for delay_ms in [30u64, 150, 400, 900] {
        let setup = setup();
        let mut child = backup_command(&setup).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            // Finished before the kill: the new snapshot must then be complete.
            setup.repo.ok(&["verify", "--read-data"]);
            continue;
        }
        check_after_crash(&setup);
    }
}

#[test]
fn concurrent_backups_to_one_repository_all_succeed() {
    let repo = TestRepo::local();
    let trees: Vec<_> = (0..3)
        .map(|i| {
            let dir = repo.path(&format!("tree{i}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(
                dir.join("own.bin"),
                pseudo_random(12 * 1024 * 1024, 100 + i),
            )
            .unwrap();
            // Shared content: all three write the same blobs at the same time.
            fs::write(dir.join("shared.bin"), pseudo_random(6 * 1024 * 1024, 1)).unwrap();
            dir
        })
        .collect();
    let children: Vec<_> = trees
        .iter()
        .chain(trees.iter().take(1))
        .map(|dir| {
            repo.command()
                .args(["backup", "--json"])
                .arg(dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(repo.snapshot_ids().len(), 4);
    repo.ok(&["verify", "--read-data"]);
    for (i, dir) in trees.iter().enumerate() {
        let snapshots = repo.json(&["snapshots"]);
        let id = snapshots
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["paths"][0] == dir.display().to_string())
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let out = repo.restore(&id, &format!("out{i}"));
        assert_eq!(
            digest(&out.join(dir.file_name().unwrap())),
            digest(Path::new(dir))
        );
    }
}
