//! Backups, forgets and prunes all at once, for several rounds: shared by the test on a
//! local repository and the one through `lifeboat serve` (append-token backups, admin
//! prunes).

use std::path::PathBuf;

use super::{digest, succeeded, write_pseudo_random as write, TestRepo};

/// `writer` backs up three directories while `admin` forgets and prunes, four rounds;
/// then every backup has succeeded and every snapshot left restores exactly what was
/// backed up. Both reach the same repository (they may be the same `TestRepo`).
pub fn prune_beside_backups_loses_nothing(writer: &TestRepo, admin: &TestRepo) {
    let dirs: Vec<PathBuf> = (0..3).map(|i| writer.path(&format!("dir{i}"))).collect();
    let mut expected = std::collections::HashMap::new();
    for round in 0..4u64 {
        for (i, dir) in dirs.iter().enumerate() {
            // Part of each directory changes every round, part stays (dedup across rounds).
            write(&dir.join("stable"), 300_000, 100 + i as u64);
            write(&dir.join("changing"), 400_000, 1000 * round + i as u64);
        }
        let digests: Vec<_> = dirs.iter().map(|d| digest(d)).collect();
        let backups: Vec<_> = dirs
            .iter()
            .map(|dir| {
                writer
                    .command()
                    .args(["backup", dir.to_str().unwrap(), "--json"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let forget = admin
            .command()
            .args(["forget", "--keep-last", "1"])
            .output()
            .unwrap();
        succeeded(&forget);
        let prune = admin.command().args(["prune"]).output().unwrap();
        succeeded(&prune);
        for (child, digest) in backups.into_iter().zip(digests) {
            let out = child.wait_with_output().unwrap();
            let report: serde_json::Value = serde_json::from_str(&succeeded(&out)).unwrap();
            expected.insert(report["id"].as_str().unwrap().to_string(), digest);
        }
    }
    // Two more prunes carry out whatever waited for the last backups.
    admin.ok(&["prune"]);
    let last = admin.json(&["prune"]);
    assert_eq!(last["pending_packs"], 0, "{last}");
    admin.ok(&["verify", "--read-data"]);
    let left = admin.snapshot_ids();
    assert!(left.len() >= 3, "{left:?}");
    for id in left {
        let restored = admin.restore(&id, &format!("r-{}", &id[..8]));
        let dir = std::fs::read_dir(&restored)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert_eq!(&digest(&dir), &expected[&id], "snapshot {id}");
    }
}
