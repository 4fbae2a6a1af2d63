//! `lifeboat copy --from A --to B`: what A has and B lacks, re-encrypted for B; and
//! `lifeboat repair --from A --to B`: B's damaged data put back from A's copy.

use anyhow::Result;
use lifeboat_repo::copy::copy;
use lifeboat_repo::Repository;

use crate::args::CopyArgs;
use crate::context::Context;

/// A target of the configuration by name, else a repository URL.
fn open(ctx: &Context, args: &CopyArgs, name: &str, from: bool) -> Result<Repository> {
    if let Ok(config) = lifeboat_config::Config::load(&args.file.config) {
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
    let from = open(ctx, args, &args.from, true)?;
    let to = open(ctx, args, &args.to, false)?;
    if from.config().id == to.config().id {
        return Err(crate::exit::Usage("--from and --to are the same repository".into()).into());
    }
    let report = copy(&from, &to)?;
    if ctx.global.json {
        ctx.print_json(&serde_json::to_value(&report)?);
    } else {
        ctx.say(format!(
            "copied {} snapshot(s) ({} already there), {} stream segment(s), {} WAL file(s); {} bytes stored",
            report.snapshots_copied,
            report.snapshots_present,
            report.segments_copied,
            report.wal_files_copied,
            report.stored_bytes
        ));
    }
    Ok(())
}

pub fn repair(ctx: &Context, args: &CopyArgs) -> Result<()> {
    let from = open(ctx, args, &args.from, true)?;
    let damaged = open(ctx, args, &args.to, false)?;
    let report = lifeboat_repo::repair::repair(&damaged, &from)?;
    if ctx.global.json {
        ctx.print_json(&serde_json::to_value(&report)?);
    } else {
        for pack in &report.dropped_packs {
            ctx.say(format!("dropped damaged pack {pack}"));
        }
        for snapshot in &report.repaired_snapshots {
            ctx.say(format!("snapshot {snapshot}: repaired"));
        }
        for (snapshot, why) in &report.unrepairable {
            ctx.say(format!("snapshot {snapshot}: NOT repaired: {why}"));
        }
        for problem in &report.other_problems {
            ctx.say(format!("not repaired (not a pack): {problem}"));
        }
    }
    if !report.unrepairable.is_empty() || !report.other_problems.is_empty() {
        anyhow::bail!(
            "{} snapshot(s) and {} other problem(s) could not be repaired",
            report.unrepairable.len(),
            report.other_problems.len()
        );
    }
    Ok(())
}
