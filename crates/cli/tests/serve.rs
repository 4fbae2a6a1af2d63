//! `lifeboat serve`: a repository over HTTPS with per-host tokens. An `append` host backs
//! up and restores but can neither delete nor change what is stored, whatever it sends;
//! an `admin` prune beside `append` backups loses nothing (FORMAT §10.3 through the
//! server). Everything runs on loopback with the server's self-signed certificate.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::server::TestServer;
use common::{digest, files_under, write_pseudo_random as write, TestRepo};

/// Every stored object but locks (which come and go with every command), with its bytes.
fn stored_objects(repo: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(repo)
        .into_iter()
        .map(|p| p.strip_prefix(repo).unwrap().display().to_string())
        .filter(|name| !name.starts_with("locks/") && !name.starts_with(".tmp/"))
        .map(|name| {
            let bytes = std::fs::read(repo.join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

#[test]
fn an_append_host_backs_up_but_cannot_delete_or_change_anything() {
    let server = TestServer::start();
    let admin_token = server.add_token("ops", "admin");
    let app_token = server.add_token("app1", "append");
    let read_token = server.add_token("auditor", "read");
    let admin = server.client(&admin_token);
    let app = server.client(&app_token);
    let reader = server.client(&read_token);

    // An append token cannot create the repository (config and key slots are admin's).
    let err = app.fails(
        &["init", "--kdf-memory-mib", "8", "--kdf-iterations", "1"],
        5,
    );
    assert!(err.contains("role append"), "{err}");
    admin.init();

    let data = app.path("data");
    write(&data.join("a"), 700_000, 1);
    write(&data.join("sub/b"), 50_000, 2);
    let first = app.backup(&[&data]);
    let first_digest = digest(&data);
    write(&data.join("a"), 700_000, 3);
    let second = app.backup(&[&data]);
    let restored = app.restore(&second, "restored");
    assert_eq!(digest(&restored.join("data")), digest(&data));
    reader.ok(&["verify", "--read-data"]);

    let before = stored_objects(&server.repo_dir());
    for args in [
        &["forget", "--keep-last", "1"][..],
        &["prune"][..],
        &["key", "remove", "0000"][..],
    ] {
        let err = app.fails(args, 1);
        assert!(
            err.contains("needs an admin token") && err.contains("token 'app1' has role append"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // The forget a dry run would do is shown; nothing is deleted.
    app.ok(&["forget", "--keep-last", "1", "--dry-run"]);

    // Raw requests, as a compromised host could send them.
    let snapshot = before
        .iter()
        .find(|(name, _)| name.starts_with("snapshots/"))
        .unwrap()
        .0
        .clone();
    let pack = before
        .iter()
        .find(|(name, _)| name.starts_with("data/"))
        .unwrap()
        .0
        .clone();
    let junk = app.path("junk");
    std::fs::write(&junk, b"ransom note").unwrap();
    for name in [&snapshot, &pack, &"config".to_string()] {
        let path = format!("/v1/objects/{name}");
        let (status, body) = server.raw(&app_token, "DELETE", &path, None);
        assert_eq!(status, 403, "DELETE {name}: {body}");
        assert!(body.contains("role append, which cannot delete"), "{body}");
        let (status, body) = server.raw(&app_token, "PUT", &path, Some(&junk));
        assert_eq!(status, 403, "PUT {name}: {body}");
    }
    // The same bytes again are accepted (a retried upload) and change nothing.
    let same = app.path("same");
    std::fs::write(
        &same,
        std::fs::read(server.repo_dir().join(&snapshot)).unwrap(),
    )
    .unwrap();
    let (status, body) = server.raw(
        &app_token,
        "PUT",
        &format!("/v1/objects/{snapshot}"),
        Some(&same),
    );
    assert_eq!(status, 200, "{body}");
    // Names outside the repository's layout are refused before anything else.
    for path in [
        "/v1/objects/.tmp/x",
        "/v1/objects/data/..%2F..%2Fetc",
        "/v1/list/..",
    ] {
        let (status, body) = server.raw(&app_token, "GET", path, None);
        assert!(status == 400 || status == 404, "{path}: {status} {body}");
    }
    assert_eq!(
        stored_objects(&server.repo_dir()),
        before,
        "an object changed"
    );

    // Each refusal is logged with the token's name, never the token.
    let log = server.log();
    assert!(
        log.contains("token=app1") && log.contains("DELETE"),
        "{log}"
    );
    for token in [&admin_token, &app_token, &read_token] {
        assert!(!log.contains(token.as_str()), "a token in the log");
    }

    // Every snapshot still restores.
    let again = reader.restore(&first, "first");
    assert_eq!(digest(&again.join("data")), first_digest);
    let again = reader.restore(&second, "second");
    assert_eq!(digest(&again.join("data")), digest(&data));

    // The app host's runbook marks that copy immutable (the server said the token is
    // append-only) and tells the admin-token holder what to do; with the admin's
    // token the same copy is not immutable from that host.
    let config = app.path("lifeboat.toml");
    common::write_one_plan_config(&config, &data.display().to_string(), &server.url());
    let runbook = |host: &TestRepo| {
        let mut command = host.command();
        command.args(["plan", "--config", config.to_str().unwrap()]);
        common::succeeded(&command.output().unwrap())
    };
    let seen = runbook(&app);
    assert!(
        seen.contains("| yes (vault: append-only token) |"),
        "{seen}"
    );
    assert!(seen.contains("Immutable from this host: vault"), "{seen}");
    assert!(seen.contains("lifeboat serve token remove NAME"), "{seen}");
    let seen = runbook(&admin);
    assert!(seen.contains("No target is immutable"), "{seen}");

    // The admin can do what the app host cannot.
    admin.ok(&["forget", "--keep-last", "1"]);
    admin.ok(&["prune"]);
    assert_eq!(reader.snapshot_ids(), vec![second]);
}

#[test]
fn tokens_roles_and_fingerprints_are_checked() {
    let server = TestServer::start();
    let admin_token = server.add_token("ops", "admin");
    let read_token = server.add_token("auditor", "read");
    let admin = server.client(&admin_token);
    admin.init();
    let data = admin.path("data");
    write(&data.join("a"), 10_000, 4);
    admin.backup(&[&data]);

    // The token file holds hashes only, and only its owner may read it.
    let token_file = server.state_dir().join("tokens.json");
    let text = std::fs::read_to_string(&token_file).unwrap();
    assert!(
        text.contains("auditor") && text.contains("sha256"),
        "{text}"
    );
    for token in [&admin_token, &read_token] {
        assert!(!text.contains(&token[4..]), "a token in plain text");
    }
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let listed = String::from_utf8(server.token_command(&["list"]).stdout).unwrap();
    assert!(
        listed.contains("auditor") && listed.contains("read"),
        "{listed}"
    );
    assert!(!listed.contains(&read_token[4..]));

    // A read token reads, but cannot store.
    let reader = server.client(&read_token);
    assert_eq!(reader.snapshot_ids().len(), 1);
    let junk = admin.path("junk");
    std::fs::write(&junk, b"x").unwrap();
    let (status, body) = server.raw(&read_token, "PUT", "/v1/objects/data/ab/abcd", Some(&junk));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("role read"), "{body}");
    let err = reader.fails(&["backup", data.to_str().unwrap()], 5);
    assert!(err.contains("token 'auditor' has role read"), "{err}");

    // No token, or an unknown one: 401.
    let (status, _) = server.raw("", "GET", "/v1/list/snapshots", None);
    assert_eq!(status, 401);
    let (status, body) = server.raw("lbt_0123", "GET", "/v1/list/snapshots", None);
    assert_eq!(status, 401, "{body}");
    let (status, body) = server.raw(&read_token, "GET", "/v1/whoami", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"role\":\"read\""), "{body}");

    // A removed token is refused from the next request on.
    common::succeeded(&server.token_command(&["remove", "auditor"]));
    let err = reader.fails(&["snapshots"], 5);
    assert!(err.contains("not known to this server"), "{err}");

    // The client: the token only from the environment, the certificate pinned.
    let wrong = format!("sha256:{}", "00".repeat(32));
    let client = TestRepo::at(
        &server.url(),
        vec![
            ("LIFEBOAT_SERVER_TOKEN".into(), admin_token.clone()),
            ("LIFEBOAT_SERVER_FINGERPRINT".into(), wrong.clone()),
        ],
    );
    let err = client.fails(&["snapshots"], 5);
    assert!(
        err.contains(&wrong) && err.contains(&server.fingerprint) && err.contains("not the pinned"),
        "{err}"
    );
    let in_url = TestRepo::at(
        &format!("lifeboat+https://ops:{admin_token}@{}", server.address),
        vec![(
            "LIFEBOAT_SERVER_FINGERPRINT".into(),
            server.fingerprint.clone(),
        )],
    );
    let err = in_url.fails(&["snapshots"], 5);
    assert!(err.contains("LIFEBOAT_SERVER_TOKEN"), "{err}");
    assert!(!err.contains(&admin_token), "the token was echoed: {err}");
    let no_token = TestRepo::at(
        &format!("{}?fingerprint={}", server.url(), server.fingerprint),
        vec![],
    );
    let err = no_token.fails(&["snapshots"], 5);
    assert!(err.contains("set LIFEBOAT_SERVER_TOKEN"), "{err}");
}

/// The concurrent-prune test of tests/prune.rs through the server: backups with an
/// append token, forget and prune with an admin token, all at once.
#[test]
fn an_admin_prune_beside_append_backups_loses_nothing() {
    let server = TestServer::start();
    let admin = server.client(&server.add_token("ops", "admin"));
    let app = server.client(&server.add_token("app1", "append"));
    admin.init();
    common::concurrent::prune_beside_backups_loses_nothing(&app, &admin);
    assert!(
        !server.log().contains("refused"),
        "a backup was refused something:\n{}",
        server.log()
    );
}

/// Continuous replication from an append host: its stream lease (a lock it refreshes and
/// releases), base snapshot and segments all go through the server.
#[test]
fn an_append_host_replicates_a_live_database() {
    let server = TestServer::start();
    let admin = server.client(&server.add_token("ops", "admin"));
    let app = server.client(&server.add_token("app1", "append"));
    admin.init();
    let db_path = app.path("app.db");
    let db = rusqlite::Connection::open(&db_path).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE ledger(id INTEGER PRIMARY KEY, amount INTEGER NOT NULL);
         CREATE TABLE counter(n INTEGER NOT NULL); INSERT INTO counter VALUES (0);",
    )
    .unwrap();
    let mut replicator = app
        .command()
        .args([
            "replicate",
            db_path.to_str().unwrap(),
            "--interval",
            "200ms",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_millis(2500);
    while std::time::Instant::now() < until {
        db.execute_batch(
            "BEGIN; INSERT INTO ledger(amount) VALUES (5), (-5);
             UPDATE counter SET n = n + 1; COMMIT;",
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let committed = common::ledger_counter(&db_path);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    unsafe { libc::kill(replicator.id() as i32, libc::SIGTERM) };
    let status = replicator.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut replicator.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");

    let target = app.path("restored.db");
    let args = [
        "restore",
        "--source",
        db_path.to_str().unwrap(),
        "--at",
        "latest",
    ];
    app.ok(&[&args[..], &["--target", target.to_str().unwrap()]].concat());
    assert_eq!(common::ledger_counter(&target), committed);
    // The lease was released: no lock is left behind.
    assert!(files_under(&server.repo_dir().join("locks")).is_empty());
    assert!(!server.log().contains("refused"), "{}", server.log());
}
