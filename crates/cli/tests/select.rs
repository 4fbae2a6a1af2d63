//! What a backup takes (`--exclude`, `--iexclude`, `--exclude-file`, `--exclude-if-present`,
//! `--files-from`, `--dry-run`, `--host`, and the same in lifeboat.toml) and which snapshot
//! `latest` is (`--host`, `--tag`, `--path`), as restic users expect them.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::TestRepo;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The relative paths `ls` lists for a snapshot.
fn listed(repo: &TestRepo, snapshot: &str) -> BTreeSet<String> {
    repo.json(&["ls", snapshot])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

/// An app folder with things users leave out of backups.
fn app_folder(repo: &TestRepo) -> std::path::PathBuf {
    let app = repo.path("app");
    write(&app.join("uploads/a.jpg"), "a");
    write(&app.join("uploads/B.BAK"), "b");
    write(&app.join("debug.log"), "log");
    write(&app.join("logs/deep/x.log"), "log");
    write(&app.join("node_modules/dep/index.js"), "js");
    write(
        &app.join("cache/CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55",
    );
    write(&app.join("cache/blob"), "cached");
    write(&app.join("keep/notes.txt"), "keep");
    app
}

#[test]
fn excludes_leave_out_what_they_match_and_a_dry_run_writes_nothing() {
    let repo = TestRepo::local();
    let app = app_folder(&repo);
    let patterns = repo.path("excludes.txt");
    std::fs::write(&patterns, "# build output\n\nnode_modules\n").unwrap();
    let app_arg = app.to_str().unwrap();
    let select = [
        "--exclude",
        "*.log",
        "--iexclude",
        "*.bak",
        "--exclude-file",
        patterns.to_str().unwrap(),
        "--exclude-if-present",
        "CACHEDIR.TAG",
    ];

    // A dry run reads and counts, and the repository is byte for byte as it was.
    let before = common::digest(&repo.repo_dir());
    let dry = repo.json(&[&["backup", app_arg, "--dry-run"][..], &select].concat());
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(dry["excluded"], 5, "{dry}");
    assert_eq!(dry["summary"]["files"], 2, "{dry}");
    assert!(dry["summary"]["new_bytes"].as_u64().unwrap() > 0, "{dry}");
    assert_eq!(common::digest(&repo.repo_dir()), before);
    assert!(repo.snapshot_ids().is_empty());

    let saved = repo.json(&[&["backup", app_arg][..], &select].concat());
    let id = saved["id"].as_str().unwrap();
    let expected: BTreeSet<String> = [
        "/app",
        "/app/keep",
        "/app/keep/notes.txt",
        "/app/logs",
        "/app/logs/deep",
        "/app/uploads",
        "/app/uploads/a.jpg",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(listed(&repo, id), expected);

    // A pattern that cannot be read is named; nothing is saved.
    let err = repo.fails(&["backup", app_arg, "--exclude", "[oops"], 1);
    assert!(err.contains("[oops"), "{err}");
    assert_eq!(repo.snapshot_ids().len(), 1);
}

#[test]
fn files_from_host_and_the_filters_of_latest() {
    let repo = TestRepo::local();
    let app = app_folder(&repo);
    let list = repo.path("paths.txt");
    std::fs::write(
        &list,
        format!(
            "# what the app keeps\n{}\n\n{}\n",
            app.join("uploads").display(),
            app.join("keep").display()
        ),
    )
    .unwrap();
    let from_list = repo.json(&[
        "backup",
        "--files-from",
        list.to_str().unwrap(),
        "--host",
        "web1",
        "--tag",
        "nightly",
    ]);
    let uploads = app.join("uploads");
    let other = repo.json(&["backup", uploads.to_str().unwrap(), "--host", "web2"]);
    let listed_ids = |args: &[&str]| -> Vec<String> {
        repo.json(&[&["snapshots"][..], args].concat())
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    let first = from_list["id"].as_str().unwrap().to_string();
    let second = other["id"].as_str().unwrap().to_string();
    let snapshots = repo.json(&["snapshots"]);
    assert_eq!(snapshots[0]["host"], "web1", "{snapshots}");
    assert_eq!(snapshots[0]["paths"].as_array().unwrap().len(), 2);
    assert_eq!(listed_ids(&["--host", "web1"]), vec![first.clone()]);
    assert_eq!(listed_ids(&["--host", "web1", "--host", "web2"]).len(), 2);
    assert_eq!(listed_ids(&["--tag", "nightly"]), vec![first.clone()]);
    assert_eq!(
        listed_ids(&["--path", uploads.to_str().unwrap()]),
        vec![first.clone(), second.clone()]
    );

    // `latest` is the newest snapshot the filters match, not the newest of anything.
    let restored = repo.path("restored");
    let out = repo.ok(&[
        "restore",
        "latest",
        "--host",
        "web1",
        "--target",
        restored.to_str().unwrap(),
    ]);
    assert!(out.contains(&first[..8]), "{out}");
    assert!(restored.join("keep/notes.txt").exists());
    let ls = repo.json(&["ls", "latest", "--tag", "nightly"]);
    assert!(ls.to_string().contains("notes.txt"), "{ls}");
    let ls = repo.json(&["ls", "latest"]);
    assert!(!ls.to_string().contains("notes.txt"), "{ls}");
    let err = repo.fails(&["ls", "latest", "--host", "web3", "--tag", "nightly"], 1);
    assert!(
        err.contains("no snapshot matches --host web3 --tag nightly"),
        "{err}"
    );

    // The parent of an incremental backup comes from the same host.
    let again = repo.json(&["backup", uploads.to_str().unwrap(), "--host", "web2"]);
    let snapshots = repo.json(&["snapshots", "--host", "web2"]);
    assert_eq!(
        snapshots[1]["parent"].as_str(),
        Some(second.as_str()),
        "{again}"
    );

    // `forget ID` removes exactly that snapshot; ids and a policy together are refused.
    let err = repo.fails(&["forget", &first[..8], "--keep-last", "1"], 2);
    assert!(err.contains("not both"), "{err}");
    repo.ok(&["forget", &first[..8]]);
    let left = listed_ids(&[]);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.contains(&first), "{left:?}");

    let empty = repo.path("empty.txt");
    std::fs::write(&empty, "# nothing\n").unwrap();
    let err = repo.fails(&["backup", "--files-from", empty.to_str().unwrap()], 1);
    assert!(err.contains("lists no paths"), "{err}");
}

#[test]
fn a_sources_excludes_in_lifeboat_toml_reach_its_backups() {
    let repo = TestRepo::local();
    let app = app_folder(&repo);
    let config = repo.path("lifeboat.toml");
    std::fs::write(
        &config,
        format!(
            "[[source]]\nname = \"files\"\nurl = \"{}\"\nexclude = [\"*.log\", \"node_modules\"]\nexclude_if_present = [\"CACHEDIR.TAG\"]\n\
             [[target]]\nname = \"vault\"\nurl = \"{}\"\n\
             [[plan]]\nname = \"p\"\nsources = [\"files\"]\ntargets = [\"vault\"]\nschedule = \"every 1h\"\n\
             [agent]\nlisten = \"127.0.0.1:{}\"\nstate = \"{}\"\n",
            app.display(),
            repo.url,
            common::postgres::free_port(),
            repo.path("agent.db").display()
        ),
    )
    .unwrap();
    repo.ok(&["config", "check", "--config", config.to_str().unwrap()]);
    let mut agent = repo
        .command()
        .args(["agent", "--config", config.to_str().unwrap()])
        .env("LIFEBOAT_STATE_DIR", repo.path("state"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let snapshots = loop {
        let found = repo.json(&["snapshots", "--tag", "source:files"]);
        if !found.as_array().unwrap().is_empty() {
            break found;
        }
        if std::time::Instant::now() > deadline {
            let _ = agent.kill();
            panic!("the agent took no backup of the source within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    agent.kill().unwrap();
    agent.wait().unwrap();
    let id = snapshots[0]["id"].as_str().unwrap();
    let paths = listed(&repo, id);
    assert!(paths.contains("/app/uploads/B.BAK"), "{paths:?}");
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with(".log") || p.contains("node_modules") || p.contains("cache")),
        "{paths:?}"
    );

    // Excludes on a database server are a configuration error, said by line.
    std::fs::write(
        &config,
        "[[source]]\nname = \"db\"\nurl = \"postgres://postgres@127.0.0.1/app\"\nexclude = [\"x\"]\n",
    )
    .unwrap();
    let err = repo.fails(
        &["config", "check", "--config", config.to_str().unwrap()],
        2,
    );
    assert!(err.contains("apply to files and directories"), "{err}");
}
