//! A `lifeboat serve` process on a free loopback port with its self-signed certificate,
//! for tests that reach a repository through the server.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{lifeboat_bin, TestRepo};

pub struct TestServer {
    child: Child,
    pub dir: tempfile::TempDir,
    /// `host:port` it listens on.
    pub address: String,
    /// `sha256:<hex>` as it printed it.
    pub fingerprint: String,
}

impl TestServer {
    /// Serves a new (empty) local directory.
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        TestServer::serve(dir, &repo)
    }

    /// Serves `repo` (any URL `--repo` accepts), keeping the server's state in `dir`.
    pub fn serve(dir: tempfile::TempDir, repo: &Path) -> TestServer {
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = Command::new(lifeboat_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(dir.path().join("state"))
            .arg("--repo")
            .arg(repo)
            .env_remove("LIFEBOAT_REPO")
            .env_remove("LIFEBOAT_LOG")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start lifeboat serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut address = None;
        let mut fingerprint = None;
        while address.is_none() || fingerprint.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("lifeboat serve printed its address and fingerprint");
            if let Some(rest) = line.split("lifeboat+https://").nth(1) {
                address = Some(rest.trim().to_string());
            }
            if let Some(rest) = line.split("fingerprint: ").nth(1) {
                fingerprint = Some(rest.split_whitespace().next().unwrap().to_string());
            }
        }
        TestServer {
            child,
            dir,
            address: address.unwrap(),
            fingerprint: fingerprint.unwrap(),
        }
    }

    pub fn repo_dir(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn url(&self) -> String {
        format!("lifeboat+https://{}", self.address)
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `lifeboat serve token ARGS...` on this server's state directory.
    pub fn token_command(&self, args: &[&str]) -> Output {
        Command::new(lifeboat_bin())
            .args(["serve", "token"])
            .args(args)
            .arg("--state-dir")
            .arg(self.state_dir())
            .output()
            .expect("run lifeboat serve token")
    }

    /// Adds a token with `role` and returns it.
    pub fn add_token(&self, name: &str, role: &str) -> String {
        let out = self.token_command(&["add", name, "--role", role]);
        let stdout = super::succeeded(&out);
        let token = stdout.lines().next().expect("a token").trim().to_string();
        assert!(token.starts_with("lbt_"), "{stdout}");
        token
    }

    /// A client of this server with `token`, pinning its certificate.
    pub fn client(&self, token: &str) -> TestRepo {
        TestRepo::at(
            &self.url(),
            vec![
                ("LIFEBOAT_SERVER_TOKEN".into(), token.into()),
                (
                    "LIFEBOAT_SERVER_FINGERPRINT".into(),
                    self.fingerprint.clone(),
                ),
            ],
        )
    }

    /// One raw HTTPS request with curl (the token in a header file, not in argv):
    /// returns the status and the body.
    pub fn raw(&self, token: &str, method: &str, path: &str, body: Option<&Path>) -> (u16, String) {
        let headers = self.dir.path().join("curl-headers");
        std::fs::write(&headers, format!("Authorization: Bearer {token}\n")).unwrap();
        let mut cmd = Command::new("curl");
        cmd.args(["-sk", "-o", "-", "-w", "\n%{http_code}", "-X", method, "-H"])
            .arg(format!("@{}", headers.display()))
            .arg(format!("https://{}{path}", self.address));
        if let Some(body) = body {
            cmd.arg("--data-binary").arg(format!("@{}", body.display()));
        }
        let out = cmd.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').expect("curl wrote the status");
        (code.trim().parse().expect("status"), body.to_string())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
