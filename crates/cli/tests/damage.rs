//! Damaged repositories and bad input: one clear line naming the object or path, a
//! distinct exit code, no panic, and nothing half-written left visible.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{pseudo_random, TestRepo};

fn objects(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                out.extend(objects(&entry.path()));
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

fn name_in_repo(repo: &TestRepo, path: &Path) -> String {
    path.strip_prefix(repo.repo_dir())
        .unwrap()
        .display()
        .to_string()
}

/// A repo with two snapshots: one of `a` (big) and one of `b` (small, its own pack).
fn two_snapshots() -> (TestRepo, String, String) {
    let repo = TestRepo::local();
    let a = repo.path("a");
    fs::create_dir_all(&a).unwrap();
    fs::write(a.join("big.bin"), pseudo_random(3 * 1024 * 1024, 1)).unwrap();
    let first = repo.backup(&[&a]);
    let b = repo.path("b");
    fs::create_dir_all(&b).unwrap();
    fs::write(b.join("small.txt"), b"small").unwrap();
    let second = repo.backup(&[&b]);
    (repo, first, second)
}

fn largest_pack(repo: &TestRepo) -> PathBuf {
    objects(&repo.repo_dir().join("data"))
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap()
}

#[test]
fn a_flipped_byte_is_found_by_read_data_and_named_with_its_snapshot() {
    let (repo, first, second) = two_snapshots();
    let pack = largest_pack(&repo);
    let mut bytes = fs::read(&pack).unwrap();
    bytes[1000] ^= 0x40;
    fs::write(&pack, bytes).unwrap();

    // Same size: the structural check cannot see it, reading the data does.
    repo.ok(&["verify"]);
    let out = repo.run(&["verify", "--read-data"]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&name_in_repo(&repo, &pack)), "{stdout}");
    assert!(
        stdout.contains(&first[..8]),
        "affected snapshot not named: {stdout}"
    );
    assert!(
        !stdout.contains(&second[..8]),
        "unaffected snapshot named: {stdout}"
    );

    // Restoring the damaged snapshot fails naming the pack; the other one restores.
    let stderr = repo.fails(
        &[
            "restore",
            &first,
            "--target",
            repo.path("out1").to_str().unwrap(),
        ],
        1,
    );
    assert!(stderr.contains(&name_in_repo(&repo, &pack)), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    repo.ok(&[
        "restore",
        &second,
        "--target",
        repo.path("out2").to_str().unwrap(),
    ]);
}

#[test]
fn truncated_and_missing_packs_are_found_by_the_structural_check() {
    let (repo, first, _) = two_snapshots();
    let pack = largest_pack(&repo);
    let bytes = fs::read(&pack).unwrap();
    fs::write(&pack, &bytes[..bytes.len() / 2]).unwrap();
    let out = repo.run(&["verify"]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("truncated") && stdout.contains(&first[..8]),
        "{stdout}"
    );

    fs::remove_file(&pack).unwrap();
    let out = repo.run(&["verify", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let problem = &report["report"]["problems"][0];
    assert_eq!(problem["object"], name_in_repo(&repo, &pack));
    assert!(problem["detail"].as_str().unwrap().contains("missing"));
    assert_eq!(problem["snapshots"][0], first);
}

#[test]
fn damaged_metadata_objects_are_named() {
    let (repo, _, second) = two_snapshots();
    // A damaged snapshot: verify names it; listing still shows the other snapshot.
    let snap = repo.repo_dir().join("snapshots").join(&second);
    let mut bytes = fs::read(&snap).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&snap, bytes).unwrap();
    let out = repo.run(&["verify"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("snapshots/{second}")));
    assert_eq!(repo.snapshot_ids().len(), 1);
    fs::remove_file(&snap).unwrap();

    // A damaged index file.
    let index = objects(&repo.repo_dir().join("index")).remove(0);
    fs::write(&index, b"garbage").unwrap();
    let out = repo.run(&["verify"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&name_in_repo(&repo, &index)));
}

#[test]
fn damaged_config_and_key_files_are_named() {
    let repo = TestRepo::local();
    let config = repo.repo_dir().join("config");
    let mut bytes = fs::read(&config).unwrap();
    bytes[30] ^= 1;
    fs::write(&config, &bytes).unwrap();
    let stderr = repo.fails(&["snapshots"], 1);
    assert!(stderr.contains("config"), "{stderr}");
    bytes[30] ^= 1;
    fs::write(&config, &bytes).unwrap();

    let key = objects(&repo.repo_dir().join("keys")).remove(0);
    fs::write(&key, b"{not json").unwrap();
    let stderr = repo.fails(&["snapshots"], 1);
    assert!(stderr.contains(&name_in_repo(&repo, &key)), "{stderr}");
}

#[test]
fn wrong_passphrase_and_missing_repository() {
    let repo = TestRepo::local();
    let out = repo
        .command()
        .arg("snapshots")
        .env("LIFEBOAT_PASSWORD", "nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));

    let nowhere = TestRepo::at(repo.path("nothing-here").to_str().unwrap(), vec![]);
    let stderr = nowhere.fails(&["snapshots"], 5);
    assert!(stderr.contains("no Lifeboat repository"), "{stderr}");
    // Looking for a repository must not create one's directory: a typo, or the mount
    // point of an unmounted disk, stays as it was.
    assert!(!repo.path("nothing-here").exists());
    // init twice is refused.
    repo.fails(&["init"], 1);
    // No passphrase and no terminal.
    let out = repo
        .command()
        .arg("snapshots")
        .env_remove("LIFEBOAT_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LIFEBOAT_PASSWORD"));
}

#[test]
fn missing_paths_fail_without_a_snapshot() {
    let repo = TestRepo::local();
    let missing = repo.path("does/not/exist");
    let stderr = repo.fails(&["backup", missing.to_str().unwrap()], 1);
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
    assert!(repo.snapshot_ids().is_empty());
    let stderr = repo.fails(
        &[
            "restore",
            "latest",
            "--target",
            repo.path("o").to_str().unwrap(),
        ],
        1,
    );
    assert!(stderr.contains("no snapshots"), "{stderr}");
    repo.fails(&["backup"], 2);
    repo.fails(&["verify", "--read-data=0"], 1);
}

#[test]
fn an_unreadable_file_fails_the_backup_naming_it() {
    // Root reads past permission bits, so use a file whose read fails for everyone:
    // the process's own memory at address 0.
    let repo = TestRepo::local();
    let stderr = repo.fails(&["backup", "/proc/self/mem"], 1);
    assert!(stderr.contains("/proc/self/mem"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(repo.snapshot_ids().is_empty());
    repo.ok(&["verify"]);
}

#[test]
fn bad_repository_urls_are_explained() {
    let repo = TestRepo::at("ftp://example/x", vec![]);
    let stderr = repo.fails(&["snapshots"], 5);
    assert!(stderr.contains("unknown scheme"), "{stderr}");
}

/// Restoring onto a full filesystem fails naming the file, and leaves the repository
/// untouched. Needs root to mount a small tmpfs.
#[test]
fn full_disk_on_restore_is_a_clear_error() {
    if unsafe { libc::geteuid() } != 0 {
        common::skip("mounting a tmpfs needs root");
        return;
    }
    let repo = TestRepo::local();
    let src = repo.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("big.bin"), pseudo_random(4 * 1024 * 1024, 2)).unwrap();
    repo.backup(&[&src]);
    let mount = repo.path("small");
    fs::create_dir_all(&mount).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mount)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs");
    let out = repo.run(&["restore", "latest", "--target", mount.to_str().unwrap()]);
    let _ = std::process::Command::new("umount").arg(&mount).status();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("big.bin") && stderr.contains("No space left"),
        "{stderr}"
    );
    repo.ok(&["verify", "--read-data"]);
}
