//! Repairing one repository from another: damaged or missing packs are dropped, and the
//! blobs they held are stored again from the other repository's copy of each affected
//! snapshot (found by lineage: `lifeboat copy` made one from the other).
//!
//! The mapped tree must come out identical to the damaged repository's own tree id,
//! which proves the other copy holds exactly the same content; a snapshot without such a
//! copy is reported as not repairable, never patched with other data.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::check::{check, CheckOptions};
use crate::copy::{lineage, Mapper};
use crate::error::{RepoError, Result};
use crate::id::Id;
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
}

pub fn repair(damaged: &Repository, from: &Repository) -> Result<RepairReport> {
    let mut report = RepairReport::default();
    let found = check(
        damaged,
        &CheckOptions {
            read_data_percent: Some(100.0),
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
