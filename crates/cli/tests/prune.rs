//! `lifeboat prune`: frees what no snapshot needs, repacks partly used packs, and never
//! deletes a blob that a backup running at the same time refers to.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::paused::PausedBackup;
use common::{digest, dir_size, write_pseudo_random as write, TestRepo};

fn data_size(repo: &TestRepo) -> u64 {
    dir_size(&repo.repo_dir().join("data"))
}

/// Waits until the process paused at a point has created `<signal>.reached`.
fn wait_reached(signal: &Path) {
    let reached = PathBuf::from(format!("{}.reached", signal.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reached.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never came",
            reached.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn prune_frees_forgotten_data_and_what_is_kept_still_restores() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    write(&data.join("big"), 3 << 20, 1);
    repo.backup(&[&data]);
    write(&data.join("big"), 3 << 20, 2);
    let kept = repo.backup(&[&data]);
    let before = data_size(&repo);

    // Nothing forgotten yet: nothing to free.
    let report = repo.json(&["prune"]);
    assert_eq!(report["deleted_packs"], 0, "{report}");
    assert_eq!(data_size(&repo), before);

    repo.ok(&["forget", "--keep-last", "1"]);
    let dry = repo.json(&["prune", "--dry-run"]);
    assert!(dry["condemned_packs"].as_u64().unwrap() >= 1, "{dry}");
    assert_eq!(data_size(&repo), before, "a dry run deleted something");

    let report = repo.json(&["prune"]);
    assert!(report["deleted_packs"].as_u64().unwrap() >= 1, "{report}");
    let after = data_size(&repo);
    assert!(
        after < before - (2 << 20),
        "prune freed too little: {before} -> {after}"
    );
    assert_eq!(report["pending_packs"], 0, "{report}");
    assert!(
        std::fs::read_dir(repo.repo_dir().join("prune"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "notices left behind"
    );
    repo.ok(&["verify", "--read-data"]);
    let restored = repo.restore(&kept, "restored");
    assert_eq!(
        digest(&restored.join("data")),
        digest(&data),
        "the kept snapshot changed"
    );

    // The forgotten content can be backed up again (and is stored anew).
    write(&data.join("big"), 3 << 20, 1);
    let again = repo.json(&["backup", data.to_str().unwrap()]);
    assert!(again["summary"]["new_bytes"].as_u64().unwrap() >= 3 << 20);
    repo.ok(&["verify", "--read-data"]);
}

#[test]
fn prune_repacks_partly_used_packs() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    write(&data.join("keep"), 1 << 20, 3);
    write(&data.join("drop"), 2 << 20, 4);
    repo.backup(&[&data]);
    std::fs::remove_file(data.join("drop")).unwrap();
    let kept = repo.backup(&[&data]);
    repo.ok(&["forget", "--keep-last", "1"]);
    let before = data_size(&repo);

    let report = repo.json(&["prune"]);
    assert!(report["repacked_packs"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["repacked_blobs"].as_u64().unwrap() >= 1, "{report}");
    let after = data_size(&repo);
    assert!(
        after < before - (3 << 19),
        "repacking freed too little: {before} -> {after}"
    );
    repo.ok(&["verify", "--read-data"]);
    let restored = repo.restore(&kept, "restored");
    assert_eq!(digest(&restored.join("data")), digest(&data));
}

/// The race prune must win: a backup that loaded the index before the prune and then
/// deduplicates against data the prune finds unused.
#[test]
fn prune_never_deletes_what_a_running_backup_refers_to() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    write(&data.join("big"), 2 << 20, 5);
    write(&data.join("big2"), 1 << 20, 14);
    repo.backup(&[&data]);
    // The data changes and the first snapshot is forgotten: its data is unused, for now.
    let saved = repo.path("saved");
    std::fs::rename(&data, &saved).unwrap();
    write(&data.join("x"), 1000, 6);
    repo.backup(&[&data]);
    repo.ok(&["forget", "--keep-last", "1"]);
    assert_eq!(repo.snapshot_ids().len(), 1);
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::rename(&saved, &data).unwrap();

    // A backup of the same content starts and has loaded the index, which still lists
    // the unused data, when prune runs.
    let backup = PausedBackup::start(&repo, "session-started", &data, "b1");
    let report = repo.json(&["prune"]);
    assert!(report["pending_packs"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(report["deleted_packs"], 0, "{report}");
    let waiting = report["waiting_for"].to_string();
    assert!(waiting.contains("backup"), "{report}");

    // A backup that starts now sees the condemnation and stores the data anew (here one
    // of the two files).
    let fresh_dir = repo.path("fresh");
    std::fs::create_dir_all(&fresh_dir).unwrap();
    std::fs::copy(data.join("big"), fresh_dir.join("big")).unwrap();
    let fresh = repo.json(&["backup", fresh_dir.to_str().unwrap()]);
    assert!(
        fresh["summary"]["new_bytes"].as_u64().unwrap() >= 2 << 20,
        "a backup deduplicated against condemned data: {fresh}"
    );

    // The paused backup finishes, referring to the condemned data without storing it.
    let done = backup.finish();
    assert!(
        done["summary"]["new_bytes"].as_u64().unwrap() < 1 << 20,
        "{done}"
    );
    let id = done["id"].as_str().unwrap().to_string();

    // The next prune carries out the condemnation but spares what the new snapshot uses.
    let report = repo.json(&["prune"]);
    assert_eq!(report["pending_packs"], 0, "{report}");
    assert!(report["spared_packs"].as_u64().unwrap() >= 1, "{report}");
    repo.ok(&["verify", "--read-data"]);
    let restored = repo.restore(&id, "restored");
    assert_eq!(digest(&restored.join("data")), digest(&data));
}

#[test]
fn a_second_prune_is_refused_while_one_runs() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    write(&data.join("a"), 100_000, 8);
    repo.backup(&[&data]);
    write(&data.join("a"), 100_000, 9);
    repo.backup(&[&data]);
    repo.ok(&["forget", "--keep-last", "1"]);
    let signal = repo.path("p1");
    let child = repo
        .command()
        .args(["prune"])
        .env(
            "LIFEBOAT_PAUSE_AT",
            format!("prune-condemned:{}", signal.display()),
        )
        .spawn()
        .unwrap();
    wait_reached(&signal);
    let err = repo.fails(&["prune"], 1);
    assert!(err.contains("locked by prune"), "{err}");
    std::fs::write(format!("{}.go", signal.display()), b"").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    repo.ok(&["verify"]);
}

/// Killed at each step of its write order, prune leaves a repository that verifies, and
/// the next prune finishes the job.
#[test]
fn prune_killed_at_any_step_loses_nothing() {
    for point in [
        "prune-condemned",
        "prune-armed",
        "prune-index-rewritten",
        "prune-pack-deleted",
    ] {
        let repo = TestRepo::local();
        let data = repo.path("data");
        write(&data.join("a"), 1 << 20, 10);
        write(&data.join("b"), 1 << 20, 11);
        repo.backup(&[&data]);
        std::fs::remove_file(data.join("b")).unwrap();
        write(&data.join("c"), 1 << 20, 12);
        let kept = repo.backup(&[&data]);
        repo.ok(&["forget", "--keep-last", "1"]);

        let out = repo
            .command()
            .args(["prune"])
            .env("LIFEBOAT_CRASH_AT", point)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: prune was not killed");
        repo.ok(&["verify", "--read-data"]);
        let restored = repo.restore(&kept, "restored");
        assert_eq!(digest(&restored.join("data")), digest(&data), "{point}");

        // A backup in between must still work, then the next prune cleans up.
        write(&data.join("d"), 200_000, 13);
        repo.backup(&[&data]);
        let report = repo.json(&["prune"]);
        assert_eq!(report["pending_packs"], 0, "{point}: {report}");
        repo.ok(&["verify", "--read-data"]);
        let again = repo.restore("latest", "restored-2");
        assert_eq!(digest(&again.join("data")), digest(&data), "{point}");
    }
}

/// Backups, forgets and prunes all at once, for several rounds: every backup succeeds,
/// and every snapshot left restores exactly what was backed up.
#[test]
fn prune_running_alongside_backups_and_forgets_loses_nothing() {
    let repo = TestRepo::local();
    common::concurrent::prune_beside_backups_loses_nothing(&repo, &repo);
}
