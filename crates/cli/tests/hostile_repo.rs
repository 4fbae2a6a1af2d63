//! Repositories under attack or in trouble: another user's prune beside a root backup,
//! key files planted by someone with storage access but no key, junk and giant objects,
//! a full disk, and a repository that lost its `config`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::paused::PausedBackup;
use common::{digest, is_root, pseudo_random, write_pseudo_random as write, TestRepo, PASSWORD};

/// Runs `command` to the end, killing it if it is still running after `limit`: a guard
/// against a hang (what the old code did), not a measurement.
fn run_guarded(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn chmod_tree(path: &Path, dirs: u32, files: u32) {
    let mode = if path.is_dir() { dirs } else { files };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chmod_tree(&entry.unwrap().path(), dirs, files);
        }
    }
}

/// Issue 15 item 6: `kill(pid, 0)` fails with EPERM for a live process of another user.
/// A prune run as `nobody` took the lock of a backup running as root for dead and
/// deleted the packs it was about to refer to.
#[test]
fn a_prune_by_another_user_waits_for_a_running_root_backup() {
    if !is_root() || !Path::new("/usr/bin/setpriv").exists() {
        common::skip("needs root and setpriv to run a prune as another user");
        return;
    }
    let repo = TestRepo::local();
    let data = repo.path("data");
    write(&data.join("big"), 2 << 20, 5);
    write(&data.join("big2"), 1 << 20, 14);
    repo.backup(&[&data]);
    // The data changes and the first snapshot is forgotten: its packs are unused, for
    // now; a backup of the old content is about to use them again.
    let saved = repo.path("saved");
    std::fs::rename(&data, &saved).unwrap();
    write(&data.join("x"), 1000, 6);
    repo.backup(&[&data]);
    repo.ok(&["forget", "--keep-last", "1"]);
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::rename(&saved, &data).unwrap();

    // `nobody` may use the repository (and the binary, copied out of root's home).
    std::fs::set_permissions(repo.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    chmod_tree(&repo.repo_dir(), 0o777, 0o666);
    let bin = repo.path("bin/lifeboat");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(common::lifeboat_bin(), &bin).unwrap();
    chmod_tree(&repo.path("bin"), 0o755, 0o755);
    let cache = repo.path("nobody-cache");
    std::fs::create_dir_all(&cache).unwrap();
    chmod_tree(&cache, 0o777, 0o666);

    let backup = PausedBackup::start(&repo, "session-started", &data, "b1");
    let prune = || {
        let mut prune = Command::new("/usr/bin/setpriv");
        prune
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(["prune", "--json"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LIFEBOAT_REPO", &repo.url)
            .env("LIFEBOAT_PASSWORD", PASSWORD)
            .env("LIFEBOAT_CACHE_DIR", &cache);
        run_guarded(prune, Duration::from_secs(120))
    };
    // The backup's lock is private to root: a prune that cannot read it stops, naming
    // it, rather than act as if no backup were running.
    let out = prune();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("permission denied for locks/"), "{stderr}");
    // Shared on purpose with nobody's group (FORMAT: a group-writable root shares new
    // files with its group), the prune reads the lock and finds its holder alive.
    let shared = Command::new("sh")
        .arg("-c")
        .arg("chown -R :65534 \"$0\" && chmod -R g+rwX \"$0\" && find \"$0\" -type d -exec chmod g+s {} +")
        .arg(repo.repo_dir())
        .status()
        .unwrap();
    assert!(shared.success());
    let out = prune();
    let report: serde_json::Value = serde_json::from_str(&common::succeeded(&out)).unwrap();
    assert_eq!(report["deleted_packs"], 0, "{report}");
    assert!(report["pending_packs"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        report["waiting_for"].to_string().contains("backup"),
        "{report}"
    );

    let done = backup.finish();
    let id = done["id"].as_str().unwrap().to_string();
    repo.ok(&["verify", "--read-data"]);
    let restored = repo.restore(&id, "restored");
    assert_eq!(digest(&restored.join("data")), digest(&data));
}

/// Issue 15 item 10: a copy of the real key file with absurd Argon2 parameters, named to
/// sort first, made every command hang. It is skipped, named, and the real slot opens.
#[test]
fn a_planted_costly_key_slot_is_skipped_and_the_real_one_opens() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    write(&data.join("a"), 10_000, 1);
    let id = repo.backup(&[&data]);
    let keys = repo.repo_dir().join("keys");
    let real = std::fs::read_dir(&keys)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut planted: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&real).unwrap()).unwrap();
    let bogus = "0".repeat(64);
    for (field, value, says) in [
        ("iterations", 1_000_000u64, "iterations"),
        ("memory_kib", 4_000_000_000, "memory"),
        ("parallelism", 100_000, "parallelism"),
    ] {
        let mut file = planted.clone();
        file["params"][field] = value.into();
        std::fs::write(keys.join(&bogus), serde_json::to_vec(&file).unwrap()).unwrap();
        let mut command = repo.command();
        command.args(["snapshots", "--json"]);
        let out = run_guarded(command, Duration::from_secs(120));
        let stdout = common::succeeded(&out);
        assert!(stdout.contains(&id), "{stdout}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("skipping key file keys/{bogus}")) && stderr.contains(says),
            "{field}: {stderr}"
        );
    }
    // A key file too large to be one is not even read.
    planted["padding"] = "x".repeat(1 << 20).into();
    std::fs::write(keys.join(&bogus), serde_json::to_vec(&planted).unwrap()).unwrap();
    let out = run_guarded(repo.command_with(&["snapshots"]), Duration::from_secs(120));
    common::succeeded(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("keys/{bogus}")) && stderr.contains("bytes"),
        "{stderr}"
    );
    // With only the planted slot, the error names it.
    std::fs::rename(&real, repo.path("real-key")).unwrap();
    let stderr = repo.fails(&["snapshots"], 1);
    assert!(stderr.contains(&format!("keys/{bogus}")), "{stderr}");
}

trait CommandWith {
    fn command_with(&self, args: &[&str]) -> Command;
}

impl CommandWith for TestRepo {
    fn command_with(&self, args: &[&str]) -> Command {
        let mut command = self.command();
        command.args(args);
        command
    }
}

fn object_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Issue 15 item 11: a junk file in `index/` stopped every backup and restore; a sparse
/// 40 GB file in `snapshots/` made `snapshots` fail "out of memory". Each is named in a
/// warning and skipped; a real index file replaced by junk costs re-reading pack headers.
#[test]
fn junk_and_giant_objects_are_reported_and_skipped() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    write(&data.join("a"), 3 << 20, 21);
    write(&data.join("b"), 100_000, 22);
    let first = repo.backup(&[&data]);
    let root = repo.repo_dir();
    let junk_index = "1".repeat(64);
    let junk_snapshot = "2".repeat(64);
    let giant_snapshot = "3".repeat(64);
    std::fs::write(root.join("index").join(&junk_index), b"not an index").unwrap();
    std::fs::write(
        root.join("snapshots").join(&junk_snapshot),
        pseudo_random(500, 1),
    )
    .unwrap();
    let giant = std::fs::File::create(root.join("snapshots").join(&giant_snapshot)).unwrap();
    giant.set_len(40 << 30).unwrap();
    drop(giant);

    let out = run_guarded(
        repo.command_with(&["snapshots", "--json"]),
        Duration::from_secs(120),
    );
    let listed = common::succeeded(&out);
    assert!(listed.contains(&first), "{listed}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in [&junk_snapshot, &giant_snapshot] {
        assert!(stderr.contains(&format!("snapshots/{name}")), "{stderr}");
    }

    write(&data.join("c"), 200_000, 23);
    let out = run_guarded(
        repo.command_with(&["backup", data.to_str().unwrap(), "--json"]),
        Duration::from_secs(120),
    );
    let report: serde_json::Value = serde_json::from_str(&common::succeeded(&out)).unwrap();
    let second = report["id"].as_str().unwrap().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("index/{junk_index}")), "{stderr}");
    let restored = repo.restore("latest", "restored");
    assert_eq!(digest(&restored.join("data")), digest(&data));

    // The real index files are damaged too (a flipped byte): restore still works, from
    // the packs' own headers.
    for name in object_names(&root.join("index")) {
        let path = root.join("index").join(&name);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
    }
    let out = run_guarded(
        repo.command_with(&[
            "restore",
            &second,
            "--target",
            repo.path("r2").to_str().unwrap(),
        ]),
        Duration::from_secs(120),
    );
    common::succeeded(&out);
    assert_eq!(digest(&repo.path("r2").join("data")), digest(&data));

    // prune indexes the packs again and removes the unreadable index files; the junk
    // snapshots stay (prune refuses to guess what they needed) until removed by hand.
    std::fs::remove_file(root.join("snapshots").join(&junk_snapshot)).unwrap();
    std::fs::remove_file(root.join("snapshots").join(&giant_snapshot)).unwrap();
    let report = repo.json(&["prune"]);
    assert!(report["reindexed_packs"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        report["removed_index_files"]
            .to_string()
            .contains(&junk_index),
        "{report}"
    );
    let out = repo.run(&["snapshots"]);
    common::succeeded(&out);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("skipping"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    repo.ok(&["verify", "--read-data"]);
    let restored = repo.restore(&first, "r3");
    assert_eq!(
        restored.join("data").join("a").metadata().unwrap().len(),
        3 << 20
    );
}

/// Mounts a tmpfs of `size` at `dir`; `None` (with the reason printed) when not allowed.
fn mount_tmpfs(dir: &Path, size: &str) -> Option<()> {
    if !is_root() {
        common::skip("mounting a tmpfs needs root");
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
        .unwrap();
    if !out.status.success() {
        common::skip(&format!(
            "cannot mount a tmpfs: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return None;
    }
    Some(())
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Issue 15 item 12: a full disk left a partial temporary file and an unindexed pack, and
/// the repository stuck. After space is freed the next backup succeeds by itself, and
/// prune removes what interrupted writes left.
#[test]
fn a_full_disk_heals_once_space_is_freed() {
    let scratch = tempfile::tempdir().unwrap();
    let mount = scratch.path().join("disk");
    if mount_tmpfs(&mount, "24m").is_none() {
        return;
    }
    let _unmount = Unmount(mount.clone());
    let repo = TestRepo::at(&mount.join("repo").display().to_string(), vec![]);
    repo.init();
    // Incompressible data: 18 MiB, more than fits beside the filler.
    let data = repo.path("data");
    for i in 0..6 {
        write(&data.join(format!("f{i}")), 3 << 20, 30 + i);
    }
    let filler = mount.join("filler");
    std::fs::write(&filler, vec![0u8; 12 << 20]).unwrap();

    let out = repo.run(&["backup", data.to_str().unwrap()]);
    assert!(!out.status.success(), "the backup fitted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let temp = mount.join("repo/.tmp");
    assert_eq!(
        object_names(&temp),
        Vec::<String>::new(),
        "the failed write left its temporary file"
    );

    // Space is freed: the next backup needs nothing else.
    std::fs::remove_file(&filler).unwrap();
    let id = repo.backup(&[&data]);
    repo.ok(&["verify", "--read-data"]);
    let restored = repo.restore(&id, "restored");
    assert_eq!(digest(&restored.join("data")), digest(&data));

    // What a killed writer leaves: a partial temporary file (old enough, its writer gone)
    // and a partial pack under a name no index lists. A fresh temporary file may be a
    // write in progress and stays.
    let stale = temp.join("999999-dead-0");
    std::fs::write(&stale, vec![1u8; 100_000]).unwrap();
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let fresh = temp.join("999998-busy-0");
    std::fs::write(&fresh, b"writing").unwrap();
    let pack = std::fs::read_dir(mount.join("repo/data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .next()
        .unwrap()
        .unwrap()
        .path();
    let half = std::fs::read(&pack).unwrap();
    let orphan = mount.join(format!("repo/data/ff/ff{}", "e".repeat(62)));
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, &half[..half.len() / 2]).unwrap();

    let report = repo.json(&["prune"]);
    assert_eq!(report["removed_temp_files"], 1, "{report}");
    assert_eq!(report["damaged_unlisted_packs"], 1, "{report}");
    assert!(!stale.exists() && fresh.exists());
    assert!(
        !orphan.exists(),
        "the partial pack is still there: {report}"
    );
    repo.ok(&["verify", "--read-data"]);
    let restored = repo.restore(&id, "restored-2");
    assert_eq!(digest(&restored.join("data")), digest(&data));
}

/// Issue 15 item 13: `init` over a repository whose `config` was deleted succeeded, and
/// then nothing opened ("authentication failed"). It is refused, and opening says what is
/// really wrong.
#[test]
fn a_repository_that_lost_its_config_is_not_initialised_again() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    write(&data.join("a"), 10_000, 2);
    repo.backup(&[&data]);
    let root = repo.repo_dir();
    let config = std::fs::read(root.join("config")).unwrap();
    std::fs::remove_file(root.join("config")).unwrap();
    let keys = object_names(&root.join("keys"));

    let stderr = repo.fails(&["init"], 1);
    assert!(
        stderr.contains("lost its config") && stderr.contains("restore `config` from a copy"),
        "{stderr}"
    );
    assert!(
        stderr.contains("keys/") && stderr.contains("snapshots/"),
        "{stderr}"
    );
    assert!(!root.join("config").exists());
    assert_eq!(object_names(&root.join("keys")), keys, "init wrote a key");

    let stderr = repo.fails(&["snapshots"], 1);
    assert!(
        stderr.contains("lost its config") && !stderr.contains("lifeboat init` first"),
        "{stderr}"
    );

    // Any repository object is enough to refuse: here only a lock left behind.
    let other = TestRepo::at(&repo.path("other").display().to_string(), vec![]);
    std::fs::create_dir_all(repo.path("other/locks")).unwrap();
    std::fs::write(repo.path(&format!("other/locks/{}", "a".repeat(64))), b"x").unwrap();
    let stderr = other.fails(&["init", "--kdf-memory-mib", "8"], 1);
    assert!(stderr.contains("locks/"), "{stderr}");

    // Put back, the repository works as before.
    std::fs::write(root.join("config"), config).unwrap();
    repo.ok(&["verify"]);
}
