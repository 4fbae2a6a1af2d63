//! A source named on the command line: a `[[source]]` name of `lifeboat.toml` (which also
//! says which repository holds it), or the path/URL that was backed up, with `--repo`.
//! Shared by every command that takes a source, so that a recovery host with only the
//! configuration file can name sources the way the runbook does.

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use lifeboat_config::{Config, Needs, SourceLocation};

use crate::context::Context;

pub(crate) use lifeboat_ops::subject::Subject;

/// Finds `source` in the configuration at `config_path` (its repository: `target`, else
/// the first target of the first plan that has it) or, failing that, takes it as a path
/// or URL in the repository of `--repo`.
pub(crate) fn resolve(
    ctx: &Context,
    source: &str,
    target: Option<&str>,
    config_path: &Path,
) -> Result<Subject> {
    let (config, entry) = locate(source, target, config_path)?;
    let (name, location, checks) =
        entry.unwrap_or_else(|| (source.to_string(), source.to_string(), Vec::new()));
    let target = match (&config, target) {
        (Some(config), Some(wanted)) => Some(config.target(wanted).with_context(|| {
            format!(
                "no target {wanted} in {} (its targets: {})",
                config_path.display(),
                names(config.targets.iter().map(|t| t.name.as_str()))
            )
        })?),
        // A source of the file: the repository its plan writes to.
        (Some(config), None) if config.source(&name).is_some() => Some(
            config
                .plans
                .iter()
                .find(|p| p.sources.contains(&name))
                .and_then(|p| p.targets.first())
                .and_then(|t| config.target(t))
                .with_context(|| {
                    format!(
                        "no plan in {} writes {name} anywhere",
                        config_path.display()
                    )
                })?,
        ),
        _ => None,
    };
    let repo = match target {
        Some(target) => ctx.open_target(target)?,
        None => ctx.open()?,
    };
    Ok(Subject {
        name,
        location,
        checks,
        repo,
    })
}

type Located = (Option<Config>, Option<(String, String, Vec<String>)>);

/// The configuration (when there is one to use) and the source's entry in it.
fn locate(source: &str, target: Option<&str>, config_path: &Path) -> Result<Located> {
    let bare_name = looks_like_a_name(source);
    if !config_path.exists() {
        if bare_name && !Path::new(source).exists() {
            bail!(
                "{source:?} is not a path, and there is no {} to name it (give --config FILE or LIFEBOAT_CONFIG, or the path/URL that was backed up)",
                config_path.display()
            );
        }
        if let Some(target) = target {
            bail!(
                "--target {target} names a target of {}, which does not exist",
                config_path.display()
            );
        }
        return Ok((None, None));
    }
    let config = match Config::load_for(config_path, Needs::Repositories) {
        Ok(config) => config,
        // A broken file matters only when the command line needs it.
        Err(_) if !bare_name && target.is_none() => return Ok((None, None)),
        Err(errors) => return Err(crate::exit::Usage(errors.to_string()).into()),
    };
    let entry = match config.source(source) {
        Some(s) => {
            let SourceLocation::Url(url) = &s.location else {
                bail!(
                    "source {} is a command; its restore points are snapshots (lifeboat snapshots --tag source:{})",
                    s.name,
                    s.name
                );
            };
            Some((s.name.clone(), url.clone(), s.checks.clone()))
        }
        None if bare_name && !Path::new(source).exists() => bail!(
            "no source {source:?} in {} (its sources: {})",
            config_path.display(),
            names(config.sources.iter().map(|s| s.name.as_str()))
        ),
        None => None,
    };
    Ok((Some(config), entry))
}

/// A source name rather than a path or URL: no `/`, `:` or `.` in it.
fn looks_like_a_name(text: &str) -> bool {
    !text.is_empty() && !text.contains(['/', ':', '.'])
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<&str> = names.collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}
