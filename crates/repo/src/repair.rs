//! Repairing one repository from another: damaged or missing packs are dropped, and the
//! blobs they held are stored again from the other repository's copy of each affected
//! snapshot (found by lineage: `lifeboat copy` made one from the other).
//!
//! Without another repository ([`repair_in_place`], restic's `repair packs`): the intact
//! blobs of damaged packs are stored again, the packs are dropped, and the snapshots that
//! still miss blobs are named; the next backup of their sources stores those again where
//! the sources still hold the data.
//!
//! The mapped tree must come out identical to the damaged repository's own tree id,
//! which proves the other copy holds exactly the same content; a snapshot without such a
//! copy is reported as not repairable, never patched with other data.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::check::{check, damaged, CheckOptions};
use crate::copy::{lineage, Mapper};
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::lock::Lock;
use crate::pack;
use crate::prune::{delete_if_present, drop_from_index};
use crate::repository::Repository;
use crate::session::WriteSession;

#[derive(Debug, Default, Clone, Serialize)]
pub struct RepairReport {
    /// Damaged or missing packs dropped from the index.
    pub dropped_packs: Vec<String>,
    pub repaired_snapshots: Vec<String>,
    /// Snapshots that still miss data, and why.
    pub unrepairable: Vec<(String, String)>,
    /// Problems that are not packs (index files, snapshots), left for a person.
    pub other_problems: Vec<String>,
    pub stored_bytes: u64,
    /// In place: blobs of damaged packs read intact and stored again.
    pub salvaged_blobs: usize,
    /// In place: blobs of damaged packs that could not be read and have no other copy.
    pub lost_blobs: usize,
}

pub fn repair(damaged: &Repository, from: &Repository) -> Result<RepairReport> {
    let mut report = RepairReport::default();
    let found = check(
        damaged,
        &CheckOptions {
            read_data_percent: Some(100.0),
            ..CheckOptions::default()
        },
    )?;
    let mut bad_packs: HashSet<Id> = HashSet::new();
    let mut affected: HashSet<String> = HashSet::new();
    for problem in &found.problems {
        affected.extend(problem.snapshots.iter().cloned());
        match problem
            .object
            .strip_prefix("data/")
            .and(pack::pack_id_from_name(&problem.object))
        {
            Some(id) => {
                bad_packs.insert(id);
            }
            None if problem.object.contains(" blob ") || problem.object.starts_with("tree ") => {}
            None => report
                .other_problems
                .push(format!("{}: {}", problem.object, problem.detail)),
        }
    }
    if bad_packs.is_empty() && affected.is_empty() {
        return Ok(report);
    }

    // The damaged packs leave the index (and storage), so their blobs count as absent
    // and are stored again below.
    drop_from_index(damaged, &bad_packs)?;
    for id in &bad_packs {
        delete_if_present(damaged, &pack::pack_name(id))?;
        report.dropped_packs.push(pack::pack_name(id));
    }

    let copies: HashMap<Id, crate::snapshot::StoredSnapshot> = from
        .list_snapshots()?
        .into_iter()
        .map(|s| (lineage(&s), s))
        .collect();
    let index = from.load_index()?;
    let session = WriteSession::start(damaged, "repair")?;
    let mut mapper = Mapper::new(from, &index, &session);
    for snapshot in damaged.list_snapshots()? {
        if !affected.contains(&snapshot.id.to_hex()) {
            continue;
        }
        let name = snapshot.id.short();
        let Some(copy) = copies.get(&lineage(&snapshot)) else {
            report.unrepairable.push((
                name,
                "the other repository has no copy of this snapshot".into(),
            ));
            continue;
        };
        match mapper.tree(&copy.snapshot.tree) {
            Ok(tree) if tree == snapshot.snapshot.tree => report.repaired_snapshots.push(name),
            Ok(_) => report.unrepairable.push((
                name,
                "the other repository's copy holds different content".into(),
            )),
            Err(RepoError::Storage(e)) if !e.is_damage() => return Err(RepoError::Storage(e)),
            Err(e) => report.unrepairable.push((
                name,
                format!("the other repository's copy is damaged too: {e}"),
            )),
        }
    }
    let finished = session.finish()?;
    report.stored_bytes = finished.stats.stored_bytes;
    finished.release()?;
    Ok(report)
}

/// Repairs `repo` from its own data: every damaged pack (found by reading all data, or
/// recorded by an earlier `verify`) gives up its intact blobs, which are stored again in
/// new packs; then the damaged packs leave the index and the storage, and so do their
/// notices. Blobs that could not be read are then absent from the index, so the next
/// backup that has their content stores them again; the snapshots that miss them are
/// reported. Runs under the exclusive lock, so no prune rewrites the index meanwhile.
pub fn repair_in_place(repo: &Repository) -> Result<RepairReport> {
    let lock = Lock::acquire_exclusive(repo, "repair")?;
    let result = repair_locked(repo);
    lock.release()?;
    result
}

fn repair_locked(repo: &Repository) -> Result<RepairReport> {
    let mut report = RepairReport::default();
    // Records what it finds, so the session below leaves those packs out of its index.
    let found = check(
        repo,
        &CheckOptions {
            read_data_percent: Some(100.0),
            record_damage: true,
        },
    )?;
    for problem in &found.problems {
        let is_blob = problem.object.starts_with("data/")
            || problem.object.contains(" blob ")
            || problem.object.starts_with("tree ");
        if !is_blob {
            report
                .other_problems
                .push(format!("{}: {}", problem.object, problem.detail));
        }
    }
    let notices = damaged::load(repo)?;
    let damaged: HashSet<Id> = notices
        .iter()
        .flat_map(|(_, n)| n.packs.iter().map(|p| p.id))
        .collect();

    let index = repo.load_index()?;
    let elsewhere = index.without_packs(&damaged);
    let session = WriteSession::start(repo, "repair")?;
    let mut bad_packs: Vec<Id> = damaged.iter().copied().collect();
    bad_packs.sort();
    for pack_id in &bad_packs {
        let Some(blobs) = index.pack(pack_id) else {
            continue;
        };
        let name = pack::pack_name(pack_id);
        let bytes = match repo.storage().read(&name) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.is_damage() => None,
            Err(e) => return Err(e.into()),
        };
        for blob in blobs.iter().filter(|b| !elsewhere.contains(&b.id)) {
            let sealed = bytes.as_deref().and_then(|bytes| {
                let start = usize::try_from(blob.offset).ok()?;
                bytes.get(start..start.checked_add(blob.length as usize)?)
            });
            let raw = sealed.and_then(|sealed| {
                repo.open_blob(&name, &blob.id, blob.kind, blob.raw_length, sealed)
                    .ok()
            });
            match raw {
                Some(raw) => {
                    session.store_blob(blob.kind, raw)?;
                    report.salvaged_blobs += 1;
                }
                None => report.lost_blobs += 1,
            }
        }
    }
    // The salvaged blobs are indexed before the damaged packs are unlisted.
    let finished = session.finish()?;
    report.stored_bytes = finished.stats.stored_bytes;
    finished.release()?;
    drop_from_index(repo, &damaged)?;
    for id in &bad_packs {
        delete_if_present(repo, &pack::pack_name(id))?;
        report.dropped_packs.push(pack::pack_name(id));
    }
    for (name, _) in &notices {
        delete_if_present(repo, name)?;
    }

    // What is still missing: named per snapshot, for a backup of the sources (or a
    // repair from another copy) to put back.
    let after = check(repo, &CheckOptions::default())?;
    let mut missing: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for problem in &after.problems {
        for snapshot in &problem.snapshots {
            missing
                .entry(snapshot.clone())
                .or_default()
                .push(format!("{}: {}", problem.object, problem.detail));
        }
    }
    for (snapshot, problems) in missing {
        report.unrepairable.push((
            snapshot[..8.min(snapshot.len())].to_string(),
            format!(
                "{} (a backup of its sources stores this again if they still hold the data; or `lifeboat repair --from` another copy)",
                problems.join("; ")
            ),
        ));
    }
    Ok(report)
}
