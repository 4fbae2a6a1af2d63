use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::Result;
use lifeboat_repo::tree::{escape_name, escape_path, Node, NodeType};
use serde_json::json;

use crate::args::LsArgs;
use crate::context::Context;

/// Every entry of the tree `root` with its path (`/app/uploads/a.jpg`), sorted by path.
pub(crate) fn entries(
    repo: &lifeboat_repo::Repository,
    index: &lifeboat_repo::index::MasterIndex,
    root: lifeboat_repo::Id,
) -> Result<Vec<(PathBuf, Node)>> {
    let mut entries = Vec::new();
    let mut stack = vec![(PathBuf::from("/"), root)];
    while let Some((dir, tree_id)) = stack.pop() {
        let tree = repo.load_tree(index, &tree_id)?;
        for node in tree.nodes {
            let path = dir.join(OsStr::from_bytes(node.name_key()));
            if let Some(subtree) = node.subtree {
                stack.push((path.clone(), subtree));
            }
            entries.push((path, node));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// `d`, `-` or `l`, as `ls -l` marks them.
pub(crate) fn kind_letter(node: &Node) -> char {
    match node.node_type {
        NodeType::Dir => 'd',
        NodeType::File => '-',
        NodeType::Symlink => 'l',
    }
}

pub fn run(ctx: &Context, args: &LsArgs) -> Result<()> {
    let repo = ctx.open()?;
    let snapshot = repo.find_snapshot_matching(&args.snapshot, &args.filter.filter())?;
    let index = repo.load_index()?;
    let entries = entries(&repo, &index, snapshot.snapshot.tree)?;
    if ctx.global.json {
        let list: Vec<_> = entries
            .iter()
            .map(|(path, node)| {
                json!({
                    "path": path.to_string_lossy(),
                    "type": node.node_type,
                    "size": node.size,
                    "mode": format!("{:o}", node.mode),
                    "uid": node.uid,
                    "gid": node.gid,
                    "mtime": chrono::DateTime::from_timestamp(node.mtime, node.mtime_nsec).map(|t| t.to_rfc3339()),
                    "target": node.target,
                })
            })
            .collect();
        ctx.print_json(&serde_json::Value::Array(list));
        return Ok(());
    }
    for (path, node) in entries {
        let kind = kind_letter(&node);
        // Names and link targets come from the repository: escaped, so that a name cannot
        // drive the terminal or pass for several lines.
        let target = match (&node.target_bytes, &node.target) {
            (Some(bytes), _) => Some(escape_name(bytes)),
            (None, Some(text)) => Some(escape_name(text.as_bytes())),
            (None, None) => None,
        };
        let suffix = target.map(|t| format!(" -> {t}")).unwrap_or_default();
        out!(
            "{kind}{:04o} {:>12} {}{}",
            node.mode,
            node.size,
            escape_path(&path),
            suffix
        );
    }
    Ok(())
}
