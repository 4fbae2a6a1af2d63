//! Continuous plans: one `lifeboat replicate` child per SQLite source and target, kept
//! running (restarted with a growing pause when it exits) until the agent stops.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeboat_config::{Config, SourceLocation, Target};
use serde::Serialize;

use crate::children::{error_line, for_target, Children};

#[derive(Debug, Clone, Serialize)]
pub struct ReplicatorStatus {
    pub plan: String,
    pub source: String,
    pub target: String,
    pub up: bool,
    pub restarts: u64,
    pub last_error: Option<String>,
}

/// The SQLite database a source names, if it is one (a `sqlite:`/`file:` URL, or a path
/// to a file with the SQLite header).
pub fn sqlite_path(location: &SourceLocation) -> Option<PathBuf> {
    let SourceLocation::Url(url) = location else {
        return None;
    };
    lifeboat_sources::sqlite::path_from_url(url)
        .or_else(|| Some(PathBuf::from(url)))
        .filter(|p| lifeboat_sources::sqlite::is_sqlite(p) || url.starts_with("sqlite:"))
}

/// Starts a supervisor thread for every continuous plan's SQLite sources on each target.
pub fn start(
    exe: &Path,
    config: &Config,
    children: &Children,
    stop: &Arc<AtomicBool>,
    on_change: impl Fn(&ReplicatorStatus) + Send + Sync + Clone + 'static,
) -> Vec<(Arc<Mutex<ReplicatorStatus>>, std::thread::JoinHandle<()>)> {
    let mut supervisors = Vec::new();
    for plan in config.plans.iter().filter(|p| p.continuous) {
        for name in &plan.sources {
            let Some(path) = config.source(name).and_then(|s| sqlite_path(&s.location)) else {
                continue;
            };
            for target in plan.targets.iter().filter_map(|t| config.target(t)) {
                let status = Arc::new(Mutex::new(ReplicatorStatus {
                    plan: plan.name.clone(),
                    source: name.clone(),
                    target: target.name.clone(),
                    up: false,
                    restarts: 0,
                    last_error: None,
                }));
                let handle = {
                    let (exe, path, target) = (exe.to_path_buf(), path.clone(), target.clone());
                    let (children, stop, status) = (children.clone(), stop.clone(), status.clone());
                    let on_change = on_change.clone();
                    std::thread::spawn(move || {
                        supervise(&exe, &path, &target, &children, &stop, &status, &on_change)
                    })
                };
                supervisors.push((status, handle));
            }
        }
    }
    supervisors
}

fn supervise(
    exe: &Path,
    path: &Path,
    target: &Target,
    children: &Children,
    stop: &AtomicBool,
    status: &Mutex<ReplicatorStatus>,
    on_change: &dyn Fn(&ReplicatorStatus),
) {
    let mut pause = Duration::from_secs(1);
    while !stop.load(Ordering::SeqCst) {
        let mut command = Command::new(exe);
        command
            .arg("replicate")
            .arg(path)
            .arg("--quiet")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for_target(&mut command, target);
        let started = Instant::now();
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                record(
                    status,
                    on_change,
                    false,
                    Some(format!("cannot start lifeboat: {e}")),
                );
                wait_or_stop(stop, pause);
                continue;
            }
        };
        let key = children.register(child.id());
        record(status, on_change, true, None);
        let out = child.wait_with_output();
        children.unregister(key);
        if stop.load(Ordering::SeqCst) {
            record(status, on_change, false, None);
            return;
        }
        let error = match out {
            Ok(out) => error_line(&String::from_utf8_lossy(&out.stderr), &out.status),
            Err(e) => e.to_string(),
        };
        tracing::warn!("replicating {} to {}: {error}", path.display(), target.name);
        {
            let mut s = status.lock().expect("status");
            s.restarts += 1;
        }
        record(status, on_change, false, Some(error));
        // A replicator that ran a while earned a quick restart; one that keeps failing
        // at once backs off up to a minute.
        if started.elapsed() > Duration::from_secs(60) {
            pause = Duration::from_secs(1);
        }
        wait_or_stop(stop, pause);
        pause = (pause * 2).min(Duration::from_secs(60));
    }
}

fn record(
    status: &Mutex<ReplicatorStatus>,
    on_change: &dyn Fn(&ReplicatorStatus),
    up: bool,
    error: Option<String>,
) {
    let snapshot = {
        let mut s = status.lock().expect("status");
        s.up = up;
        if error.is_some() {
            s.last_error = error;
        }
        s.clone()
    };
    on_change(&snapshot);
}

fn wait_or_stop(stop: &AtomicBool, pause: Duration) {
    let until = Instant::now() + pause;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
}
