//! `lifeboat find PATTERN...`: which snapshots hold a file, as restic's `find` answers
//! "when did this file last exist, and where do I get it back from". A pattern without
//! `/` matches a name anywhere; one with `/` the whole path (`/app/uploads/*.pdf`).

use anyhow::{Context as _, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use lifeboat_repo::tree::escape_path;
use serde_json::json;

use crate::args::FindArgs;
use crate::commands::ls::{entries, kind_letter};
use crate::context::Context;

pub fn run(ctx: &Context, args: &FindArgs) -> Result<()> {
    let names = patterns(&args.patterns, args.ignore_case, false)?;
    let paths = patterns(&args.patterns, args.ignore_case, true)?;
    let repo = ctx.open()?;
    let snapshots =
        crate::commands::snapshots::chosen(&repo, &args.snapshots, &args.filter.filter())?;
    let index = repo.load_index()?;
    let mut found = Vec::new();
    for stored in &snapshots {
        for (path, node) in entries(&repo, &index, stored.snapshot.tree)? {
            let text = path.to_string_lossy();
            let folded = if args.ignore_case {
                text.to_lowercase()
            } else {
                text.to_string()
            };
            let name = folded.rsplit('/').next().unwrap_or_default().to_string();
            if names.is_match(&name) || paths.is_match(&folded) {
                found.push((stored, path, node));
            }
        }
    }
    if ctx.global.json {
        ctx.print_json(&serde_json::Value::Array(
            found
                .iter()
                .map(|(s, path, node)| {
                    json!({
                        "snapshot": s.id,
                        "time": lifeboat_sources::timeline::show_time(s.snapshot.time),
                        "path": path.to_string_lossy(),
                        "type": node.node_type,
                        "size": node.size,
                        "mtime": chrono::DateTime::from_timestamp(node.mtime, node.mtime_nsec).map(|t| t.to_rfc3339()),
                    })
                })
                .collect(),
        ));
        return Ok(());
    }
    for (stored, path, node) in &found {
        out!(
            "{} {}  {}{:>12} {}",
            stored.id.short(),
            stored.snapshot.time.format("%Y-%m-%d %H:%M:%S"),
            kind_letter(node),
            node.size,
            escape_path(path)
        );
    }
    let holding: std::collections::BTreeSet<_> = found.iter().map(|f| f.0.id).collect();
    ctx.say(format!(
        "{} match(es) in {} of {} snapshot(s)",
        found.len(),
        holding.len(),
        snapshots.len()
    ));
    Ok(())
}

/// The patterns meant for names (`whole_path` false: those without `/`), or for whole
/// paths.
fn patterns(patterns: &[String], ignore_case: bool, whole_path: bool) -> Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns.iter().filter(|p| p.contains('/') == whole_path) {
        let text = if ignore_case {
            pattern.to_lowercase()
        } else {
            pattern.clone()
        };
        let anchored = if whole_path && !text.starts_with('/') {
            format!("/{text}")
        } else {
            text
        };
        let glob = GlobBuilder::new(&anchored)
            .literal_separator(true)
            .build()
            .with_context(|| format!("cannot read the pattern {pattern:?}"))?;
        set.add(glob);
    }
    Ok(set.build()?)
}
