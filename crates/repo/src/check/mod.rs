//! `verify`: prove that every restore point's data is present and, optionally, intact.
//!
//! The structural check ("plain verify") reads every index file, snapshot, tree and page
//! map (each tree once: see `trees.rs`), lists packs to compare their sizes with what the
//! index says, and lists stream segments and archived WAL files to check their names,
//! that each segment chain runs 1, 2, ... n on an existing base snapshot, and that the
//! WAL archive has no gap after a base backup. It reads no file content: a flipped byte
//! inside a pack, a segment or a WAL file is found only by reading data
//! (`read_data_percent`), which downloads packs, segments and WAL files and checks every
//! byte: names against BLAKE3, pack headers against the index, every authentication tag
//! and blob id, and each segment's link to the one before it and to its base.
//!
//! Every problem names the damaged object and the snapshots, or the restore points of a
//! replicated database or a PostgreSQL cluster, that it costs. Packs proven damaged are
//! recorded (`damaged.rs`) so that the next backup stores their content again.

mod binlog;
pub mod damaged;
mod streams;
mod trees;
mod wal;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::crypto::ObjectKind;
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::index::{IndexFile, MasterIndex};
use crate::pack::{self, expected_pack_size};
use crate::repository::{check_name, parallel_map, Repository};
use crate::snapshot::{snapshot_name, Snapshot};

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Percentage (0-100] of packs, stream segments and WAL files to download and check
    /// byte by byte; `None` for the structural check only.
    pub read_data_percent: Option<f64>,
    /// Store a `damaged/` notice naming the packs found damaged that no notice names yet,
    /// so that later backups store their blobs again.
    pub record_damage: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub object: String,
    pub detail: String,
    /// Snapshots that cannot be fully restored because of this problem.
    pub snapshots: Vec<String>,
    /// The source whose restore points (below) are lost: a replicated database's path
    /// or a PostgreSQL cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Restore points lost that are not snapshots: stream segments, or point-in-time
    /// recovery past some WAL file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restore_points: Vec<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    pub snapshots: usize,
    pub index_files: usize,
    pub packs: usize,
    pub packs_read: usize,
    pub blobs: usize,
    /// Distinct trees read: each is read once however often snapshots share it.
    pub trees: usize,
    /// Packs no index lists: left by an interrupted backup; the next backup indexes them.
    pub unindexed_packs: usize,
    pub segments: usize,
    pub segments_read: usize,
    pub wal_files: usize,
    pub wal_files_read: usize,
    pub binlog_pieces: usize,
    pub binlog_pieces_read: usize,
    /// Whether file content (packs, segments, WAL files) was read, and how much.
    pub read_data_percent: Option<f64>,
    /// Damaged packs this run recorded in a `damaged/` notice.
    pub recorded_damaged_packs: Vec<String>,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Default)]
pub(crate) struct Findings {
    /// object -> details
    problems: BTreeMap<String, Vec<String>>,
    /// object -> snapshots that need it
    affected: HashMap<String, BTreeSet<String>>,
    /// object -> blobs whose loss it is (beyond a damaged pack's own blobs)
    blobs: HashMap<String, BTreeSet<Id>>,
    /// object -> the source and restore points it costs
    points: HashMap<String, (Option<String>, BTreeSet<String>)>,
    /// packs proven damaged in this run, with what was found
    damaged_packs: BTreeMap<Id, String>,
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
    fn implicates(&mut self, object: &str, blob: Id) {
        self.blobs
            .entry(object.to_string())
            .or_default()
            .insert(blob);
    }
    fn loses(&mut self, object: &str, source: Option<&str>, point: String) {
        let entry = self.points.entry(object.to_string()).or_default();
        if entry.0.is_none() {
            entry.0 = source.map(str::to_string);
        }
        entry.1.insert(point);
    }
    fn damaged_pack(&mut self, id: &Id, detail: String) {
        self.add(pack::pack_name(id), detail.clone());
        self.damaged_packs.entry(*id).or_insert(detail);
    }
}

/// Which objects a partial read takes: a random share, different on every run, so
/// repeated partial checks cover the whole repository over time.
struct Sample {
    percent: Option<f64>,
    seed: [u8; 32],
}

impl Sample {
    fn new(percent: Option<f64>) -> Sample {
        let mut seed = [0u8; 32];
        crate::crypto::fill_random(&mut seed[..8]);
        Sample { percent, seed }
    }
    fn rank(&self, name: &[u8]) -> u64 {
        let hash = blake3::keyed_hash(&self.seed, name);
        u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
    }
    /// `count` of `names` to read, chosen at random.
    fn choose<T>(&self, mut items: Vec<T>, name: impl Fn(&T) -> Vec<u8>) -> Vec<T> {
        let Some(percent) = self.percent else {
            return Vec::new();
        };
        let wanted = ((items.len() as f64) * percent.clamp(0.0, 100.0) / 100.0).ceil() as usize;
        if wanted < items.len() {
            items.sort_by_key(|item| self.rank(&name(item)));
            items.truncate(wanted);
        }
        items
    }
}

pub fn check(repo: &Repository, options: &CheckOptions) -> Result<CheckReport> {
    let mut findings = Findings::default();
    let mut report = CheckReport {
        read_data_percent: options.read_data_percent,
        ..CheckReport::default()
    };
    let sample = Sample::new(options.read_data_percent);

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
        match stored.get(id) {
            None => findings.damaged_pack(id, "pack is missing".into()),
            Some(&size) if size != expected_pack_size(blobs) => findings.damaged_pack(
                id,
                format!(
                    "pack is {size} bytes, the index says {} (truncated or damaged)",
                    expected_pack_size(blobs)
                ),
            ),
            Some(_) => {}
        }
    }

    // Reading packs.
    let packs: Vec<(Id, u64)> = index
        .packs()
        .filter_map(|(id, _)| stored.get(id).map(|size| (*id, *size)))
        .collect();
    let mut packs = sample.choose(packs, |(id, _)| id.0.to_vec());
    packs.sort();
    report.packs_read = packs.len();
    let results = parallel_map(&packs, 4, |(id, size)| read_pack(repo, &index, id, *size))?;
    for ((id, _), result) in packs.iter().zip(results) {
        if let Err(detail) = result {
            findings.damaged_pack(id, detail);
        }
    }

    // Damage recorded earlier: still a problem while the pack is indexed.
    let recorded = damaged::damaged_packs(repo)?;
    for (id, (created, detail)) in &recorded {
        if index.has_pack(id) {
            findings.add(
                pack::pack_name(id),
                format!(
                    "recorded as damaged on {} ({detail}); the next backup stores its blobs again where the sources still hold them, and `lifeboat repair` stores its intact blobs again and removes it",
                    created.format("%Y-%m-%d %H:%M UTC")
                ),
            );
        }
    }
    let damaged: HashSet<Id> = recorded
        .keys()
        .chain(findings.damaged_packs.keys())
        .copied()
        .collect();
    // Read as restore reads: from an intact copy where there is one.
    let index = damaged::prefer_intact(index, &damaged);

    // Snapshots and their trees.
    let snapshot_objects = repo.storage().list("snapshots")?;
    report.snapshots = snapshot_objects.len();
    let mut listed: HashSet<Id> = HashSet::new();
    let mut snapshots: Vec<(Id, Snapshot)> = Vec::new();
    for object in &snapshot_objects {
        let Some(snapshot_id) = Id::from_object_name(&object.name) else {
            findings.add(&object.name, "not a snapshot name");
            continue;
        };
        listed.insert(snapshot_id);
        match repo.load_json::<Snapshot>(ObjectKind::Snapshot, &snapshot_name(&snapshot_id)) {
            Ok(s) => snapshots.push((snapshot_id, s)),
            Err(RepoError::Storage(e)) if !e.is_damage() => return Err(RepoError::Storage(e)),
            Err(e) => {
                findings.add(&object.name, describe(&e));
                findings.affects(&object.name, &snapshot_id);
            }
        }
    }
    let graph = trees::walk(
        repo,
        &index,
        snapshots.iter().map(|s| s.1.tree),
        &mut findings,
    )?;
    report.trees = graph.trees.len();

    streams::check(repo, &listed, &sample, &mut findings, &mut report)?;
    wal::check(repo, &snapshots, &sample, &mut findings, &mut report)?;
    binlog::check(repo, &sample, &mut findings, &mut report)?;

    attach_snapshots(&index, &damaged, &snapshots, &graph, &mut findings);

    if options.record_damage {
        let new: Vec<damaged::DamagedPack> = findings
            .damaged_packs
            .iter()
            .filter(|(id, _)| !recorded.contains_key(id))
            .map(|(id, detail)| damaged::DamagedPack {
                id: *id,
                detail: detail.clone(),
            })
            .collect();
        let names: Vec<String> = new.iter().map(|p| pack::pack_name(&p.id)).collect();
        // A repository this process may not write to is still verified.
        match damaged::record(repo, new) {
            Ok(_) => report.recorded_damaged_packs = names,
            Err(e) => tracing::warn!("could not record the damaged packs: {e}"),
        }
    }

    report.problems = findings
        .problems
        .into_iter()
        .map(|(object, details)| {
            let (source, points) = findings.points.remove(&object).unwrap_or_default();
            Problem {
                snapshots: findings
                    .affected
                    .get(&object)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
                object,
                detail: details.join("; "),
                source,
                restore_points: points.into_iter().collect(),
            }
        })
        .collect();
    Ok(report)
}

/// Names the snapshots each problem costs: those whose trees reach a blob the problem
/// implicates, or (for a damaged pack) a blob that has no copy outside damaged packs.
fn attach_snapshots(
    index: &MasterIndex,
    damaged: &HashSet<Id>,
    snapshots: &[(Id, Snapshot)],
    graph: &trees::Graph,
    findings: &mut Findings,
) {
    let objects: Vec<String> = findings.problems.keys().cloned().collect();
    let mut bad: HashMap<Id, Vec<usize>> = HashMap::new();
    let intact = index.without_packs(damaged);
    for (number, object) in objects.iter().enumerate() {
        let mut blobs: BTreeSet<Id> = findings.blobs.get(object).cloned().unwrap_or_default();
        if let Some(pack) = object
            .strip_prefix("data/")
            .and(pack::pack_id_from_name(object))
        {
            if damaged.contains(&pack) {
                let in_pack = index.pack(&pack).into_iter().flatten();
                blobs.extend(in_pack.map(|b| b.id).filter(|b| !intact.contains(b)));
            }
        }
        for blob in blobs {
            bad.entry(blob).or_default().push(number);
        }
    }
    if bad.is_empty() {
        return;
    }
    let roots: Vec<Id> = snapshots.iter().map(|s| s.1.tree).collect();
    let below = graph.problems_below(&roots, &bad);
    for (snapshot_id, snapshot) in snapshots {
        for &number in below.get(&snapshot.tree).into_iter().flatten() {
            findings.affects(&objects[number], snapshot_id);
        }
    }
}

pub(crate) fn describe(e: &RepoError) -> String {
    match e {
        RepoError::Damaged { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

/// Reads one pack whole and checks it; the inner error is damage found, the outer one a
/// failure to read (which stops the check rather than be recorded as damage).
fn read_pack(
    repo: &Repository,
    index: &MasterIndex,
    id: &Id,
    size: u64,
) -> Result<std::result::Result<(), String>> {
    let name = pack::pack_name(id);
    let bytes = match repo.storage().read(&name) {
        Ok(bytes) => bytes,
        Err(e) if e.is_damage() => return Ok(Err(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    Ok(check_pack_bytes(repo, index, id, size, &bytes))
}

fn check_pack_bytes(
    repo: &Repository,
    index: &MasterIndex,
    id: &Id,
    size: u64,
    bytes: &[u8],
) -> std::result::Result<(), String> {
    let name = pack::pack_name(id);
    if bytes.len() as u64 != size {
        return Err(format!("read {} bytes, listed as {size}", bytes.len()));
    }
    check_name(&name, bytes).map_err(|e| describe(&e))?;
    let blobs = pack::parse_header(repo.key(), bytes.len() as u64, bytes)?;
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
