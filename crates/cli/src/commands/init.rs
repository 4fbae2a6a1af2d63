use anyhow::Result;
use lifeboat_repo::keys::KdfParams;
use lifeboat_repo::Repository;
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
    let repo = Repository::init(storage, passphrase.as_bytes(), kdf_params(&args.kdf))?;
    if ctx.global.json {
        ctx.print_json(&json!({
            "id": repo.config().id,
            "location": repo.storage().location(),
            "version": repo.config().version,
        }));
    } else {
        ctx.say(format!(
            "created repository {} at {}",
            repo.config().id.short(),
            repo.storage().location()
        ));
        ctx.say("keep the passphrase safe: without it the data cannot be read back");
    }
    Ok(())
}
