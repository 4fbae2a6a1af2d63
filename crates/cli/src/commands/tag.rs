//! `lifeboat tag`: add, remove or set the tags of snapshots. A snapshot object is named by
//! the hash of its bytes, so a changed one is saved under a new id first and the old one
//! removed after (as restic does): a crash between leaves both, never neither.

use anyhow::{ensure, Result};
use serde_json::json;

use crate::args::TagArgs;
use crate::context::Context;

pub fn run(ctx: &Context, args: &TagArgs) -> Result<()> {
    ensure!(
        !args.add.is_empty() || !args.remove.is_empty() || args.set.is_some(),
        "say what to change: --add TAG, --remove TAG or --set TAG,TAG"
    );
    ensure!(
        args.set.is_none() || (args.add.is_empty() && args.remove.is_empty()),
        "--set replaces every tag; give it alone, without --add or --remove"
    );
    let repo = ctx.open()?;
    ctx.require_admin(&repo, "tag")?;
    let filter = args.filter.filter();
    ensure!(
        !args.snapshots.is_empty() || !filter.is_empty(),
        "name the snapshots (ids, or latest) or choose them with --host, --tag or --path"
    );
    let chosen = crate::commands::snapshots::chosen(&repo, &args.snapshots, &filter)?;
    let mut changed = Vec::new();
    for stored in chosen {
        let mut snapshot = stored.snapshot.clone();
        let mut tags = match &args.set {
            Some(set) => set
                .split(',')
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
            None => snapshot.tags.clone(),
        };
        tags.retain(|t| !args.remove.contains(t));
        for tag in &args.add {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        if tags == snapshot.tags {
            continue;
        }
        snapshot.tags = tags;
        let id = repo.save_snapshot(&snapshot)?;
        repo.delete_snapshot(&stored.id)?;
        if !ctx.global.json {
            ctx.say(format!(
                "snapshot {} is now {} (tags: {})",
                stored.id.short(),
                id.short(),
                snapshot.tags.join(",")
            ));
        }
        changed.push(json!({"old": stored.id, "new": id, "tags": snapshot.tags}));
    }
    if ctx.global.json {
        ctx.print_json(&json!({ "changed": changed }));
    } else {
        ctx.say(format!("{} snapshot(s) changed", changed.len()));
    }
    Ok(())
}
