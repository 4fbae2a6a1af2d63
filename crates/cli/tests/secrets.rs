//! Secrets stay secret: no password on any command line Lifeboat builds (polled from
//! /proc while the agent backs up real PostgreSQL and MariaDB databases), passwords in a
//! URL's query string used but never stored or printed, the commands Lifeboat runs for
//! the user without its passphrase, and private repository files.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::http::get;
use common::postgres::free_port;
use common::{TestRepo, PASSWORD};

const PG: &str = "127.0.0.1:5432";
const MY: &str = "127.0.0.1:3306";

/// Reads every process's command line from /proc, again and again, until stopped.
struct CmdlineWatch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<BTreeSet<String>>,
}

impl CmdlineWatch {
    fn start() -> CmdlineWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = BTreeSet::new();
                while !stop.load(Ordering::SeqCst) {
                    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                        let name = entry.file_name();
                        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                            continue;
                        }
                        if let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) {
                            let line = String::from_utf8_lossy(&bytes).replace('\0', " ");
                            seen.insert(line.trim().to_string());
                        }
                    }
                }
                seen
            })
        };
        CmdlineWatch { stop, handle }
    }

    /// Every command line seen.
    fn stop(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

fn assert_hidden(seen: &BTreeSet<String>, secrets: &[&str]) {
    for line in seen {
        for secret in secrets {
            assert!(
                !line.contains(secret),
                "{secret:?} on a command line: {line}"
            );
        }
    }
}

fn psql(db: &str, sql: &str) -> String {
    common::postgres::psql(&format!("postgres://postgres@{PG}/{db}"), sql)
}

fn mariadb(sql: &str) {
    let out = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", "root", "-e", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL role and a MariaDB user with passwords, each owning a small database;
/// dropped when the test ends. (PostgreSQL here trusts loopback, so only MariaDB checks
/// its password.)
struct Accounts {
    name: String,
}

impl Accounts {
    fn new(tag: &str) -> Accounts {
        let name = format!("lbt_secret_{tag}_{}", std::process::id());
        let accounts = Accounts { name };
        accounts.drop_all();
        let n = &accounts.name;
        psql("postgres", &format!("CREATE ROLE {n} LOGIN PASSWORD 'x'"));
        psql("postgres", &format!("CREATE DATABASE {n} OWNER {n}"));
        psql(
            n,
            &format!("SET ROLE {n}; CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)"),
        );
        mariadb(&format!(
            "CREATE USER '{n}'@'%' IDENTIFIED BY '{pw}'; GRANT ALL ON *.* TO '{n}'@'%';
             CREATE DATABASE {n}; CREATE TABLE {n}.t (id int); INSERT INTO {n}.t VALUES (1), (2);",
            pw = accounts.mysql_password()
        ));
        accounts
    }

    fn pg_password(&self) -> String {
        format!("pgpw-{}-zq", self.name)
    }

    fn mysql_password(&self) -> String {
        format!("mypw-{}-zq", self.name)
    }

    fn drop_all(&self) {
        let n = &self.name;
        psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"),
        );
        psql("postgres", &format!("DROP ROLE IF EXISTS {n}"));
        mariadb(&format!(
            "DROP DATABASE IF EXISTS {n}; DROP USER IF EXISTS '{n}'@'%';"
        ));
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        self.drop_all();
    }
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("lifeboat.toml");
    std::fs::write(&path, body).unwrap();
    path
}

/// GET with the raw `Authorization` header value given.
fn get_with_authorization(addr: SocketAddr, path: &str, authorization: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_agent_never_puts_a_database_password_on_a_command_line() {
    let accounts = Accounts::new("agent");
    let (n, pg_pw, my_pw) = (
        &accounts.name,
        accounts.pg_password(),
        accounts.mysql_password(),
    );
    let repo = TestRepo::local();
    let dir = repo.dir.path();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir,
        &format!(
            r#"
[[source]]
name = "pg"
url = "postgres://{n}:{pg_pw}@{PG}/{n}"
[[source]]
name = "my"
url = "mysql://{n}:{my_pw}@{MY}/{n}"
[[target]]
name = "local"
url = "{url}"
[[plan]]
name = "db"
sources = ["pg", "my"]
targets = ["local"]
schedule = "every 1s"
[agent]
listen = "{addr}"
token = "agent-secret-token"
state = "./agent.db"
"#,
            url = repo.url
        ),
    );
    let watch = CmdlineWatch::start();
    let agent = Agent(
        Command::new(common::lifeboat_bin())
            .args(["agent", "--config"])
            .arg(&config)
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
    let status = || {
        let (code, body) = get(addr, "/api/v1/status", Some("agent-secret-token"))?;
        (code == 200).then(|| serde_json::from_str::<serde_json::Value>(&body).unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let target = loop {
        let target = status().map(|s| s["plans"][0]["targets"][0].clone());
        if let Some(t) = target.filter(|t| t["runs_total"].as_u64() >= Some(3)) {
            break t;
        }
        assert!(Instant::now() < deadline, "no three runs: {:?}", status());
        std::thread::sleep(Duration::from_millis(200));
    };
    let seen = watch.stop();
    assert_eq!(target["failures_total"], 0, "{target}");
    // The watch saw the backups' children (so it would have seen a password on their
    // command lines): each is asked for with a request on its stdin, and what it is asked
    // (the source, its URL, its tags) is on no command line at all.
    assert!(seen.iter().any(|l| l.contains(" request ")), "{seen:#?}");
    assert!(seen.iter().any(|l| l.contains("pg_dump")), "{seen:#?}");
    assert!(!seen.iter().any(|l| l.contains("source:pg")), "{seen:#?}");
    assert_hidden(&seen, &[&pg_pw, &my_pw]);
    let snapshots = repo.ok(&["snapshots", "--json"]);
    assert!(
        snapshots.contains(&format!("postgres://{n}@{PG}/{n}")),
        "{snapshots}"
    );
    assert!(!snapshots.contains(&pg_pw) && !snapshots.contains(&my_pw));

    // RFC 7235: the scheme is case-insensitive.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let code = get_with_authorization(
            addr,
            "/api/v1/status",
            &format!("{scheme} agent-secret-token"),
        );
        assert_eq!(code, 200, "{scheme}");
    }
    assert_eq!(
        get_with_authorization(addr, "/api/v1/status", "bearer wrong"),
        401
    );
    drop(agent);
}

/// A directory of PostgreSQL client tools that record the password they were given.
fn recording_pg_bin(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("pg-bin");
    let log = dir.join("pg-passwords.log");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["psql", "pg_dump", "pg_dumpall"] {
        let path = bin.join(tool);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$PGPASSWORD\" >> '{}'\nexec {}/{tool} \"$@\"\n",
                log.display(),
                common::postgres::BIN
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (bin, log)
}

#[test]
fn passwords_in_the_query_string_are_used_but_never_stored_or_printed() {
    let accounts = Accounts::new("query");
    let (n, pg_pw, my_pw) = (
        &accounts.name,
        accounts.pg_password(),
        accounts.mysql_password(),
    );
    let repo = TestRepo::local();
    let dir = repo.dir.path();

    // MariaDB checks the password: without it the backup would be refused.
    let my_url = format!("mysql://{n}@{MY}/{n}?password={my_pw}");
    repo.ok(&["backup", &my_url]);
    // PostgreSQL trusts loopback here: the tools record what they were given.
    let (bin, log) = recording_pg_bin(dir);
    let pg_url = format!("postgres://{n}@{PG}/{n}?sslmode=disable&password={pg_pw}");
    let out = repo
        .command()
        .args(["backup", &pg_url])
        .env("LIFEBOAT_PG_BIN", &bin)
        .output()
        .unwrap();
    common::succeeded(&out);
    let given = std::fs::read_to_string(&log).unwrap();
    assert!(given.lines().any(|l| l == pg_pw), "{given}");

    let snapshots = repo.ok(&["snapshots", "--json"]);
    let plain = repo.ok(&["snapshots"]);
    for shown in [&snapshots, &plain] {
        assert!(
            !shown.contains(&pg_pw) && !shown.contains(&my_pw),
            "{shown}"
        );
        assert!(!shown.contains("password"), "{shown}");
    }
    assert!(
        snapshots.contains(&format!("postgres://{n}@{PG}/{n}?sslmode=disable")),
        "{snapshots}"
    );

    // The runbook shows neither, and restores into NAME_restored, not into the query.
    let config = write_config(
        dir,
        &format!(
            r#"
[[source]]
name = "shop"
url = "postgres://{n}@db.example:5432/shop?sslmode=require&password={pg_pw}"
[[target]]
name = "local"
url = "{url}"
[[plan]]
name = "shop"
sources = ["shop"]
targets = ["local"]
schedule = "every 1h"
"#,
            url = repo.url
        ),
    );
    let out = repo
        .command()
        .args(["plan", "--format", "md"])
        .env("LIFEBOAT_CONFIG", &config)
        .output()
        .unwrap();
    let runbook = common::succeeded(&out);
    assert!(!runbook.contains(&pg_pw), "{runbook}");
    assert!(
        runbook.contains(&format!(
            "--into 'postgres://{n}@db.example:5432/shop_restored?sslmode=require'"
        )),
        "{runbook}"
    );
}

/// The environment a command run by Lifeboat saw, as `env` printed it.
fn assert_scrubbed(env: &str) {
    assert!(!env.contains("LIFEBOAT_PASSWORD"), "{env}");
    assert!(!env.contains(PASSWORD), "{env}");
    assert!(!env.contains("LIFEBOAT_AGENT_TOKEN"), "{env}");
    // The user's own credentials are theirs to use.
    assert!(env.contains("AWS_SECRET_ACCESS_KEY=users-own"), "{env}");
}

#[test]
fn commands_run_for_the_user_never_see_the_passphrase() {
    let repo = TestRepo::local();
    let dir = repo.dir.path();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "a").unwrap();
    let command = |args: &[&str]| {
        let out = repo
            .command()
            .args(args)
            .env("LIFEBOAT_AGENT_TOKEN", "agent-token")
            .env("AWS_SECRET_ACCESS_KEY", "users-own")
            .current_dir(dir)
            .output()
            .unwrap();
        common::succeeded(&out)
    };
    let watch = CmdlineWatch::start();
    command(&["backup", "--stdin-from-command", "env", "--name", "env.txt"]);
    command(&[
        "restore",
        "latest",
        "--to-command",
        "cat > stored.txt; env > piped.txt",
    ]);
    let data_arg = data.display().to_string();
    command(&[
        "run",
        "--snapshot-before",
        "--source",
        &data_arg,
        "--",
        "sh",
        "-c",
        "env > run.txt",
    ]);
    assert_hidden(&watch.stop(), &[PASSWORD]);
    for file in ["stored.txt", "piped.txt", "run.txt"] {
        assert_scrubbed(&std::fs::read_to_string(dir.join(file)).unwrap());
    }
    // Unless the user asks.
    command(&[
        "--pass-env",
        "LIFEBOAT_PASSWORD",
        "run",
        "--snapshot-before",
        "--source",
        &data_arg,
        "--",
        "sh",
        "-c",
        "env > passed.txt",
    ]);
    let passed = std::fs::read_to_string(dir.join("passed.txt")).unwrap();
    assert!(
        passed.contains(&format!("LIFEBOAT_PASSWORD={PASSWORD}")),
        "{passed}"
    );
    assert!(!passed.contains("LIFEBOAT_AGENT_TOKEN"), "{passed}");
}

/// Every file and directory under `root` with its permission bits.
fn modes(root: &Path) -> Vec<(PathBuf, u32, bool)> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        found.push((
            dir.clone(),
            std::fs::metadata(&dir).unwrap().mode() & 0o7777,
            true,
        ));
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                found.push((entry.path(), meta.mode() & 0o7777, false));
            }
        }
    }
    found
}

fn pg_setup_dry_run(repo: &TestRepo) -> String {
    repo.ok(&["pg", "setup", &format!("postgres://postgres@{PG}")])
}

#[test]
fn repository_files_are_private_unless_shared_with_a_group_on_purpose() {
    // SAFETY: umask(2) has no memory-safety preconditions; 022 is the usual default.
    unsafe {
        libc::umask(0o022);
    }
    let repo = TestRepo::local();
    let data = repo.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "a").unwrap();
    repo.backup(&[data.as_path()]);
    let found = modes(&repo.repo_dir());
    assert!(found
        .iter()
        .any(|(p, _, _)| p.starts_with(repo.repo_dir().join("keys"))));
    assert!(found.len() > 8, "{found:?}");
    for (path, mode, is_dir) in &found {
        let wanted = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, wanted, "{}", path.display());
    }

    // The server's user (postgres) cannot use a private repository: `pg setup` says so.
    // (The scratch directory above it is made passable, as /var/backups would be.)
    std::fs::set_permissions(repo.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let advice = pg_setup_dry_run(&repo);
    assert!(
        advice.contains("# warning: PostgreSQL runs archive_command as uid")
            && advice.contains("cannot write"),
        "{advice}"
    );

    // A repository directory the administrator made setgid for the postgres group: new
    // files and directories get the group (read and write), never others.
    let shared = TestRepo::at(&repo.path("shared").display().to_string(), Vec::new());
    let root = shared.repo_dir();
    std::fs::create_dir(&root).unwrap();
    let postgres_gid = std::fs::metadata("/var/lib/postgresql").unwrap().gid();
    std::os::unix::fs::chown(&root, None, Some(postgres_gid)).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o2770)).unwrap();
    shared.init();
    shared.backup(&[data.as_path()]);
    for (path, mode, is_dir) in modes(&root) {
        let wanted = if is_dir { 0o2770 } else { 0o660 };
        assert_eq!(mode, wanted, "{}", path.display());
        assert_eq!(std::fs::metadata(&path).unwrap().gid(), postgres_gid);
    }
    let advice = pg_setup_dry_run(&shared);
    assert!(!advice.contains("warning"), "{advice}");
}

#[test]
fn a_password_command_gives_the_passphrase_without_showing_it() {
    let repo = TestRepo::local();
    let data = repo.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "a").unwrap();
    let secret_file = repo.path("vault-entry");
    std::fs::write(&secret_file, format!("{PASSWORD}\nsecond line ignored\n")).unwrap();
    let run = |command: &str, args: &[&str]| {
        repo.command()
            .env_remove("LIFEBOAT_PASSWORD")
            .env("LIFEBOAT_PASSWORD_COMMAND", command)
            .args(args)
            .output()
            .unwrap()
    };
    let listed = run(
        &format!("cat {}", secret_file.display()),
        &["backup", data.to_str().unwrap()],
    );
    common::succeeded(&listed);

    // The command runs without Lifeboat's own secrets, like every command run for the user.
    let env_seen = repo.path("env-seen");
    let out = run(
        &format!(
            "env > {}; cat {}",
            env_seen.display(),
            secret_file.display()
        ),
        &["snapshots"],
    );
    common::succeeded(&out);
    let env = std::fs::read_to_string(&env_seen).unwrap();
    assert!(!env.contains(PASSWORD), "{env}");

    // A failing command is named, with its status; what it printed is never shown.
    let out = run("echo leaked-secret-text; exit 3", &["snapshots"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("password command") && stderr.contains("exit status: 3"),
        "{stderr}"
    );
    assert!(!stderr.contains("leaked-secret-text"), "{stderr}");
    let out = run("printf 'wrong\\n'", &["snapshots"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
