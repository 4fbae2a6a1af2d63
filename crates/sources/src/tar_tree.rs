//! A tar stream (as `pg_basebackup -F t -D -` writes one) stored as a snapshot tree:
//! every member becomes a file, directory or symlink node, so a base backup restores
//! like any directory, deduplicates file by file against earlier ones, and lists with
//! `ls`. Nothing touches the local disk.

use std::collections::BTreeMap;
use std::io::Read;

use lifeboat_repo::session::WriteSession;
use lifeboat_repo::tree::{Node, NodeType, Tree};
use lifeboat_repo::Id;

use crate::{Progress, Result, SourceError};

#[derive(Debug, Default)]
pub struct TarStats {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// Small members worth keeping in memory as well (e.g. `backup_label`).
pub struct Kept {
    pub name: &'static str,
    pub text: Option<String>,
}

/// Stores every member of the tar stream `reader`; returns the root tree. Members named
/// in `keep` have their text returned too.
pub fn store_tar(
    session: &WriteSession,
    reader: impl Read,
    keep: &mut [Kept],
    progress: &dyn Progress,
) -> Result<(Id, TarStats)> {
    // Directory path ("" for the root) -> its entries so far.
    let mut dirs: BTreeMap<String, Vec<Node>> = BTreeMap::new();
    dirs.insert(String::new(), Vec::new());
    let mut stats = TarStats::default();
    let mut archive = tar::Archive::new(reader);
    let bad = |e: std::io::Error| SourceError::Invalid(format!("reading the tar stream: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if path.is_empty() || path.split('/').any(|p| p == "..") {
            continue;
        }
        let header = entry.header();
        let kind = header.entry_type();
        let mut node = Node {
            mode: header.mode().map_err(bad)? & 0o7777,
            uid: header.uid().map_err(bad)? as u32,
            gid: header.gid().map_err(bad)? as u32,
            mtime: header.mtime().map_err(bad)? as i64,
            ..Node::new(path.rsplit('/').next().unwrap_or(&path), NodeType::File)
        };
        if kind.is_dir() {
            node.node_type = NodeType::Dir;
            dirs.entry(path.clone()).or_default();
            stats.dirs += 1;
        } else if kind.is_symlink() {
            node.node_type = NodeType::Symlink;
            node.target = entry
                .link_name()
                .map_err(bad)?
                .map(|t| t.to_string_lossy().into_owned());
        } else if kind.is_file() {
            let wanted = keep.iter_mut().find(|k| k.name == path);
            let stored = match wanted {
                Some(kept) => {
                    let mut bytes = Vec::new();
                    entry.read_to_end(&mut bytes).map_err(bad)?;
                    kept.text = Some(String::from_utf8_lossy(&bytes).into_owned());
                    session.store_reader(bytes.as_slice(), &path, |n| progress.bytes(n))?
                }
                None => session.store_reader(&mut entry, &path, |n| progress.bytes(n))?,
            };
            node.size = stored.size;
            node.content = stored.ids;
            stats.files += 1;
            stats.bytes += stored.size;
        } else {
            continue;
        }
        let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let mut ancestor = parent;
        while !ancestor.is_empty() {
            dirs.entry(ancestor.to_string()).or_default();
            ancestor = ancestor.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        }
        dirs.entry(parent.to_string()).or_default().push(node);
    }
    // Deepest directories first, so each subtree exists before its parent's tree.
    let mut order: Vec<String> = dirs.keys().cloned().collect();
    order.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count() + usize::from(!p.is_empty())));
    let mut root = None;
    for dir in order {
        let mut nodes = dirs.remove(&dir).unwrap_or_default();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes.dedup_by(|a, b| a.name == b.name);
        let id = session.store_tree(&Tree { nodes })?;
        if dir.is_empty() {
            root = Some(id);
            continue;
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir.as_str()));
        let siblings = dirs.entry(parent.to_string()).or_default();
        match siblings.iter_mut().find(|n| n.name == name) {
            Some(node) => node.subtree = Some(id),
            // A member inside a directory the stream never listed.
            None => siblings.push(Node {
                mode: 0o700,
                subtree: Some(id),
                ..Node::new(name, NodeType::Dir)
            }),
        }
    }
    Ok((root.expect("the root is always listed"), stats))
}
