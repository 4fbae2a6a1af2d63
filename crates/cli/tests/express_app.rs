//! The example Express 5 + better-sqlite3 app under load while `lifeboat replicate` runs:
//! the app is killed with SIGKILL, its database and -wal/-shm deleted, the latest restore
//! point restored. Every write the app acknowledged at least a second before the kill must
//! be there, none invented, and the measured RPO and RTO are printed.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::TestRepo;
use rusqlite::Connection;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/express-crud")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A fresh repository, and where the app's database goes in it.
fn app_repository() -> (TestRepo, PathBuf) {
    assert!(
        example_dir().join("node_modules/better-sqlite3").exists(),
        "run `npm ci` in examples/express-crud first (.ci/run does)"
    );
    let repo = TestRepo::local();
    let data = repo.path("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("app.db");
    (repo, db)
}

/// Starts the app on a free port and returns it with its URL.
fn start_app(db: &Path) -> (Child, String) {
    start_app_with(db, &[])
}

/// [`start_app`] with more of the environment.
fn start_app_with(db: &Path, env: &[(&str, String)]) -> (Child, String) {
    let mut app = Command::new("node")
        .arg("server.js")
        .current_dir(example_dir())
        .env("DATABASE_PATH", db)
        .env("PORT", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node is installed");
    let mut line = String::new();
    BufReader::new(app.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("the app did not say where it listens: {line:?}"))
        .to_string();
    (app, url)
}

/// The example's load driver against `url`, logging acknowledged writes to `acks`.
fn start_load(url: &str, acks: &Path, args: &[&str]) -> Child {
    Command::new("node")
        .args(["load.js", "--url", url])
        .args(args)
        .arg("--ack-log")
        .arg(acks)
        .current_dir(example_dir())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

#[derive(Debug)]
struct Ack {
    op: String,
    table: String,
    id: i64,
    acked_at_ms: i64,
    quantity: Option<i64>,
}

fn read_acks(path: &Path) -> Vec<Ack> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            Ack {
                op: v["op"].as_str().unwrap().into(),
                table: v["table"].as_str().unwrap().into(),
                id: v["id"].as_i64().unwrap(),
                acked_at_ms: v["acked_at_ms"].as_i64().unwrap(),
                quantity: v["quantity"].as_i64(),
            }
        })
        .collect()
}

#[test]
fn express_app_killed_mid_load_restores_every_acknowledged_write() {
    let (repo, db) = app_repository();
    let (mut app, url) = start_app(&db);

    let mut replicator = repo
        .command()
        .args(["replicate", db.to_str().unwrap(), "--interval", "500ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let acks_path = repo.path("acks.jsonl");
    let load = start_load(
        &url,
        &acks_path,
        &["--concurrency", "8", "--duration-ms", "60000"],
    );
    std::thread::sleep(Duration::from_secs(5));

    // The disaster: the app dies, and the host's copy of the database with it.
    app.kill().unwrap();
    let killed_at = now_ms();
    replicator.kill().unwrap();
    app.wait().unwrap();
    replicator.wait().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let load_out = load.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&load_out.stdout).to_string();

    let restore_started = Instant::now();
    let restored = repo.json(&[
        "restore",
        "--source",
        db.to_str().unwrap(),
        "--at",
        "latest",
        "--target",
        db.to_str().unwrap(),
    ]);
    let conn = Connection::open(&db).unwrap();
    let customers: i64 = conn
        .query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
        .unwrap();
    let rto = restore_started.elapsed();
    assert_eq!(restored["restore_point"]["kind"], "segment", "{restored}");

    let acks = read_acks(&acks_path);
    assert!(acks.len() > 200, "too little load to judge: {summary}");
    let rows: HashMap<(String, i64), Option<i64>> = {
        let mut rows = HashMap::new();
        let mut customers_stmt = conn.prepare("SELECT id FROM customers").unwrap();
        for id in customers_stmt
            .query_map([], |r| r.get::<_, i64>(0))
            .unwrap()
        {
            rows.insert(("customers".to_string(), id.unwrap()), None);
        }
        let mut orders_stmt = conn.prepare("SELECT id, quantity FROM orders").unwrap();
        let orders = orders_stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .unwrap();
        for order in orders {
            let (id, quantity) = order.unwrap();
            rows.insert(("orders".to_string(), id), Some(quantity));
        }
        rows
    };

    // The last acknowledged write of each row, and which rows were ever acknowledged.
    let mut last: HashMap<(String, i64), &Ack> = HashMap::new();
    let mut deleted: HashSet<(String, i64)> = HashSet::new();
    for ack in &acks {
        let key = (ack.table.clone(), ack.id);
        if ack.op.starts_with("delete") {
            deleted.insert(key.clone());
        }
        last.insert(key, ack);
    }
    let settled = killed_at - 1000;
    let mut lost = Vec::new();
    let mut lost_any_age = 0;
    for (key, ack) in &last {
        let expected_present = !ack.op.starts_with("delete");
        let restored_row = rows.get(key);
        let matches = match (expected_present, restored_row) {
            (false, None) => true,
            (true, Some(quantity)) => ack.quantity.is_none() || *quantity == ack.quantity,
            _ => false,
        };
        if !matches {
            lost_any_age += 1;
            if ack.acked_at_ms <= settled {
                lost.push(format!(
                    "{} {} {} acked {} ms before the kill",
                    ack.op,
                    key.0,
                    key.1,
                    killed_at - ack.acked_at_ms
                ));
            }
        }
    }
    // A row nobody acknowledged can only come from a write in flight at the kill: at most
    // one per load worker.
    let invented: Vec<_> = rows.keys().filter(|k| !last.contains_key(*k)).collect();
    let newest: String = conn
        .query_row(
            "SELECT max(t) FROM (SELECT max(created_at) t FROM customers UNION ALL SELECT max(updated_at) FROM orders)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let newest_ms = chrono::DateTime::parse_from_rfc3339(&newest)
        .unwrap()
        .timestamp_millis();
    common::assert_integrity(&db);
    eprintln!(
        "express e2e: {} acknowledged writes ({summary_line}); RPO: {} acknowledged write(s) not restored, newest restored write {} ms before the kill; RTO: {:.2} s to a queryable database ({customers} customers)",
        acks.len(),
        lost_any_age,
        killed_at - newest_ms,
        rto.as_secs_f64(),
        summary_line = summary.trim()
    );
    assert!(
        lost.is_empty(),
        "acknowledged writes missing after restore: {lost:?}"
    );
    assert!(invented.len() <= 8, "rows nobody wrote: {invented:?}");
}

/// A child process killed when the test ends, however it ends: a node process left
/// running would hold the test's output open.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let (status, text) = common::http::request(addr, method, path, body.as_ref())
        .unwrap_or_else(|| panic!("the app did not answer {method} {path}"));
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn restore_rows_brings_back_customers_deleted_through_the_app_while_it_keeps_serving() {
    let (repo, db) = app_repository();
    let (app, url) = start_app(&db);
    let _app = Running(app);
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();

    // Six customers with an order each, made through the API.
    let mut seeded = Vec::new();
    for i in 1..=6i64 {
        let (status, customer) = call(
            addr,
            "POST",
            "/customers",
            Some(
                serde_json::json!({"name": format!("seed {i}"), "email": format!("seed{i}@example.com")}),
            ),
        );
        assert_eq!(status, 201, "{customer}");
        let (status, order) = call(
            addr,
            "POST",
            "/orders",
            Some(
                serde_json::json!({"customer_id": customer["id"], "item": "widget", "quantity": i, "total_cents": i * 250}),
            ),
        );
        assert_eq!(status, 201, "{order}");
        seeded.push((customer, order));
    }
    repo.backup(&[&db]);
    let timeline = repo.json(&["timeline", db.to_str().unwrap()]);
    let before = timeline["restore_points"][0]["time"]
        .as_str()
        .unwrap()
        .to_string();

    // Someone deletes two customers through the app (their orders go with them, by
    // ON DELETE CASCADE), and the app goes on taking writes from everyone else.
    let (gone, kept) = (&seeded[2], &seeded[4]);
    for (customer, _) in [gone, kept] {
        let path = format!("/customers/{}", customer["id"]);
        let (status, _) = call(addr, "DELETE", &path, None);
        assert!(status == 200 || status == 204, "DELETE {path}: {status}");
    }
    let acks_path = repo.path("acks.jsonl");
    let load = Running(start_load(
        &url,
        &acks_path,
        &[
            "--concurrency",
            "4",
            "--duration-ms",
            "6000",
            "--rate",
            "300",
        ],
    ));
    std::thread::sleep(Duration::from_millis(1500));

    let ids = format!("{}, {}", gone.0["id"], kept.0["id"]);
    let back = |table: &str, condition: String| {
        repo.json(&[
            "restore-rows",
            db.to_str().unwrap(),
            "--at",
            &before,
            "--table",
            table,
            "--where",
            &condition,
            "--apply",
        ])
    };
    let customers = back("customers", format!("id IN ({ids})"));
    assert_eq!(customers["result"]["missing"], 2, "{customers}");
    assert_eq!(customers["result"]["applied"], true, "{customers}");
    let orders = back("orders", format!("customer_id IN ({ids})"));
    assert_eq!(orders["result"]["missing"], 2, "{orders}");

    // The app serves them again, exactly as they were.
    for (customer, order) in [gone, kept] {
        let (status, now) = call(addr, "GET", &format!("/customers/{}", customer["id"]), None);
        assert_eq!((status, &now), (200, customer));
        let (status, now) = call(addr, "GET", &format!("/orders/{}", order["id"]), None);
        assert_eq!((status, &now), (200, order));
    }

    // ... and kept serving: the load finished, and every write it was told succeeded is
    // in the database (nothing crashed here, so nothing may be missing).
    let mut load = load;
    let status = load.0.wait().unwrap();
    assert!(status.success(), "the load driver failed");
    let acks = read_acks(&acks_path);
    assert!(acks.len() > 100, "too little load to judge: {}", acks.len());
    let conn = Connection::open(&db).unwrap();
    let mut last: HashMap<(String, i64), &Ack> = HashMap::new();
    for ack in &acks {
        last.insert((ack.table.clone(), ack.id), ack);
    }
    for ((table, id), ack) in &last {
        let present: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(present == 1, !ack.op.starts_with("delete"), "{ack:?}");
    }
    let (status, _) = call(addr, "GET", "/health", None);
    assert_eq!(status, 200);
    drop(conn);
    common::assert_integrity(&db);
}

/// The readiness route an Express app builds on the lifeboat Node API
/// (`examples/express-crud/server.js`, `GET /ready/backups`): 503 naming the source while
/// the plan has no restore point within its RPO, 200 once `backup --plan` has run.
#[test]
fn the_apps_readiness_route_says_whether_its_backups_meet_their_rpo() {
    let (repo, db) = app_repository();
    let config = repo.path("lifeboat.toml");
    std::fs::write(
        &config,
        format!(
            "[[source]]\nname = \"app-db\"\nurl = \"sqlite:{}\"\n\
             [[target]]\nname = \"local\"\nurl = \"{}\"\n\
             [[plan]]\nname = \"app\"\nsources = [\"app-db\"]\ntargets = [\"local\"]\n\
             schedule = \"every 1h\"\nrpo = \"1h\"\n",
            db.display(),
            repo.url
        ),
    )
    .unwrap();
    let (mut app, url) = start_app_with(
        &db,
        &[
            ("LIFEBOAT_CONFIG", config.display().to_string()),
            (
                "LIFEBOAT_BINARY",
                common::lifeboat_bin().display().to_string(),
            ),
            ("LIFEBOAT_PASSWORD", common::PASSWORD.to_string()),
        ],
    );
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let ready = || {
        let (status, body) =
            common::http::get(addr, "/ready/backups", None).expect("the app answers");
        (
            status,
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        )
    };
    let (status, body) = ready();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ok"], false);
    assert_eq!(body["stale"][0]["source"], "app-db", "{body}");

    repo.ok(&[
        "backup",
        "--plan",
        "app",
        "--config",
        config.to_str().unwrap(),
    ]);
    let (status, body) = ready();
    assert_eq!(
        (status, &body["ok"]),
        (200, &serde_json::Value::Bool(true)),
        "{body}"
    );
    assert_eq!(body["stale"], serde_json::json!([]));
    app.kill().unwrap();
    app.wait().unwrap();
}
