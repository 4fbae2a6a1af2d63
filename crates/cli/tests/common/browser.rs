//! Scripts of `tests/browser/` that drive Debian's chromium through playwright-core.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `tests/browser/`, or `None` (after `skip`) when chromium or its npm packages are missing.
pub fn scripts(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    if dir.join("node_modules/playwright-core").exists() && Path::new("/usr/bin/chromium").exists()
    {
        return Some(dir);
    }
    super::skip(&format!(
        "{test} needs chromium and `npm ci --prefix tests/browser` (scripts/test.sh does both)"
    ));
    None
}

/// Runs `node SCRIPT ARGS...` (bounded by `limit`: a hung browser fails the test) and
/// returns the JSON it printed.
pub fn run(script: &Path, args: &[&std::ffi::OsStr], limit: Duration) -> serde_json::Value {
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is installed");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} did not finish within {limit:?}", script.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
