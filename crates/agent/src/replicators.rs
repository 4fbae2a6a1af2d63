//! Continuous plans: one `lifeboat replicate` child per SQLite source and target, and one
//! `lifeboat mysql binlog-stream` per MySQL/MariaDB source and target, kept running
//! (restarted with a growing pause when it exits) until the agent stops.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeboat_config::{Config, Target};
use lifeboat_ops::source_kind::SourceKind;
use lifeboat_repo::snapshot::Engine;
use serde::Serialize;

use crate::children::{die_with_the_agent, error_line, for_target, Children};

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReplicatorStatus {
    pub plan: String,
    pub source: String,
    pub target: String,
    pub up: bool,
    pub restarts: u64,
    /// Cleared once a restarted replicator has stayed up for [`HEALTHY_AFTER`].
    pub last_error: Option<String>,
    /// Since when it has not been running (a failing replicator keeps restarting: it is
    /// down from its first failure until one run lasts [`HEALTHY_AFTER`]).
    pub down_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Down for this long is an incident: the plan's RPO, at most
    /// [`DOWN_IS_AN_INCIDENT_AFTER`].
    #[serde(skip)]
    pub incident_after: Duration,
}

/// How long a replicator must keep running to count as up: one that exits at once on
/// every start (another replicator holds the stream, the database is gone) is down.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(5);

/// How long a replicator may stay down before it is an incident when the plan's RPO
/// does not say sooner (a restart after a transient error takes a second or two).
pub const DOWN_IS_AN_INCIDENT_AFTER: Duration = Duration::from_secs(60);

impl ReplicatorStatus {
    /// Whether it has been down long enough to tell someone.
    pub fn down_too_long(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.down_since
            .is_some_and(|since| (now - since).to_std().unwrap_or_default() >= self.incident_after)
    }
}

/// The `lifeboat` arguments that keep source `name` continuously captured into
/// `target`: a SQLite database replicated, a MySQL/MariaDB server's binlog streamed (by
/// source name, so its password stays in lifeboat.toml and off the command line).
fn capture_args(
    config: &Config,
    config_path: &Path,
    name: &str,
    target: &str,
) -> Option<Vec<OsString>> {
    let location = &config.source(name)?.location;
    match SourceKind::of(location) {
        SourceKind::Sqlite(path) => Some(vec!["replicate".into(), path.into(), "--quiet".into()]),
        SourceKind::DatabaseServer(Engine::Mysql) => Some(vec![
            "mysql".into(),
            "binlog-stream".into(),
            name.into(),
            "--from".into(),
            target.into(),
            "--config".into(),
            config_path.into(),
            "--quiet".into(),
        ]),
        _ => None,
    }
}

/// Starts a supervisor thread for every continuous plan's SQLite and MySQL/MariaDB
/// sources on each target.
pub fn start(
    exe: &Path,
    config: &Config,
    config_path: &Path,
    children: &Children,
    stop: &Arc<AtomicBool>,
    on_change: impl Fn(&ReplicatorStatus) + Send + Sync + Clone + 'static,
) -> Vec<(Arc<Mutex<ReplicatorStatus>>, std::thread::JoinHandle<()>)> {
    let mut supervisors = Vec::new();
    for plan in config.plans.iter().filter(|p| p.continuous) {
        for name in &plan.sources {
            for target in plan.targets.iter().filter_map(|t| config.target(t)) {
                let Some(args) = capture_args(config, config_path, name, &target.name) else {
                    continue;
                };
                let status = Arc::new(Mutex::new(ReplicatorStatus {
                    plan: plan.name.clone(),
                    source: name.clone(),
                    target: target.name.clone(),
                    up: false,
                    restarts: 0,
                    last_error: None,
                    down_since: Some(chrono::Utc::now()),
                    incident_after: plan.rpo.map_or(DOWN_IS_AN_INCIDENT_AFTER, |rpo| {
                        rpo.min(DOWN_IS_AN_INCIDENT_AFTER)
                    }),
                }));
                let handle = {
                    let (exe, target) = (exe.to_path_buf(), target.clone());
                    let (children, stop, status) = (children.clone(), stop.clone(), status.clone());
                    let on_change = on_change.clone();
                    let what = name.clone();
                    std::thread::spawn(move || {
                        supervise(
                            &exe, &args, &what, &target, &children, &stop, &status, &on_change,
                        )
                    })
                };
                supervisors.push((status, handle));
            }
        }
    }
    supervisors
}

#[allow(clippy::too_many_arguments)]
fn supervise(
    exe: &Path,
    args: &[OsString],
    what: &str,
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
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for_target(&mut command, target);
        die_with_the_agent(&mut command);
        let started = Instant::now();
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                record(
                    status,
                    on_change,
                    Health::Down(format!("cannot start lifeboat: {e}")),
                );
                wait_or_stop(stop, pause);
                continue;
            }
        };
        let key = children.register(child.id());
        let (child, survived) = wait_while_running(child, HEALTHY_AFTER, stop);
        if survived {
            record(status, on_change, Health::Up);
        }
        let out = child.wait_with_output();
        children.unregister(key);
        if stop.load(Ordering::SeqCst) {
            record(status, on_change, Health::Stopped);
            return;
        }
        let error = match out {
            Ok(out) => error_line(&String::from_utf8_lossy(&out.stderr), &out.status),
            Err(e) => e.to_string(),
        };
        tracing::warn!("capturing {what} into {}: {error}", target.name);
        {
            let mut s = status.lock().expect("status");
            s.restarts += 1;
        }
        record(status, on_change, Health::Down(error));
        // A replicator that ran a while earned a quick restart; one that keeps failing
        // at once backs off up to a minute.
        if started.elapsed() > Duration::from_secs(60) {
            pause = Duration::from_secs(1);
        }
        wait_or_stop(stop, pause);
        pause = (pause * 2).min(Duration::from_secs(60));
    }
}

enum Health {
    /// Running for [`HEALTHY_AFTER`]: the last error is over.
    Up,
    Down(String),
    /// Stopped by the agent: neither up nor failing.
    Stopped,
}

fn record(status: &Mutex<ReplicatorStatus>, on_change: &dyn Fn(&ReplicatorStatus), health: Health) {
    let snapshot = {
        let mut s = status.lock().expect("status");
        match health {
            Health::Up => {
                s.up = true;
                s.last_error = None;
                s.down_since = None;
            }
            Health::Down(error) => {
                s.up = false;
                s.last_error = Some(error);
                s.down_since.get_or_insert_with(chrono::Utc::now);
            }
            Health::Stopped => s.up = false,
        }
        s.clone()
    };
    on_change(&snapshot);
}

/// Waits up to `limit` for `child` to exit; `true` when it is still running then.
fn wait_while_running(
    mut child: std::process::Child,
    limit: Duration,
    stop: &AtomicBool,
) -> (std::process::Child, bool) {
    let until = Instant::now() + limit;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        match child.try_wait() {
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            _ => return (child, false),
        }
    }
    let running = matches!(child.try_wait(), Ok(None));
    (child, running && !stop.load(Ordering::SeqCst))
}

fn wait_or_stop(stop: &AtomicBool, pause: Duration) {
    let until = Instant::now() + pause;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
}
