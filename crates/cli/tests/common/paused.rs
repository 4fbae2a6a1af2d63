//! A backup paused at a fault point (`LIFEBOAT_PAUSE_AT`, crates/repo/src/fault.rs), for
//! tests of what runs beside it (prune, another user's prune).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::TestRepo;

/// A backup started in the background that waits at `point` until released.
pub struct PausedBackup {
    child: Child,
    signal: PathBuf,
}

impl PausedBackup {
    pub fn start(repo: &TestRepo, point: &str, path: &Path, name: &str) -> PausedBackup {
        let signal = repo.path(name);
        let child = repo
            .command()
            .args(["backup", path.to_str().unwrap(), "--json"])
            .env("LIFEBOAT_PAUSE_AT", format!("{point}:{}", signal.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let reached = PathBuf::from(format!("{}.reached", signal.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !reached.exists() {
            assert!(
                Instant::now() < deadline,
                "the backup never reached {point}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        PausedBackup { child, signal }
    }

    /// Lets it finish; returns its JSON report.
    pub fn finish(self) -> serde_json::Value {
        std::fs::write(format!("{}.go", self.signal.display()), b"").unwrap();
        let out = self.child.wait_with_output().unwrap();
        serde_json::from_str(&super::succeeded(&out)).unwrap()
    }
}
