//! `lifeboat config check|schema`: what the agent will run, checked before it runs.

use anyhow::Result;
use lifeboat_config::{format_duration, Config, Schedule};
use serde_json::json;

use crate::args::{ConfigArgs, ConfigCommand, ConfigFileArgs};
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

fn check(ctx: &Context, args: &ConfigFileArgs) -> Result<()> {
    let config = load(&args.config)?;
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
            "file": args.config.display().to_string(),
            "ok": true,
            "sources": config.sources.len(),
            "targets": config.targets.len(),
            "plans": plans,
            "alerts": config.alerts.len(),
            "listen": config.agent.listen.to_string(),
        }));
        return Ok(());
    }
    ctx.say(format!(
        "{}: ok ({} source(s), {} target(s), {} plan(s), {} alert channel(s); agent on {})",
        args.config.display(),
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
    Ok(())
}
