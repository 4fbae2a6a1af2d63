use anyhow::Result;
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
    let storage = ctx.storage()?;
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
    if ctx.global.json {
        ctx.print_json(&json!({
            "id": repo.config().id,
            "location": repo.location(),
            "version": repo.config().version,
            "object_lock": repo.config().object_lock,
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
    }
    Ok(())
}

/// How long an object-lock policy keeps each object, as people write durations (`30d`).
pub use lifeboat_ops::protection::lock_period;
