//! `lifeboat config check|schema`: what the agent will run, checked before it runs.

use anyhow::Result;
use lifeboat_config::{format_duration, Config, Schedule};
use serde_json::json;

use crate::args::{ConfigArgs, ConfigCheckArgs, ConfigCommand};
use crate::context::Context;

pub fn run(ctx: &Context, args: &ConfigArgs) -> Result<()> {
    match &args.command {
        ConfigCommand::Check(file) => check(ctx, file),
        ConfigCommand::Schema => {
            out!("{}", lifeboat_config::json_schema());
            Ok(())
        }
    }
}

/// Loads and checks the configuration, turning its problems into one usage error whose
/// lines each name a place in the file.
pub fn load(path: &std::path::Path) -> Result<Config> {
    Config::load(path).map_err(|errors| crate::exit::Usage(errors.to_string()).into())
}

/// [`load`] for commands that use sources, targets and plans but never the agent's token
/// or alert channels, whose variables a recovery host may not have.
pub fn load_repositories(path: &std::path::Path) -> Result<Config> {
    Config::load_for(path, lifeboat_config::Needs::Repositories)
        .map_err(|errors| crate::exit::Usage(errors.to_string()).into())
}

fn check(ctx: &Context, args: &ConfigCheckArgs) -> Result<()> {
    let config = load(&args.file.config)?;
    let missing: Vec<String> = config
        .targets
        .iter()
        .filter_map(|t| target_problem(t, args.probe))
        .collect();
    let now = chrono::Utc::now();
    let plans: Vec<serde_json::Value> = config
        .plans
        .iter()
        .map(|plan| {
            json!({
                "name": plan.name,
                "sources": plan.sources,
                "targets": plan.targets,
                "schedule": plan.schedule.as_ref().map(Schedule::to_string),
                "next_run": plan.schedule.as_ref().and_then(|s| s.next_after(now)).map(|t| t.to_rfc3339()),
                "continuous": plan.continuous,
                "rpo": plan.rpo.map(format_duration),
                "rto": plan.rto.map(format_duration),
            })
        })
        .collect();
    if ctx.global.json {
        ctx.print_json(&json!({
            "file": args.file.config.display().to_string(),
            "ok": missing.is_empty(),
            "target_problems": missing,
            "sources": config.sources.len(),
            "targets": config.targets.len(),
            "plans": plans,
            "alerts": config.alerts.len(),
            "listen": config.agent.listen.to_string(),
        }));
        return Ok(());
    }
    ctx.say(format!(
        "{}: {} ({} source(s), {} target(s), {} plan(s), {} alert channel(s); agent on {})",
        args.file.config.display(),
        if missing.is_empty() {
            "ok"
        } else {
            "NOT READY"
        },
        config.sources.len(),
        config.targets.len(),
        config.plans.len(),
        config.alerts.len(),
        config.agent.listen
    ));
    for plan in &config.plans {
        let when = match (&plan.schedule, plan.continuous) {
            (Some(s), true) => format!("{s}, and continuous"),
            (Some(s), false) => s.to_string(),
            (None, _) => "continuous".to_string(),
        };
        let next = plan
            .schedule
            .as_ref()
            .and_then(|s| s.next_after(now))
            .map(|t| format!("; next run {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        ctx.say(format!(
            "  plan {}: {} -> {} ({when}{next})",
            plan.name,
            plan.sources.join(", "),
            plan.targets.join(", ")
        ));
    }
    no_problems(&missing)
}

/// What stops `target` from taking backups, if anything: a local one is always looked at,
/// a remote one only with `probe` (it costs a request, and a file may be checked where
/// the store is out of reach).
fn target_problem(target: &lifeboat_config::Target, probe: bool) -> Option<String> {
    use lifeboat_storage::{Location, Storage};
    let location = Location::parse(&target.url).ok()?;
    let shown = location.display();
    let init = format!("create it with `lifeboat init --repo {shown}`");
    match &location {
        Location::Local(root) if !root.is_dir() => Some(format!(
            "target {}: {shown} does not exist; {init}",
            target.name
        )),
        Location::Local(root) if !root.join("config").is_file() => Some(format!(
            "target {}: {shown} holds no repository; {init}",
            target.name
        )),
        Location::Local(_) => None,
        Location::Service { .. } | Location::Server { .. } if !probe => None,
        Location::Service { .. } | Location::Server { .. } => {
            match Storage::open(&target.url).and_then(|s| s.exists("config")) {
                Ok(true) => None,
                Ok(false) => Some(format!(
                    "target {}: {shown} holds no repository; {init}",
                    target.name
                )),
                Err(e) => Some(format!("target {}: {e}", target.name)),
            }
        }
    }
}

fn no_problems(problems: &[String]) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(crate::exit::WithCode {
        code: crate::exit::NO_REPOSITORY,
        message: format!(
            "{} target(s) cannot take backups: {}",
            problems.len(),
            problems.join("; ")
        ),
    }
    .into())
}
