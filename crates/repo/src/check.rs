//! `verify`: prove that every snapshot's data is present and, optionally, intact.
//!
//! The structural check reads every index file, snapshot and tree, and lists packs to
//! compare their sizes with what the index says. Reading data (`read_data_percent`)
//! downloads packs and checks every byte: the pack's name against its BLAKE3, its header
//! against the index, and each blob's authentication tag and keyed id. Every problem names
//! the damaged object and the snapshots that need it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::crypto::ObjectKind;
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::index::{IndexFile, MasterIndex};
use crate::pack::{self, expected_pack_size};
use crate::repository::{check_name, parallel_map, Repository};
use crate::snapshot::{snapshot_name, Snapshot};
use crate::tree::Tree;

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Percentage (0-100] of packs to download and check byte by byte; `None` for the
    /// structural check only.
    pub read_data_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub object: String,
    pub detail: String,
    /// Snapshots that cannot be fully restored because of this problem.
    pub snapshots: Vec<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    pub snapshots: usize,
    pub index_files: usize,
    pub packs: usize,
    pub packs_read: usize,
    pub blobs: usize,
    /// Packs no index lists: left by an interrupted backup; the next backup indexes them.
    pub unindexed_packs: usize,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Default)]
struct Findings {
    /// object -> details
    problems: BTreeMap<String, Vec<String>>,
    /// object -> snapshots that need it
    affected: HashMap<String, BTreeSet<String>>,
}

impl Findings {
    fn add(&mut self, object: impl Into<String>, detail: impl Into<String>) {
        let detail = detail.into();
        let entry = self.problems.entry(object.into()).or_default();
        if !entry.contains(&detail) {
            entry.push(detail);
        }
    }
    fn affects(&mut self, object: &str, snapshot: &Id) {
        self.affected
            .entry(object.to_string())
            .or_default()
            .insert(snapshot.to_hex());
    }
}

pub fn check(repo: &Repository, options: &CheckOptions) -> Result<CheckReport> {
    let mut findings = Findings::default();
    let mut report = CheckReport::default();

    // Index files, one by one, so one damaged file does not hide the others.
    let index_objects = repo.storage().list("index")?;
    report.index_files = index_objects.len();
    let loaded = parallel_map(&index_objects, 8, |o| {
        Ok((
            o.name.clone(),
            repo.load_json::<IndexFile>(ObjectKind::Index, &o.name),
        ))
    })?;
    let mut index = MasterIndex::default();
    for (name, file) in loaded {
        match file {
            Ok(file) => index.add_file(&file),
            Err(RepoError::Storage(e)) if !e.is_damage() => return Err(RepoError::Storage(e)),
            Err(e) => findings.add(name, describe(&e)),
        }
    }
    report.blobs = index.blob_count();

    // Packs: present, and exactly the size their index entries imply.
    let stored: HashMap<Id, u64> = repo
        .storage()
        .list("data")?
        .into_iter()
        .filter_map(|o| pack::pack_id_from_name(&o.name).map(|id| (id, o.size)))
        .collect();
    report.packs = stored.len();
    report.unindexed_packs = stored.keys().filter(|id| !index.has_pack(id)).count();
    for (id, blobs) in index.packs() {
        let name = pack::pack_name(id);
        match stored.get(id) {
            None => findings.add(name, "pack is missing"),
            Some(&size) if size != expected_pack_size(blobs) => findings.add(
                name,
                format!(
                    "pack is {size} bytes, the index says {} (truncated or damaged)",
                    expected_pack_size(blobs)
                ),
            ),
            Some(_) => {}
        }
    }

    // Snapshots and their trees.
    let snapshot_objects = repo.storage().list("snapshots")?;
    report.snapshots = snapshot_objects.len();
    let mut trees: HashMap<Id, std::result::Result<Tree, String>> = HashMap::new();
    let mut maps = PageMaps::new();
    let mut roots: Vec<(Id, Id)> = Vec::new();
    for object in &snapshot_objects {
        let Some(snapshot_id) = Id::from_object_name(&object.name) else {
            findings.add(&object.name, "not a snapshot name");
            continue;
        };
        let snapshot: Snapshot =
            match repo.load_json(ObjectKind::Snapshot, &snapshot_name(&snapshot_id)) {
                Ok(s) => s,
                Err(RepoError::Storage(e)) if !e.is_damage() => return Err(RepoError::Storage(e)),
                Err(e) => {
                    findings.add(&object.name, describe(&e));
                    findings.affects(&object.name, &snapshot_id);
                    continue;
                }
            };
        roots.push((snapshot_id, snapshot.tree));
        walk_snapshot(
            repo,
            &index,
            &snapshot_id,
            snapshot.tree,
            (&mut trees, &mut maps),
            &mut findings,
        )?;
    }

    // Reading data.
    if let Some(percent) = options.read_data_percent {
        let mut packs: Vec<(Id, u64)> = index
            .packs()
            .filter_map(|(id, _)| stored.get(id).map(|size| (*id, *size)))
            .collect();
        packs.sort();
        let wanted = ((packs.len() as f64) * percent.clamp(0.0, 100.0) / 100.0).ceil() as usize;
        if wanted < packs.len() {
            // A random sample, different on every run, so repeated partial checks cover
            // the whole repository over time.
            let mut seed = [0u8; 8];
            crate::crypto::fill_random(&mut seed);
            let seed = u64::from_le_bytes(seed);
            packs.sort_by_key(|(id, _)| {
                blake3::keyed_hash(&pad(seed), &id.0).as_bytes()[..8].to_vec()
            });
            packs.truncate(wanted);
        }
        report.packs_read = packs.len();
        let results = parallel_map(&packs, 4, |(id, size)| {
            Ok(read_pack(repo, &index, id, *size))
        })?;
        for ((id, _), result) in packs.iter().zip(results) {
            if let Err(detail) = result {
                findings.add(pack::pack_name(id), detail);
            }
        }
    }

    // Attach the affected snapshots to every damaged pack.
    let damaged_packs: Vec<String> = findings
        .problems
        .keys()
        .filter(|k| k.starts_with("data/"))
        .cloned()
        .collect();
    if !damaged_packs.is_empty() {
        let needed_by = snapshots_needing_packs(&index, &roots, &trees, &maps);
        for name in damaged_packs {
            if let Some(id) = pack::pack_id_from_name(&name) {
                for snapshot in needed_by.get(&id).into_iter().flatten() {
                    findings.affects(&name, snapshot);
                }
            }
        }
    }

    report.problems = findings
        .problems
        .into_iter()
        .map(|(object, details)| Problem {
            snapshots: findings
                .affected
                .get(&object)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
            object,
            detail: details.join("; "),
        })
        .collect();
    Ok(report)
}

fn pad(seed: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key
}

fn describe(e: &RepoError) -> String {
    match e {
        RepoError::Damaged { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

fn walk_snapshot(
    repo: &Repository,
    index: &MasterIndex,
    snapshot: &Id,
    root: Id,
    (trees, maps): (
        &mut HashMap<Id, std::result::Result<Tree, String>>,
        &mut PageMaps,
    ),
    findings: &mut Findings,
) -> Result<()> {
    let mut stack = vec![root];
    while let Some(tree_id) = stack.pop() {
        let Some(location) = index.get(&tree_id).copied() else {
            let object = format!("tree {tree_id}");
            findings.add(&object, "blob is not in any index");
            findings.affects(&object, snapshot);
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = trees.entry(tree_id) {
            slot.insert(match repo.load_tree(index, &tree_id) {
                Ok(tree) => Ok(tree),
                Err(RepoError::Storage(e)) if !e.is_damage() => return Err(RepoError::Storage(e)),
                Err(e) => Err(describe(&e)),
            });
        }
        match &trees[&tree_id] {
            Err(detail) => {
                let object = pack::pack_name(&location.pack);
                findings.add(&object, format!("tree {}: {detail}", tree_id.short()));
                findings.affects(&object, snapshot);
            }
            Ok(tree) => {
                for node in &tree.nodes {
                    for id in &node.content {
                        if !index.contains(id) {
                            let object = format!("data blob {id}");
                            findings.add(
                                &object,
                                format!("blob of {} is not in any index", node.name),
                            );
                            findings.affects(&object, snapshot);
                        }
                    }
                    if !node.page_map.is_empty() {
                        check_page_map(repo, index, snapshot, node, maps, findings)?;
                    }
                    if let Some(subtree) = node.subtree {
                        stack.push(subtree);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Page maps already read, by the ids of their blobs: the data blobs each one names.
type PageMaps = HashMap<Vec<Id>, std::result::Result<Vec<Id>, String>>;

fn check_page_map(
    repo: &Repository,
    index: &MasterIndex,
    snapshot: &Id,
    node: &crate::tree::Node,
    maps: &mut PageMaps,
    findings: &mut Findings,
) -> Result<()> {
    if let Some(missing) = node.page_map.iter().find(|id| !index.contains(id)) {
        let object = format!("data blob {missing}");
        findings.add(
            &object,
            format!("page map blob of {} is not in any index", node.name),
        );
        findings.affects(&object, snapshot);
        return Ok(());
    }
    if !maps.contains_key(&node.page_map) {
        let loaded = match repo.load_page_map(index, &node.page_map) {
            Ok(map) => Ok(map.blobs),
            Err(RepoError::Storage(e)) if !e.is_damage() => return Err(RepoError::Storage(e)),
            Err(e) => Err(describe(&e)),
        };
        maps.insert(node.page_map.clone(), loaded);
    }
    match &maps[&node.page_map] {
        Err(detail) => {
            let pack = index.get(&node.page_map[0]).expect("checked above").pack;
            let object = pack::pack_name(&pack);
            findings.add(&object, format!("page map of {}: {detail}", node.name));
            findings.affects(&object, snapshot);
        }
        Ok(blobs) => {
            for id in blobs.iter().filter(|id| !index.contains(id)) {
                let object = format!("data blob {id}");
                findings.add(
                    &object,
                    format!("page of {} is not in any index", node.name),
                );
                findings.affects(&object, snapshot);
            }
        }
    }
    Ok(())
}

fn snapshots_needing_packs(
    index: &MasterIndex,
    roots: &[(Id, Id)],
    trees: &HashMap<Id, std::result::Result<Tree, String>>,
    maps: &PageMaps,
) -> HashMap<Id, BTreeSet<Id>> {
    let mut needed: HashMap<Id, BTreeSet<Id>> = HashMap::new();
    for &(snapshot_id, root) in roots {
        let mut stack = vec![root];
        while let Some(tree_id) = stack.pop() {
            if let Some(location) = index.get(&tree_id) {
                needed.entry(location.pack).or_default().insert(snapshot_id);
            }
            let Some(Ok(tree)) = trees.get(&tree_id) else {
                continue;
            };
            for node in &tree.nodes {
                let map_blobs = maps.get(&node.page_map).and_then(|m| m.as_ref().ok());
                let blobs = node
                    .content
                    .iter()
                    .chain(&node.page_map)
                    .chain(map_blobs.into_iter().flatten());
                for id in blobs {
                    if let Some(location) = index.get(id) {
                        needed.entry(location.pack).or_default().insert(snapshot_id);
                    }
                }
                stack.extend(node.subtree);
            }
        }
    }
    needed
}

fn read_pack(
    repo: &Repository,
    index: &MasterIndex,
    id: &Id,
    size: u64,
) -> std::result::Result<(), String> {
    let name = pack::pack_name(id);
    let bytes = repo.storage().read(&name).map_err(|e| e.to_string())?;
    if bytes.len() as u64 != size {
        return Err(format!("read {} bytes, listed as {size}", bytes.len()));
    }
    check_name(&name, &bytes).map_err(|e| describe(&e))?;
    let blobs = pack::parse_header(repo.key(), bytes.len() as u64, &bytes)?;
    if Some(&blobs) != index.pack(id) {
        return Err("pack header does not match the index".into());
    }
    for blob in &blobs {
        let sealed = &bytes[blob.offset as usize..(blob.offset + blob.length as u64) as usize];
        repo.open_blob(&name, &blob.id, blob.kind, blob.raw_length, sealed)
            .map_err(|e| describe(&e))?;
    }
    Ok(())
}
