//! The snapshots' trees, each read and checked once however many snapshots and
//! directories share it, and which snapshots need a damaged object.
//!
//! Trees are a DAG: an unchanged directory is one tree blob in every snapshot, and a
//! crafted repository can make a tree name the same subtree twice at every level (2^60
//! paths through 60 trees). Both passes below visit each tree once.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{describe, Findings};
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::index::MasterIndex;
use crate::pack;
use crate::repository::Repository;
use crate::tree::{Node, Tree};

/// Page maps already read, by the ids of their blobs: the data blobs each one names.
type PageMaps = HashMap<Vec<Id>, std::result::Result<Vec<Id>, String>>;

/// Every tree reachable from the snapshots, as read.
#[derive(Default)]
pub(super) struct Graph {
    pub trees: HashMap<Id, std::result::Result<Tree, String>>,
    maps: PageMaps,
}

/// Reads and checks every tree reachable from `roots` once, and the page maps its
/// nodes name once each.
pub(super) fn walk(
    repo: &Repository,
    index: &MasterIndex,
    roots: impl IntoIterator<Item = Id>,
    findings: &mut Findings,
) -> Result<Graph> {
    let mut graph = Graph::default();
    let mut stack: Vec<Id> = roots.into_iter().collect();
    while let Some(tree_id) = stack.pop() {
        if graph.trees.contains_key(&tree_id) {
            continue;
        }
        let Some(location) = index.get(&tree_id).copied() else {
            let object = format!("tree {tree_id}");
            findings.add(&object, "blob is not in any index");
            findings.implicates(&object, tree_id);
            graph
                .trees
                .insert(tree_id, Err("not in any index".to_string()));
            continue;
        };
        let loaded = match repo.load_tree(index, &tree_id) {
            Ok(tree) => Ok(tree),
            Err(RepoError::Storage(e)) if !e.is_damage() => return Err(RepoError::Storage(e)),
            Err(e) => Err(describe(&e)),
        };
        match &loaded {
            Err(detail) => {
                let object = pack::pack_name(&location.pack);
                findings.add(&object, format!("tree {}: {detail}", tree_id.short()));
                findings.implicates(&object, tree_id);
            }
            Ok(tree) => {
                for node in &tree.nodes {
                    for id in node.content.iter().filter(|id| !index.contains(id)) {
                        let object = format!("data blob {id}");
                        findings.add(
                            &object,
                            format!("blob of {} is not in any index", node.name),
                        );
                        findings.implicates(&object, *id);
                    }
                    if !node.page_map.is_empty() {
                        check_page_map(repo, index, node, &mut graph.maps, findings)?;
                    }
                    stack.extend(node.subtree.filter(|s| !graph.trees.contains_key(s)));
                }
            }
        }
        graph.trees.insert(tree_id, loaded);
    }
    Ok(graph)
}

fn check_page_map(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    maps: &mut PageMaps,
    findings: &mut Findings,
) -> Result<()> {
    if maps.contains_key(&node.page_map) {
        return Ok(());
    }
    if let Some(missing) = node.page_map.iter().find(|id| !index.contains(id)) {
        let object = format!("data blob {missing}");
        findings.add(
            &object,
            format!("page map blob of {} is not in any index", node.name),
        );
        findings.implicates(&object, *missing);
        maps.insert(node.page_map.clone(), Err("not in any index".into()));
        return Ok(());
    }
    let loaded = match repo.load_page_map(index, &node.page_map) {
        Ok(map) => Ok(map.blobs),
        Err(RepoError::Storage(e)) if !e.is_damage() => return Err(RepoError::Storage(e)),
        Err(e) => Err(describe(&e)),
    };
    match &loaded {
        Err(detail) => {
            let pack = index.get(&node.page_map[0]).expect("checked above").pack;
            let object = pack::pack_name(&pack);
            findings.add(&object, format!("page map of {}: {detail}", node.name));
            for id in &node.page_map {
                findings.implicates(&object, *id);
            }
        }
        Ok(blobs) => {
            for id in blobs.iter().filter(|id| !index.contains(id)) {
                let object = format!("data blob {id}");
                findings.add(
                    &object,
                    format!("page of {} is not in any index", node.name),
                );
                findings.implicates(&object, *id);
            }
        }
    }
    maps.insert(node.page_map.clone(), loaded);
    Ok(())
}

impl Graph {
    /// For each root, the problems (by number) below it: `bad` says which problems each
    /// blob is part of. One pass over the DAG, children before parents, each tree once.
    pub(super) fn problems_below(
        &self,
        roots: &[Id],
        bad: &HashMap<Id, Vec<usize>>,
    ) -> HashMap<Id, BTreeSet<usize>> {
        let mut below: HashMap<Id, BTreeSet<usize>> = HashMap::new();
        // Trees are content-addressed, so there are no cycles; `entered` still keeps a
        // crafted one from looping.
        let mut entered: HashSet<Id> = HashSet::new();
        let mut stack: Vec<(Id, bool)> = roots.iter().map(|r| (*r, false)).collect();
        while let Some((id, children_done)) = stack.pop() {
            if below.contains_key(&id) {
                continue;
            }
            let tree = self.trees.get(&id).and_then(|t| t.as_ref().ok());
            if !children_done {
                if !entered.insert(id) {
                    continue;
                }
                stack.push((id, true));
                for node in tree.map(|t| t.nodes.as_slice()).unwrap_or_default() {
                    stack.extend(
                        node.subtree
                            .filter(|s| !below.contains_key(s))
                            .map(|s| (s, false)),
                    );
                }
                continue;
            }
            let mut set: BTreeSet<usize> = bad.get(&id).into_iter().flatten().copied().collect();
            for node in tree.map(|t| t.nodes.as_slice()).unwrap_or_default() {
                let pages = self.maps.get(&node.page_map).and_then(|m| m.as_ref().ok());
                let blobs = node
                    .content
                    .iter()
                    .chain(&node.page_map)
                    .chain(pages.into_iter().flatten());
                for blob in blobs {
                    set.extend(bad.get(blob).into_iter().flatten());
                }
                if let Some(subtree) = node.subtree.and_then(|s| below.get(&s)) {
                    set.extend(subtree.iter().copied());
                }
            }
            below.insert(id, set);
        }
        below
    }
}
