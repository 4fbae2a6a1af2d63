//! `lifeboat status`: for each plan, source and target of `lifeboat.toml`, the newest
//! restore point and whether the recovery point objective is met. The measuring is
//! `lifeboat_ops::status`; the agent reads this command's `--json` report, so there is one
//! answer.

use anyhow::Result;
use chrono::{SecondsFormat, Utc};

use crate::args::StatusArgs;
use crate::context::Context;

pub fn run(ctx: &Context, args: &StatusArgs) -> Result<()> {
    let config = super::config::load_repositories(&args.file.config)?;
    if let Some(unknown) = args.sources.iter().find(|s| config.source(s).is_none()) {
        return Err(crate::exit::Usage(format!(
            "no source {unknown:?} in {} (its sources: {})",
            args.file.config.display(),
            config
                .sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    let report = lifeboat_ops::status::measure(
        &config,
        &args.sources,
        |target| ctx.open_target(target),
        Utc::now(),
    );
    if ctx.global.json {
        ctx.print_json(&report);
    } else {
        for row in &report.restore_points {
            let newest = match (&row.newest, &row.error) {
                (_, Some(e)) => format!("unknown: {e}"),
                (Some(t), None) => format!(
                    "{} ({} ago)",
                    t.to_rfc3339_opts(SecondsFormat::Millis, true),
                    human_age(row.age_seconds.unwrap_or(0.0))
                ),
                (None, None) => "none yet".to_string(),
            };
            let verdict = match row.rpo_met {
                Some(true) => "RPO met",
                Some(false) => "RPO MISSED",
                None => "no RPO",
            };
            ctx.say(format!(
                "{} / {} -> {}: {newest}; {verdict}",
                row.plan, row.source, row.target
            ));
        }
    }
    if !report.ok {
        return Err(crate::exit::WithCode {
            code: crate::exit::FAILURE,
            message: "a recovery point objective is not met".into(),
        }
        .into());
    }
    Ok(())
}

fn human_age(seconds: f64) -> String {
    match seconds.max(0.0) {
        s if s < 10.0 => format!("{s:.1}s"),
        s if s < 120.0 => format!("{s:.0}s"),
        s if s < 7200.0 => format!("{:.0}m", s / 60.0),
        s if s < 172_800.0 => format!("{:.0}h", s / 3600.0),
        s => format!("{:.0}d", s / 86400.0),
    }
}
