//! `lifeboat agent` as a real process: schedules, retention, RPO checks, alerts once per
//! incident and on recovery, the HTTP endpoints, a restart and SIGTERM.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::http::{get, WebhookReceiver};
use common::postgres::free_port;
use common::{TestRepo, PASSWORD};

const TOKEN: &str = "agent-test-token";

struct Agent {
    child: Child,
    addr: SocketAddr,
    /// Its log, read as it is written (the agent logs every job; a full pipe would
    /// block it).
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Agent {
    fn start(dir: &Path, config: &Path, addr: SocketAddr) -> Agent {
        let child = Command::new(common::lifeboat_bin())
            .args(["agent", "--check-every", "1s", "--config"])
            .arg(config)
            .env("LIFEBOAT_PASSWORD", PASSWORD)
            .env("AGENT_TOKEN", TOKEN)
            .env("LIFEBOAT_CACHE_DIR", dir.join("cache"))
            .env_remove("LIFEBOAT_REPO")
            .env_remove("LIFEBOAT_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = child;
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            text
        });
        let agent = Agent {
            child,
            addr,
            stderr: Some(stderr),
        };
        agent.wait_for("readiness", Duration::from_secs(30), |_| {
            get(addr, "/readyz", None).is_some_and(|(code, _)| code == 200)
        });
        agent
    }

    fn status(&self) -> serde_json::Value {
        let (code, body) = get(self.addr, "/api/v1/status", Some(TOKEN)).expect("agent answers");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn target(&self, plan: &str, target: &str) -> serde_json::Value {
        let status = self.status();
        status["plans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == plan)
            .and_then(|p| {
                p["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|t| t["target"] == target)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no {plan}/{target} in {status}"))
    }

    fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&Agent) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(Instant::now() < deadline, "no {what} within {limit:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns stderr.
    fn stop(mut self) -> String {
        // SAFETY: kill(2) on the agent this test started.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let stderr = self.stderr.take().unwrap().join().unwrap();
                assert!(status.success(), "agent exited with {status}: {stderr}");
                return stderr;
            }
            assert!(Instant::now() < deadline, "the agent ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn runs(agent: &Agent, plan: &str, target: &str) -> u64 {
    agent.target(plan, target)["runs_total"]
        .as_u64()
        .unwrap_or(0)
}

fn snapshots_tagged(repo: &TestRepo, tag: &str) -> usize {
    repo.json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["tags"].as_array().unwrap().iter().any(|t| t == tag))
        .count()
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("lifeboat.toml");
    std::fs::write(&path, body).unwrap();
    path
}

/// Plan `app`: an uploads folder backed up every hour to target `local`, and an agent on
/// a free loopback port, for the tests of the agent's HTTP side.
struct UploadsPlan {
    repo: TestRepo,
    addr: SocketAddr,
}

impl UploadsPlan {
    fn new() -> UploadsPlan {
        let repo = TestRepo::local();
        let uploads = repo.dir.path().join("uploads");
        std::fs::create_dir_all(&uploads).unwrap();
        std::fs::write(uploads.join("a.txt"), "uploaded").unwrap();
        let addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        UploadsPlan { repo, addr }
    }

    fn dir(&self) -> &Path {
        self.repo.dir.path()
    }

    /// lifeboat.toml, with `plan_keys` in the plan (an `rpo`, say) and `after_agent` after
    /// `[agent]`'s address and state (tokens, then any `[[alert]]` tables).
    fn config(&self, plan_keys: &str, after_agent: &str) -> String {
        format!(
            r#"
[[source]]
name = "uploads"
url = "./uploads"
[[target]]
name = "local"
url = "{url}"
[[plan]]
name = "app"
sources = ["uploads"]
targets = ["local"]
schedule = "every 1h"
{plan_keys}
[agent]
listen = "{addr}"
state = "./agent.db"
{after_agent}
"#,
            url = self.repo.url,
            addr = self.addr,
        )
    }
}

#[test]
fn agent_runs_plans_checks_objectives_and_alerts_once_per_incident() {
    let good = TestRepo::local();
    let dir = good.dir.path();
    let uploads = dir.join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::write(uploads.join("a.txt"), "uploaded").unwrap();
    let db = rusqlite::Connection::open(dir.join("app.db")).unwrap();
    db.execute_batch("PRAGMA journal_mode=wal; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(db);
    // The second target does not exist yet: every backup to it fails until it does.
    let late = dir.join("late-repo");
    let hook = WebhookReceiver::start();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir,
        &format!(
            r#"
[[source]]
name = "app"
url = "sqlite:./app.db"
[[source]]
name = "uploads"
url = "./uploads"
[[target]]
name = "good"
url = "{good}"
[[target]]
name = "late"
url = "{late}"
[[plan]]
name = "app"
sources = ["app", "uploads"]
targets = ["good", "late"]
schedule = "every 2s"
continuous = true
keep = {{ last = 2 }}
rpo = "1m"
[agent]
listen = "{addr}"
token = "${{AGENT_TOKEN}}"
state = "./agent.db"
[[alert]]
kind = "webhook"
url = "{hook}"
[[alert]]
kind = "webhook"
url = "http://127.0.0.1:{dead}/nobody-listens"
"#,
            dead = free_port(),
            good = good.url,
            late = late.display(),
            hook = hook.url,
        ),
    );
    let agent = Agent::start(dir, &config, addr);

    // The good target gets backups; the late one fails run after run, but alerts once.
    // (A run may be under way when the status is read: count finished failures.)
    agent.wait_for(
        "three failed runs on the late target",
        Duration::from_secs(90),
        |a| {
            a.target("app", "late")["failures_total"].as_u64() >= Some(3)
                && runs(a, "app", "good") >= 3
        },
    );
    let good_target = agent.target("app", "good");
    assert!(good_target["last_success"].is_string(), "{good_target}");
    assert_eq!(good_target["failures_total"], 0, "{good_target}");
    let late_target = agent.target("app", "late");
    assert!(late_target["last_success"].is_null(), "{late_target}");
    hook.wait_for("a job_failed alert", Duration::from_secs(30), |e| {
        e.iter().any(|e| e["event"] == "job_failed")
    });
    let failed = hook.of_kind("job_failed");
    assert_eq!(failed.len(), 1, "alerted more than once: {failed:#?}");
    assert_eq!(failed[0]["target"], "late");
    // The API lists each delivery: the failure alert reached the listening hook, and the
    // one nobody listens on is a failed delivery with its reason; neither shows its URL.
    let (code, alerts) = common::http::call(addr, "GET", "/api/v1/alerts", Some(TOKEN)).unwrap();
    assert_eq!(code, 200, "{alerts}");
    let failures: Vec<&serde_json::Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["key"] == "failed/app/late")
        .collect();
    assert!(
        failures
            .iter()
            .any(|a| a["delivered"] == true && a["severity"] == "failure"),
        "{alerts}"
    );
    assert!(
        failures
            .iter()
            .any(|a| a["delivered"] == false && a["error"].is_string()),
        "{alerts}"
    );
    assert!(!alerts.to_string().contains("nobody-listens"), "{alerts}");
    let alert_text = failed[0].to_string();
    assert!(
        alert_text.contains("late-repo") || alert_text.contains("repository"),
        "{alert_text}"
    );

    // Continuous: a replicator per target; the good one ships commits as segments.
    agent.wait_for("the replicator", Duration::from_secs(30), |a| {
        a.status()["replicators"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["target"] == "good" && r["up"] == true))
    });
    let db = rusqlite::Connection::open(dir.join("app.db")).unwrap();
    for x in 2..12 {
        db.execute("INSERT INTO t VALUES (?1)", [x]).unwrap();
    }
    drop(db);
    let app_db = dir.join("app.db");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let timeline = good.json(&["timeline", app_db.to_str().unwrap()]);
        let segments = timeline["restore_points"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "segment")
            .count();
        if segments > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no segment shipped: {timeline}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // The objective: met on the good target, missed on the late one (alerted once).
    agent.wait_for("an RPO check", Duration::from_secs(30), |a| {
        a.status()["restore_points"]
            .as_array()
            .is_some_and(|r| r.len() == 4)
    });
    let points = agent.status()["restore_points"].clone();
    for row in points.as_array().unwrap() {
        let expected = row["target"] == "good";
        assert_eq!(row["rpo_met"], expected, "{row}");
    }
    hook.wait_for("an rpo_missed alert", Duration::from_secs(30), |e| {
        e.iter().any(|e| e["event"] == "rpo_missed")
    });

    // The dead alert channel is shown, and never turned a good backup into a failed one.
    let channels = agent.status()["alert_channels"].clone();
    assert!(
        channels
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["failed"].as_u64() > Some(0) && c["last_error"].is_string()),
        "{channels}"
    );
    assert!(
        !channels.to_string().contains("nobody-listens"),
        "{channels}"
    );
    assert_eq!(agent.target("app", "good")["failures_total"], 0);

    // Metrics: behind the token, in Prometheus' format.
    assert_eq!(get(addr, "/metrics", None).unwrap().0, 401);
    assert_eq!(get(addr, "/api/v1/status", Some("wrong")).unwrap().0, 401);
    assert_eq!(get(addr, "/livez", None).unwrap().0, 200);
    let (code, metrics) = get(addr, "/metrics", Some(TOKEN)).unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics
            .contains("lifeboat_job_last_success_timestamp_seconds{plan=\"app\",target=\"good\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lifeboat_rpo_met{plan=\"app\",source=\"app\",target=\"late\"} 0"),
        "{metrics}"
    );
    assert!(!metrics.contains(TOKEN));
    assert!(
        metrics.contains("lifeboat_replicator_up{plan=\"app\",source=\"app\",target=\"good\"} 1"),
        "{metrics}"
    );

    // Retention kept the plan's snapshots of each source to about `last = 2`.
    assert!(snapshots_tagged(&good, "source:uploads") <= 3);
    assert!(snapshots_tagged(&good, "source:app") <= 3);

    // The target appears: the next run succeeds and a recovery notice goes out, once.
    let late_repo = TestRepo::at(late.to_str().unwrap(), Vec::new());
    late_repo.init();
    hook.wait_for("a recovery notice", Duration::from_secs(60), |e| {
        e.iter()
            .any(|e| e["event"] == "recovered" && e["target"] == "late")
    });
    let stderr = agent.stop();
    assert!(stderr.contains("stopped"), "{stderr}");
    // One line per job, successes included, with duration and size.
    assert!(
        stderr.contains("backup of plan app to good: succeeded, 2 snapshot(s), ")
            && stderr.contains(" bytes stored in "),
        "{stderr}"
    );
    assert!(
        stderr.contains("backup of plan app to late: failed after "),
        "{stderr}"
    );
    assert!(
        !stderr.contains(PASSWORD) && !stderr.contains(TOKEN),
        "{stderr}"
    );
    assert_eq!(hook.of_kind("job_failed").len(), 1);
    good.ok(&["verify"]);
    late_repo.ok(&["verify"]);
}

#[test]
fn a_restarted_agent_runs_a_missed_plan_once_and_sigterm_abandons_cleanly() {
    let repo = TestRepo::local();
    let dir = repo.dir.path();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "x").unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir,
        &format!(
            r#"
[[source]]
name = "data"
url = "./data"
[[source]]
name = "slow"
command = "sleep 8; echo slow"
[[target]]
name = "local"
url = "{url}"
[[plan]]
name = "hourly"
sources = ["data"]
targets = ["local"]
schedule = "every 1h"
[[plan]]
name = "slow"
sources = ["slow"]
targets = ["local"]
schedule = "every 1h"
[agent]
listen = "{addr}"
state = "./agent.db"
"#,
            url = repo.url
        ),
    );
    // A plan that never ran runs at once.
    let agent = Agent::start(dir, &config, addr);
    agent.wait_for("the first run", Duration::from_secs(60), |a| {
        a.target("hourly", "local")["last_run"]["ok"] == true
    });
    // SIGTERM while the slow plan's backup is still running: it is abandoned, not saved.
    assert_eq!(
        agent.target("slow", "local")["last_run"]["finished"],
        serde_json::Value::Null
    );
    agent.stop();
    assert_eq!(
        snapshots_tagged(&repo, "plan:slow"),
        0,
        "an abandoned job saved a snapshot"
    );
    repo.ok(&["verify"]);

    // Five hours pass with the agent down: five slots of the hourly plan are missed.
    let state = rusqlite::Connection::open(dir.join("agent.db")).unwrap();
    let five_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(5)).to_rfc3339();
    state
        .execute("UPDATE runs SET scheduled_for = ?1", [&five_hours_ago])
        .unwrap();
    drop(state);

    let agent = Agent::start(dir, &config, addr);
    let abandoned = agent.target("slow", "local");
    assert_eq!(
        abandoned["failures_total"], 1,
        "the cut-off run is recorded as failed: {abandoned}"
    );
    agent.wait_for("the missed run", Duration::from_secs(60), |a| {
        runs(a, "hourly", "local") >= 2
    });
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        runs(&agent, "hourly", "local"),
        2,
        "missed slots ran more than once"
    );
    let status = agent.status();
    let hourly = status["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hourly")
        .unwrap();
    let next: chrono::DateTime<chrono::Utc> = hourly["next_run"].as_str().unwrap().parse().unwrap();
    assert!(
        next > chrono::Utc::now() + chrono::Duration::minutes(55),
        "{hourly}"
    );
    agent.wait_for("the slow plan", Duration::from_secs(60), |a| {
        a.target("slow", "local")["last_run"]["ok"] == true
    });
    agent.stop();
    assert_eq!(snapshots_tagged(&repo, "plan:hourly"), 2);
    assert_eq!(snapshots_tagged(&repo, "plan:slow"), 1);
    // The configuration is kept in the target once: a restart with the same file adds
    // no second copy.
    assert_eq!(snapshots_tagged(&repo, "lifeboat:config"), 1);
}

#[test]
fn scheduled_drills_are_recorded_measured_and_alerted() {
    let repo = TestRepo::local();
    let dir = repo.dir.path();
    for name in ["app", "broken"] {
        let db = rusqlite::Connection::open(dir.join(format!("{name}.db"))).unwrap();
        db.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
            .unwrap();
    }
    let hook = WebhookReceiver::start();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir,
        &format!(
            r#"
[[source]]
name = "app"
url = "sqlite:./app.db"
checks = ["SELECT count(*) = 2 FROM t"]
[[source]]
name = "broken"
url = "sqlite:./broken.db"
checks = ["SELECT count(*) > 1000 FROM t"]
[[target]]
name = "local"
url = "{url}"
[[plan]]
name = "app"
sources = ["app", "broken"]
targets = ["local"]
schedule = "every 1h"
drill = "every 1h"
rto = "10m"
[agent]
listen = "{addr}"
state = "./agent.db"
[[alert]]
kind = "webhook"
url = "{hook}"
"#,
            url = repo.url,
            hook = hook.url
        ),
    );
    let agent = Agent::start(dir, &config, addr);
    agent.wait_for("two drills", Duration::from_secs(90), |a| {
        a.status()["drills"]
            .as_array()
            .is_some_and(|d| d.len() == 2)
    });
    let drills = agent.status()["drills"].clone();
    let app = drills
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == "app")
        .unwrap();
    assert_eq!(app["passed"], true, "{drills}");
    assert!(app["rto_seconds"].as_f64().unwrap() > 0.0, "{drills}");
    assert!(app["last_success"].is_string());
    let broken = drills
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == "broken")
        .unwrap();
    assert_eq!(broken["passed"], false, "{drills}");
    assert!(
        broken["reason"]
            .as_str()
            .unwrap()
            .contains("count(*) > 1000"),
        "{drills}"
    );
    hook.wait_for("the drill_failed alert", Duration::from_secs(30), |e| {
        e.iter()
            .any(|e| e["event"] == "drill_failed" && e["source"] == "broken")
    });
    let (_, metrics) = get(addr, "/metrics", None).unwrap();
    assert!(
        metrics
            .contains("lifeboat_drill_last_passed{plan=\"app\",source=\"app\",target=\"local\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("lifeboat_drill_last_rto_seconds{plan=\"app\",source=\"app\""));
    agent.stop();
    // Each drill is recorded in the repository too.
    assert_eq!(
        std::fs::read_dir(repo.repo_dir().join("drills"))
            .unwrap()
            .count(),
        2
    );
}

/// The `lifeboat replicate` children of process `parent`.
fn replicators_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("replicate")
        })
        .collect()
}

/// Whether `pid` still runs (a zombie waiting for its new parent does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

fn replicator(agent: &Agent) -> serde_json::Value {
    agent.status()["replicators"][0].clone()
}

#[test]
fn a_killed_agent_takes_its_replicator_along_and_one_that_stays_down_is_an_incident() {
    let repo = TestRepo::local();
    let dir = repo.dir.path();
    let db = rusqlite::Connection::open(dir.join("app.db")).unwrap();
    db.execute_batch("PRAGMA journal_mode=wal; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(db);
    let hook = WebhookReceiver::start();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir,
        &format!(
            r#"
[[source]]
name = "app"
url = "sqlite:./app.db"
[[target]]
name = "local"
url = "{url}"
[[plan]]
name = "app"
sources = ["app"]
targets = ["local"]
continuous = true
rpo = "5s"
[agent]
listen = "{addr}"
token = "${{AGENT_TOKEN}}"
state = "./agent.db"
[[alert]]
kind = "webhook"
url = "{hook}"
"#,
            url = repo.url,
            hook = hook.url
        ),
    );
    let up = |a: &Agent| replicator(a)["up"] == true;

    // kill -9: the replicator goes with the agent instead of keeping its stream's lease.
    let mut agent = Agent::start(dir, &config, addr);
    agent.wait_for("the replicator", Duration::from_secs(60), up);
    let children = replicators_of(agent.child.id());
    assert_eq!(children.len(), 1, "{children:?}");
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while children.iter().any(|&pid| running(pid)) {
        assert!(
            Instant::now() < deadline,
            "the replicator outlived its agent"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(agent);

    // The restarted agent replicates again: no "another replicator" loop.
    let agent = Agent::start(dir, &config, addr);
    agent.wait_for("the replicator again", Duration::from_secs(60), up);
    assert_eq!(replicator(&agent)["last_error"], serde_json::Value::Null);
    agent.stop();

    // A replicator that cannot run (another process holds the stream) is an incident
    // once it has been down longer than the RPO, and over when it runs again.
    let mut holder = repo
        .command()
        .args(["replicate", dir.join("app.db").to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let agent = Agent::start(dir, &config, addr);
    hook.wait_for("a replicator_down alert", Duration::from_secs(60), |e| {
        e.iter().any(|e| e["event"] == "replicator_down")
    });
    let down = replicator(&agent);
    assert_eq!(down["up"], false, "{down}");
    assert!(
        down["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("another replicator")),
        "{down}"
    );
    assert!(down["down_since"].is_string(), "{down}");
    // SAFETY: kill(2) on the replicator this test started.
    unsafe {
        libc::kill(holder.id() as i32, libc::SIGTERM);
    }
    holder.wait().unwrap();
    agent.wait_for(
        "the replicator after the holder left",
        Duration::from_secs(90),
        up,
    );
    hook.wait_for("the recovery notice", Duration::from_secs(30), |e| {
        e.iter().any(|e| {
            e["event"] == "recovered"
                && e["what"]
                    .as_str()
                    .is_some_and(|w| w.contains("replication"))
        })
    });
    let recovered = replicator(&agent);
    assert_eq!(
        recovered["last_error"],
        serde_json::Value::Null,
        "{recovered}"
    );
    assert_eq!(hook.of_kind("replicator_down").len(), 1);
    agent.stop();
}

/// The RPO check runs `lifeboat status`; when that gives no report (here lifeboat.toml was
/// broken by an edit while the agent runs), nobody would hear of a missed objective. That
/// is an incident, alerted once, with the reason, and over when the check runs again.
#[test]
fn a_status_check_that_cannot_run_is_an_incident_not_silence() {
    let app = UploadsPlan::new();
    let (dir, addr) = (app.dir(), app.addr);
    let hook = WebhookReceiver::start();
    let good = app.config(
        "rpo = \"1h\"",
        &format!(
            "token = \"${{AGENT_TOKEN}}\"\n[[alert]]\nkind = \"webhook\"\nurl = \"{}\"",
            hook.url
        ),
    );
    let config = write_config(dir, &good);
    let agent = Agent::start(dir, &config, addr);
    agent.wait_for("a measured restore point", Duration::from_secs(30), |a| {
        let status = a.status();
        status["restore_points"]
            .as_array()
            .is_some_and(|r| r.len() == 1)
            && status["restore_points_error"].is_null()
    });

    std::fs::write(
        &config,
        format!("{good}\n[[plan]]\nname = \"typo\"\nsources = [\"nope\"]\ntargets = [\"local\"]\n"),
    )
    .unwrap();
    hook.wait_for(
        "an objective_unchecked alert",
        Duration::from_secs(30),
        |e| e.iter().any(|e| e["event"] == "objective_unchecked"),
    );
    let alert = hook.of_kind("objective_unchecked")[0].clone();
    assert_eq!(alert["plan"], "app", "{alert}");
    assert_eq!(alert["target"], "local", "{alert}");
    assert_eq!(alert["severity"], "failure", "{alert}");
    let error = alert["error"].as_str().unwrap();
    assert!(
        error.contains("status") && error.contains("nope"),
        "{error}"
    );
    let status = agent.status();
    assert!(
        status["restore_points_error"]
            .as_str()
            .is_some_and(|e| e.contains("nope")),
        "{status}"
    );
    // The last measured rows stay, rather than an empty list that looks like nothing to watch.
    assert_eq!(
        status["restore_points"].as_array().unwrap().len(),
        1,
        "{status}"
    );
    agent.wait_for("the open incident", Duration::from_secs(30), |a| {
        a.status()["open_incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["key"] == "unchecked/app/local")
    });
    // Someone says they are on it: the operator's token only, and only open incidents.
    let ack = |token: &str, key: &str| {
        common::http::call_with(
            addr,
            "POST",
            "/api/v1/incidents/acknowledge",
            Some(token),
            Some(&serde_json::json!({ "key": key })),
        )
        .unwrap()
    };
    assert_eq!(ack(TOKEN, "unchecked/app/nowhere").0, 404);
    let (code, acknowledged) = ack(TOKEN, "unchecked/app/local");
    assert_eq!(code, 200, "{acknowledged}");
    assert!(acknowledged["acknowledged"].is_string(), "{acknowledged}");
    let (_, listed) = common::http::call(addr, "GET", "/api/v1/incidents", Some(TOKEN)).unwrap();
    let listed = listed.as_array().unwrap();
    let incident = listed
        .iter()
        .find(|i| i["key"] == "unchecked/app/local")
        .unwrap();
    assert_eq!(
        incident["acknowledged"], acknowledged["acknowledged"],
        "{listed:?}"
    );
    // Checks keep failing every second; the incident is alerted once.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hook.of_kind("objective_unchecked").len(), 1);

    std::fs::write(&config, &good).unwrap();
    hook.wait_for("a recovery notice", Duration::from_secs(30), |e| {
        e.iter().any(|e| {
            e["event"] == "recovered"
                && e["what"]
                    .as_str()
                    .is_some_and(|w| w.contains("measured again"))
        })
    });
    agent.wait_for("a clean check", Duration::from_secs(30), |a| {
        a.status()["restore_points_error"].is_null()
    });
    agent.stop();
}

/// `/api/v1/`: a read-only token reads but cannot act; the operator's token runs a plan's
/// backup and its drill now, followed by id to the end; the OpenAPI document is served;
/// without an operator token configured, actions are refused.
#[test]
fn the_api_reads_with_either_token_and_acts_only_with_the_operators() {
    let app = UploadsPlan::new();
    let (repo, dir, addr) = (&app.repo, app.dir(), app.addr);
    const READER: &str = "reader-token";
    let body = |tokens: &str| app.config("", tokens);
    let config = write_config(
        dir,
        &body(&format!(
            "token = \"${{AGENT_TOKEN}}\"\nread_token = \"{READER}\""
        )),
    );
    let agent = Agent::start(dir, &config, addr);
    let call = |method: &str, path: &str, token: Option<&str>| {
        common::http::call(addr, method, path, token).expect("the agent answers")
    };

    let (code, spec) = call("GET", "/api/v1/openapi.json", None);
    assert_eq!(code, 200);
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(
        spec["paths"]["/api/v1/plans/{plan}/backup"]["post"].is_object(),
        "{spec}"
    );
    assert!(
        spec["components"]["schemas"]["Action"].is_object(),
        "{spec}"
    );
    assert_eq!(call("GET", "/api/v1/status", Some(READER)).0, 200);
    assert_eq!(call("GET", "/api/v1/status", Some("wrong")).0, 401);
    let (code, refused) = call("POST", "/api/v1/plans/app/backup", Some(READER));
    assert_eq!(code, 403, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("only read"),
        "{refused}"
    );
    let (code, missing) = call("POST", "/api/v1/plans/nope/backup", Some(TOKEN));
    assert_eq!(code, 404, "{missing}");
    assert_eq!(call("GET", "/api/v1/nowhere", Some(READER)).0, 404);
    assert_eq!(call("GET", "/api/v1/jobs?limit=0", Some(READER)).0, 400);

    // The scheduled run at start, then one asked for: a snapshot more.
    agent.wait_for("the first scheduled run", Duration::from_secs(60), |a| {
        runs(a, "app", "local") >= 1 && !a.status()["plans"][0]["running"].as_bool().unwrap()
    });
    let before = snapshots_tagged(repo, "plan:app");
    let follow = |kind: &str| -> serde_json::Value {
        let (code, action) = call("POST", &format!("/api/v1/plans/app/{kind}"), Some(TOKEN));
        assert_eq!(code, 202, "{action}");
        assert_eq!(action["kind"], kind, "{action}");
        let id = action["id"].as_u64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (code, action) = call("GET", &format!("/api/v1/actions/{id}"), Some(READER));
            assert_eq!(code, 200, "{action}");
            if action["finished"].is_string() {
                return action;
            }
            assert!(
                Instant::now() < deadline,
                "action {id} did not finish: {action}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let backup = follow("backup");
    assert_eq!(backup["state"], "succeeded", "{backup}");
    assert_eq!(snapshots_tagged(repo, "plan:app"), before + 1);
    // The snapshots as the API lists them: the source's, read from its target.
    let (code, listed) = call("GET", "/api/v1/snapshots?source=uploads", Some(READER));
    assert_eq!(code, 200, "{listed}");
    let listed = listed.as_array().unwrap();
    assert_eq!(
        listed.len(),
        snapshots_tagged(repo, "source:uploads"),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .all(|s| s["kind"] == "files" && s["files"] == 1),
        "{listed:?}"
    );
    assert!(listed
        .windows(2)
        .all(|w| w[0]["time"].as_str() <= w[1]["time"].as_str()));
    assert_eq!(
        call("GET", "/api/v1/snapshots?target=nope", Some(READER)).0,
        404
    );
    assert_eq!(
        call("GET", "/api/v1/snapshots?limit=3", Some(READER)).0,
        400
    );
    let (_, jobs) = call("GET", "/api/v1/jobs?limit=1", Some(READER));
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(jobs[0]["ok"], true, "{jobs}");
    assert!(
        jobs[0]["started"].as_str() >= backup["started"].as_str(),
        "{jobs} {backup}"
    );

    let drill = follow("drill");
    assert_eq!(drill["state"], "succeeded", "{drill}");
    let (_, drills) = call("GET", "/api/v1/drills", Some(READER));
    assert!(
        drills
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["source"] == "uploads" && d["passed"] == true),
        "{drills}"
    );
    let (_, actions) = call("GET", "/api/v1/actions", Some(READER));
    assert_eq!(actions.as_array().unwrap().len(), 2, "{actions}");
    agent.stop();

    // No operator token configured: reading stays open on loopback, acting is refused.
    write_config(dir, &body(""));
    let agent = Agent::start(dir, &config, addr);
    assert_eq!(call("GET", "/api/v1/status", None).0, 200);
    // ...but not to a page of another site that pointed its name at 127.0.0.1 (DNS
    // rebinding): its requests name that site.
    let port = addr.port();
    let (code, body) =
        common::http::get_as(addr, &format!("evil.example:{port}"), "/api/v1/status").unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(!body.contains("plans"), "{body}");
    assert_eq!(
        common::http::get_as(addr, &format!("localhost:{port}"), "/api/v1/status")
            .unwrap()
            .0,
        200
    );
    let (code, refused) = call("POST", "/api/v1/plans/app/backup", None);
    assert_eq!(code, 403, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("operator token"),
        "{refused}"
    );
    agent.stop();
}

/// The dashboard at `/`, in Debian's chromium as a person uses it: the token given once,
/// a card per source that says it is protected, a backup run from its button, the oldest
/// moment picked on the timeline and restored as it was, a drill run with the outcome
/// shown, nothing fetched from anywhere but the agent, no console errors, and a
/// page that fits a 1024 px window and a phone. Screenshots are kept where
/// LIFEBOAT_KEEP_SCREENSHOTS points.
#[test]
fn the_dashboard_shows_protection_and_runs_a_drill_in_a_real_browser() {
    let Some(browser) = common::browser::scripts("the dashboard test") else {
        return;
    };
    let app = UploadsPlan::new();
    let (dir, addr) = (app.dir(), app.addr);
    let config = write_config(
        dir,
        &app.config("rpo = \"1h\"", "token = \"${AGENT_TOKEN}\""),
    );
    let agent = Agent::start(dir, &config, addr);
    agent.wait_for("a protected source", Duration::from_secs(60), |a| {
        a.status()["restore_points"][0]["rpo_met"] == true
    });
    // Changed after the first backup: the page's backup keeps the change, and a restore
    // of the oldest point on its timeline brings the upload back as it was.
    std::fs::write(dir.join("uploads/a.txt"), "changed").unwrap();
    let (code, page) = get(addr, "/", None).unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("<title>Lifeboat</title>"), "{page}");

    let shots = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/");
    let seen = common::browser::run(
        &browser.join("dashboard.js"),
        &[
            url.as_ref(),
            TOKEN.as_ref(),
            "app".as_ref(),
            shots.path().as_os_str(),
        ],
        Duration::from_secs(180),
    );
    let cards = seen["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 1, "{seen}");
    assert_eq!(cards[0]["source"], "uploads", "{seen}");
    assert_eq!(cards[0]["state"], "protected", "{seen}");
    assert!(
        cards[0]["text"].as_str().unwrap().contains("Protected"),
        "{seen}"
    );
    assert!(
        seen["backup"]
            .as_str()
            .unwrap()
            .contains("backup of app succeeded"),
        "{seen}"
    );
    let ticks = seen["ticks"].as_array().unwrap();
    assert!(ticks.len() >= 2, "{seen}");
    assert_eq!(seen["picked"], ticks[0], "{seen}");
    let restore = seen["restore"]["text"].as_str().unwrap();
    assert!(
        seen["restore"]["className"]
            .as_str()
            .unwrap()
            .contains("good"),
        "{seen}"
    );
    let into = restore
        .split_once(" to ")
        .and_then(|(_, rest)| rest.rsplit_once(" in "))
        .map(|(path, _)| PathBuf::from(path))
        .unwrap_or_else(|| panic!("no path in {restore:?}"));
    assert!(restore.starts_with("Restored uploads as of"), "{seen}");
    assert!(into.starts_with(dir.join("restores")), "{seen}");
    assert_eq!(
        std::fs::read_to_string(into.join("uploads/a.txt")).unwrap(),
        "uploaded"
    );
    let drill = seen["drill"].as_str().unwrap();
    assert!(drill.contains("drill of app succeeded"), "{seen}");
    let after = seen["cards_after"][0].as_str().unwrap();
    assert!(
        after.contains("Last drill") && after.contains("passed"),
        "{seen}"
    );
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["outside_requests"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["overflow_px"]["desktop"], 0, "{seen}");
    assert_eq!(seen["overflow_px"]["phone"], 0, "{seen}");
    for shot in ["desktop.png", "phone.png"] {
        let path = shots.path().join(shot);
        assert!(std::fs::metadata(&path).unwrap().len() > 10_000, "{shot}");
        if let Ok(keep) = std::env::var("LIFEBOAT_KEEP_SCREENSHOTS") {
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::copy(&path, Path::new(&keep).join(format!("dashboard-{shot}"))).unwrap();
        }
    }
    eprintln!("dashboard loaded in {} ms", seen["load_ms"]);
    agent.stop();
}

/// The API against its own OpenAPI document: schemathesis (PyPI) generates requests from
/// it for every operation (valid and invalid input, missing and wrong tokens, sequences
/// that follow an action's id) and checks each answer against the document: status
/// codes, content types, headers, response schemas, no server error, auth enforced.
#[test]
fn the_api_conforms_to_its_openapi_document_under_schemathesis() {
    if Command::new("st").arg("--version").output().is_err() {
        common::skip("schemathesis is not installed (scripts/test.sh installs it with pip)");
        return;
    }
    let app = UploadsPlan::new();
    let (dir, addr) = (app.dir(), app.addr);
    let config = write_config(
        dir,
        &app.config(
            "rpo = \"1h\"",
            "token = \"${AGENT_TOKEN}\"\nread_token = \"reader-token\"",
        ),
    );
    let agent = Agent::start(dir, &config, addr);
    let mut child = Command::new("st")
        .arg("run")
        .arg(format!("http://{addr}/api/v1/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--checks", "all", "--max-time", "30", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("schemathesis did not finish within 240 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    // Warnings are not failures: acknowledging answers 404 for every key it makes up,
    // which schemathesis notes as "missing test data".
    assert!(
        out.status.success() && !report.contains("FAILURES") && !report.contains("ERRORS"),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It did exercise the operations (all but the document itself), actions included.
    let tested: usize = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count of tested operations in:\n{report}"));
    assert!(tested >= 9, "{report}");
    let (_, actions) = common::http::call(addr, "GET", "/api/v1/actions", Some(TOKEN)).unwrap();
    assert!(!actions.as_array().unwrap().is_empty(), "{actions}");
    agent.stop();
}

/// The TypeScript client (`clients/typescript`, generated from the OpenAPI document) from
/// Node 20 against a live agent: typed reads with the read token, refusals as
/// `AgentError`s with their status, a backup run to its end with the operator token, then
/// the source's timeline and a restore of its oldest point to scratch space.
#[test]
fn the_typescript_client_drives_a_live_agent_from_node() {
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/typescript");
    if !client.join("node_modules/openapi-fetch").exists() {
        common::skip("the TypeScript client test needs `npm ci --prefix clients/typescript` (scripts/test.sh does it)");
        return;
    }
    let app = UploadsPlan::new();
    let (dir, addr) = (app.dir(), app.addr);
    const READER: &str = "reader-token";
    let config = write_config(
        dir,
        &app.config(
            "",
            &format!("token = \"${{AGENT_TOKEN}}\"\nread_token = \"{READER}\""),
        ),
    );
    let agent = Agent::start(dir, &config, addr);
    agent.wait_for("the first scheduled run", Duration::from_secs(60), |a| {
        runs(a, "app", "local") >= 1 && !a.status()["plans"][0]["running"].as_bool().unwrap()
    });
    let url = format!("http://{addr}");
    let seen = common::browser::run(
        &client.join("test/live.mjs"),
        &[
            url.as_ref(),
            TOKEN.as_ref(),
            READER.as_ref(),
            "app".as_ref(),
            "uploads".as_ref(),
        ],
        Duration::from_secs(180),
    );
    assert_eq!(seen["token_required"], true, "{seen}");
    assert_eq!(seen["timeline"]["kind"], "directory", "{seen}");
    assert!(seen["timeline"]["points"].as_u64().unwrap() >= 2, "{seen}");
    assert_eq!(seen["restored"]["state"], "succeeded", "{seen}");
    let restored_at = seen["restored"]["time"].as_str().unwrap();
    let oldest = seen["timeline"]["oldest"].as_str().unwrap();
    let millis = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(millis(restored_at), millis(oldest), "{seen}");
    assert!(
        Path::new(seen["restored"]["target"].as_str().unwrap()).starts_with(dir.join("restores")),
        "{seen}"
    );
    assert_eq!(seen["bad_moment"]["status"], 400, "{seen}");
    assert!(seen["restore_points"].is_u64(), "{seen}");
    assert_eq!(seen["reader_backup"]["status"], 403, "{seen}");
    assert!(
        seen["reader_backup"]["message"]
            .as_str()
            .unwrap()
            .contains("only read"),
        "{seen}"
    );
    assert_eq!(seen["unknown_plan"]["status"], 404, "{seen}");
    assert_eq!(seen["finished"]["state"], "succeeded", "{seen}");
    assert_eq!(seen["newest_job"]["plan"], "app", "{seen}");
    assert_eq!(seen["newest_job"]["ok"], true, "{seen}");
    assert!(
        seen["newest_job"]["started"].as_str() >= seen["action_started"].as_str(),
        "{seen}"
    );
    agent.stop();
}

/// Follows `/api/v1/actions/{id}/events` to its end: the actions its events carried.
fn follow_events(addr: SocketAddr, id: u64) -> Vec<serde_json::Value> {
    let (code, stream) =
        get(addr, &format!("/api/v1/actions/{id}/events"), Some(TOKEN)).expect("events");
    assert_eq!(code, 200, "{stream}");
    stream
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

/// Restore to scratch space through the API: a moment picked from a source's timeline (a
/// SQLite database backed up twice) restores the database as it was then, followed live
/// with server-sent events; a directory source restores from its snapshot; nothing is
/// written but new private directories beside the state, of which three are kept; bad
/// requests get clear refusals.
#[test]
fn a_moment_picked_from_the_timeline_restores_to_scratch_space_through_the_api() {
    let app = UploadsPlan::new();
    let (dir, addr) = (app.dir(), app.addr);
    let db = rusqlite::Connection::open(dir.join("app.db")).unwrap();
    db.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('first');")
        .unwrap();
    const READER: &str = "reader-token";
    let config = app
        .config(
            "",
            &format!("token = \"${{AGENT_TOKEN}}\"\nread_token = \"{READER}\""),
        )
        .replace(
            "sources = [\"uploads\"]",
            "sources = [\"uploads\", \"app-db\"]",
        )
        .replace(
            "[[target]]",
            "[[source]]\nname = \"app-db\"\nurl = \"sqlite:./app.db\"\n[[target]]",
        );
    let config = write_config(dir, &config);
    let agent = Agent::start(dir, &config, addr);
    let call = |method: &str, path: &str, token: Option<&str>, body: Option<serde_json::Value>| {
        common::http::call_with(addr, method, path, token, body.as_ref()).expect("answers")
    };
    agent.wait_for("the first scheduled run", Duration::from_secs(60), |a| {
        runs(a, "app", "local") >= 1 && !a.status()["plans"][0]["running"].as_bool().unwrap()
    });
    db.execute("INSERT INTO notes VALUES ('second')", [])
        .unwrap();
    let (code, backup) = call("POST", "/api/v1/plans/app/backup", Some(TOKEN), None);
    assert_eq!(code, 202, "{backup}");
    let events = follow_events(addr, backup["id"].as_u64().unwrap());
    assert_eq!(events.last().unwrap()["state"], "succeeded", "{events:?}");

    // The timeline, read from the repository with the read-only token.
    let (code, timeline) = call("GET", "/api/v1/sources/app-db/timeline", Some(READER), None);
    assert_eq!(code, 200, "{timeline}");
    assert_eq!(timeline["kind"], "file", "{timeline}");
    let points = timeline["restore_points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{timeline}");
    assert!(points.iter().all(|p| p["restorable"] == true), "{timeline}");
    let (code, uploads) = call(
        "GET",
        "/api/v1/sources/uploads/timeline?target=local",
        Some(READER),
        None,
    );
    assert_eq!(code, 200, "{uploads}");
    assert_eq!(uploads["kind"], "directory", "{uploads}");
    assert_eq!(uploads["restore_points"].as_array().unwrap().len(), 2);

    // Refusals: a read-only token, a moment that is not one, no such source or target.
    let restore_body = |at: &str| Some(serde_json::json!({ "at": at }));
    let refused = |token, path: &str, body, want: u16| {
        let (code, answer) = call("POST", path, token, body);
        assert_eq!(code, want, "{path}: {answer}");
        answer["error"].as_str().unwrap().to_string()
    };
    let db_restore = "/api/v1/sources/app-db/restore";
    assert!(refused(Some(READER), db_restore, restore_body("latest"), 403).contains("only read"));
    assert!(
        refused(Some(TOKEN), db_restore, restore_body("yesterday-ish"), 400)
            .contains("yesterday-ish")
    );
    refused(
        Some(TOKEN),
        "/api/v1/sources/nope/restore",
        restore_body("latest"),
        404,
    );
    let elsewhere = Some(serde_json::json!({"at": "latest", "target": "offsite"}));
    assert!(refused(Some(TOKEN), db_restore, elsewhere, 404).contains("offsite"));
    assert_eq!(
        call(
            "GET",
            "/api/v1/sources/app-db/timeline?target=offsite",
            Some(READER),
            None
        )
        .0,
        404
    );

    // The first restore point, picked by its time as the timeline gives it.
    let restore = |source: &str, at: &str| -> serde_json::Value {
        let path = format!("/api/v1/sources/{source}/restore");
        let (code, action) = call("POST", &path, Some(TOKEN), restore_body(at));
        assert_eq!(code, 202, "{action}");
        assert_eq!(action["kind"], "restore", "{action}");
        let events = follow_events(addr, action["id"].as_u64().unwrap());
        let last = events.last().unwrap().clone();
        assert!(last["finished"].is_string(), "{events:?}");
        last
    };
    let first = restore("app-db", points[0]["time"].as_str().unwrap());
    assert_eq!(first["state"], "succeeded", "{first}");
    let restored = &first["restored"];
    assert_eq!(restored["checked"], true, "{first}");
    let file = PathBuf::from(restored["target"].as_str().unwrap());
    let scratch = dir.join("restores");
    assert!(file.starts_with(&scratch), "{first}");
    let rows = |file: &Path| -> Vec<String> {
        let copy = rusqlite::Connection::open(file).unwrap();
        let mut query = copy
            .prepare("SELECT body FROM notes ORDER BY rowid")
            .unwrap();
        let rows = query.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(rows(&file), ["first"]);
    use std::os::unix::fs::PermissionsExt;
    let private = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o077;
    assert_eq!(private(&scratch), 0);
    assert_eq!(private(file.parent().unwrap()), 0);

    let latest = restore("app-db", "latest");
    let latest_file = PathBuf::from(latest["restored"]["target"].as_str().unwrap());
    assert_eq!(rows(&latest_file), ["first", "second"]);
    let folder = restore("uploads", "latest");
    assert_eq!(folder["state"], "succeeded", "{folder}");
    let into = PathBuf::from(folder["restored"]["target"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(into.join("uploads/a.txt")).unwrap(),
        "uploaded"
    );

    // A moment before any restore point fails cleanly, leaving no directory behind.
    let early = restore("app-db", "2001-01-01T00:00:00Z");
    assert_eq!(early["state"], "failed", "{early}");
    assert!(
        early["error"].as_str().unwrap().contains("before"),
        "{early}"
    );
    let kept = || std::fs::read_dir(&scratch).unwrap().count();
    assert_eq!(kept(), 3);
    // A fourth restore: the oldest goes, so that restores cannot fill the disk.
    restore("app-db", "latest");
    assert_eq!(kept(), 3);
    assert!(!file.exists(), "the oldest restore was kept");
    assert!(latest_file.exists());
    agent.stop();
}

#[test]
fn a_continuous_plan_streams_a_mysql_binlog_and_recovers_past_its_dump() {
    let Some(server) = common::mariadb::MariaDb::start() else {
        return;
    };
    server.sql(None, "CREATE DATABASE shop");
    server.sql(
        Some("shop"),
        "CREATE TABLE orders (id INT PRIMARY KEY); INSERT INTO orders VALUES (1)",
    );
    let repo = TestRepo::local();
    let dir = repo.dir.path();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir,
        &format!(
            r#"
[[source]]
name = "shop"
url = "{url}"
[[target]]
name = "local"
url = "{repo}"
[[plan]]
name = "shop"
sources = ["shop"]
targets = ["local"]
schedule = "every 1h"
continuous = true
rpo = "1m"
[agent]
listen = "{addr}"
token = "${{AGENT_TOKEN}}"
state = "./agent.db"
"#,
            url = server.url(Some("shop")),
            repo = repo.url,
        ),
    );
    let agent = Agent::start(dir, &config, addr);
    agent.wait_for("the binlog streamer", Duration::from_secs(30), |a| {
        a.status()["replicators"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["source"] == "shop" && r["up"] == true))
    });
    agent.wait_for("the first dump", Duration::from_secs(60), |_| {
        snapshots_tagged(&repo, "source:shop") >= 1
    });
    // Written after the dump: only the streamed binlog has them.
    server.sql(
        Some("shop"),
        "INSERT INTO orders VALUES (2), (3); INSERT INTO orders VALUES (4)",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = repo.run(&[
            "restore",
            &server.url(Some("shop")),
            "--into",
            &server.url(Some("shop_copy")),
            "--force",
        ]);
        if out.status.success() && server.number("shop_copy", "SELECT COUNT(*) FROM orders") == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the streamed binlog never reached the last insert: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let stderr = agent.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
