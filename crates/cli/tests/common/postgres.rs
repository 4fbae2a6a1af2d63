//! Throwaway PostgreSQL 15 clusters for physical-backup tests: `initdb` on a free
//! loopback port, archiving into a Lifeboat repository through `lifeboat pg wal-push`.
//! PostgreSQL refuses to run as root, so under root the cluster, the repository and
//! every lifeboat command run as the `postgres` user (through `runuser`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::is_root;

pub const BIN: &str = "/usr/lib/postgresql/15/bin";

/// `program args...`, as the postgres user when we are root.
pub fn as_owner(program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

/// Runs `sql` through psql at `url`, unaligned and tuples only; panics on failure.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scratch area the postgres user owns: the cluster, a repository, a copy of the
/// lifeboat binary it can execute, and a passphrase file only it can read.
pub struct PgLab {
    pub dir: tempfile::TempDir,
    pub lifeboat: PathBuf,
    pub repo: PathBuf,
    pub password_file: PathBuf,
}

impl PgLab {
    pub fn new() -> PgLab {
        let dir = tempfile::Builder::new()
            .prefix("lbpg")
            .tempdir_in("/tmp")
            .unwrap();
        let lifeboat = dir.path().join("lifeboat");
        std::fs::copy(super::lifeboat_bin(), &lifeboat).unwrap();
        let password_file = dir.path().join("passphrase");
        std::fs::write(&password_file, "pg lab passphrase\n").unwrap();
        let lab = PgLab {
            repo: dir.path().join("repo"),
            dir,
            lifeboat,
            password_file,
        };
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(lab.dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(lab.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&lab.password_file, std::fs::Permissions::from_mode(0o600))
            .unwrap();
        lab.ok(&["init", "--kdf-memory-mib", "8", "--kdf-iterations", "1"]);
        lab
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A lifeboat command as the cluster's owner, with this lab's repository.
    pub fn command(&self) -> Command {
        let mut command = as_owner(self.lifeboat.to_str().unwrap());
        command
            .env("LIFEBOAT_REPO", &self.repo)
            .env("LIFEBOAT_PASSWORD_FILE", &self.password_file)
            .env("LIFEBOAT_CACHE_DIR", self.dir.path().join("cache"))
            .env_remove("LIFEBOAT_PASSWORD")
            .current_dir(self.dir.path());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lifeboat {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs, asserts the exit code, and returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "lifeboat {args:?}: {stderr}");
        stderr
    }

    /// `pg restore EXTRA...` into a new directory, started on a free port; returns the
    /// recovered cluster and what lifeboat printed.
    pub fn restore_and_start(&self, name: &str, extra: &[&str]) -> (Cluster, String) {
        let dir = self.path(name);
        let port = free_port();
        let port_text = port.to_string();
        let mut args = vec!["pg", "restore", "--target-dir", dir.to_str().unwrap()];
        args.extend(["--start", "--port", &port_text]);
        args.extend(extra);
        let out = self.ok(&args);
        (Cluster::adopt(dir, port), out)
    }

    /// The archive_command that pushes into this lab's repository.
    pub fn archive_command(&self) -> String {
        format!(
            "{} --repo {} --password-file {} pg wal-push %p",
            self.lifeboat.display(),
            self.repo.display(),
            self.password_file.display()
        )
    }
}

/// A running throwaway cluster; stopped (immediately) when dropped.
pub struct Cluster {
    pub data: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// initdb + start, archiving with `archive_command`.
    pub fn start(lab: &PgLab, name: &str, archive_command: &str) -> Cluster {
        let data = lab.path(name);
        let out = as_owner(&format!("{BIN}/initdb"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             archive_mode = on\narchive_command = '{}'\narchive_timeout = 0\n\
             fsync = off\nshared_buffers = 32MB\nmax_wal_size = 256MB\n",
            data.display(),
            archive_command.replace('\'', "''")
        );
        let conf_path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).unwrap();
        text.push_str(&conf);
        std::fs::write(&conf_path, text).unwrap();
        let cluster = Cluster { data, port };
        cluster.pg_ctl(&["-w", "-l", "log", "start"]);
        cluster
    }

    /// A cluster someone else started in `data` on `port` (e.g. `pg restore --start`).
    pub fn adopt(data: PathBuf, port: u16) -> Cluster {
        Cluster { data, port }
    }

    pub fn pg_ctl(&self, args: &[&str]) {
        let out = as_owner(&format!("{BIN}/pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .current_dir(&self.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn psql(&self, sql: &str) -> String {
        psql(&self.url(), sql)
    }

    /// Switches to a new WAL file and waits until the archiver has handed the old one
    /// over (or `timeout` passes); returns whether it did.
    pub fn switch_and_wait_archived(&self, timeout: Duration) -> bool {
        let file = self.psql("SELECT pg_walfile_name(pg_switch_wal())");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let archived =
                self.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
            if archived.as_str() >= file.as_str() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Switches WAL files and asserts the finished one reaches the archive.
    pub fn archive_now(&self) {
        assert!(
            self.switch_and_wait_archived(Duration::from_secs(60)),
            "WAL was not archived:\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("log")).unwrap_or_default()
    }

    pub fn data(&self) -> &Path {
        &self.data
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_owner(&format!("{BIN}/pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
