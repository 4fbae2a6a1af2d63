//! `lifeboat agent`: runs the plans of `lifeboat.toml` by itself, for months.
//!
//! One loop owns the schedules; every job runs as a `lifeboat` child process on a thread
//! of its own (one per target, so a failing target never holds up the others);
//! continuous plans keep a `lifeboat replicate` child per SQLite source and target;
//! every `check_every` a `lifeboat request` child (a status request on its stdin)
//! measures each source's newest restore point against its RPO; drills, timelines and
//! restores are asked the same way (`asking.rs`). History and open incidents live in a SQLite state
//! database, so a restart neither repeats nor forgets. SIGTERM stops the schedules, asks
//! every child to stop, waits for them and records what was cut short.

mod actions;
mod alerting;
mod api;
mod asking;
mod children;
mod dashboard;
mod http;
mod jobs;
mod openapi;
mod replicators;
mod schedule;
mod state;
mod status;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::Utc;
use lifeboat_config::Config;

use crate::actions::{ActionKind, Actions};
use crate::alerting::Alerting;
use crate::asking::Asker;
use crate::children::Children;
use crate::state::State;
use crate::status::{AgentStatus, PlanStatus, TargetStatus};
use lifeboat_ops::source_kind::SourceKind;
use lifeboat_ops::{DrillReport, StatusReport};

pub use status::AgentStatus as Status;

pub struct AgentOptions {
    /// The configuration file (the status checks read it again).
    pub config_path: PathBuf,
    /// The `lifeboat` binary that jobs run.
    pub exe: PathBuf,
    /// How often restore points are measured against the RPOs.
    pub check_every: Duration,
}

/// The tag of the snapshots of `lifeboat.toml` the agent keeps in every target, so that
/// `lifeboat recover --repo URL` on a new host finds what the lost one protected.
pub const CONFIG_TAG: &str = "lifeboat:config";

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Where the state database lives when the configuration does not say.
pub fn default_state_path() -> PathBuf {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"))
        .join("lifeboat/agent.db")
}

struct Agent {
    config: Arc<Config>,
    options: AgentOptions,
    state: Arc<State>,
    status: Arc<Mutex<AgentStatus>>,
    alerting: Arc<Alerting>,
    actions: Arc<Actions>,
    children: Children,
    asker: Arc<Asker>,
    /// Where restores asked for through the API go, one directory per action.
    restores: PathBuf,
    stop: Arc<AtomicBool>,
}

/// How many restores to scratch space are kept; the oldest goes when another finishes.
const KEPT_RESTORES: usize = 3;

pub fn run(config: Config, options: AgentOptions) -> Result<()> {
    let state_path = config
        .agent
        .state
        .clone()
        .unwrap_or_else(default_state_path);
    let state = Arc::new(State::open(&state_path)?);
    let abandoned = state.close_abandoned()?;
    if abandoned > 0 {
        tracing::warn!("{abandoned} job(s) were cut short when the agent last stopped");
    }
    let status = Arc::new(Mutex::new(AgentStatus {
        version: env!("CARGO_PKG_VERSION"),
        started: Some(Utc::now()),
        ..Default::default()
    }));
    let config = Arc::new(config);
    let actions = Arc::new(Actions::default());
    let children = Children::default();
    let asker = Arc::new(Asker {
        exe: options.exe.clone(),
        config_path: options.config_path.clone(),
        children: children.clone(),
    });
    let restores = state_path
        .parent()
        .map_or_else(|| PathBuf::from("restores"), |dir| dir.join("restores"));
    let deliveries = alerting::DeliveryLog::default();
    let addr = http::serve(
        config.agent.listen,
        http::Parts {
            deliveries: deliveries.clone(),
            status: status.clone(),
            actions: actions.clone(),
            config: config.clone(),
            state: state.clone(),
            asker: asker.clone(),
        },
    )?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            request_stop as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            request_stop as *const () as libc::sighandler_t,
        );
    }
    eprintln!(
        "lifeboat agent: {} plan(s), listening on http://{addr}, state in {}",
        config.plans.len(),
        state_path.display()
    );
    let alerting = Arc::new(Alerting::new(
        &config,
        state.clone(),
        status.clone(),
        deliveries,
    ));
    let agent = Agent {
        config,
        options,
        state,
        status,
        alerting,
        actions,
        children,
        asker,
        restores,
        stop: Arc::new(AtomicBool::new(false)),
    };
    agent.run()
}

impl Agent {
    fn run(&self) -> Result<()> {
        let storing_config = self.store_config();
        let replicators = {
            let status = self.status.clone();
            let alerting = self.alerting.clone();
            let config_path = std::path::absolute(&self.options.config_path)
                .unwrap_or_else(|_| self.options.config_path.clone());
            replicators::start(
                &self.options.exe,
                &self.config,
                &config_path,
                &self.children,
                &self.stop,
                move |r| {
                    {
                        let mut status = status.lock().expect("status");
                        match status.replicators.iter_mut().find(|s| {
                            s.plan == r.plan && s.source == r.source && s.target == r.target
                        }) {
                            Some(slot) => *slot = r.clone(),
                            None => status.replicators.push(r.clone()),
                        }
                    }
                    alerting.replicator(r, Utc::now());
                },
            )
        };
        let now = Utc::now();
        let mut due: HashMap<String, Option<chrono::DateTime<Utc>>> = HashMap::new();
        for plan in &self.config.plans {
            if let Some(schedule) = &plan.schedule {
                let last = self.state.last_scheduled(&plan.name)?;
                due.insert(plan.name.clone(), schedule::next_due(schedule, last, now));
            }
        }
        let mut drill_due: HashMap<String, Option<chrono::DateTime<Utc>>> = HashMap::new();
        for plan in &self.config.plans {
            if let Some(schedule) = &plan.drill {
                let last = self.state.last_drill_slot(&plan.name)?;
                drill_due.insert(plan.name.clone(), schedule::next_due(schedule, last, now));
            }
        }
        let mut drilling: HashMap<String, JoinHandle<()>> = HashMap::new();
        let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
        let mut checker: Option<JoinHandle<()>> = None;
        let mut next_check = Instant::now();
        let mut last_refresh = Instant::now();
        self.status.lock().expect("status").ready = true;
        self.refresh(&due, &running);

        while !STOP_REQUESTED.load(Ordering::SeqCst) {
            let now = Utc::now();
            for plan in &self.config.plans {
                let Some(schedule) = &plan.schedule else {
                    continue;
                };
                let busy = running.get(&plan.name).is_some_and(|h| !h.is_finished());
                let is_due = due
                    .get(&plan.name)
                    .copied()
                    .flatten()
                    .is_some_and(|t| t <= now);
                if is_due && !busy {
                    running.insert(plan.name.clone(), self.start_plan(&plan.name, now));
                    due.insert(plan.name.clone(), schedule.next_after(now));
                    self.refresh(&due, &running);
                }
            }
            for plan in &self.config.plans {
                let Some(schedule) = &plan.drill else {
                    continue;
                };
                let busy = drilling.get(&plan.name).is_some_and(|h| !h.is_finished())
                    || running.get(&plan.name).is_some_and(|h| !h.is_finished());
                let is_due = drill_due
                    .get(&plan.name)
                    .copied()
                    .flatten()
                    .is_some_and(|t| t <= now);
                if is_due && !busy {
                    drilling.insert(plan.name.clone(), self.start_drills(&plan.name, now));
                    drill_due.insert(plan.name.clone(), schedule.next_after(now));
                }
            }
            self.start_actions(&mut running, &mut drilling, &due);
            for name in take_finished(&mut drilling) {
                self.finish_action(ActionKind::Drill, &name);
            }
            for name in take_finished(&mut running) {
                self.finish_action(ActionKind::Backup, &name);
                self.refresh(&due, &running);
            }
            if last_refresh.elapsed() >= Duration::from_secs(1) {
                self.refresh(&due, &running);
                last_refresh = Instant::now();
            }
            if Instant::now() >= next_check && checker.as_ref().is_none_or(|h| h.is_finished()) {
                checker = Some(self.start_check());
                next_check = Instant::now() + self.options.check_every;
            }
            std::thread::sleep(Duration::from_millis(100));
        }

        eprintln!("lifeboat agent: stopping; waiting for running jobs");
        self.status.lock().expect("status").ready = false;
        self.stop.store(true, Ordering::SeqCst);
        self.children.terminate_all();
        for (_, handle) in running.drain().chain(drilling.drain()) {
            let _ = handle.join();
        }
        for (_, handle) in replicators {
            let _ = handle.join();
        }
        if let Some(handle) = checker {
            let _ = handle.join();
        }
        for handle in storing_config {
            let _ = handle.join();
        }
        eprintln!("lifeboat agent: stopped");
        Ok(())
    }

    /// Keeps the configuration itself in every target (a snapshot tagged [`CONFIG_TAG`],
    /// only when it changed): secrets in it stay `${VAR}` references, as written.
    fn store_config(&self) -> Vec<JoinHandle<()>> {
        let config_path = std::path::absolute(&self.options.config_path)
            .unwrap_or_else(|_| self.options.config_path.clone());
        self.config
            .targets
            .iter()
            .cloned()
            .map(|target| {
                let (children, exe) = (self.children.clone(), self.options.exe.clone());
                let args: Vec<String> = vec![
                    "backup".into(),
                    config_path.display().to_string(),
                    "--tag".into(),
                    CONFIG_TAG.into(),
                    "--skip-if-unchanged".into(),
                    "--quiet".into(),
                ];
                std::thread::spawn(move || match children.run(&exe, &target, &args) {
                    Ok(done) if done.success => {
                        tracing::info!("configuration stored in {}", target.name)
                    }
                    Ok(done) => tracing::warn!(
                        "cannot store the configuration in {}: {}",
                        target.name,
                        done.error
                    ),
                    Err(e) => tracing::warn!(
                        "cannot store the configuration in {}: cannot start lifeboat: {e}",
                        target.name
                    ),
                })
            })
            .collect()
    }

    /// Runs `plan` on each of its targets at once; returns when all are done.
    fn start_plan(&self, plan_name: &str, slot: chrono::DateTime<Utc>) -> JoinHandle<()> {
        let plan = self.config.plan(plan_name).expect("plan exists").clone();
        let mut handles = Vec::new();
        for target in plan
            .targets
            .iter()
            .filter_map(|t| self.config.target(t))
            .cloned()
        {
            let (config, state, alerting) = (
                self.config.clone(),
                self.state.clone(),
                self.alerting.clone(),
            );
            let (asker, plan, stop) = (self.asker.clone(), plan.clone(), self.stop.clone());
            handles.push(std::thread::spawn(move || {
                let run_id = match state.start_run(&plan.name, &target.name, "backup", slot) {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::error!("cannot record a run of {}: {e}", plan.name);
                        return;
                    }
                };
                alerting.job_started(&plan.name, &target.name);
                let started = Instant::now();
                let result = jobs::run(&asker, &config, &plan, &target);
                let elapsed = started.elapsed().as_millis() as u64;
                if stop.load(Ordering::SeqCst) && result.is_err() {
                    let _ = state.finish_run(
                        run_id,
                        &Err("abandoned: the agent stopped".into()),
                        elapsed,
                    );
                    return;
                }
                let recorded = result
                    .as_ref()
                    .map(|o| o.stored_bytes)
                    .map_err(Clone::clone);
                if let Err(e) = state.finish_run(run_id, &recorded, elapsed) {
                    tracing::error!("cannot record a run of {}: {e}", plan.name);
                }
                let seconds = elapsed as f64 / 1000.0;
                if let Err(e) = &result {
                    tracing::warn!(
                        "backup of plan {} to {}: failed after {seconds:.1}s: {e}",
                        plan.name,
                        target.name
                    );
                }
                if let Ok(outcome) = &result {
                    alerting.job_warnings(&plan.name, &target.name, &outcome.warnings);
                }
                let warnings = result.as_ref().map_or(0, |o| o.warnings.len());
                let summary = result.map(|o| {
                    format!(
                        "{} snapshot(s), {} bytes stored in {seconds:.1}s",
                        o.snapshots.len(),
                        o.stored_bytes,
                    )
                });
                if let Ok(summary) = &summary {
                    tracing::info!(
                        "backup of plan {} to {}: succeeded, {summary}{}",
                        plan.name,
                        target.name,
                        match warnings {
                            0 => String::new(),
                            n => format!(", {n} warning(s)"),
                        }
                    );
                }
                alerting.job_finished(&plan.name, &target.name, &summary);
            }));
        }
        std::thread::spawn(move || {
            for handle in handles {
                let _ = handle.join();
            }
        })
    }

    /// Drills each of the plan's sources from each target, one after another (a drill
    /// restores a whole copy; several at once would compete for the same disk).
    fn start_drills(&self, plan_name: &str, slot: chrono::DateTime<Utc>) -> JoinHandle<()> {
        let plan = self.config.plan(plan_name).expect("plan exists").clone();
        let (config, state, alerting) = (
            self.config.clone(),
            self.state.clone(),
            self.alerting.clone(),
        );
        let (asker, stop) = (self.asker.clone(), self.stop.clone());
        std::thread::spawn(move || {
            for source in &plan.sources {
                let is_command = config
                    .source(source)
                    .is_some_and(|s| SourceKind::of(&s.location) == SourceKind::Command);
                if is_command {
                    continue;
                }
                for target in plan.targets.iter().filter_map(|t| config.target(t)) {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let request = lifeboat_ops::request::Request::Drill {
                        source: source.clone(),
                        target: Some(target.name.clone()),
                        at: plan.drill_at.clone(),
                    };
                    // A failed drill still reports (which check failed); without a
                    // report, the child's own line is the reason.
                    let drill =
                        match asker.ask::<DrillReport>(Some(target), &request, "request (drill)") {
                            Ok(report) => state::Drill {
                                finished: Utc::now(),
                                passed: report.passed,
                                reason: report.reason,
                                rto_seconds: Some(report.rto_seconds),
                                rpo_seconds: report.rpo_seconds,
                            },
                            Err(reason) => state::Drill {
                                finished: Utc::now(),
                                passed: false,
                                reason: Some(reason),
                                rto_seconds: None,
                                rpo_seconds: None,
                            },
                        };
                    if stop.load(Ordering::SeqCst) && !drill.passed {
                        return;
                    }
                    if let Err(e) =
                        state.record_drill(&plan.name, source, &target.name, slot, &drill)
                    {
                        tracing::error!("cannot record a drill of {source}: {e}");
                    }
                    let over_objective = match (plan.rto, drill.rto_seconds) {
                        (Some(objective), Some(measured)) if measured > objective.as_secs_f64() => {
                            Some(format!(
                                "measured RTO {measured:.1}s exceeds the objective of {}s",
                                objective.as_secs()
                            ))
                        }
                        _ => None,
                    };
                    let failure = match (drill.passed, over_objective) {
                        (false, _) => Some(drill.reason.clone().unwrap_or_else(|| "failed".into())),
                        (true, over) => over,
                    };
                    match &failure {
                        None => tracing::info!(
                            "drill of {source} from {}: passed, RTO {:.1}s{}",
                            target.name,
                            drill.rto_seconds.unwrap_or_default(),
                            drill
                                .rpo_seconds
                                .map(|s| format!(", RPO {s:.0}s"))
                                .unwrap_or_default()
                        ),
                        Some(reason) => {
                            tracing::warn!("drill of {source} from {}: {reason}", target.name)
                        }
                    }
                    alerting.drill(&plan.name, source, &target.name, failure);
                }
            }
        })
    }

    /// Measures every restore point against its RPO with `lifeboat status --json`.
    fn start_check(&self) -> JoinHandle<()> {
        let (config, status, alerting, asker) = (
            self.config.clone(),
            self.status.clone(),
            self.alerting.clone(),
            self.asker.clone(),
        );
        std::thread::spawn(move || {
            // Only a missing or unreadable report means the restore points were not
            // measured; a missed objective is in the report.
            let request = lifeboat_ops::request::Request::Status {
                sources: Vec::new(),
            };
            let report = asker
                .ask::<StatusReport>(None, &request, "request (status)")
                .map_err(|e| format!("lifeboat status: {e}"));
            let rows = match report {
                Ok(report) => {
                    alerting.measured(None);
                    report.restore_points
                }
                Err(e) => {
                    tracing::warn!("restore points not measured: {e}");
                    alerting.measured(Some(&e));
                    let mut status = status.lock().expect("status");
                    status.restore_points_error = Some(e);
                    return;
                }
            };
            for row in &rows {
                let (Some(met), Some(rpo)) =
                    (row.rpo_met, config.plan(&row.plan).and_then(|p| p.rpo))
                else {
                    continue;
                };
                alerting.objective(&row.plan, &row.source, &row.target, row.newest, rpo, met);
            }
            let mut status = status.lock().expect("status");
            status.restore_points = rows;
            status.restore_points_checked = Some(Utc::now());
            status.restore_points_error = None;
        })
    }

    /// Starts the actions asked for through the API whose plan is not busy with the same
    /// kind of job (a drill also waits for the plan's backups); the others stay queued.
    fn start_actions(
        &self,
        running: &mut HashMap<String, JoinHandle<()>>,
        drilling: &mut HashMap<String, JoinHandle<()>>,
        due: &HashMap<String, Option<chrono::DateTime<Utc>>>,
    ) {
        for action in self.actions.queued() {
            let backing_up = running.contains_key(&action.plan);
            let startable = match action.kind {
                ActionKind::Backup => !backing_up,
                ActionKind::Drill => !backing_up && !drilling.contains_key(&action.plan),
                ActionKind::Restore => !self.actions.restoring(),
            };
            if !startable {
                continue;
            }
            // Marked before the job starts: its outcome is the jobs that started since.
            self.actions.started(action.id);
            let now = Utc::now();
            tracing::info!(
                "{:?} of plan {} asked for through the API",
                action.kind,
                action.plan
            );
            match action.kind {
                ActionKind::Backup => {
                    running.insert(action.plan.clone(), self.start_plan(&action.plan, now));
                    self.refresh(due, running);
                }
                ActionKind::Drill => {
                    drilling.insert(action.plan.clone(), self.start_drills(&action.plan, now));
                }
                ActionKind::Restore => self.start_restore(action),
            }
        }
    }

    /// Restores a source into a new directory of the scratch space, on a thread of its
    /// own: it reads the repository and writes nothing a backup or drill uses.
    fn start_restore(&self, action: crate::actions::Action) {
        let (asker, actions, config) = (
            self.asker.clone(),
            self.actions.clone(),
            self.config.clone(),
        );
        let restores = self.restores.clone();
        std::thread::spawn(move || {
            let outcome = (|| {
                let (Some(source), Some(target), Some(at)) =
                    (action.source, action.target, action.at)
                else {
                    return Err("a restore action without a source, target or moment".to_string());
                };
                let target = config
                    .target(&target)
                    .ok_or_else(|| format!("no target {target:?}"))?;
                make_private_dir(&restores)
                    .map_err(|e| format!("cannot make {}: {e}", restores.display()))?;
                let request = lifeboat_ops::request::Request::Restore {
                    source,
                    target: Some(target.name.clone()),
                    at,
                    // Named by time first: ids start again at 1 when the agent restarts.
                    into: restores.join(format!(
                        "{}-{}",
                        Utc::now().format("%Y%m%dT%H%M%S"),
                        action.id
                    )),
                };
                asker.ask(Some(target), &request, "request (restore)")
            })();
            if let Err(e) = &outcome {
                tracing::warn!(
                    "restore {} asked for through the API failed: {e}",
                    action.id
                );
            }
            actions.finished_restore(action.id, outcome);
            forget_old_restores(&restores);
        });
    }

    /// Completes the action that ran `kind` of `plan`, if one did, from what the job
    /// history says of the jobs it started.
    fn finish_action(&self, kind: ActionKind, plan: &str) {
        let Some(action) = self.actions.running(kind, plan) else {
            return;
        };
        let since = action.started.unwrap_or(action.requested);
        let outcome = match kind {
            ActionKind::Backup => self.backup_outcome(plan, since),
            ActionKind::Drill => self.drill_outcome(plan, since),
            // Completed by its own thread, with its report.
            ActionKind::Restore => return,
        };
        self.actions.finished(action.id, outcome.err());
    }

    fn backup_outcome(&self, plan: &str, since: chrono::DateTime<Utc>) -> Result<(), String> {
        let targets = self
            .config
            .plan(plan)
            .map(|p| p.targets.clone())
            .unwrap_or_default();
        let mut failures = Vec::new();
        for target in targets {
            let run = self
                .state
                .history(plan, &target)
                .map_err(|e| format!("cannot read the job history: {e}"))?
                .last_run
                .filter(|run| run.started >= since);
            match run {
                Some(run) if run.ok == Some(true) => {}
                Some(run) => failures.push(format!(
                    "{target}: {}",
                    run.error.unwrap_or_else(|| "did not finish".into())
                )),
                None => failures.push(format!("{target}: did not run")),
            }
        }
        all_passed(failures)
    }

    fn drill_outcome(&self, plan: &str, since: chrono::DateTime<Utc>) -> Result<(), String> {
        let drills: Vec<_> = self
            .state
            .drills()
            .map_err(|e| format!("cannot read the drill history: {e}"))?
            .into_iter()
            .filter(|d| d.plan == plan && d.finished >= since)
            .collect();
        if drills.is_empty() {
            return Err(format!(
                "no drill ran: plan {plan} has no source a drill can restore"
            ));
        }
        let failures: Vec<String> = drills
            .iter()
            .filter(|d| !d.passed)
            .map(|d| {
                format!(
                    "{} from {}: {}",
                    d.source,
                    d.target,
                    d.reason.as_deref().unwrap_or("failed")
                )
            })
            .collect();
        all_passed(failures)
    }

    /// Rebuilds the per-plan part of the status from the state database.
    fn refresh(
        &self,
        due: &HashMap<String, Option<chrono::DateTime<Utc>>>,
        running: &HashMap<String, JoinHandle<()>>,
    ) {
        let plans: Vec<PlanStatus> = self
            .config
            .plans
            .iter()
            .map(|plan| PlanStatus {
                name: plan.name.clone(),
                schedule: plan.schedule.as_ref().map(|s| s.to_string()),
                rto_seconds: plan.rto.map(|rto| rto.as_secs()),
                next_run: due.get(&plan.name).copied().flatten(),
                running: running.get(&plan.name).is_some_and(|h| !h.is_finished()),
                targets: plan
                    .targets
                    .iter()
                    .map(|t| TargetStatus {
                        target: t.clone(),
                        history: self.state.history(&plan.name, t).unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect();
        let incidents = self.state.open_incidents().unwrap_or_default();
        let drills = self.state.drills().unwrap_or_default();
        let mut status = self.status.lock().expect("status");
        status.drills = drills;
        status.plans = plans;
        status.open_incidents = incidents;
    }
}

/// Makes the scratch space, readable by the agent's user only: restored data is the data
/// the repository kept encrypted.
fn make_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Keeps the newest [`KEPT_RESTORES`] restores (directories named `TIME-ID`) and removes
/// the others, so that restores asked for again and again cannot fill the disk.
fn forget_old_restores(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let restore_name = |name: &str| {
        name.split_once('-').is_some_and(|(time, id)| {
            time.len() == 15 && time.as_bytes()[8] == b'T' && id.parse::<u64>().is_ok()
        })
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| restore_name(name))
        .collect();
    names.sort_by_key(|name| {
        let (time, id) = name.split_once('-').expect("checked");
        (time.to_string(), id.parse::<u64>().unwrap_or_default())
    });
    let excess = names.len().saturating_sub(KEPT_RESTORES);
    for name in &names[..excess] {
        let _ = std::fs::remove_dir_all(dir.join(name));
    }
}

/// Removes the jobs of `jobs` that have finished (joining their threads) and names them.
fn take_finished(jobs: &mut HashMap<String, JoinHandle<()>>) -> Vec<String> {
    let finished: Vec<String> = jobs
        .iter()
        .filter(|(_, h)| h.is_finished())
        .map(|(name, _)| name.clone())
        .collect();
    for name in &finished {
        if let Some(handle) = jobs.remove(name) {
            let _ = handle.join();
        }
    }
    finished
}

/// An action's outcome from its failures, one line each.
fn all_passed(failures: Vec<String>) -> Result<(), String> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
