//! `lifeboat drill`: a restore into a scratch place that passes on a good backup and
//! fails, naming the cause, on a damaged one or a failing check; always cleaned up.

mod common;

use std::path::Path;

use common::TestRepo;

fn config(repo: &TestRepo, checks: &[&str]) -> std::path::PathBuf {
    let path = repo.path("lifeboat.toml");
    let checks: Vec<String> = checks.iter().map(|c| format!("{c:?}")).collect();
    std::fs::write(
        &path,
        format!(
            "[[source]]\nname = \"app\"\nurl = \"sqlite:./app.db\"\nchecks = [{}]\n\
             [[target]]\nname = \"local\"\nurl = \"{}\"\n\
             [[plan]]\nname = \"app\"\nsources = [\"app\"]\ntargets = [\"local\"]\nschedule = \"every 1h\"\n",
            checks.join(", "),
            repo.url
        ),
    )
    .unwrap();
    path
}

fn drill(repo: &TestRepo, config: &Path, source: &str) -> (i32, serde_json::Value, String) {
    let scratch = repo.path("tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    let out = repo
        .command()
        .args(["drill", source, "--json"])
        .env("LIFEBOAT_CONFIG", config)
        .env("TMPDIR", &scratch)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.code().unwrap(), json, stderr)
}

fn app_database(path: &Path) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode=wal;
         CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER REFERENCES customers(id));
         INSERT INTO customers(name) VALUES ('ada'), ('grace');
         INSERT INTO orders(customer) VALUES (1), (2);",
    )
    .unwrap();
}

#[test]
fn a_drill_passes_on_a_good_backup_and_fails_on_a_failing_check_or_damage() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    app_database(&db);
    repo.backup(&[&db]);

    let good = config(&repo, &["SELECT count(*) = 2 FROM customers"]);
    let (code, report, stderr) = drill(&repo, &good, "app");
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(report["passed"], true);
    assert!(report["rto_seconds"].as_f64().unwrap() > 0.0);
    assert!(report["rpo_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(report["checks"].as_array().unwrap().len(), 2, "{report}");
    // The result is recorded in the repository.
    let drills = std::fs::read_dir(repo.repo_dir().join("drills"))
        .unwrap()
        .count();
    assert_eq!(drills, 1);
    // The scratch copy is gone.
    let leftovers = std::fs::read_dir(repo.path("tmp")).unwrap().count();
    assert_eq!(leftovers, 0, "a drill left its scratch directory behind");

    // A check that does not hold: failed, and named.
    let strict = config(&repo, &["SELECT count(*) > 100 FROM customers"]);
    let (code, report, stderr) = drill(&repo, &strict, "app");
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["passed"], false);
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("count(*) > 100"),
        "{report}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // A damaged pack: failed, naming the damage.
    for pack in common::files_under(&repo.repo_dir().join("data")) {
        let mut bytes = std::fs::read(&pack).unwrap();
        let at = bytes.len() / 3;
        bytes[at] ^= 0x10;
        std::fs::write(&pack, bytes).unwrap();
    }
    let (code, report, _) = drill(&repo, &good, "app");
    assert_eq!(code, 1, "{report}");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("damaged") || reason.contains("authentication"),
        "{reason}"
    );
}

#[test]
fn a_postgres_drill_restores_into_a_scratch_database_and_drops_it() {
    let repo = TestRepo::local();
    let name = format!("lbt_{}_drill", std::process::id());
    let server = "postgres://postgres@127.0.0.1:5432";
    common::postgres::psql(
        &format!("{server}/postgres"),
        &format!("DROP DATABASE IF EXISTS {name}"),
    );
    common::postgres::psql(
        &format!("{server}/postgres"),
        &format!("CREATE DATABASE {name}"),
    );
    common::postgres::psql(
        &format!("{server}/{name}"),
        "CREATE TABLE users(id int primary key); INSERT INTO users SELECT generate_series(1, 500);",
    );
    let url = format!("{server}/{name}");
    repo.ok(&["backup", &url]);
    let none = repo.path("none.toml");
    let (code, report, stderr) = drill(&repo, &none, &url);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert!(
        report["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("500 rows"),
        "{report}"
    );
    // --at random drills any of the dumps, not only the newest.
    common::postgres::psql(
        &format!("{server}/{name}"),
        "INSERT INTO users SELECT generate_series(501, 600);",
    );
    repo.ok(&["backup", &url]);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let out = repo.ok(&["drill", &url, "--at", "random", "--json"]);
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["passed"], true, "{report}");
        seen.insert(report["checks"][0]["detail"].as_str().unwrap().to_string());
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen,
        ["1 tables, 500 rows", "1 tables, 600 rows"]
            .map(String::from)
            .into(),
        "random drills should reach both dumps"
    );
    let left = common::postgres::psql(
        &format!("{server}/postgres"),
        "SELECT count(*) FROM pg_database WHERE datname LIKE '%lifeboat_drill%'",
    );
    assert_eq!(left.trim(), "0", "the scratch database was left behind");
    common::postgres::psql(
        &format!("{server}/postgres"),
        &format!("DROP DATABASE {name}"),
    );
}

#[test]
fn a_files_drill_restores_every_file() {
    let repo = TestRepo::local();
    let uploads = repo.path("uploads");
    std::fs::create_dir_all(uploads.join("2026")).unwrap();
    std::fs::write(
        uploads.join("2026/a.png"),
        common::pseudo_random(200_000, 1),
    )
    .unwrap();
    std::fs::write(uploads.join("b.txt"), "b").unwrap();
    repo.backup(&[&uploads]);
    let none = repo.path("none.toml");
    let (code, report, stderr) = drill(&repo, &none, uploads.to_str().unwrap());
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(report["checks"][0]["passed"], true, "{report}");
    // --at picks the snapshot at or before a time; before the first is a clear failure.
    let first = repo.json(&["snapshots"])[0].clone();
    std::thread::sleep(std::time::Duration::from_millis(50));
    repo.backup(&[&uploads]);
    let at_first = repo.json(&[
        "drill",
        uploads.to_str().unwrap(),
        "--at",
        first["time"].as_str().unwrap(),
    ]);
    assert_eq!(at_first["snapshot"], first["id"], "{at_first}");
    assert_eq!(at_first["passed"], true);
    let (code, before_first) = {
        let out = repo
            .command()
            .args([
                "drill",
                uploads.to_str().unwrap(),
                "--at",
                "2020-01-01T00:00:00Z",
                "--json",
            ])
            .output()
            .unwrap();
        (
            out.status.code(),
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        )
    };
    assert_eq!(code, Some(1));
    assert!(
        before_first["reason"]
            .as_str()
            .unwrap()
            .contains("the first is from"),
        "{before_first}"
    );
    // Nothing backed up under that path: a clear failure.
    let (code, report, _) = drill(&repo, &none, repo.path("elsewhere").to_str().unwrap());
    assert_eq!(code, 1);
    assert!(
        report["reason"].as_str().unwrap().contains("no snapshot"),
        "{report}"
    );
}

fn mariadb(sql: &str) -> String {
    let out = std::process::Command::new("mariadb")
        .args([
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            "--batch",
            "--skip-column-names",
            "-e",
            sql,
        ])
        .output()
        .expect("mariadb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_mariadb_drill_restores_into_a_scratch_database_and_drops_it() {
    let repo = TestRepo::local();
    let name = format!("lbt_{}_drill", std::process::id());
    mariadb(&format!(
        "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}; \
         CREATE TABLE {name}.users(id INT PRIMARY KEY); \
         INSERT INTO {name}.users VALUES (1), (2), (3);"
    ));
    let url = format!("mysql://root@127.0.0.1:3306/{name}");
    repo.ok(&["backup", &url]);
    let none = repo.path("none.toml");
    let (code, report, stderr) = drill(&repo, &none, &url);
    mariadb(&format!("DROP DATABASE {name}"));
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert!(
        report["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("3 rows"),
        "{report}"
    );
    let left = mariadb("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE '%lifeboat_drill%'");
    assert_eq!(left, "0", "the scratch database was left behind");
    // Before the first dump there is nothing to drill: a clear failure.
    let (code, report, _) = {
        let out = repo
            .command()
            .args(["drill", &url, "--at", "2000-01-01T00:00:00Z", "--json"])
            .env("LIFEBOAT_CONFIG", &none)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default(),
            (),
        )
    };
    assert_eq!(code, 1);
    assert!(
        report["reason"].as_str().unwrap().contains("no dump"),
        "{report}"
    );
}
