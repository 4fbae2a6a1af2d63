//! End-to-end tests against a real S3 server: a throwaway single-node Garage.
//!
//! The connection comes from the environment that `.ci/garage.sh` writes (`AWS_*` and
//! `LIFEBOAT_TEST_S3_BUCKET`). Without `LIFEBOAT_TEST_S3_BUCKET` this test binary starts
//! one Garage itself, shared by its tests; Garage is killed and its directory removed
//! when the binary exits (the script's watchdog follows our pid). Every test works under
//! its own prefix in the bucket, so tests run in parallel and runs never collide.
//!
//! ```sh
//! . "$(.ci/garage.sh /tmp/lifeboat-garage)"   # or let the tests start one
//! cargo test -p lifeboat --test s3
//! ```

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{digest, pseudo_random, TestRepo};

/// How to reach a Garage: the variables `lifeboat` needs, and the bucket.
struct S3Env {
    vars: Vec<(String, String)>,
    bucket: String,
}

impl S3Env {
    /// A repository (not yet initialised) under a fresh prefix of the bucket.
    fn repo(&self, name: &str) -> TestRepo {
        TestRepo::at(&self.url(name), self.vars.clone())
    }

    fn url(&self, name: &str) -> String {
        format!("s3://{}/{}", self.bucket, unique(name))
    }

    fn with(&self, key: &str, value: &str) -> Vec<(String, String)> {
        let mut vars: Vec<_> = self
            .vars
            .iter()
            .filter(|(k, _)| k != key)
            .cloned()
            .collect();
        vars.push((key.to_string(), value.to_string()));
        vars
    }
}

const S3_VARS: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
];

/// The Garage shared by this binary's tests: the one the environment names, else one
/// started here on first use.
fn shared() -> &'static S3Env {
    static SHARED: OnceLock<S3Env> = OnceLock::new();
    SHARED.get_or_init(|| match std::env::var("LIFEBOAT_TEST_S3_BUCKET") {
        Ok(bucket) if !bucket.is_empty() => {
            let vars = S3_VARS
                .iter()
                .map(|k| {
                    let v = std::env::var(k).unwrap_or_else(|_| {
                        panic!("LIFEBOAT_TEST_S3_BUCKET is set, so {k} must be too")
                    });
                    (k.to_string(), v)
                })
                .collect();
            S3Env { vars, bucket }
        }
        _ => {
            let dir = tempfile::Builder::new()
                .prefix("lifeboat-garage-")
                .tempdir()
                .expect("tempdir")
                .keep();
            // The watchdog deletes the directory once this process is gone.
            let env = run_garage_script(&dir, true);
            S3Env {
                vars: s3_vars(&env),
                bucket: get(&env, "LIFEBOAT_TEST_S3_BUCKET"),
            }
        }
    })
}

fn garage_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/garage.sh")
}

/// Runs `.ci/garage.sh DIR` (starts Garage, or restarts it on the same data) and returns
/// the variables of the env file it wrote.
fn run_garage_script(dir: &Path, cleanup_at_exit: bool) -> Vec<(String, String)> {
    let mut cmd = Command::new("bash");
    cmd.arg(garage_script())
        .arg(dir)
        .env("GARAGE_WATCH_PID", std::process::id().to_string())
        .env(
            "GARAGE_WATCH_CLEANUP",
            if cleanup_at_exit { "1" } else { "0" },
        )
        .stdin(Stdio::null());
    let (out, took) = run_bounded(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{} failed ({}) after {took:?}; is Garage 2.x installed (garage on PATH or GARAGE_BIN)?\n{}{}",
        garage_script().display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let env_file = stdout
        .lines()
        .last()
        .expect("env file path")
        .trim()
        .to_string();
    parse_env_file(Path::new(&env_file))
}

/// Reads `export KEY='value'` lines.
fn parse_env_file(path: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .flat_map(|rest| rest.split_whitespace())
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

fn get(env: &[(String, String)], key: &str) -> String {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{key} missing from the garage env file"))
}

fn s3_vars(env: &[(String, String)]) -> Vec<(String, String)> {
    S3_VARS
        .iter()
        .map(|k| (k.to_string(), get(env, k)))
        .collect()
}

/// `name-<pid>-<nanos>`: unique across tests, runs and concurrent test binaries.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos:x}", std::process::id())
}

/// Runs `cmd` to completion, killing it (and failing the test) after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_bounded(child, started, limit)
}

fn wait_bounded(
    mut child: std::process::Child,
    started: Instant,
    limit: Duration,
) -> (Output, Duration) {
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "command still running after {limit:?}; stderr so far:\n{}",
                String::from_utf8_lossy(&stderr.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    let out = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    (out, took)
}

/// Asserts that a failed command said exactly one line on stderr, that it names
/// `location`, and that nothing panicked.
fn assert_one_line_error(stderr: &str, location: &str) {
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got:\n{stderr}"
    );
    assert!(lines[0].starts_with("lifeboat: "), "{stderr}");
    assert!(
        lines[0].contains(location),
        "error should name {location}:\n{stderr}"
    );
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// About twenty files: a 5 MiB random file, an empty file, a symlink, small text files
/// in nested directories, an 0600 file. Returns the number of files.
fn small_tree(root: &Path) -> u64 {
    write(&root.join("big.bin"), &pseudo_random(5 * 1024 * 1024, 42));
    write(&root.join("empty"), b"");
    std::os::unix::fs::symlink("notes/note-01.txt", root.join("link")).unwrap();
    for i in 0..15 {
        let sub = if i % 3 == 0 { "notes/deeper" } else { "notes" };
        write(
            &root.join(format!("{sub}/note-{i:02}.txt")),
            format!("note {i}\n").repeat(i * 50 + 1).as_bytes(),
        );
    }
    write(&root.join("uploads/avatar.png"), &pseudo_random(40_000, 7));
    write(&root.join("secret.env"), b"DATABASE_URL=postgres://x\n");
    fs::set_permissions(root.join("secret.env"), fs::Permissions::from_mode(0o600)).unwrap();
    19
}

/// A Garage of one test's own (it gets killed), under a directory that goes away with it.
struct OwnGarage {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl OwnGarage {
    fn start() -> OwnGarage {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-garage-own-")
            .tempdir()
            .expect("tempdir");
        let env = run_garage_script(dir.path(), false);
        OwnGarage { dir, env }
    }

    fn s3(&self) -> S3Env {
        S3Env {
            vars: s3_vars(&self.env),
            bucket: get(&self.env, "LIFEBOAT_TEST_S3_BUCKET"),
        }
    }

    fn pid(&self) -> i32 {
        get(&self.env, "GARAGE_PID").parse().expect("GARAGE_PID")
    }

    fn kill(&self) {
        // SAFETY: plain kill(2) on the pid of the Garage this test started.
        unsafe {
            libc::kill(self.pid(), libc::SIGKILL);
        }
    }

    /// Starts Garage again on the same data, config and ports.
    fn restart(&mut self) {
        self.env = run_garage_script(self.dir.path(), false);
    }

    /// Garage's count of S3 `GetObject` requests so far (its admin API's /metrics).
    fn get_requests(&self) -> u64 {
        let state = std::fs::read_to_string(self.dir.path().join("state")).unwrap();
        let port: u16 = state
            .lines()
            .find_map(|l| l.strip_prefix("ADMIN_PORT="))
            .expect("ADMIN_PORT")
            .parse()
            .unwrap();
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let (_, metrics) = common::http::get(addr, "/metrics", None).expect("metrics");
        metrics
            .lines()
            .filter(|l| l.starts_with("api_s3_request_counter{api_endpoint=\"GetObject\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    fn data_bytes(&self) -> u64 {
        common::dir_size(&self.dir.path().join("data"))
    }
}

impl Drop for OwnGarage {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn round_trip_on_s3_with_verify_and_dedup() {
    let s3 = shared();
    let repo = s3.repo("round-trip");
    repo.init();
    let src = repo.path("src");
    let files = small_tree(&src);

    let first = repo.json(&["backup", src.to_str().unwrap()]);
    let id = first["id"].as_str().expect("id").to_string();
    let first_stored = first["summary"]["stored_bytes"].as_u64().unwrap();
    assert!(
        first["summary"]["files"].as_u64().unwrap() >= files,
        "{first}"
    );
    assert!(
        first_stored > 5 * 1024 * 1024,
        "random data cannot shrink: {first}"
    );
    assert_eq!(repo.snapshot_ids(), vec![id.clone()]);

    let out = repo.restore(&id, "out");
    assert_eq!(digest(&src), digest(&out.join("src")));
    repo.ok(&["verify", "--read-data"]);

    // One small file changes: the second backup stores that and a little metadata.
    write(&src.join("notes/note-04.txt"), b"changed\n");
    let second = repo.json(&["backup", src.to_str().unwrap()]);
    let second_stored = second["summary"]["stored_bytes"].as_u64().unwrap();
    assert!(
        second_stored < 256 * 1024 && second_stored * 20 < first_stored,
        "one changed file stored {second_stored} bytes (first backup: {first_stored})"
    );
    let ids = repo.snapshot_ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let out = repo.restore("latest", "out2");
    assert_eq!(digest(&src), digest(&out.join("src")));
    repo.ok(&["verify", "--read-data"]);
}

#[test]
fn a_restore_of_many_small_files_reads_whole_runs_of_a_pack() {
    let garage = OwnGarage::start();
    let repo = garage.s3().repo("small-files");
    repo.init();
    let src = repo.path("src");
    for i in 0..300 {
        write(
            &src.join(format!("f{i:03}")),
            format!("file {i}\n").repeat(40).as_bytes(),
        );
    }
    repo.ok(&["backup", src.to_str().unwrap()]);
    let before = garage.get_requests();
    let out = repo.restore("latest", "out");
    let requests = garage.get_requests() - before;
    assert_eq!(digest(&src), digest(&out.join("src")));
    // One request per blob was 300 and more; the blobs sit in one pack.
    assert!(
        requests < 30,
        "restoring 300 small files made {requests} GetObject requests"
    );
}

#[test]
fn unreachable_storage_exits_5_promptly_with_one_line() {
    let s3 = shared();
    // A loopback port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = s3.url("unreachable");
    let vars = s3.with("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}"));
    let repo = TestRepo::at(&url, vars);
    let src = repo.path("src");
    write(&src.join("f"), b"x");
    for args in [
        vec!["snapshots"],
        vec!["backup", src.to_str().unwrap()],
        vec!["init", "--kdf-memory-mib", "8", "--kdf-iterations", "1"],
    ] {
        let mut cmd = repo.command();
        cmd.args(&args);
        let (out, took) = run_bounded(cmd, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(5),
            "{args:?}: {}\n{stderr}",
            out.status
        );
        assert_one_line_error(&stderr, &url);
        // The cause a person needs: the endpoint could not be reached (not, say, a
        // configuration error that fails before any request is sent).
        assert!(
            stderr.to_lowercase().contains("connect"),
            "{args:?} should say it could not connect:\n{stderr}"
        );
        assert!(
            took < Duration::from_secs(30),
            "{args:?} took {took:?} to give up"
        );
    }
}

#[test]
fn missing_credentials_are_one_clear_line() {
    // No Garage needed: signing fails before any request. Nothing from this machine's
    // environment, profiles or instance metadata may stand in for the missing keys.
    let home = tempfile::tempdir().unwrap();
    let url = "s3://no-credentials/repo";
    for args in [vec!["snapshots"], vec!["init"]] {
        let mut cmd = Command::new(common::lifeboat_bin());
        cmd.args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("LIFEBOAT_REPO", url)
            .env("LIFEBOAT_PASSWORD", common::PASSWORD)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_REGION", "garage")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        let (out, _) = run_bounded(cmd, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {stderr}");
        assert_one_line_error(&stderr, url);
        assert!(
            stderr.contains("no credentials for") && stderr.contains("AWS_ACCESS_KEY_ID"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("Provider {"), "{args:?}: {stderr}");
    }
}

#[test]
fn wrong_passphrase_on_s3_exits_4() {
    let s3 = shared();
    let repo = s3.repo("wrong-passphrase");
    repo.init();
    let wrong = TestRepo::at(
        &repo.url,
        s3.with("LIFEBOAT_PASSWORD", "not the passphrase"),
    );
    let src = wrong.path("src");
    write(&src.join("f"), b"x");
    for args in [vec!["snapshots"], vec!["backup", src.to_str().unwrap()]] {
        let stderr = wrong.fails(&args, 4);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    // The right one still works, and nothing was written by the failed attempts.
    assert!(repo.snapshot_ids().is_empty());
}

#[test]
fn garage_killed_mid_backup_leaves_a_consistent_repository() {
    let mut garage = OwnGarage::start();
    let s3 = garage.s3();
    let repo = s3.repo("killed-mid-backup");
    repo.init();

    let small = repo.path("small");
    write(&small.join("a.txt"), b"first snapshot\n");
    write(&small.join("b.bin"), &pseudo_random(300_000, 3));
    let first = repo.backup(&[&small]);
    let small_digest = digest(&small);

    // ~200 MiB of random data, so the backup is still uploading when Garage dies.
    let big = repo.path("big");
    for i in 0..20u64 {
        write(
            &big.join(format!("f{i:02}")),
            &pseudo_random(10 * 1024 * 1024, 100 + i),
        );
    }
    let before = garage.data_bytes();
    let started = Instant::now();
    let mut cmd = repo.command();
    cmd.args(["backup", big.to_str().unwrap(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn backup");

    // Under way: some packs have reached Garage (or a second has passed).
    while garage.data_bytes() < before + 16 * 1024 * 1024 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup finished before Garage could be stopped"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "backup made no progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "backup already done");
    garage.kill();

    let (out, took) = wait_bounded(child, Instant::now(), Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(5),
        "a backup whose storage died should exit 5: {}\n{stderr}",
        out.status
    );
    assert_one_line_error(&stderr, &repo.url);
    assert!(
        took < Duration::from_secs(60),
        "gave up only after {took:?}"
    );

    garage.restart();
    // Only the first snapshot exists: no half-written one.
    let list = repo.json(&["snapshots"]);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![first.as_str()], "{list}");
    repo.ok(&["verify"]);
    let out = repo.restore(&first, "out");
    assert_eq!(small_digest, digest(&out.join("small")));

    // A new backup works, and can reuse what the interrupted one uploaded.
    for i in 3..20 {
        fs::remove_file(big.join(format!("f{i:02}"))).unwrap();
    }
    let again = repo.json(&["backup", big.to_str().unwrap()]);
    let id = again["id"].as_str().unwrap();
    assert_eq!(repo.snapshot_ids().len(), 2);
    let out = repo.restore(id, "out-big");
    assert_eq!(digest(&big), digest(&out.join("big")));
    repo.ok(&["verify", "--read-data"]);
}

/// A server that accepts connections but never answers (here: Garage under SIGSTOP)
/// fails a command about as promptly as one that refuses them: metadata requests use short
/// timeouts (see `StorageOptions` in crates/storage/src/lib.rs). Before that, every
/// request waited out a 20 s I/O timeout on each of 5 attempts (`snapshots`: ~105 s).
#[test]
fn frozen_storage_fails_promptly() {
    let garage = OwnGarage::start();
    let s3 = garage.s3();
    let repo = s3.repo("frozen");
    repo.init();
    // SAFETY: plain kill(2) on the pid of the Garage this test started; Drop kills it.
    unsafe {
        libc::kill(garage.pid(), libc::SIGSTOP);
    }
    let mut cmd = repo.command();
    cmd.arg("snapshots");
    let (out, took) = run_bounded(cmd, Duration::from_secs(180));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{}\n{stderr}", out.status);
    assert_one_line_error(&stderr, &repo.url);
    assert!(
        took < Duration::from_secs(30),
        "gave up only after {took:?}"
    );
}

/// The agent with a local target and a Garage target: Garage dies, the failure alert goes
/// out (once), the local target keeps getting backups; Garage returns, the agent catches
/// up and sends the recovery notice.
#[test]
fn agent_keeps_backing_up_locally_while_garage_is_down() {
    use common::http::{get, WebhookReceiver};
    let mut garage = OwnGarage::start();
    let s3 = garage.s3();
    let remote = s3.repo("agent-offsite");
    remote.init();
    let local = TestRepo::local();
    let dir = local.dir.path();
    write(&dir.join("uploads/a.txt"), b"uploaded\n");
    let hook = WebhookReceiver::start();
    let addr = format!("127.0.0.1:{}", common::postgres::free_port());
    let config = dir.join("lifeboat.toml");
    fs::write(
        &config,
        format!(
            r#"
[[source]]
name = "uploads"
url = "./uploads"
[[target]]
name = "local"
url = "{local}"
[[target]]
name = "offsite"
url = "{remote}"
[[plan]]
name = "app"
sources = ["uploads"]
targets = ["local", "offsite"]
schedule = "every 2s"
[agent]
listen = "{addr}"
state = "./agent.db"
[[alert]]
kind = "webhook"
url = "{hook}"
"#,
            local = local.url,
            remote = remote.url,
            hook = hook.url
        ),
    )
    .unwrap();
    let mut cmd = Command::new(common::lifeboat_bin());
    cmd.args(["agent", "--config"])
        .arg(&config)
        .env("LIFEBOAT_PASSWORD", common::PASSWORD)
        .env_remove("LIFEBOAT_REPO")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in &s3.vars {
        cmd.env(k, v);
    }
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
        }
    }
    let mut agent = KillOnDrop(cmd.spawn().unwrap());
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let runs = |target: &str| -> (u64, u64) {
        let Some((200, body)) = get(addr, "/api/v1/status", None) else {
            return (0, 0);
        };
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        let t = status["plans"][0]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == target)
            .cloned()
            .unwrap_or_default();
        (
            t["runs_total"].as_u64().unwrap_or(0),
            t["failures_total"].as_u64().unwrap_or(0),
        )
    };
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done() {
            assert!(Instant::now() < deadline, "no {what} in time");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait("a successful offsite run", &|| {
        let (runs, failures) = runs("offsite");
        runs > failures
    });

    garage.kill();
    let killed = Instant::now();
    hook.wait_for("the failure alert", Duration::from_secs(120), |e| {
        e.iter()
            .any(|e| e["event"] == "job_failed" && e["target"] == "offsite")
    });
    let detected = killed.elapsed();
    println!("time to detect the stopped target: {detected:?}");
    let local_runs = runs("local").0;
    wait("local backups while offsite is down", &|| {
        let (runs, failures) = runs("local");
        runs >= local_runs + 2 && failures == 0
    });

    garage.restart();
    hook.wait_for("the recovery notice", Duration::from_secs(120), |e| {
        e.iter()
            .any(|e| e["event"] == "recovered" && e["target"] == "offsite")
    });
    // SAFETY: kill(2) on the agent this test started.
    unsafe {
        libc::kill(agent.0.id() as i32, libc::SIGTERM);
    }
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(60),
            "the agent ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let failures = hook
        .events()
        .iter()
        .filter(|e| e["event"] == "job_failed")
        .count();
    assert_eq!(failures, 1, "{:#?}", hook.events());
    remote.ok(&["verify"]);
    local.ok(&["verify"]);
}

/// Garage has no S3 Object Lock: `init --object-lock` asks the store first and refuses with
/// the reason, before anything is written.
#[test]
fn object_lock_is_refused_where_the_store_lacks_it() {
    let repo = shared().repo("nolock");
    let stderr = repo.fails(
        &[
            "init",
            "--kdf-memory-mib",
            "8",
            "--kdf-iterations",
            "1",
            "--object-lock",
            "30d",
        ],
        1,
    );
    assert!(
        stderr.contains("cannot lock the objects of s3://"),
        "{stderr}"
    );
    assert!(stderr.contains("Object Lock"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Nothing was written: a plain init works on the same prefix afterwards.
    repo.init();
}
