//! Logical backups of the machine's real PostgreSQL 15 (127.0.0.1:5432, user postgres)
//! and MariaDB 10.11 (127.0.0.1:3306, root): consistent dumps that deduplicate, restores
//! into new databases that prove every row came back, and clear errors for bad input.

mod common;

use std::process::Command;

use common::TestRepo;

const PG: &str = "postgres://postgres@127.0.0.1:5432";
const MY: &str = "mysql://root@127.0.0.1:3306";

fn psql(db: &str, sql: &str) -> String {
    common::postgres::psql(&format!("{PG}/{db}"), sql)
}

fn mariadb(db: Option<&str>, sql: &str) -> String {
    let mut command = Command::new("mariadb");
    command.args([
        "-h",
        "127.0.0.1",
        "-u",
        "root",
        "--batch",
        "--skip-column-names",
        "-e",
        sql,
    ]);
    command.args(db);
    let out = command.output().expect("mariadb");
    assert!(
        out.status.success(),
        "mariadb {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Test databases named after the test and this process, dropped when the test ends.
struct Databases {
    engine: &'static str,
    names: Vec<String>,
}

impl Databases {
    fn new(engine: &'static str, tag: &str, count: usize) -> Databases {
        let names: Vec<String> = (0..count)
            .map(|i| format!("lbt_{}_{tag}_{i}", std::process::id()))
            .collect();
        let dbs = Databases { engine, names };
        dbs.drop_all();
        dbs
    }

    fn drop_all(&self) {
        for name in &self.names {
            match self.engine {
                "pg" => {
                    psql(
                        "postgres",
                        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                    );
                }
                _ => {
                    mariadb(None, &format!("DROP DATABASE IF EXISTS `{name}`"));
                }
            }
        }
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        self.drop_all();
    }
}

const SHOP_PG: &str = "
    CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, photo bytea);
    CREATE TABLE \"Order Items\" (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), note text);
    CREATE VIEW big_spenders AS SELECT c.name FROM customers c JOIN \"Order Items\" o ON o.customer_id = c.id;
    CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql AS $$ SELECT upper(t) $$;
    INSERT INTO customers (name, photo)
        SELECT 'customer ' || g || E'\\twith tab\\nand newline ✓', decode(md5(g::text), 'hex')
        FROM generate_series(1, 100000) g;
    INSERT INTO \"Order Items\" (customer_id, note)
        SELECT 1 + g % 100000, repeat('x', g % 50) FROM generate_series(1, 30000) g;
    CREATE TABLE empty_one (id int);
";

/// Everything in a PostgreSQL database that a restore must bring back, as one digest.
fn pg_content(db: &str) -> String {
    psql(
        db,
        "SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
             SELECT id || name || coalesce(encode(photo, 'hex'), '') AS x FROM customers
             UNION ALL SELECT id || ':' || customer_id || coalesce(note, '') FROM \"Order Items\"
             UNION ALL SELECT name FROM big_spenders
             UNION ALL SELECT shout('ok')) t",
    )
}

#[test]
fn postgres_dump_restores_every_row_into_a_new_database_and_deduplicates_the_next_day() {
    let repo = TestRepo::local();
    let dbs = Databases::new("pg", "shop", 3);
    let (source, copy, other) = (&dbs.names[0], &dbs.names[1], &dbs.names[2]);
    psql("postgres", &format!("CREATE DATABASE {source}"));
    psql(source, SHOP_PG);
    let url = format!("{PG}/{source}");

    let first = repo.json(&["--json", "backup", &url]);
    let total = first["summary"]["total_bytes"].as_u64().unwrap();
    let snapshots = repo.json(&["--json", "snapshots"]);
    let recorded = &snapshots[0]["source"];
    assert_eq!(recorded["kind"], "database");
    assert_eq!(recorded["engine"], "postgres");
    assert_eq!(recorded["globals"], "globals.sql");
    let tables = recorded["databases"][0]["tables"].as_array().unwrap();
    let rows = |name: &str| {
        tables
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} not recorded in {tables:?}"))["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("public.customers"), 100000);
    assert_eq!(rows("public.\"Order Items\""), 30000);
    assert_eq!(rows("public.empty_one"), 0);

    // Unchanged, the dump adds nothing but its small tree (pg_dump's per-dump random
    // \restrict key would make the first and last chunk new every time).
    let unchanged = repo.json(&["--json", "backup", &url]);
    let added = unchanged["summary"]["new_bytes"].as_u64().unwrap();
    assert!(added < 4096, "an unchanged database added {added} bytes");

    // The next day: a few rows change; the dump is stored again, but only what changed.
    psql(
        source,
        "UPDATE customers SET name = name || ' (vip)' WHERE id IN (7, 50000, 99000)",
    );
    psql(
        source,
        "INSERT INTO \"Order Items\" (customer_id, note) VALUES (7, 'new')",
    );
    let second = repo.json(&["--json", "backup", &url]);
    let new_bytes = second["summary"]["new_bytes"].as_u64().unwrap();
    assert!(
        new_bytes * 3 < total,
        "the second dump added {new_bytes} of {total} bytes: it did not deduplicate"
    );

    let out = repo.ok(&["restore", "latest", "--into", &format!("{PG}/{copy}")]);
    assert!(out.contains("row counts match the dump"), "{out}");
    assert_eq!(pg_content(copy), pg_content(source));

    // A database that holds anything is not restored over unless asked.
    let err = repo.fails(&["restore", "latest", "--into", &format!("{PG}/{copy}")], 1);
    assert!(
        err.contains("is not empty") && err.contains("--force"),
        "{err}"
    );
    psql(
        copy,
        "DELETE FROM \"Order Items\"; INSERT INTO empty_one VALUES (1)",
    );
    repo.ok(&[
        "restore",
        "latest",
        "--into",
        &format!("{PG}/{copy}"),
        "--force",
    ]);
    assert_eq!(pg_content(copy), pg_content(source));
    assert_eq!(psql(copy, "SELECT count(*) FROM empty_one"), "0");

    // The first day is still there, as it was.
    let first_id = first["id"].as_str().unwrap();
    repo.ok(&["restore", first_id, "--into", &format!("{PG}/{other}")]);
    assert_eq!(
        psql(
            other,
            "SELECT count(*) FROM customers WHERE name LIKE '%(vip)'"
        ),
        "0"
    );

    // The dump files themselves can be restored, for pg_restore-free manual use.
    let dir = repo.path("files");
    repo.ok(&["restore", "latest", "--target", dir.to_str().unwrap()]);
    let sql = std::fs::read_to_string(dir.join(format!("{source}.sql"))).unwrap();
    assert!(sql.contains("CREATE TABLE public.customers"));
    assert!(dir.join("globals.sql").exists());
}

/// A database named `globals` dumps to `globals.sql`, where the server's globals went
/// too: the snapshot held two entries of one name, a tree restore now refuses. The
/// globals take another name then, and both restore.
#[test]
fn a_database_named_globals_and_the_servers_globals_both_restore() {
    let repo = TestRepo::local();
    let dbs = Databases {
        engine: "pg",
        names: vec!["globals".to_string()],
    };
    dbs.drop_all();
    psql("postgres", "CREATE DATABASE globals");
    psql(
        "globals",
        "CREATE TABLE t (id int); INSERT INTO t VALUES (7)",
    );
    let backup = repo.json(&["--json", "backup", &format!("{PG}/globals")]);
    let snapshots = repo.json(&["--json", "snapshots"]);
    let recorded = &snapshots[0]["source"];
    assert_eq!(recorded["databases"][0]["file"], "globals.sql");
    assert_eq!(recorded["globals"], "globals");
    let dir = repo.path("files");
    repo.ok(&[
        "restore",
        backup["id"].as_str().unwrap(),
        "--target",
        dir.to_str().unwrap(),
    ]);
    let dump = std::fs::read_to_string(dir.join("globals.sql")).unwrap();
    assert!(dump.contains("CREATE TABLE public.t"), "{dump}");
    let globals = std::fs::read_to_string(dir.join("globals")).unwrap();
    assert!(globals.contains("CREATE ROLE"), "{globals}");
    dbs.drop_all();
}

#[test]
fn a_dump_is_labelled_with_the_moment_its_snapshot_was_taken() {
    let repo = TestRepo::local();
    let dbs = Databases::new("pg", "dumptime", 1);
    let db = &dbs.names[0];
    psql("postgres", &format!("CREATE DATABASE \"{db}\""));
    psql(db, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
    // Between the command's start and the dump's snapshot, a write commits: the dump
    // holds it, so its label must not be earlier than that commit.
    let paused = common::paused::PausedBackup::start(
        &repo,
        "dump-snapshot",
        std::path::Path::new(&format!("{PG}/{db}")),
        "dump",
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let committed: chrono::DateTime<chrono::Utc> = psql(
        db,
        "INSERT INTO t VALUES (2); SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    )
    .parse()
    .unwrap();
    let report = paused.finish();
    let labelled: chrono::DateTime<chrono::Utc> = report["time"].as_str().unwrap().parse().unwrap();
    assert!(
        labelled >= committed,
        "labelled {labelled}, but holds a row committed at {committed}"
    );
    psql(db, "INSERT INTO t VALUES (3)");
    let restored = format!("{db}_r");
    let _cleanup = Databases {
        engine: "pg",
        names: vec![restored.clone()],
    };
    repo.ok(&[
        "restore",
        report["id"].as_str().unwrap(),
        "--into",
        &format!("{PG}/{restored}"),
    ]);
    assert_eq!(
        psql(
            &restored,
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM t"
        ),
        "1,2"
    );
}

#[test]
fn several_postgres_databases_in_one_snapshot_are_listed_and_chosen_by_name() {
    let repo = TestRepo::local();
    let dbs = Databases::new("pg", "multi", 3);
    for (i, name) in dbs.names[..2].iter().enumerate() {
        psql("postgres", &format!("CREATE DATABASE {name}"));
        psql(
            name,
            &format!(
                "CREATE TABLE t AS SELECT generate_series(1, {}) AS n",
                10 * (i + 1)
            ),
        );
    }
    let urls: Vec<String> = dbs.names[..2].iter().map(|n| format!("{PG}/{n}")).collect();
    repo.ok(&["backup", &urls[0], &urls[1]]);
    let source = &repo.json(&["--json", "snapshots"])[0]["source"];
    let listed: Vec<&str> = source["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![dbs.names[0].as_str(), dbs.names[1].as_str()]);

    let into = format!("{PG}/{}", dbs.names[2]);
    let err = repo.fails(&["restore", "latest", "--into", &into], 1);
    assert!(
        err.contains("--database") && err.contains(&dbs.names[1]),
        "{err}"
    );
    repo.ok(&[
        "restore",
        "latest",
        "--into",
        &into,
        "--database",
        &dbs.names[1],
    ]);
    assert_eq!(psql(&dbs.names[2], "SELECT count(*) FROM t"), "20");

    let err = repo.fails(&["backup", &urls[0], "./uploads"], 1);
    assert!(err.contains("separate snapshots"), "{err}");
}

#[test]
fn database_url_from_the_environment_is_backed_up_when_nothing_is_given() {
    let repo = TestRepo::local();
    let dbs = Databases::new("pg", "envurl", 1);
    psql("postgres", &format!("CREATE DATABASE {}", dbs.names[0]));
    // Prisma adds parameters libpq does not know; they must not break the tools.
    let url = format!("{PG}/{}?schema=public&connection_limit=5", dbs.names[0]);
    let out = repo
        .command()
        .arg("backup")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    common::succeeded(&out);
    let paths = repo.json(&["--json", "snapshots"])[0]["paths"].clone();
    assert_eq!(paths[0].as_str().unwrap(), url);

    let out = repo
        .command()
        .arg("backup")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
}

#[test]
fn postgres_bad_input_is_one_clear_line_and_writes_no_snapshot() {
    let repo = TestRepo::local();
    let cases = [
        (
            format!("{PG}/lbt_no_such_database"),
            "database \"lbt_no_such_database\" does not exist",
        ),
        (
            "postgres://postgres@127.0.0.1:1/x".to_string(),
            "port 1 failed",
        ),
        (
            "postgres://postgres@[::1".to_string(),
            "not a valid PostgreSQL URL",
        ),
    ];
    for (url, expected) in &cases {
        let err = repo.fails(&["backup", url], 1);
        assert!(err.contains(expected), "{url}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }

    // A pg_dump older than the server is refused before it runs, naming what to install;
    // a missing one is named too.
    let bin = repo.path("old-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real_psql = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v psql"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::os::unix::fs::symlink(real_psql.trim(), bin.join("psql")).unwrap();
    let dbs = Databases::new("pg", "tools", 1);
    psql("postgres", &format!("CREATE DATABASE {}", dbs.names[0]));
    let url = format!("{PG}/{}", dbs.names[0]);
    let run = |expected: &str| {
        let out = repo
            .command()
            .args(["backup", &url])
            .env("LIFEBOAT_PG_BIN", &bin)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(expected), "{err}");
    };
    run("pg_dump not found");
    let fake = bin.join("pg_dump");
    std::fs::write(&fake, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&fake).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    run("pg_dump 9 is older than the server (PostgreSQL 15)");
    run("postgresql-client-15");
    assert!(
        repo.snapshot_ids().is_empty(),
        "a failed backup left a snapshot"
    );
}

const SHOP_MY: &str = "
    CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name TEXT NOT NULL, photo BLOB);
    CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT, note TEXT,
        FOREIGN KEY (customer_id) REFERENCES customers(id));
    CREATE TABLE audit (n INT);
    CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit VALUES (NEW.id);
    CREATE PROCEDURE shout(IN t TEXT) SELECT UPPER(t);
    INSERT INTO customers (name, photo) SELECT CONCAT('it''s customer ', seq, '\\n(;)'), UNHEX(MD5(seq)) FROM seq_1_to_5000;
    INSERT INTO orders (customer_id, note) SELECT 1 + seq % 5000, REPEAT('y', seq % 40) FROM seq_1_to_8000;
";

fn my_content(db: &str) -> String {
    mariadb(
        Some(db),
        "SET SESSION group_concat_max_len = 67108864;
         SELECT MD5(GROUP_CONCAT(x ORDER BY x SEPARATOR ',')) FROM (
             SELECT CONCAT(id, name, HEX(photo)) AS x FROM customers
             UNION ALL SELECT CONCAT(id, ':', customer_id, note) FROM orders
             UNION ALL SELECT CONCAT('audit', n) FROM audit) t",
    )
}

#[test]
fn mariadb_dump_restores_rows_routines_and_triggers_and_keeps_the_password_private() {
    let repo = TestRepo::local();
    let dbs = Databases::new("my", "shop", 2);
    let (source, copy) = (&dbs.names[0], &dbs.names[1]);
    mariadb(None, &format!("CREATE DATABASE `{source}`"));
    mariadb(Some(source), SHOP_MY);
    let user = format!("lbt_{}", std::process::id());
    let secret = "s3cr@t:/pass";
    mariadb(
        None,
        &format!("CREATE OR REPLACE USER '{user}'@'%' IDENTIFIED BY '{secret}'"),
    );
    mariadb(None, &format!("GRANT ALL ON *.* TO '{user}'@'%'"));
    let url = format!("mysql://{user}:s3cr%40t%3A%2Fpass@127.0.0.1:3306/{source}");

    let out = repo.ok(&["backup", &url]);
    assert!(out.contains("5000") || out.contains("tables"), "{out}");
    let snapshots = repo.json(&["--json", "snapshots"]);
    let text = snapshots.to_string();
    assert!(
        !text.contains("s3cr"),
        "the password reached the snapshot: {text}"
    );
    let tables = &snapshots[0]["source"]["databases"][0]["tables"];
    let rows = |name: &str| {
        tables
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("`customers`"), 5000);
    assert_eq!(rows("`orders`"), 8000);
    assert_eq!(rows("`audit`"), 8000);

    let out = repo.ok(&["restore", "latest", "--into", &format!("{MY}/{copy}")]);
    assert!(out.contains("row counts match the dump"), "{out}");
    assert_eq!(my_content(copy), my_content(source));
    assert_eq!(mariadb(Some(copy), "CALL shout('ok')"), "OK");
    mariadb(Some(copy), "INSERT INTO orders (customer_id) VALUES (1)");
    assert_eq!(
        mariadb(Some(copy), "SELECT COUNT(*) FROM audit"),
        "8001",
        "the trigger was not restored"
    );

    let err = repo.fails(&["restore", "latest", "--into", &format!("{MY}/{copy}")], 1);
    assert!(err.contains("is not empty"), "{err}");

    // A wrong password: one line, no snapshot, and the password never echoed.
    let before = repo.snapshot_ids().len();
    let wrong = format!("mysql://{user}:hunter2wrong@127.0.0.1:3306/{source}");
    let err = repo.fails(&["backup", &wrong], 1);
    assert!(err.contains("Access denied"), "{err}");
    assert!(!err.contains("hunter2wrong"), "{err}");
    assert_eq!(repo.snapshot_ids().len(), before);
    let err = repo.fails(&["backup", &format!("{MY}/lbt_no_such_db")], 1);
    assert!(err.contains("Unknown database"), "{err}");
    mariadb(None, &format!("DROP USER '{user}'@'%'"));
    // No option file holding a password is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("lifeboat-mysql-")
        })
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|t| t.contains("s3cr"))
        .collect();
    assert!(leftovers.is_empty());
}
