//! `lifeboat compare A B`: which files two snapshots differ in, as restic's `diff` lists
//! them (named apart from the row-level `diff`): `+` added, `-` removed, `M` content
//! changed, `T` type changed, `U` metadata only (mode, owner, mtime).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use lifeboat_repo::tree::{escape_path, Node};
use serde_json::json;

use crate::args::CompareArgs;
use crate::commands::backup::human;
use crate::commands::ls::entries;
use crate::context::Context;

pub fn run(ctx: &Context, args: &CompareArgs) -> Result<()> {
    let repo = ctx.open()?;
    let filter = args.filter.filter();
    let old = repo.find_snapshot_matching(&args.from, &filter)?;
    let new = repo.find_snapshot_matching(&args.to, &filter)?;
    let index = repo.load_index()?;
    let before: BTreeMap<PathBuf, Node> = entries(&repo, &index, old.snapshot.tree)?
        .into_iter()
        .collect();
    let after: BTreeMap<PathBuf, Node> = entries(&repo, &index, new.snapshot.tree)?
        .into_iter()
        .collect();
    let mut changes: Vec<(char, &PathBuf, Option<&Node>, Option<&Node>)> = Vec::new();
    for (path, old_node) in &before {
        match after.get(path) {
            None => changes.push(('-', path, Some(old_node), None)),
            Some(new_node) => {
                if let Some(mark) = change(old_node, new_node) {
                    changes.push((mark, path, Some(old_node), Some(new_node)));
                }
            }
        }
    }
    for (path, new_node) in &after {
        if !before.contains_key(path) {
            changes.push(('+', path, None, Some(new_node)));
        }
    }
    changes.sort_by(|a, b| a.1.cmp(b.1));
    let count = |mark: char| changes.iter().filter(|c| c.0 == mark).count();
    let size = |node: Option<&Node>| node.map_or(0, |n| n.size);
    let added_bytes: u64 = changes
        .iter()
        .filter(|c| c.0 == '+')
        .map(|c| size(c.3))
        .sum();
    let removed_bytes: u64 = changes
        .iter()
        .filter(|c| c.0 == '-')
        .map(|c| size(c.2))
        .sum();
    if ctx.global.json {
        ctx.print_json(&json!({
            "from": old.id,
            "to": new.id,
            "changes": changes.iter().map(|(mark, path, _, _)| json!({
                "change": match mark { '+' => "added", '-' => "removed", 'M' => "modified", 'T' => "type", _ => "metadata" },
                "path": path.to_string_lossy(),
            })).collect::<Vec<_>>(),
            "added": count('+'),
            "removed": count('-'),
            "modified": count('M'),
            "type_changed": count('T'),
            "metadata_changed": count('U'),
            "added_bytes": added_bytes,
            "removed_bytes": removed_bytes,
        }));
        return Ok(());
    }
    for (mark, path, _, _) in &changes {
        out!("{mark}    {}", escape_path(path));
    }
    ctx.say(format!(
        "{} -> {}: {} added ({}), {} removed ({}), {} modified, {} type changed, {} metadata only",
        old.id.short(),
        new.id.short(),
        count('+'),
        human(added_bytes),
        count('-'),
        human(removed_bytes),
        count('M'),
        count('T'),
        count('U'),
    ));
    Ok(())
}

/// How an entry present in both differs: type, content, metadata, or not at all. A
/// directory's own listing changing shows in its entries, not as a change of its own.
fn change(old: &Node, new: &Node) -> Option<char> {
    if old.node_type != new.node_type {
        return Some('T');
    }
    let content = old.content != new.content
        || old.page_map != new.page_map
        || old.size != new.size
        || old.target != new.target
        || old.target_bytes != new.target_bytes;
    if content {
        return Some('M');
    }
    let metadata = old.mode != new.mode
        || old.uid != new.uid
        || old.gid != new.gid
        || (old.subtree.is_none() && (old.mtime, old.mtime_nsec) != (new.mtime, new.mtime_nsec));
    metadata.then_some('U')
}
