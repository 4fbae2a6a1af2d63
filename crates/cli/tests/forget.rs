//! `lifeboat forget`: retention by policy, per group of snapshots, never a pinned one.

mod common;

use common::TestRepo;

#[test]
fn forget_keeps_what_the_policy_and_the_pins_say_and_the_rest_still_restores() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    let other = repo.path("other");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    for i in 0..5 {
        std::fs::write(data.join("file"), format!("version {i}")).unwrap();
        let mut args = vec!["backup", data.to_str().unwrap()];
        if i == 0 {
            args.push("--pin");
        }
        if i == 1 {
            args.extend(["--tag", "release"]);
        }
        repo.ok(&args);
    }
    std::fs::write(other.join("x"), "x").unwrap();
    repo.ok(&["backup", other.to_str().unwrap()]);
    let ids = repo.snapshot_ids();
    assert_eq!(ids.len(), 6);

    // Nothing given would forget everything: refused.
    repo.fails(&["forget"], 2);
    // A dry run removes nothing.
    let out = repo.ok(&["forget", "--keep-last", "1", "--dry-run"]);
    assert!(out.contains("would be removed"), "{out}");
    assert_eq!(repo.snapshot_ids().len(), 6);

    let report = repo.json(&["forget", "--keep-last", "2", "--keep-tag", "release"]);
    assert_eq!(report["removed_snapshots"], 1, "{report}");
    let left = repo.snapshot_ids();
    // data: the pinned first, the tagged second, the two newest; other: its only one.
    assert_eq!(left.len(), 5);
    assert!(left.contains(&ids[0]) && left.contains(&ids[1]) && !left.contains(&ids[2]));
    assert!(
        left.contains(&ids[5]),
        "another group's snapshot was touched"
    );

    // What is kept still restores, as it was.
    let out = repo.restore(&ids[1], "restored");
    assert_eq!(
        std::fs::read_to_string(out.join("data/file")).unwrap(),
        "version 1"
    );
    repo.ok(&["verify"]);
}
