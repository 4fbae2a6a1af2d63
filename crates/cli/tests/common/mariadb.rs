//! Throwaway MariaDB servers for binlog tests: `mariadb-install-db` into a scratch data
//! directory, `mariadbd` on a free loopback port with the binary log on (ROW format),
//! stopped and removed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use super::is_root;

pub struct MariaDb {
    pub port: u16,
    pub dir: tempfile::TempDir,
    server: Child,
}

impl MariaDb {
    /// `None` (with the reason printed) when this machine has no MariaDB server binaries.
    pub fn start() -> Option<MariaDb> {
        let mariadbd = PathBuf::from("/usr/sbin/mariadbd");
        if !mariadbd.exists() {
            super::skip("/usr/sbin/mariadbd is missing (apt-get install mariadb-server)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .args(is_root().then_some("--user=root"))
            .output()
            .unwrap();
        assert!(out.status.success(), "mariadb-install-db: {out:?}");
        let port = super::postgres::free_port();
        let server = Command::new(&mariadbd)
            .arg("--no-defaults")
            .args(is_root().then_some("--user=root"))
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}/mariadb.sock", dir.path().display()))
            .arg(format!("--log-bin={}/binlog", data.display()))
            .arg("--binlog-format=ROW")
            .arg("--server-id=7")
            // Small files, so a test crosses rotations.
            .arg("--max-binlog-size=65536")
            .arg("--skip-name-resolve")
            .arg(format!("--log-error={}/error.log", dir.path().display()))
            .arg(format!("--pid-file={}/mariadb.pid", dir.path().display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let db = MariaDb { port, dir, server };
        let deadline = Instant::now() + Duration::from_secs(60);
        while db.try_sql(None, "SELECT 1").is_err() {
            assert!(
                Instant::now() < deadline,
                "mariadbd did not start: {}",
                std::fs::read_to_string(db.dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(db)
    }

    /// `mysql://root@127.0.0.1:PORT[/db]`.
    pub fn url(&self, db: Option<&str>) -> String {
        format!(
            "mysql://root@127.0.0.1:{}{}",
            self.port,
            db.map(|d| format!("/{d}")).unwrap_or_default()
        )
    }

    pub fn client(&self, db: Option<&str>) -> Command {
        let mut command = Command::new("mariadb");
        command
            .arg("--no-defaults")
            .args([
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "--batch",
                "--skip-column-names",
            ])
            .arg(format!("--port={}", self.port));
        command.args(db);
        command
    }

    fn try_sql(&self, db: Option<&str>, sql: &str) -> Result<String, Output> {
        let out = self.client(db).args(["-e", sql]).output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(out)
        }
    }

    /// Runs `sql`; panics on failure.
    pub fn sql(&self, db: Option<&str>, sql: &str) -> String {
        self.try_sql(db, sql)
            .unwrap_or_else(|out| panic!("{sql}: {}", String::from_utf8_lossy(&out.stderr)))
    }

    pub fn number(&self, db: &str, sql: &str) -> i64 {
        self.sql(Some(db), sql).parse().unwrap()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
