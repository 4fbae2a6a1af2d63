//! One odd file must not stop a backup (issue 15, item 9): FIFOs, sockets, devices,
//! unreadable files, files with the SQLite header that are not databases, corrupt
//! databases, symlinks where a database belongs and paths that vanish during the walk are
//! skipped or stored as plain bytes, each with a warning in the output, the JSON report
//! and the snapshot, and the backup exits 6 ("saved, with warnings").
//!
//! Every backup here runs under a time limit: the old code hung forever on a symlink to a
//! FIFO, and a hang must fail the test, not block it.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::http::WebhookReceiver;
use common::{pseudo_random, TestRepo, PASSWORD};

const SAVED_WITH_WARNINGS: i32 = 6;
const NOBODY: u32 = 65534;
/// Generous: a backup of these few files takes well under a second.
const LIMIT: Duration = Duration::from_secs(120);

/// Runs `command` to the end, or kills it after [`LIMIT`] and fails the test.
fn bounded(mut command: Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lifeboat");
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "lifeboat hung (killed after {LIMIT:?}); stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn backup(repo: &TestRepo, args: &[&str]) -> Output {
    let mut command = repo.command();
    command.arg("backup").args(args);
    bounded(command)
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo reads a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// A small database in rollback-journal mode with `rows` rows.
fn database(path: &Path, rows: i64) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);")
        .unwrap();
    for i in 0..rows {
        db.execute("INSERT INTO t(v) VALUES (?1)", [format!("row {i}")])
            .unwrap();
    }
}

/// A file with the SQLite header followed by bytes no database has (an "avatar").
fn fake_database(path: &Path) {
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(pseudo_random(8000, 7));
    fs::write(path, bytes).unwrap();
}

/// A real database with its first b-tree page (the schema's) damaged: SQLite opens the
/// file and then reports it malformed.
fn corrupt_database(path: &Path) {
    database(path, 50);
    let mut bytes = fs::read(path).unwrap();
    // Byte 100 is the b-tree page type of page 1; 0x55 is no page type.
    bytes[100] = 0x55;
    bytes[101] ^= 0xFF;
    fs::write(path, bytes).unwrap();
    let probe = rusqlite::Connection::open(path).unwrap().query_row(
        "SELECT count(*) FROM sqlite_schema",
        [],
        |r| r.get::<_, i64>(0),
    );
    assert!(probe.is_err(), "the damage must be visible to SQLite");
}

/// The warnings' paths, made relative to `base`.
fn warned(warnings: &serde_json::Value, base: &Path) -> BTreeSet<String> {
    warnings
        .as_array()
        .unwrap_or_else(|| panic!("no warnings array: {warnings}"))
        .iter()
        .map(|w| {
            assert!(w["problem"].as_str().is_some_and(|p| !p.is_empty()), "{w}");
            let path = PathBuf::from(w["path"].as_str().unwrap());
            path.strip_prefix(base).unwrap().display().to_string()
        })
        .collect()
}

fn problem_of(warnings: &serde_json::Value, base: &Path, rel: &str) -> String {
    let path = base.join(rel).display().to_string();
    warnings
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["path"] == path.as_str())
        .and_then(|w| w["problem"].as_str())
        .unwrap_or_else(|| panic!("no warning for {rel}: {warnings}"))
        .to_string()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
}

fn chown_tree(path: &Path, uid: u32) {
    chown(path, uid);
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

#[test]
fn odd_files_are_skipped_or_stored_as_bytes_and_everything_else_is_backed_up() {
    let repo = TestRepo::local();
    let base = repo.dir.path();
    // The backup runs as nobody: it must be able to reach the source and write only
    // the repository and its cache, which nobody owns.
    fs::set_permissions(base, fs::Permissions::from_mode(0o755)).unwrap();
    chown_tree(&repo.repo_dir(), NOBODY);
    fs::create_dir_all(base.join("cache")).unwrap();
    chown(&base.join("cache"), NOBODY);

    let src = base.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("good.txt"), b"a good file\n").unwrap();
    fs::write(src.join("sub/data.bin"), pseudo_random(300_000, 1)).unwrap();
    database(&src.join("app.db"), 200);
    fake_database(&src.join("avatar.png"));
    corrupt_database(&src.join("corrupt.db"));
    mkfifo(&src.join("fifo"));
    drop(std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap());
    let dev = std::ffi::CString::new(src.join("null").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mknod reads a valid NUL-terminated path; a character device like /dev/null.
    assert_eq!(
        unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o644, libc::makedev(1, 3)) },
        0,
        "mknod (the test runs as root)"
    );
    fs::write(src.join("secret.txt"), b"nobody may read this").unwrap();
    fs::set_permissions(src.join("secret.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    // A symlink to a FIFO where a database would be, beside a -wal file: the old code
    // opened the link to see whether the -wal belonged to a database, and hung.
    mkfifo(&base.join("outside-fifo"));
    symlink(base.join("outside-fifo"), src.join("linked.db")).unwrap();
    fs::write(
        src.join("linked.db-wal"),
        b"not a companion of any database",
    )
    .unwrap();
    // A regular journal beside a symlink to a real database: not that database's
    // journal (the link is stored as a link), so it is stored.
    symlink("app.db", src.join("x.db")).unwrap();
    fs::write(src.join("x.db-journal"), b"a journal beside a link").unwrap();

    let odd = set(&[
        "avatar.png",
        "corrupt.db",
        "fifo",
        "sock",
        "null",
        "secret.txt",
    ]);
    let run_as_nobody = |json: bool| {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(common::lifeboat_bin())
            .args(["backup", src.to_str().unwrap()])
            .args(json.then_some("--json"))
            .env("LIFEBOAT_REPO", &repo.url)
            .env("LIFEBOAT_PASSWORD", PASSWORD)
            .env("LIFEBOAT_CACHE_DIR", base.join("cache"))
            .env("HOME", base.join("cache"))
            .env_remove("LIFEBOAT_PASSWORD_FILE");
        bounded(command)
    };

    let out = run_as_nobody(true);
    assert_eq!(
        out.status.code(),
        Some(SAVED_WITH_WARNINGS),
        "{}",
        text(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        warned(&report["warnings"], base),
        odd.iter().map(|p| format!("src/{p}")).collect()
    );
    for (file, said) in [
        ("avatar.png", "stored as plain bytes"),
        ("corrupt.db", "stored as plain bytes"),
        ("fifo", "FIFO"),
        ("sock", "socket"),
        ("null", "character device"),
        ("secret.txt", "ermission denied"),
    ] {
        let problem = problem_of(&report["warnings"], base, &format!("src/{file}"));
        assert!(problem.contains(said), "{file}: {problem}");
    }
    let id = report["id"].as_str().unwrap().to_string();

    // The snapshot records the same warnings.
    let listed = repo.json(&["snapshots"]);
    let snapshot = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap();
    assert_eq!(
        warned(&snapshot["warnings"], base),
        warned(&report["warnings"], base)
    );

    // People read the same paths on stdout.
    let out = run_as_nobody(false);
    assert_eq!(
        out.status.code(),
        Some(SAVED_WITH_WARNINGS),
        "{}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for file in &odd {
        let path = src.join(file).display().to_string();
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("warning: ") && l.contains(&path)),
            "{file} not named:\n{stdout}"
        );
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("saved"),
        "{}",
        text(&out)
    );

    // Everything else restores as it was; what could only be stored as bytes is those
    // bytes exactly.
    let target = repo.restore(&id, "restored");
    let back = target.join("src");
    for file in [
        "good.txt",
        "sub/data.bin",
        "avatar.png",
        "corrupt.db",
        "linked.db-wal",
        "x.db-journal",
    ] {
        assert_eq!(
            fs::read(back.join(file)).unwrap(),
            fs::read(src.join(file)).unwrap(),
            "{file}"
        );
    }
    common::assert_integrity(&back.join("app.db"));
    let rows: i64 = rusqlite::Connection::open(back.join("app.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 200);
    assert_eq!(
        fs::read_link(back.join("linked.db")).unwrap(),
        base.join("outside-fifo")
    );
    assert_eq!(
        fs::read_link(back.join("x.db")).unwrap(),
        Path::new("app.db")
    );
    for file in ["fifo", "sock", "null", "secret.txt"] {
        assert!(
            fs::symlink_metadata(back.join(file)).is_err(),
            "{file} restored"
        );
    }
}

#[test]
fn a_symlink_to_a_fifo_beside_a_wal_file_does_not_hang() {
    let repo = TestRepo::local();
    let base = repo.dir.path();
    let src = base.join("src");
    fs::create_dir_all(&src).unwrap();
    mkfifo(&base.join("fifo"));
    symlink(base.join("fifo"), src.join("app.db")).unwrap();
    fs::write(src.join("app.db-wal"), b"wal bytes").unwrap();
    fs::write(src.join("readme.txt"), b"hello").unwrap();
    // A database whose -wal is a link to the FIFO is not opened through SQLite either
    // (SQLite would open the link and could block on it).
    fs::create_dir_all(src.join("db")).unwrap();
    database(&src.join("db/real.db"), 10);
    symlink(base.join("fifo"), src.join("db/real.db-wal")).unwrap();

    let out = backup(&repo, &[src.to_str().unwrap(), "--json"]);
    assert_eq!(
        out.status.code(),
        Some(SAVED_WITH_WARNINGS),
        "{}",
        text(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(warned(&report["warnings"], base), set(&["src/db/real.db"]));
    let problem = problem_of(&report["warnings"], base, "src/db/real.db");
    assert!(problem.contains("real.db-wal is a symlink"), "{problem}");
    let back = repo
        .restore(report["id"].as_str().unwrap(), "restored")
        .join("src");
    assert_eq!(fs::read(back.join("app.db-wal")).unwrap(), b"wal bytes");
    assert_eq!(fs::read(back.join("readme.txt")).unwrap(), b"hello");
    assert_eq!(
        fs::read_link(back.join("app.db")).unwrap(),
        base.join("fifo")
    );
    assert_eq!(
        fs::read(back.join("db/real.db")).unwrap(),
        fs::read(src.join("db/real.db")).unwrap()
    );

    // Without the odd database, nothing is odd: a clean exit.
    fs::remove_dir_all(src.join("db")).unwrap();
    let out = backup(&repo, &[src.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["warnings"], serde_json::json!([]));
}

#[test]
fn companions_are_skipped_only_beside_a_real_database() {
    let repo = TestRepo::local();
    let base = repo.dir.path();
    let src = base.join("src");
    fs::create_dir_all(&src).unwrap();
    database(&base.join("elsewhere.db"), 5);
    symlink(base.join("elsewhere.db"), src.join("x.db")).unwrap();
    fs::write(src.join("x.db-journal"), b"journal beside a link").unwrap();
    fs::write(src.join("plain.txt-wal"), b"no database called plain.txt").unwrap();
    fs::write(src.join("plain.txt"), b"just text").unwrap();
    // A real database's companions are part of its consistent copy, and skipped.
    let live = rusqlite::Connection::open(src.join("live.db")).unwrap();
    live.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
         CREATE TABLE t(v); INSERT INTO t VALUES (1), (2), (3);",
    )
    .unwrap();
    assert!(src.join("live.db-wal").exists());

    let out = backup(&repo, &[src.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    drop(live);
    let back = repo.restore(&id, "restored").join("src");
    assert_eq!(
        fs::read(back.join("x.db-journal")).unwrap(),
        b"journal beside a link"
    );
    assert_eq!(
        fs::read(back.join("plain.txt-wal")).unwrap(),
        b"no database called plain.txt"
    );
    assert!(!back.join("live.db-wal").exists() && !back.join("live.db-shm").exists());
    let rows: i64 = rusqlite::Connection::open(back.join("live.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3);
}

#[test]
fn a_fake_database_named_on_the_command_line_fails_but_inside_a_directory_is_bytes() {
    let repo = TestRepo::local();
    let src = repo.path("uploads");
    fs::create_dir_all(&src).unwrap();
    fake_database(&src.join("avatar.png"));
    fs::write(src.join("ok.txt"), b"fine").unwrap();

    // Named alone, it is the database the user asked for: no snapshot of junk.
    let out = backup(&repo, &[src.join("avatar.png").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("avatar.png") && stderr.contains("not a readable database"),
        "{stderr}"
    );
    assert!(repo.snapshot_ids().is_empty());
    // A FIFO named alone fails too, without blocking.
    mkfifo(&repo.path("fifo"));
    let out = backup(&repo, &[repo.path("fifo").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FIFO"),
        "{}",
        text(&out)
    );

    // Inside the uploads folder it is one odd file among many.
    let out = backup(&repo, &[src.to_str().unwrap(), "--json"]);
    assert_eq!(
        out.status.code(),
        Some(SAVED_WITH_WARNINGS),
        "{}",
        text(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problem = problem_of(&report["warnings"], repo.dir.path(), "uploads/avatar.png");
    assert!(problem.contains("stored as plain bytes"), "{problem}");
    let back = repo.restore(report["id"].as_str().unwrap(), "restored");
    assert_eq!(
        fs::read(back.join("uploads/avatar.png")).unwrap(),
        fs::read(src.join("avatar.png")).unwrap()
    );
    assert_eq!(fs::read(back.join("uploads/ok.txt")).unwrap(), b"fine");
}

#[test]
fn paths_that_vanish_during_the_walk_are_warnings() {
    let repo = TestRepo::local();
    let src = repo.path("src");
    fs::create_dir_all(src.join("going/deeper")).unwrap();
    fs::write(src.join("going/deeper/f.txt"), b"soon gone").unwrap();
    fs::write(src.join("gone.txt"), b"soon gone").unwrap();
    fs::write(src.join("stays.txt"), b"still here").unwrap();

    // The walk pauses once it has listed `src`; the directory and file are deleted then.
    let pause = repo.path("pause");
    let mut command = repo.command();
    command
        .args(["backup", src.to_str().unwrap(), "--json"])
        .env(
            "LIFEBOAT_PAUSE_AT",
            format!("walk-dir-listed:{}", pause.display()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let reached = PathBuf::from(format!("{}.reached", pause.display()));
    let deadline = Instant::now() + LIMIT;
    while !reached.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the backup ended ({status}) without pausing in the walk");
        }
        assert!(Instant::now() < deadline, "the walk never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    fs::remove_dir_all(src.join("going")).unwrap();
    fs::remove_file(src.join("gone.txt")).unwrap();
    fs::write(format!("{}.go", pause.display()), b"").unwrap();
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the backup hung after the pause");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(SAVED_WITH_WARNINGS),
        "{}",
        text(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        warned(&report["warnings"], repo.dir.path()),
        set(&["src/going", "src/gone.txt"])
    );
    let problem = problem_of(&report["warnings"], repo.dir.path(), "src/going");
    assert!(problem.contains("vanished"), "{problem}");
    let back = repo.restore(report["id"].as_str().unwrap(), "restored");
    assert_eq!(fs::read(back.join("src/stays.txt")).unwrap(), b"still here");
}

#[test]
fn the_agent_keeps_a_snapshot_with_warnings_and_raises_a_warning_incident() {
    let repo = TestRepo::local();
    let dir = repo.dir.path();
    let uploads = dir.join("uploads");
    fs::create_dir_all(&uploads).unwrap();
    fs::write(uploads.join("a.txt"), b"uploaded").unwrap();
    mkfifo(&uploads.join("odd-fifo"));
    let hook = WebhookReceiver::start();
    let port = common::postgres::free_port();
    let config = dir.join("lifeboat.toml");
    fs::write(
        &config,
        format!(
            r#"
[[source]]
name = "uploads"
url = "./uploads"
[[target]]
name = "main"
url = "{url}"
[[plan]]
name = "files"
sources = ["uploads"]
targets = ["main"]
schedule = "every 2s"
[agent]
listen = "127.0.0.1:{port}"
state = "./agent.db"
[[alert]]
kind = "webhook"
url = "{hook}"
"#,
            url = repo.url,
            hook = hook.url,
        ),
    )
    .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Kill(
        Command::new(common::lifeboat_bin())
            .args(["agent", "--config"])
            .arg(&config)
            .current_dir(dir)
            .env("LIFEBOAT_PASSWORD", PASSWORD)
            .env("LIFEBOAT_CACHE_DIR", dir.join("cache"))
            .env_remove("LIFEBOAT_REPO")
            .env_remove("LIFEBOAT_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    hook.wait_for("a job_warnings alert", LIMIT, |e| {
        e.iter().any(|e| e["event"] == "job_warnings")
    });
    let warning = &hook.of_kind("job_warnings")[0];
    assert_eq!(warning["severity"], "warning", "{warning}");
    assert!(
        warning["text"].as_str().unwrap().contains("odd-fifo"),
        "{warning}"
    );
    assert!(
        hook.of_kind("job_failed").is_empty(),
        "{:#?}",
        hook.events()
    );
    // The run counted: its snapshot is kept, with the warning recorded.
    // (The agent also keeps its configuration there, tagged lifeboat:config.)
    let snapshots = repo.json(&["snapshots", "--tag", "source:uploads"]);
    let first = &snapshots.as_array().unwrap()[0];
    assert!(
        first["warnings"].to_string().contains("odd-fifo"),
        "{first}"
    );

    // Once the odd file is gone, the incident is over.
    fs::remove_file(uploads.join("odd-fifo")).unwrap();
    hook.wait_for("a recovery", LIMIT, |e| {
        e.iter().any(|e| {
            e["event"] == "recovered"
                && e["what"].as_str().is_some_and(|w| w.contains("every path"))
        })
    });
    assert_eq!(
        hook.of_kind("job_warnings").len(),
        1,
        "alerted more than once"
    );
}
