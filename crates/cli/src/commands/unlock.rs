//! `lifeboat unlock`: remove the lock objects that protect nothing (a lease run out, a
//! holder that has exited, an object that does not decode), and say whose each was. Every
//! command ignores such locks already; removing them tidies the repository and the
//! messages. `--remove-all` removes live ones too, for a holder known dead elsewhere.

use anyhow::Result;
use serde_json::json;

use crate::args::UnlockArgs;
use crate::context::Context;

pub fn run(ctx: &Context, args: &UnlockArgs) -> Result<()> {
    let repo = ctx.open()?;
    ctx.require_admin(&repo, "unlock")?;
    let (stale, live) = lifeboat_repo::lock::stale_and_live(&repo)?;
    let mut removed = Vec::new();
    for lock in &stale {
        repo.remove_lock(&lock.name)?;
        let whose = lock
            .record
            .as_ref()
            .map_or_else(|| "an unreadable lock".to_string(), |r| r.describe());
        ctx.say(format!("removed {}: {whose}; {}", lock.name, lock.why));
        removed.push(json!({"name": lock.name, "why": lock.why}));
    }
    let mut kept = Vec::new();
    for lock in &live {
        if args.remove_all {
            repo.remove_lock(&lock.name)?;
            ctx.say(format!(
                "removed {}: {} (live; --remove-all)",
                lock.name,
                lock.record.describe()
            ));
            removed.push(json!({"name": lock.name, "why": "--remove-all"}));
        } else {
            ctx.say(format!(
                "kept {}: {} is live (its lease runs to {}; --remove-all if you know it is dead)",
                lock.name,
                lock.record.describe(),
                lock.record
                    .expires
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
            kept.push(json!({"name": lock.name, "holder": lock.record.describe()}));
        }
    }
    if ctx.global.json {
        ctx.print_json(&json!({"removed": removed, "kept": kept}));
    } else {
        ctx.say(format!(
            "{} lock(s) removed, {} live lock(s) kept",
            removed.len(),
            kept.len()
        ));
    }
    Ok(())
}
