use anyhow::{Context as _, Result};
use lifeboat_ops::npm_project::NpmSetup;
use lifeboat_ops::protection::lock_period;
use lifeboat_repo::keys::KdfParams;
use lifeboat_repo::Repository;
use lifeboat_storage::LockPolicy;
use serde_json::json;

use crate::args::{InitArgs, KdfArgs};
use crate::context::Context;

pub fn kdf_params(args: &KdfArgs) -> KdfParams {
    KdfParams {
        memory_kib: args.kdf_memory_mib.saturating_mul(1024),
        iterations: args.kdf_iterations,
        parallelism: KdfParams::default().parallelism,
    }
}

pub fn run(ctx: &Context, args: &InitArgs) -> Result<()> {
    // Refused before a repository is made, not after.
    let project = match args.npm {
        true => Some(lifeboat_ops::npm_project::project_dir(
            &std::env::current_dir().context("cannot read the current directory")?,
        )?),
        false => None,
    };
    let storage = ctx.storage()?;
    if let Some(problem) = storage.probe_consistency()? {
        anyhow::bail!(
            "{} is not consistent enough for a repository: {problem}. Locks and prune need \
             read-after-write and list-after-write consistency (AWS S3, MinIO, R2 and Garage in its \
             default consistency mode give both)",
            storage.location()
        );
    }
    let passphrase = ctx.passphrase(true)?;
    let object_lock = args.object_lock.map(|period| LockPolicy {
        mode: args.object_lock_mode,
        period_secs: period.as_secs(),
    });
    let repo = Repository::init_with(
        storage,
        passphrase.as_bytes(),
        kdf_params(&args.kdf),
        object_lock,
    )?;
    let npm = match &project {
        Some(project) => Some(set_up_npm(ctx, project, &repo)?),
        None => None,
    };
    if ctx.global.json {
        ctx.print_json(&json!({
            "id": repo.config().id,
            "location": repo.location(),
            "version": repo.config().version,
            "object_lock": repo.config().object_lock,
            "npm": npm,
        }));
    } else {
        ctx.say(format!(
            "created repository {} at {}",
            repo.config().id.short(),
            repo.location()
        ));
        if let Some(lock) = repo.config().object_lock {
            ctx.say(format!(
                "every object is locked ({} mode) for {} after it is written; prune renews what is still needed",
                lock.mode,
                lock_period(&lock)
            ));
        }
        ctx.say("keep the passphrase safe: without it the data cannot be read back");
        if let Some(setup) = &npm {
            show_npm(ctx, setup);
        }
    }
    Ok(())
}

/// `init --npm`'s second half, once the repository exists.
fn set_up_npm(ctx: &Context, project: &std::path::Path, repo: &Repository) -> Result<NpmSetup> {
    // lifeboat.toml names the repository as the agent will open it: a local one by its
    // absolute path (the file may be read from any directory).
    let location = match lifeboat_storage::Location::parse(ctx.repo_url()?) {
        Ok(lifeboat_storage::Location::Local(root)) => std::path::absolute(&root)
            .unwrap_or(root)
            .display()
            .to_string(),
        _ => repo.location().to_string(),
    };
    lifeboat_ops::npm_project::set_up(project, &location)
}

fn show_npm(ctx: &Context, setup: &NpmSetup) {
    let project = &setup.project;
    if setup.wrote_config {
        ctx.say(format!("wrote {}", project.join("lifeboat.toml").display()));
    }
    for (name, command) in &setup.scripts_added {
        ctx.say(format!("added the npm script {name:?}: {command}"));
    }
    for name in &setup.scripts_kept {
        ctx.say(format!("kept the npm script {name:?} package.json had"));
    }
    for note in &setup.notes {
        ctx.say(format!("note: {note}"));
    }
}
