//! What the snapshots need: every blob reachable from a snapshot's tree (subtrees, file
//! content, SQLite page maps and the pages they name).
//!
//! Used by `prune`, where an unknown reference would be a deleted restore point: anything
//! that cannot be read fails the walk instead of being skipped.

use std::collections::HashSet;

use crate::crypto::ObjectKind;
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::index::MasterIndex;
use crate::repository::Repository;
use crate::snapshot::{Snapshot, StoredSnapshot, SNAPSHOT_VERSION};

/// Every snapshot in the repository, refusing to go on past one that cannot be read: its
/// blobs would look unused.
pub fn all_snapshots(repo: &Repository) -> Result<Vec<StoredSnapshot>> {
    let mut snapshots = Vec::new();
    for object in repo.storage().list("snapshots")? {
        let id = Id::from_object_name(&object.name)
            .ok_or_else(|| RepoError::damaged(&object.name, "not a snapshot name"))?;
        let snapshot: Snapshot = repo
            .load_json(ObjectKind::Snapshot, &object.name)
            .map_err(|e| unreadable(&object.name, e))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(RepoError::Invalid(format!(
                "{} has snapshot version {}, which this lifeboat cannot read; prune would not know what it needs",
                object.name, snapshot.version
            )));
        }
        snapshots.push(StoredSnapshot { id, snapshot });
    }
    Ok(snapshots)
}

fn unreadable(what: &str, e: RepoError) -> RepoError {
    match e {
        RepoError::Storage(e) if !e.is_damage() => RepoError::Storage(e),
        e => RepoError::Invalid(format!(
            "{what} cannot be read ({e}); prune stops rather than guess what it needs: run `lifeboat verify`"
        )),
    }
}

/// The blobs reachable from the snapshots walked so far. Walking more snapshots later
/// reads only trees and page maps not read yet.
#[derive(Debug, Default)]
pub struct Reachable {
    pub blobs: HashSet<Id>,
    trees_read: HashSet<Id>,
    maps_read: HashSet<Vec<Id>>,
}

impl Reachable {
    pub fn contains(&self, id: &Id) -> bool {
        self.blobs.contains(id)
    }

    pub fn walk(
        &mut self,
        repo: &Repository,
        index: &MasterIndex,
        snapshots: &[StoredSnapshot],
    ) -> Result<()> {
        let mut stack: Vec<Id> = snapshots.iter().map(|s| s.snapshot.tree).collect();
        while let Some(tree_id) = stack.pop() {
            self.blobs.insert(tree_id);
            if !self.trees_read.insert(tree_id) {
                continue;
            }
            let tree = repo
                .load_tree(index, &tree_id)
                .map_err(|e| unreadable(&format!("tree {}", tree_id.short()), e))?;
            for node in &tree.nodes {
                self.blobs.extend(node.content.iter().copied());
                if !node.page_map.is_empty() && self.maps_read.insert(node.page_map.clone()) {
                    let map = repo
                        .load_page_map(index, &node.page_map)
                        .map_err(|e| unreadable(&format!("the page map of {}", node.name), e))?;
                    self.blobs.extend(node.page_map.iter().copied());
                    self.blobs.extend(map.blobs.iter().copied());
                }
                stack.extend(node.subtree);
            }
        }
        Ok(())
    }
}
