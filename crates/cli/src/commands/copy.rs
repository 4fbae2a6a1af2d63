//! `lifeboat copy --from A --to B`: what A has and B lacks, re-encrypted for B.

use anyhow::Result;
use lifeboat_repo::copy::copy;
use lifeboat_repo::Repository;

use crate::args::CopyArgs;
use crate::context::Context;

/// A target of the configuration by name, else a repository URL.
pub(crate) fn open(
    ctx: &Context,
    config: &std::path::Path,
    name: &str,
    from: bool,
) -> Result<Repository> {
    if let Ok(config) = lifeboat_config::Config::load(config) {
        if let Some(target) = config.target(name) {
            return ctx.open_target(target);
        }
    }
    let mut target = lifeboat_config::Target {
        name: name.to_string(),
        url: name.to_string(),
        password: None,
        password_file: None,
    };
    if from {
        if let Some(file) = std::env::var_os("LIFEBOAT_FROM_PASSWORD_FILE") {
            target.password_file = Some(file.into());
        } else if let Ok(password) = std::env::var("LIFEBOAT_FROM_PASSWORD") {
            target.password = Some(lifeboat_config::Secret::new(password));
        }
    }
    ctx.open_target(&target)
}

pub fn run(ctx: &Context, args: &CopyArgs) -> Result<()> {
    let from = open(ctx, &args.file.config, &args.from, true)?;
    let to = open(ctx, &args.file.config, &args.to, false)?;
    if from.config().id == to.config().id {
        return Err(crate::exit::Usage("--from and --to are the same repository".into()).into());
    }
    let report = copy(&from, &to)?;
    if ctx.global.json {
        ctx.print_json(&serde_json::to_value(&report)?);
    } else {
        ctx.say(format!(
            "copied {} snapshot(s) ({} already there), {} stream segment(s), {} WAL file(s), {} binlog piece(s); {} bytes stored",
            report.snapshots_copied,
            report.snapshots_present,
            report.segments_copied,
            report.wal_files_copied,
            report.binlog_pieces_copied,
            report.stored_bytes
        ));
    }
    Ok(())
}
