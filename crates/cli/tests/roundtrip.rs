//! Backups restore bit-exact, with metadata; unchanged and near-identical data dedups.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{digest, pseudo_random, TestRepo};
use proptest::prelude::*;

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// A tree with the awkward cases: empty file and dir, symlinks (dangling too), a sparse
/// file, odd permissions, a non-UTF-8 name, identical and near-identical files.
fn awkward_tree(root: &Path) {
    write(&root.join("a.txt"), b"hello\n");
    write(&root.join("empty"), b"");
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    write(
        &root.join("deep/er/still/file.bin"),
        &pseudo_random(300_000, 1),
    );
    write(&root.join("copy/file.bin"), &pseudo_random(300_000, 1));
    let mut near = pseudo_random(300_000, 1);
    near[150_000] ^= 1;
    write(&root.join("near/file.bin"), &near);
    std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).unwrap();
    let sparse = fs::File::create(root.join("sparse")).unwrap();
    sparse.set_len(50 * 1024 * 1024).unwrap();
    write(&root.join("secret"), b"0600");
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(root.join("deep/er"), fs::Permissions::from_mode(0o750)).unwrap();
    let odd = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"caf\xe9.txt");
    write(&root.join(odd), b"latin-1 name");
    std::os::unix::fs::symlink(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"caf\xe9.txt"),
        root.join("latin-1-link"),
    )
    .unwrap();
}

#[test]
fn awkward_tree_round_trips_with_metadata_and_holes() {
    let repo = TestRepo::local();
    let src = repo.path("src");
    awkward_tree(&src);
    let id = repo.backup(&[&src]);
    let out = repo.restore(&id, "out");
    assert_eq!(digest(&src), digest(&out.join("src")));
    // The 50 MiB hole comes back as a hole, not 50 MiB of zeros on disk.
    let blocks =
        std::os::unix::fs::MetadataExt::blocks(&fs::metadata(out.join("src/sparse")).unwrap());
    assert!(
        blocks * 512 < 1024 * 1024,
        "sparse file restored dense: {blocks} blocks"
    );
    repo.ok(&["verify", "--read-data"]);
}

#[test]
fn a_top_level_name_that_is_not_utf8_round_trips() {
    let repo = TestRepo::local();
    let odd = repo
        .dir
        .path()
        .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"top\xe9"));
    write(&odd.join("f.txt"), b"inside");
    let status = repo.command().arg("backup").arg(&odd).status().unwrap();
    assert!(status.success());
    let out = repo.restore("latest", "out");
    assert_eq!(digest(&odd), digest(&out.join(odd.file_name().unwrap())));
}

#[test]
fn snapshots_json_has_the_contract_fields() {
    let repo = TestRepo::local();
    let src = repo.path("src");
    write(&src.join("f"), b"x");
    repo.ok(&["backup", src.to_str().unwrap(), "--tag", "nightly", "--pin"]);
    let list = repo.json(&["snapshots"]);
    let snap = &list[0];
    for field in ["id", "time", "host", "paths", "tags", "pinned", "size"] {
        assert!(!snap[field].is_null(), "missing {field}: {snap}");
    }
    assert_eq!(snap["tags"][0], "nightly");
    assert_eq!(snap["pinned"], true);
    assert_eq!(snap["paths"][0], src.display().to_string());
    chrono_like(snap["time"].as_str().unwrap());
}

fn chrono_like(time: &str) {
    // RFC 3339: 2026-11-26T05:38:24.204062243Z
    assert!(
        time.len() >= 20 && &time[4..5] == "-" && &time[10..11] == "T" && time.ends_with('Z'),
        "{time}"
    );
}

#[test]
fn unchanged_data_is_not_stored_again_and_small_edits_add_little() {
    let repo = TestRepo::local();
    let src = repo.path("src");
    let big = pseudo_random(20 * 1024 * 1024, 9);
    write(&src.join("db.bin"), &big);
    repo.backup(&[&src]);
    let after_first = common::dir_size(&repo.repo_dir().join("data"));
    assert!(
        after_first > 19 * 1024 * 1024,
        "random data should not shrink: {after_first}"
    );

    // Nothing changed: no data stored.
    let second = repo.json(&["backup", src.to_str().unwrap()]);
    assert_eq!(second["summary"]["stored_bytes"], 0, "{second}");

    // A copy elsewhere plus a 100-byte insertion in the middle: only chunks near the
    // insertion are new.
    let mut edited = big.clone();
    edited.splice(10_000_000..10_000_000, std::iter::repeat_n(7u8, 100));
    write(&src.join("db.bin"), &edited);
    write(&src.join("copy-of-original.bin"), &big);
    let third = repo.json(&["backup", "--force", src.to_str().unwrap()]);
    let stored = third["summary"]["stored_bytes"].as_u64().unwrap();
    assert!(
        stored < 3 * 1024 * 1024,
        "a 100-byte insertion stored {stored} bytes"
    );
    let out = repo.restore("latest", "out");
    assert_eq!(fs::read(out.join("src/db.bin")).unwrap(), edited);
    assert_eq!(fs::read(out.join("src/copy-of-original.bin")).unwrap(), big);
}

#[test]
fn large_file_round_trips() {
    let repo = TestRepo::local();
    let src = repo.path("src");
    // Hundreds of MiB: half random, half compressible text.
    let mut data = pseudo_random(100 * 1024 * 1024, 5);
    let text: Vec<u8> = (0..)
        .flat_map(|i: u64| {
            format!("INSERT INTO t VALUES ({i}, 'row {i}', {});\n", i * 7).into_bytes()
        })
        .take(100 * 1024 * 1024)
        .collect();
    data.extend_from_slice(&text);
    write(&src.join("dump.sql"), &data);
    let summary = repo.json(&["backup", src.to_str().unwrap()]);
    let stored = summary["summary"]["stored_bytes"].as_u64().unwrap();
    assert!(
        stored < 150 * 1024 * 1024,
        "the text half should compress: {stored}"
    );
    let out = repo.restore("latest", "out");
    assert!(fs::read(out.join("src/dump.sql")).unwrap() == data);
}

#[test]
fn restore_include_picks_a_subtree() {
    let repo = TestRepo::local();
    let src = repo.path("uploads");
    write(&src.join("2026/a.png"), b"a");
    write(&src.join("2026/b.png"), b"b");
    write(&src.join("2025/c.png"), b"c");
    repo.backup(&[&src]);
    let target = repo.path("out");
    repo.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--include",
        "uploads/2026/a.png",
    ]);
    assert_eq!(fs::read(target.join("uploads/2026/a.png")).unwrap(), b"a");
    assert!(!target.join("uploads/2026/b.png").exists());
    assert!(!target.join("uploads/2025").exists());
    // The path as `ls` prints it (leading /) is the same path.
    let listed = repo.path("out-listed");
    repo.ok(&[
        "restore",
        "latest",
        "--target",
        listed.to_str().unwrap(),
        "--include",
        "/uploads/2025/",
    ]);
    assert_eq!(fs::read(listed.join("uploads/2025/c.png")).unwrap(), b"c");
    // An include that matches nothing is an error, not an empty success.
    let nothing = repo.path("out-nothing");
    let stderr = repo.fails(
        &[
            "restore",
            "latest",
            "--target",
            nothing.to_str().unwrap(),
            "--include",
            "uploads/2024",
        ],
        1,
    );
    assert!(
        stderr.contains("nothing in the snapshot is at uploads/2024"),
        "{stderr}"
    );
    assert!(!nothing.exists(), "a failed restore created its target");

    // A non-empty target is refused (and left alone) unless --force.
    fs::write(target.join("uploads/2026/a.png"), b"edited since").unwrap();
    let stderr = repo.fails(
        &["restore", "latest", "--target", target.to_str().unwrap()],
        1,
    );
    assert!(
        stderr.contains("not empty") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        fs::read(target.join("uploads/2026/a.png")).unwrap(),
        b"edited since"
    );
    repo.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(fs::read(target.join("uploads/2026/a.png")).unwrap(), b"a");
    assert_eq!(fs::read(target.join("uploads/2025/c.png")).unwrap(), b"c");
}

#[test]
fn command_output_round_trips_to_a_file_and_a_command() {
    let repo = TestRepo::local();
    let dump = repo.path("dump.sql");
    let content = pseudo_random(3 * 1024 * 1024, 4);
    write(&dump, &content);
    let cmd = format!("cat {}", dump.display());
    repo.ok(&["backup", "--stdin-from-command", &cmd, "--name", "app.sql"]);
    let list = repo.json(&["snapshots"]);
    assert_eq!(list[0]["paths"][0], "command:app.sql");

    let out = repo.path("restored.sql");
    repo.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    assert!(fs::read(&out).unwrap() == content);
    // An existing file is not replaced without --force.
    let stderr = repo.fails(&["restore", "latest", "--target", out.to_str().unwrap()], 1);
    assert!(stderr.contains("already exists"), "{stderr}");
    repo.ok(&[
        "restore",
        "latest",
        "--target",
        out.to_str().unwrap(),
        "--force",
    ]);

    let piped = repo.path("piped.sql");
    repo.ok(&[
        "restore",
        "latest",
        "--to-command",
        &format!("cat > {}", piped.display()),
    ]);
    assert!(fs::read(&piped).unwrap() == content);
}

#[test]
fn failing_command_writes_no_snapshot() {
    let repo = TestRepo::local();
    let stderr = repo.fails(
        &[
            "backup",
            "--stdin-from-command",
            "echo partial; exit 3",
            "--name",
            "x",
        ],
        1,
    );
    assert!(stderr.contains("failed"), "{stderr}");
    assert!(repo.snapshot_ids().is_empty());
}

#[test]
fn key_slots_add_list_remove_and_change() {
    let repo = TestRepo::local();
    let src = repo.path("src");
    write(&src.join("f"), b"data");
    repo.backup(&[&src]);
    repo.command()
        .args([
            "key",
            "add",
            "--kdf-memory-mib",
            "8",
            "--kdf-iterations",
            "1",
        ])
        .env("LIFEBOAT_NEW_PASSWORD", "second passphrase")
        .status()
        .unwrap()
        .success()
        .then_some(())
        .expect("key add");
    let keys = repo.json(&["key", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    // The second passphrase opens the same data.
    let out = repo
        .command()
        .args(["snapshots", "--json"])
        .env("LIFEBOAT_PASSWORD", "second passphrase")
        .output()
        .unwrap();
    assert!(out.status.success());
    // The slot in use cannot be removed; the other can.
    let current = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    repo.fails(&["key", "remove", &current], 1);
    repo.ok(&["key", "remove", &other]);
    let out = repo
        .command()
        .args(["snapshots"])
        .env("LIFEBOAT_PASSWORD", "second passphrase")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    // passwd: the old passphrase stops working, the new one works.
    let status = repo
        .command()
        .args([
            "key",
            "passwd",
            "--kdf-memory-mib",
            "8",
            "--kdf-iterations",
            "1",
        ])
        .env("LIFEBOAT_NEW_PASSWORD", "third")
        .status()
        .unwrap();
    assert!(status.success());
    repo.fails(&["snapshots"], 4);
    let out = repo
        .command()
        .args(["restore", "latest", "--target"])
        .arg(repo.path("out"))
        .env("LIFEBOAT_PASSWORD", "third")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(fs::read(repo.path("out/src/f")).unwrap(), b"data");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn random_trees_round_trip(files in proptest::collection::vec((0u8..4, 0u8..6, 0usize..400_000, 0u64..4, any::<bool>()), 1..25)) {
        let repo = TestRepo::local();
        let src = repo.path("src");
        fs::create_dir_all(&src).unwrap();
        for (i, (dir, sub, size, seed, edit)) in files.iter().enumerate() {
            let mut data = pseudo_random(*size, *seed);
            if *edit && !data.is_empty() {
                let at = data.len() / 2;
                data[at] = data[at].wrapping_add(1);
            }
            write(&src.join(format!("d{dir}/s{sub}/f{i}")), &data);
        }
        let first = repo.backup(&[&src]);
        let out = repo.restore(&first, "out");
        prop_assert_eq!(digest(&src), digest(&out.join("src")));
    }
}
