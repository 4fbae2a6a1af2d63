//! `lifeboat status`: for each plan, source and target of `lifeboat.toml`, the newest
//! restore point and whether the recovery point objective is met. The agent asks this
//! same question (it runs `lifeboat status --json`), so there is one answer.

use std::collections::HashMap;

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_config::{Config, SourceLocation};
use lifeboat_repo::Repository;
use serde_json::json;

use crate::args::StatusArgs;
use crate::context::Context;

/// The tag the agent puts on every snapshot of a source, so its restore points can be
/// found whatever kind of source it is.
pub fn source_tag(source: &str) -> String {
    format!("source:{source}")
}

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
    let wanted = |source: &String| args.sources.is_empty() || args.sources.contains(source);
    let now = Utc::now();
    let mut rows = Vec::new();
    for target in &config.targets {
        // Each target is opened and read once, however many plans and sources use it.
        let mut view = ctx
            .open_target(target)
            .map(|repo| TargetView {
                repo,
                snapshots: None,
                index: None,
            })
            .map_err(|e| crate::exit::one_line(&e));
        let mut newest_of: HashMap<String, Result<Option<DateTime<Utc>>, String>> = HashMap::new();
        for plan in config
            .plans
            .iter()
            .filter(|p| p.targets.contains(&target.name))
        {
            for source in plan.sources.iter().filter(|s| wanted(s)) {
                let newest = newest_of
                    .entry(source.clone())
                    .or_insert_with(|| match &mut view {
                        Ok(view) => view
                            .newest_restore_point(&config, source)
                            .map_err(|e| crate::exit::one_line(&e)),
                        Err(e) => Err(e.clone()),
                    })
                    .clone();
                // A restore point stamped a moment after `now` (another host's clock, or a
                // segment shipped while this ran) is as fresh as can be, not negative.
                let age = newest
                    .as_ref()
                    .ok()
                    .copied()
                    .flatten()
                    .map(|t| (now - t).max(chrono::TimeDelta::zero()));
                let met = match (plan.rpo, &newest) {
                    (_, Err(_)) => Some(false),
                    (Some(rpo), Ok(_)) => {
                        Some(age.is_some_and(|a| a.to_std().unwrap_or_default() <= rpo))
                    }
                    (None, Ok(_)) => None,
                };
                rows.push(json!({
                    "plan": plan.name,
                    "source": source,
                    "target": target.name,
                    "newest": newest.as_ref().ok().copied().flatten()
                        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
                    "age_seconds": age.map(|a| a.num_milliseconds() as f64 / 1000.0),
                    "rpo_seconds": plan.rpo.map(|d| d.as_secs()),
                    "rpo_met": met,
                    "error": newest.as_ref().err(),
                }));
            }
        }
    }
    let ok = rows.iter().all(|r| r["rpo_met"] != json!(false));
    if ctx.global.json {
        ctx.print_json(&json!({ "time": now.to_rfc3339(), "ok": ok, "restore_points": rows }));
    } else {
        for row in &rows {
            let newest = match (&row["newest"], &row["error"]) {
                (_, serde_json::Value::String(e)) => format!("unknown: {e}"),
                (serde_json::Value::String(t), _) => format!(
                    "{t} ({} ago)",
                    human_age(row["age_seconds"].as_f64().unwrap_or(0.0))
                ),
                _ => "none yet".to_string(),
            };
            let verdict = match row["rpo_met"].as_bool() {
                Some(true) => "RPO met",
                Some(false) => "RPO MISSED",
                None => "no RPO",
            };
            ctx.say(format!(
                "{} / {} -> {}: {newest}; {verdict}",
                row["plan"].as_str().unwrap_or_default(),
                row["source"].as_str().unwrap_or_default(),
                row["target"].as_str().unwrap_or_default(),
            ));
        }
    }
    if !ok {
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

/// One target's repository, with what has been read of it so far.
struct TargetView {
    repo: Repository,
    snapshots: Option<Vec<lifeboat_repo::snapshot::StoredSnapshot>>,
    index: Option<lifeboat_repo::index::MasterIndex>,
}

impl TargetView {
    /// The newest restore point of `source`: its newest tagged snapshot, or for a SQLite
    /// database also the newest replicated segment.
    fn newest_restore_point(
        &mut self,
        config: &Config,
        source: &str,
    ) -> Result<Option<DateTime<Utc>>> {
        if self.snapshots.is_none() {
            self.snapshots = Some(self.repo.list_snapshots()?);
        }
        let tag = source_tag(source);
        let mut newest = self
            .snapshots
            .iter()
            .flatten()
            .filter(|s| s.snapshot.tags.contains(&tag))
            .map(|s| s.snapshot.time)
            .max();
        if let Some(SourceLocation::Url(url)) = config.source(source).map(|s| &s.location) {
            if let Some(path) = lifeboat_sources::sqlite::path_from_url(url)
                .or_else(|| Some(std::path::PathBuf::from(url)).filter(|p| p.is_file()))
            {
                if self.index.is_none() {
                    self.index = Some(self.repo.load_index()?);
                }
                let index = self.index.as_ref().expect("loaded above");
                let path = lifeboat_sources::timeline::source_path(&path.display().to_string())?;
                let points = lifeboat_sources::timeline::restore_points(&self.repo, index, &path)?;
                newest = newest.max(points.last().map(|p| p.time));
            }
        }
        Ok(newest)
    }
}
