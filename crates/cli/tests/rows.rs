//! `lifeboat diff` and `lifeboat restore-rows` on SQLite: the diff matches a reference
//! computed here; deleted rows come back into a live database that keeps taking writes.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::TestRepo;

fn exec(db: &Path, sql: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

fn first_point(repo: &TestRepo, db: &Path) -> String {
    let timeline = repo.json(&["timeline", db.to_str().unwrap()]);
    timeline["restore_points"][0]["time"]
        .as_str()
        .unwrap()
        .to_string()
}

fn ids(rows: &serde_json::Value, key: &str) -> BTreeSet<i64> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r[key].as_i64().unwrap())
        .collect()
}

#[test]
fn diff_lists_inserted_updated_and_deleted_rows_by_key() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    exec(
        &db,
        "PRAGMA journal_mode=wal;
         CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, email TEXT);
         CREATE TABLE notes(body TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
           INSERT INTO customers SELECT i, 'name' || i, 'c' || i || '@example.com' FROM n;
         INSERT INTO notes VALUES ('a'), ('b');",
    );
    repo.backup(&[&db]);
    let before = first_point(&repo, &db);
    exec(
        &db,
        "INSERT INTO customers VALUES (51, 'new', NULL), (52, 'newer', 'x@y');
         UPDATE customers SET email = NULL WHERE id = 7;
         UPDATE customers SET name = 'renamed' WHERE id IN (8, 9);
         DELETE FROM customers WHERE id IN (3, 30);
         INSERT INTO notes VALUES ('c');
         CREATE TABLE later(x);",
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    repo.backup(&[&db]);

    let report = repo.json(&["diff", db.to_str().unwrap(), "--from", &before]);
    let tables = report["tables"].as_array().unwrap();
    let customers = tables.iter().find(|t| t["table"] == "customers").unwrap();
    assert_eq!(customers["key"], serde_json::json!(["id"]));
    assert_eq!(ids(&customers["inserted"], "id"), BTreeSet::from([51, 52]));
    assert_eq!(ids(&customers["deleted"], "id"), BTreeSet::from([3, 30]));
    let updated: BTreeSet<i64> = customers["updated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(updated, BTreeSet::from([7, 8, 9]));
    let seven = customers["updated"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["after"]["id"] == 7)
        .unwrap();
    assert_eq!(seven["before"]["email"], "c7@example.com");
    assert!(seven["after"]["email"].is_null());
    assert_eq!(customers["deleted"][0]["name"], "name3");
    let notes = tables.iter().find(|t| t["table"] == "notes").unwrap();
    assert_eq!(notes["key"], serde_json::json!(["rowid"]));
    assert_eq!(notes["inserted"].as_array().unwrap().len(), 1);
    let later = tables.iter().find(|t| t["table"] == "later").unwrap();
    assert_eq!(later["schema_changed"], "the table was created");

    // --table narrows it.
    let only = repo.json(&[
        "diff",
        db.to_str().unwrap(),
        "--from",
        &before,
        "--table",
        "notes",
    ]);
    assert_eq!(only["tables"].as_array().unwrap().len(), 1);
}

#[test]
fn restore_rows_brings_back_deleted_rows_while_the_app_keeps_writing() {
    let repo = TestRepo::local();
    let db = repo.path("app.db");
    exec(
        &db,
        "PRAGMA journal_mode=wal;
         CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, amount INTEGER);
         INSERT INTO customers VALUES (1, 'ada'), (2, 'grace'), (3, 'edsger'), (4, 'barbara');",
    );
    repo.backup(&[&db]);
    let before = first_point(&repo, &db);
    // Someone deletes two customers and renames another; the app goes on writing.
    exec(
        &db,
        "DELETE FROM customers WHERE id IN (2, 3); UPDATE customers SET name = 'x' WHERE id = 4;",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .unwrap();
            let mut written = 0;
            while !stop.load(Ordering::Relaxed) {
                conn.execute("INSERT INTO orders(customer, amount) VALUES (1, 10)", [])
                    .unwrap();
                written += 1;
                // An app between requests: a writer that never pauses would hold the lock
                // for good, and no other writer (SQLite's busy handler polls) gets in.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            written
        })
    };

    // A preview changes nothing.
    let args = |apply: bool| {
        let mut a = vec![
            "restore-rows".to_string(),
            db.display().to_string(),
            "--at".into(),
            before.clone(),
            "--table".into(),
            "customers".into(),
            "--where".into(),
            "id IN (2, 3)".into(),
            "--json".into(),
        ];
        if apply {
            a.push("--apply".into());
        }
        a
    };
    let run = |apply: bool| {
        let a = args(apply);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = repo.command().args(&refs).output().unwrap();
        serde_json::from_str::<serde_json::Value>(&common::succeeded(&out)).unwrap()
    };
    let preview = run(false);
    assert_eq!(preview["result"]["missing"], 2, "{preview}");
    assert_eq!(preview["result"]["applied"], false);
    let count = |sql: &str| -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count("SELECT count(*) FROM customers"), 2);

    let applied = run(true);
    assert_eq!(applied["result"]["applied"], true, "{applied}");
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 0);
    // The two are back as they were; the rename of 4 (not chosen) and every order stay.
    assert_eq!(count("SELECT count(*) FROM customers"), 4);
    assert_eq!(
        count("SELECT count(*) FROM customers WHERE id = 2 AND name = 'grace'"),
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM customers WHERE id = 4 AND name = 'x'"),
        1
    );
    assert_eq!(count("SELECT count(*) FROM orders"), written);
    common::assert_integrity(&db);

    // A table whose columns changed since then is refused, and nothing is written.
    exec(
        &db,
        "ALTER TABLE customers ADD COLUMN email TEXT; DELETE FROM customers WHERE id = 1;",
    );
    let a = args(true);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let err = repo.fails(&refs, 1);
    assert!(err.contains("different columns"), "{err}");
    assert_eq!(count("SELECT count(*) FROM customers"), 3);
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn pg(url: &str, sql: &str) -> String {
    common::postgres::psql(url, sql)
}

fn by_table<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {report}"))
}

#[test]
fn postgres_diff_matches_a_reference_and_restore_rows_puts_rows_back() {
    let repo = TestRepo::local();
    let server = "postgres://postgres@127.0.0.1:5432";
    let name = format!("lbt_{}_rows", std::process::id());
    let admin = format!("{server}/postgres");
    pg(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    pg(&admin, &format!("CREATE DATABASE {name}"));
    let url = format!("{server}/{name}");
    pg(
        &url,
        "CREATE TABLE customers(id int PRIMARY KEY, name text, email text);
         CREATE TABLE lines(order_id int, line int, qty int, PRIMARY KEY (line, order_id));
         CREATE TABLE notes(body text);
         CREATE SCHEMA billing;
         CREATE TABLE billing.invoices(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
           total numeric, doubled numeric GENERATED ALWAYS AS (total * 2) STORED);
         INSERT INTO customers SELECT i, 'name' || i, 'c' || i || '@example.com' FROM generate_series(1, 50) i;
         INSERT INTO lines SELECT o, l, o * l FROM generate_series(1, 5) o, generate_series(1, 3) l;
         INSERT INTO notes VALUES ('a'), ('b');
         INSERT INTO billing.invoices(total) SELECT i FROM generate_series(1, 10) i;",
    );
    repo.ok(&["backup", &url]);
    let snapshots = repo.json(&["snapshots"]);
    let before = snapshots[0]["time"].as_str().unwrap().to_string();
    pg(
        &url,
        "INSERT INTO customers VALUES (51, 'new', NULL);
         UPDATE customers SET email = NULL WHERE id = 7;
         DELETE FROM customers WHERE id IN (3, 30);
         UPDATE lines SET qty = 0 WHERE order_id = 2 AND line = 3;
         DELETE FROM lines WHERE order_id = 5;
         INSERT INTO notes VALUES ('c');
         DELETE FROM notes WHERE body = 'a';
         DELETE FROM billing.invoices WHERE id IN (4, 5);
         CREATE TABLE later(x int);",
    );
    repo.ok(&["backup", &url]);

    let report = repo.json(&["diff", &url, "--from", &before]);
    let customers = by_table(&report, "customers");
    assert_eq!(customers["key"], serde_json::json!(["id"]));
    assert_eq!(ids(&customers["inserted"], "id"), BTreeSet::from([51]));
    assert_eq!(ids(&customers["deleted"], "id"), BTreeSet::from([3, 30]));
    assert_eq!(customers["updated"].as_array().unwrap().len(), 1);
    assert_eq!(customers["updated"][0]["before"]["email"], "c7@example.com");
    assert!(customers["updated"][0]["after"]["email"].is_null());
    let lines = by_table(&report, "lines");
    assert_eq!(lines["key"], serde_json::json!(["line", "order_id"]));
    assert_eq!(ids(&lines["deleted"], "line"), BTreeSet::from([1, 2, 3]));
    assert_eq!(lines["updated"][0]["before"]["qty"], 6);
    assert_eq!(lines["updated"][0]["after"]["qty"], 0);
    let notes = by_table(&report, "notes");
    assert_eq!(notes["inserted"], serde_json::json!([{"body": "c"}]));
    assert_eq!(notes["deleted"], serde_json::json!([{"body": "a"}]));
    assert!(notes["updated"].as_array().unwrap().is_empty());
    let invoices = by_table(&report, "billing.invoices");
    assert_eq!(ids(&invoices["deleted"], "id"), BTreeSet::from([4, 5]));
    assert_eq!(invoices["deleted"][0]["doubled"], 8);
    assert_eq!(
        by_table(&report, "later")["schema_changed"],
        "the table was created"
    );

    // A preview changes nothing; --apply puts deleted and changed rows back, in one go.
    let restore_rows = |table: &'static str, condition: &'static str, apply: bool| {
        let mut args = vec!["restore-rows", &url, "--at", &before];
        args.extend(["--table", table, "--where", condition]);
        if apply {
            args.push("--apply");
        }
        args.into_iter().map(String::from).collect::<Vec<String>>()
    };
    let preview = repo.json(&strs(&restore_rows("customers", "id IN (3, 7, 30)", false)));
    assert_eq!(preview["result"]["missing"], 2, "{preview}");
    assert_eq!(preview["result"]["different"], 1, "{preview}");
    assert_eq!(preview["result"]["applied"], false);
    assert_eq!(
        pg(&url, "SELECT count(*) FROM customers WHERE id IN (3, 30)"),
        "0"
    );
    let applied = repo.json(&strs(&restore_rows("customers", "id IN (3, 7, 30)", true)));
    assert_eq!(applied["result"]["applied"], true, "{applied}");
    assert_eq!(
        pg(&url, "SELECT string_agg(id || ':' || name || ':' || coalesce(email, '-'), ',' ORDER BY id) FROM customers WHERE id IN (3, 7, 30, 51)"),
        "3:name3:c3@example.com,7:name7:c7@example.com,30:name30:c30@example.com,51:new:-"
    );
    // Identity and generated columns: the old ids come back, the generated value is computed.
    repo.json(&strs(&restore_rows("billing.invoices", "id = 4", true)));
    assert_eq!(
        pg(
            &url,
            "SELECT total || ':' || doubled FROM billing.invoices WHERE id = 4"
        ),
        "4:8"
    );

    // A table whose columns changed since is refused, and nothing is written.
    pg(
        &url,
        "ALTER TABLE customers ADD COLUMN phone text; DELETE FROM customers WHERE id = 3;",
    );
    let refused = repo.fails(&strs(&restore_rows("customers", "id = 3", true)), 1);
    assert!(refused.contains("different columns"), "{refused}");
    assert_eq!(pg(&url, "SELECT count(*) FROM customers WHERE id = 3"), "0");

    let left = pg(
        &admin,
        &format!("SELECT count(*) FROM pg_database WHERE datname LIKE '{name}_lifeboat_%'"),
    );
    assert_eq!(left, "0", "a scratch database was left behind");
    pg(&admin, &format!("DROP DATABASE {name}"));
}

/// customers <- orders <- items, each ON DELETE CASCADE, and notes (no cascade): the
/// schema both cascade tests use, in SQL both engines read.
const SHOP: &str = "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);
     CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id) ON DELETE CASCADE, total INTEGER);
     CREATE TABLE items(order_id INTEGER REFERENCES orders(id) ON DELETE CASCADE, line INTEGER, sku TEXT, PRIMARY KEY (order_id, line));
     CREATE TABLE notes(id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id) ON DELETE SET NULL, body TEXT);
     INSERT INTO customers VALUES (1, 'ada'), (2, 'bob'), (3, 'cy');
     INSERT INTO orders VALUES (10, 1, 100), (11, 1, 110), (20, 2, 200), (30, 3, 300);
     INSERT INTO items VALUES (10, 1, 'a'), (10, 2, 'b'), (11, 1, 'c'), (20, 1, 'd'), (30, 1, 'e');
     INSERT INTO notes VALUES (1, 1, 'vip');";

/// What a cascade took: customer 1 deleted (orders 10, 11 and their 3 items with it), and
/// order 11 changed before that by someone else.
const MISTAKE: &str = "UPDATE orders SET total = 111 WHERE id = 11;
     DELETE FROM customers WHERE id = 1;";

/// Asserts what restore-rows reported for the cascade of customer 1.
fn assert_cascade(report: &serde_json::Value, applied: bool) {
    let result = &report["result"];
    assert_eq!(result["missing"], 1, "{report}");
    let cascaded = result["cascaded"].as_array().unwrap();
    assert_eq!(cascaded.len(), 2, "{report}");
    assert_eq!(cascaded[0]["table"], "orders");
    assert_eq!(cascaded[0]["via"], "orders(customer_id) -> customers(id)");
    assert_eq!(cascaded[0]["rows"], 2);
    assert_eq!(cascaded[0]["missing"], 2);
    assert_eq!(cascaded[1]["table"], "items");
    assert_eq!(cascaded[1]["rows"], 3);
    assert_eq!(cascaded[1]["missing"], 3);
    for c in cascaded {
        assert_eq!(c["applied"], applied, "{report}");
    }
}

#[test]
fn restore_rows_offers_and_brings_back_what_a_cascade_deleted_on_sqlite() {
    let repo = TestRepo::local();
    let db = repo.path("shop.db");
    exec(&db, &format!("PRAGMA journal_mode=wal; {SHOP}"));
    repo.backup(&[&db]);
    let before = first_point(&repo, &db);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!("PRAGMA foreign_keys = ON; {MISTAKE}"))
        .unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM items"), 2, "the cascade ran");
    let restore = |extra: &[&str]| {
        let mut args = vec![
            "restore-rows",
            db.to_str().unwrap(),
            "--at",
            &before,
            "--table",
            "customers",
            "--where",
            "id = 1",
        ];
        args.extend(extra);
        args.into_iter().map(String::from).collect::<Vec<String>>()
    };

    // The preview says what the cascade took and how to get it back.
    let preview = repo.ok(&strs(&restore(&[])));
    assert!(
        preview.contains("2 row(s) of orders through orders(customer_id) -> customers(id)")
            && preview.contains("add --with-children"),
        "{preview}"
    );
    // Without --with-children only the chosen row comes back.
    assert_cascade(&repo.json(&strs(&restore(&["--apply"]))), false);
    assert_eq!(count("SELECT count(*) FROM customers WHERE id = 1"), 1);
    assert_eq!(
        count("SELECT count(*) FROM orders WHERE customer_id = 1"),
        0
    );
    conn.execute_batch("PRAGMA foreign_keys = ON; DELETE FROM customers WHERE id = 1;")
        .unwrap();

    // With it, the customer, its orders and their items, in one transaction.
    assert_cascade(
        &repo.json(&strs(&restore(&["--apply", "--with-children"]))),
        true,
    );
    assert_eq!(
        count("SELECT count(*) FROM orders WHERE customer_id = 1"),
        2
    );
    assert_eq!(count("SELECT count(*) FROM items"), 5);
    // The old value of order 11 came back (it was missing); nothing else changed.
    assert_eq!(count("SELECT total FROM orders WHERE id = 11"), 110);
    assert_eq!(count("SELECT count(*) FROM orders"), 4);
    // notes has no cascade (SET NULL): not offered, not touched.
    assert_eq!(
        count("SELECT count(*) FROM notes WHERE customer_id IS NULL"),
        1
    );
    let dangling = conn
        .query_row("PRAGMA foreign_key_check", [], |_| Ok(()))
        .is_ok();
    assert!(!dangling, "the restored rows leave no dangling reference");
}

#[test]
fn restore_rows_offers_and_brings_back_what_a_cascade_deleted_on_postgres() {
    let repo = TestRepo::local();
    let server = "postgres://postgres@127.0.0.1:5432";
    let name = format!("lbt_{}_cascade", std::process::id());
    let admin = format!("{server}/postgres");
    pg(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    pg(&admin, &format!("CREATE DATABASE {name}"));
    let url = format!("{server}/{name}");
    pg(&url, SHOP);
    repo.ok(&["backup", &url]);
    let before = repo.json(&["snapshots"])[0]["time"]
        .as_str()
        .unwrap()
        .to_string();
    pg(&url, MISTAKE);
    assert_eq!(
        pg(&url, "SELECT count(*) FROM items"),
        "2",
        "the cascade ran"
    );
    let restore = |extra: &[&str]| {
        let mut args = vec![
            "restore-rows",
            &url,
            "--at",
            &before,
            "--table",
            "customers",
            "--where",
            "id = 1",
        ];
        args.extend(extra);
        args.into_iter().map(String::from).collect::<Vec<String>>()
    };
    let preview = repo.ok(&strs(&restore(&[])));
    assert!(preview.contains("add --with-children"), "{preview}");
    assert_eq!(pg(&url, "SELECT count(*) FROM customers"), "2");

    assert_cascade(
        &repo.json(&strs(&restore(&["--apply", "--with-children"]))),
        true,
    );
    assert_eq!(
        pg(
            &url,
            "SELECT string_agg(o.id || ':' || o.total, ',' ORDER BY o.id) FROM orders o"
        ),
        "10:100,11:110,20:200,30:300"
    );
    assert_eq!(pg(&url, "SELECT count(*) FROM items"), "5");
    pg(&admin, &format!("DROP DATABASE {name}"));
}
