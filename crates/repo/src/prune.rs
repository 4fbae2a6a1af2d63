//! Garbage collection that never deletes what a backup running at the same time needs.
//!
//! Two phases, each done by some run of `prune` (one run does phase 1 and then phase 2 for
//! every condemnation that is ripe, its own included):
//!
//! 1. **Condemn.** Under an exclusive lock, find the packs no snapshot needs, and copy the
//!    live blobs of mostly unused packs into new packs (repack), condemning the old ones.
//!    Store a `condemned` notice naming those packs; then list the live shared locks and
//!    store an `armed` notice naming their sessions.
//! 2. **Delete.** A condemnation is ripe when every session its armed notice names has
//!    ended (and the grace period has passed). Then list the snapshots again, spare any
//!    condemned pack holding a blob that a snapshot needs and that no surviving pack holds,
//!    drop the rest from the index files, delete them, and delete the notices.
//!
//! Why no backup loses a blob: a backup's session writes its lock before it loads the index
//! and the notices, and never deduplicates against a condemned pack. If its lock was
//! written before the armed notice's listing, phase 2 waits for it to end; otherwise it
//! loaded the notices after the condemnation was stored and never refers to those packs.
//! A session stores its snapshot before it removes its lock, and phase 2 lists snapshots
//! after it lists locks, so every snapshot of a waited-for session is seen.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::crypto::ObjectKind;
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::index::{IndexFile, IndexedPack, MasterIndex};
use crate::lock::{live_records, LiveLock, Lock};
use crate::pack::{self, expected_pack_size, PackBuilder};
use crate::reachable::{all_snapshots, Reachable};
use crate::repository::Repository;

const NOTICES: &str = "prune";

/// A prune notice (`prune/<id>`), sealed JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// These packs are garbage as of `created`; sessions must not refer to them.
    Condemned {
        created: chrono::DateTime<chrono::Utc>,
        packs: Vec<Id>,
    },
    /// The condemnation `condemned` (a notice id) may be carried out once the sessions in
    /// `waits_for` (lock session ids) have ended.
    Armed {
        created: chrono::DateTime<chrono::Utc>,
        condemned: Id,
        waits_for: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub dry_run: bool,
    /// Repack partly used packs until the unused bytes left are at most this share of the
    /// used bytes (restic's `--max-unused`).
    pub max_unused_percent: f64,
    /// How old a condemnation must be before it is carried out, on top of the waits.
    pub grace: chrono::Duration,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            dry_run: false,
            max_unused_percent: 5.0,
            grace: chrono::Duration::zero(),
        }
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct PruneReport {
    pub snapshots: usize,
    pub packs: usize,
    /// Bytes of packs that snapshots need, and of packs that hold nothing they need.
    pub used_bytes: u64,
    pub unused_bytes: u64,
    pub condemned_packs: usize,
    pub condemned_bytes: u64,
    pub repacked_packs: usize,
    pub repacked_blobs: usize,
    /// Bytes written into new packs by repacking.
    pub repack_written_bytes: u64,
    pub deleted_packs: usize,
    pub freed_bytes: u64,
    /// Condemned packs kept because a snapshot written meanwhile needs them.
    pub spared_packs: usize,
    /// Condemned packs still waiting for sessions (or the grace period).
    pub pending_packs: usize,
    pub pending_bytes: u64,
    pub waiting_for: Vec<String>,
    /// Packs that no index listed (a backup died before its index, or an index file was
    /// damaged), indexed again from their headers.
    pub reindexed_packs: usize,
    /// Packs that no index listed and whose header cannot be read: condemned (and
    /// counted in `condemned_packs`), so they go by the same rules as unused packs.
    pub damaged_unlisted_packs: usize,
    /// Index files that could not be read, removed once every pack was indexed again.
    pub removed_index_files: Vec<String>,
    /// Temporary files that interrupted writes left in a local repository's `.tmp/`.
    pub removed_temp_files: usize,
    pub removed_temp_bytes: u64,
    /// Condemned packs that S3 Object Lock still holds (or an index file listing them):
    /// they stay condemned and a prune after `locked_until` deletes them.
    pub locked_packs: usize,
    pub locked_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Objects still needed whose lock was renewed for another period.
    pub renewed_locks: usize,
}

/// How long a temporary file must have been left untouched before prune removes it (on
/// top of `--grace`): a write in progress touches its file all the time, and a holder
/// that stopped writing for a whole lease has lost its lock anyway.
pub const TEMP_FILE_GRACE: std::time::Duration = crate::lock::LEASE;

/// Index files written by prune list at most this many packs, as a session's do, so
/// that none comes near the size readers accept.
const PACKS_PER_INDEX: usize = 16;

/// The packs that sessions must not refer to: every pack of every condemned notice.
/// A notice that cannot be read is an error, since its packs might be deleted under a
/// backup that used them.
pub fn condemned_packs(repo: &Repository) -> Result<HashSet<Id>> {
    Ok(packs_of(&load_notices(repo)?))
}

fn packs_of(notices: &[(Id, Notice)]) -> HashSet<Id> {
    notices
        .iter()
        .filter_map(|(_, notice)| match notice {
            Notice::Condemned { packs, .. } => Some(packs),
            Notice::Armed { .. } => None,
        })
        .flatten()
        .copied()
        .collect()
}

fn load_notices(repo: &Repository) -> Result<Vec<(Id, Notice)>> {
    let mut notices = Vec::new();
    for object in repo.storage().list(NOTICES)? {
        let id = Id::from_object_name(&object.name)
            .ok_or_else(|| RepoError::damaged(&object.name, "not a prune notice name"))?;
        let notice = repo
            .load_json::<Notice>(ObjectKind::PruneNotice, &object.name)
            .map_err(|e| match e {
                RepoError::Storage(e) if !e.is_damage() => RepoError::Storage(e),
                e => RepoError::Invalid(format!(
                    "the prune notice {} cannot be read ({e}); backups cannot tell which packs are being deleted",
                    object.name
                )),
            })?;
        notices.push((id, notice));
    }
    Ok(notices)
}

fn notice_name(id: &Id) -> String {
    format!("{NOTICES}/{id}")
}

/// Sessions that may refer to blobs: live shared locks other than replicators' stream
/// leases (segments hold no blobs; a replicator's base backups take their own locks).
fn blob_sessions(live: &[LiveLock], own: &str) -> Vec<LiveLock> {
    live.iter()
        .filter(|l| !l.record.exclusive && !l.is_stream_lease() && l.session() != own)
        .cloned()
        .collect()
}

pub fn prune(repo: &Repository, options: &PruneOptions) -> Result<PruneReport> {
    let lock = match options.dry_run {
        true => None,
        false => Some(Lock::acquire_exclusive(repo, "prune")?),
    };
    let own = lock
        .as_ref()
        .map(|l| l.session().to_string())
        .unwrap_or_default();
    let mut report = PruneReport::default();

    remove_stale_temp_files(repo, options, &mut report)?;

    // Snapshots before the index: a snapshot is stored only after its index files, so an
    // index loaded afterwards lists every blob a listed snapshot refers to.
    let snapshots = all_snapshots(repo)?;
    let (mut index, unreadable_index_files) = repo.load_index_files()?;
    let mut notices = load_notices(repo)?;
    let mut pending = packs_of(&notices);
    // A damaged pack never counts as the copy of a blob to keep; `repair` removes it.
    pending.extend(crate::check::damaged::damaged_packs(repo)?.into_keys());
    let damaged_unlisted = adopt_unlisted_packs(
        repo,
        options,
        &mut index,
        &pending,
        &unreadable_index_files,
        &mut report,
    )?;
    // Trees are read from intact copies where a damaged pack holds one too.
    let index = crate::check::damaged::prefer_intact_copies(repo, index)?;
    let mut reachable = Reachable::default();
    reachable.walk(repo, &index, &snapshots)?;
    report.snapshots = snapshots.len();
    report.packs = index.packs().count();

    let usage = pack_usage(&index, &reachable, &pending);
    let mut condemn: Vec<Id> = Vec::new();
    let mut partly_used: Vec<&PackUsage> = Vec::new();
    for usage in &usage {
        report.used_bytes += usage.used;
        if usage.keeps.is_empty() {
            report.unused_bytes += usage.size;
            condemn.push(usage.pack);
            report.condemned_bytes += usage.size;
        } else if usage.unused > 0 {
            report.unused_bytes += usage.unused;
            partly_used.push(usage);
        }
    }
    // Unreadable packs that no index lists hold nothing anyone can use; they go by the
    // same rules as unused packs (waits and grace), so a pack a backup is still writing
    // is never among them: it is complete once visible.
    for (pack, object) in &damaged_unlisted {
        condemn.push(*pack);
        report.condemned_bytes += object.size;
        report.unused_bytes += object.size;
    }
    report.condemned_packs = condemn.len();

    let to_repack = choose_repacks(&mut partly_used, &report, options.max_unused_percent);
    if !options.dry_run && !to_repack.is_empty() {
        let (blobs, written) = repack(repo, &index, &to_repack)?;
        report.repacked_blobs = blobs;
        report.repack_written_bytes = written;
    }
    report.repacked_packs = to_repack.len();
    condemn.extend(to_repack.iter().map(|u| u.pack));
    report.condemned_bytes += to_repack.iter().map(|u| u.size).sum::<u64>();

    if options.dry_run {
        return Ok(report);
    }
    if !condemn.is_empty() {
        condemn.sort();
        let notice = Notice::Condemned {
            created: chrono::Utc::now(),
            packs: condemn,
        };
        let id = repo.save_json(ObjectKind::PruneNotice, NOTICES, &notice)?;
        crate::fault::point("prune-condemned");
        notices.push((id, notice));
    }
    arm(repo, &own, &mut notices)?;
    crate::fault::point("prune-armed");

    carry_out(repo, options, &own, &notices, &mut reachable, &mut report)?;
    report.renewed_locks = renew_object_locks(repo)?;
    if let Some(lock) = lock {
        lock.release()?;
    }
    Ok(report)
}

/// Removes the temporary files that interrupted local writes left behind (a kill, a full
/// disk): untouched for [`TEMP_FILE_GRACE`] plus `--grace`, and not written by a process
/// that holds a live lock here.
fn remove_stale_temp_files(
    repo: &Repository,
    options: &PruneOptions,
    report: &mut PruneReport,
) -> Result<()> {
    let files = repo.storage().temp_files()?;
    if files.is_empty() {
        return Ok(());
    }
    let live_pids: HashSet<u32> = live_records(repo)?
        .iter()
        .filter_map(LiveLock::local_pid)
        .chain([std::process::id()])
        .collect();
    let grace = TEMP_FILE_GRACE + options.grace.to_std().unwrap_or_default();
    let now = std::time::SystemTime::now();
    for file in files {
        let idle = now.duration_since(file.modified).unwrap_or_default();
        if idle < grace || file.writer_pid.is_some_and(|pid| live_pids.contains(&pid)) {
            continue;
        }
        if !options.dry_run {
            repo.storage().remove_temp_file(&file.name)?;
        }
        report.removed_temp_files += 1;
        report.removed_temp_bytes += file.size;
    }
    Ok(())
}

/// Indexes the packs that no index file lists (from their headers) and stores index files
/// for them, then removes the index files that could not be read (every pack they could
/// have listed is indexed now). Returns the unlisted packs whose header is unreadable.
/// Condemned packs are left alone: an interrupted prune may have unlisted them already.
fn adopt_unlisted_packs(
    repo: &Repository,
    options: &PruneOptions,
    index: &mut MasterIndex,
    condemned: &HashSet<Id>,
    unreadable_index_files: &[String],
    report: &mut PruneReport,
) -> Result<Vec<(Id, lifeboat_storage::ObjectInfo)>> {
    let (adopted, damaged) = repo.index_unlisted_packs(index, condemned)?;
    report.reindexed_packs = adopted.len();
    report.damaged_unlisted_packs = damaged.len();
    if options.dry_run {
        report.removed_index_files = unreadable_index_files.to_vec();
        return Ok(damaged);
    }
    for packs in adopted.chunks(PACKS_PER_INDEX) {
        let file = IndexFile {
            packs: packs.to_vec(),
        };
        repo.save_json(ObjectKind::Index, "index", &file)?;
    }
    // Only after the new index files are stored: no readable pack is ever unlisted.
    for name in unreadable_index_files {
        match delete_if_present(repo, name) {
            // Still under S3 Object Lock: it lists nothing usable, a later prune removes it.
            Err(RepoError::Storage(lifeboat_storage::StorageError::Locked { .. })) => continue,
            other => other?,
        }
        report.removed_index_files.push(name.clone());
    }
    Ok(damaged)
}

/// Writes an armed notice for every condemnation without one, naming the sessions that
/// are live now (listed after the condemnation was stored).
fn arm(repo: &Repository, own: &str, notices: &mut Vec<(Id, Notice)>) -> Result<()> {
    let armed: HashSet<Id> = notices
        .iter()
        .filter_map(|(_, n)| match n {
            Notice::Armed { condemned, .. } => Some(*condemned),
            _ => None,
        })
        .collect();
    let unarmed: Vec<Id> = notices
        .iter()
        .filter(|(id, n)| matches!(n, Notice::Condemned { .. }) && !armed.contains(id))
        .map(|(id, _)| *id)
        .collect();
    if unarmed.is_empty() {
        return Ok(());
    }
    let live = live_records(repo)?;
    let waits_for: Vec<String> = blob_sessions(&live, own)
        .iter()
        .map(|l| l.session().to_string())
        .collect();
    for condemned in unarmed {
        let notice = Notice::Armed {
            created: chrono::Utc::now(),
            condemned,
            waits_for: waits_for.clone(),
        };
        let id = repo.save_json(ObjectKind::PruneNotice, NOTICES, &notice)?;
        notices.push((id, notice));
    }
    Ok(())
}

/// Phase 2: deletes the packs of every ripe condemnation that no snapshot needs.
fn carry_out(
    repo: &Repository,
    options: &PruneOptions,
    own: &str,
    notices: &[(Id, Notice)],
    reachable: &mut Reachable,
    report: &mut PruneReport,
) -> Result<()> {
    let live = blob_sessions(&live_records(repo)?, own);
    let live_sessions: HashMap<&str, &LiveLock> = live.iter().map(|l| (l.session(), l)).collect();
    let condemnations: HashMap<Id, (&chrono::DateTime<chrono::Utc>, &Vec<Id>)> = notices
        .iter()
        .filter_map(|(id, n)| match n {
            Notice::Condemned { created, packs } => Some((*id, (created, packs))),
            _ => None,
        })
        .collect();
    let now = chrono::Utc::now();
    let mut ripe_notices: Vec<Id> = Vec::new();
    let mut ripe_packs: Vec<Id> = Vec::new();
    let mut waiting: HashSet<String> = HashSet::new();
    let mut unripe_packs: HashSet<Id> = HashSet::new();
    for (armed_id, notice) in notices {
        let Notice::Armed {
            condemned,
            waits_for,
            ..
        } = notice
        else {
            continue;
        };
        let Some((created, packs)) = condemnations.get(condemned) else {
            // The condemnation is gone (a crash after deleting it): the armed notice is
            // all that is left of a finished job.
            ripe_notices.push(*armed_id);
            continue;
        };
        let blockers: Vec<&&LiveLock> = waits_for
            .iter()
            .filter_map(|s| live_sessions.get(s.as_str()))
            .collect();
        if blockers.is_empty() && now - **created >= options.grace {
            ripe_notices.extend([*armed_id, *condemned]);
            ripe_packs.extend(packs.iter().copied());
        } else {
            waiting.extend(blockers.iter().map(|l| l.record.describe()));
            unripe_packs.extend(packs.iter().copied());
        }
    }
    report.waiting_for = waiting.into_iter().collect();
    report.waiting_for.sort();

    // Listed after the locks: every snapshot of a session that has ended is here; the
    // index after the snapshots, so it lists every blob they refer to.
    let snapshots = all_snapshots(repo)?;
    let index = repo.load_index()?;
    for pack in &unripe_packs {
        report.pending_packs += 1;
        report.pending_bytes += index.pack(pack).map_or(0, |b| expected_pack_size(b));
    }
    if ripe_notices.is_empty() {
        return Ok(());
    }
    reachable.walk(repo, &index, &snapshots)?;

    ripe_packs.sort();
    ripe_packs.dedup();
    let ripe: HashSet<Id> = ripe_packs.iter().copied().collect();
    let mut surviving: HashSet<Id> = index
        .packs()
        .filter(|(id, _)| !ripe.contains(id))
        .flat_map(|(_, blobs)| blobs.iter().map(|b| b.id))
        .collect();
    let mut doomed: HashSet<Id> = HashSet::new();
    for pack in &ripe_packs {
        let blobs = index.pack(pack).map(Vec::as_slice).unwrap_or_default();
        let needed = blobs
            .iter()
            .any(|b| reachable.contains(&b.id) && !surviving.contains(&b.id));
        if needed {
            report.spared_packs += 1;
            surviving.extend(blobs.iter().map(|b| b.id));
        } else {
            report.freed_bytes += expected_pack_size(blobs);
            doomed.insert(*pack);
        }
    }

    let held = held_by_object_lock(repo, &doomed)?;
    for (pack, until) in &held {
        doomed.remove(pack);
        report.freed_bytes = report
            .freed_bytes
            .saturating_sub(index.pack(pack).map_or(0, |b| expected_pack_size(b)));
        report.locked_packs += 1;
        report.locked_until = report.locked_until.max(Some(*until));
    }
    if !held.is_empty() {
        // The condemnations stay until every pack they name is gone; the next prune
        // finds them ripe and deletes what has expired by then.
        ripe_notices.clear();
    }

    drop_from_index(repo, &doomed)?;
    crate::fault::point("prune-index-rewritten");
    for pack in &doomed {
        delete_if_present(repo, &pack::pack_name(pack))?;
        report.deleted_packs += 1;
        crate::fault::point("prune-pack-deleted");
    }
    for notice in &ripe_notices {
        delete_if_present(repo, &notice_name(notice))?;
    }
    Ok(())
}

/// Under S3 Object Lock: the doomed packs that cannot be deleted yet, with the time they
/// can. A pack goes only together with every index file that lists it (an index must never
/// list a pack that is gone), so a retained index file holds its doomed packs too.
fn held_by_object_lock(
    repo: &Repository,
    doomed: &HashSet<Id>,
) -> Result<HashMap<Id, chrono::DateTime<chrono::Utc>>> {
    if repo.storage().object_lock().is_none() || doomed.is_empty() {
        return Ok(HashMap::new());
    }
    let names: Vec<String> = doomed.iter().map(pack::pack_name).collect();
    let mut held: HashMap<Id, chrono::DateTime<chrono::Utc>> = repo
        .storage()
        .held_objects(&names)?
        .into_iter()
        .filter_map(|(name, until)| Some((Id::from_object_name(&name)?, until)))
        .collect();
    let listing = index_files_listing(repo, doomed)?;
    let names: Vec<String> = listing.iter().map(|(name, _)| name.clone()).collect();
    let index_held = repo.storage().held_objects(&names)?;
    for (name, packs) in &listing {
        if let Some(until) = index_held.get(name) {
            for pack in packs {
                let entry = held.entry(*pack).or_insert(*until);
                *entry = (*entry).max(*until);
            }
        }
    }
    Ok(held)
}

/// Index files that list any of `packs`, with the ones they list. Unreadable index files
/// list nothing anyone uses and are left out.
fn index_files_listing(repo: &Repository, packs: &HashSet<Id>) -> Result<Vec<(String, Vec<Id>)>> {
    let mut listing = Vec::new();
    for object in repo.storage().list("index")? {
        let file: IndexFile = match repo.load_json_listed(ObjectKind::Index, &object) {
            Ok(file) => file,
            Err(RepoError::Storage(e)) if !e.is_damage() => return Err(e.into()),
            Err(_) => continue,
        };
        let listed: Vec<Id> = file
            .packs
            .iter()
            .map(|p| p.id)
            .filter(|id| packs.contains(id))
            .collect();
        if !listed.is_empty() {
            listing.push((object.name, listed));
        }
    }
    Ok(listing)
}

/// Under S3 Object Lock: renews the lock of everything still needed, so that data older
/// than the period stays undeletable. Condemned packs, and index files that list them, are
/// left to expire: they are on their way out (a live pack in such an index file is listed
/// again by the rewrite that drops the condemned ones). Returns how many were renewed.
fn renew_object_locks(repo: &Repository) -> Result<usize> {
    if repo.storage().object_lock().is_none() {
        return Ok(0);
    }
    let condemned = condemned_packs(repo)?;
    let leaving: HashSet<String> = index_files_listing(repo, &condemned)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut names = vec!["config".to_string()];
    for dir in [
        "keys",
        "snapshots",
        "index",
        "data",
        "streams",
        "wal",
        "binlog",
        "drills",
    ] {
        for object in repo.storage().list(dir)? {
            let is_condemned = dir == "data"
                && Id::from_object_name(&object.name).is_some_and(|id| condemned.contains(&id));
            if !is_condemned && !leaving.contains(&object.name) {
                names.push(object.name);
            }
        }
    }
    Ok(repo.storage().extend_object_locks(&names)?)
}

/// Rewrites every index file that lists a doomed pack without it: the new file is stored
/// before the old one is deleted, so no live pack is ever unlisted.
pub(crate) fn drop_from_index(repo: &Repository, doomed: &HashSet<Id>) -> Result<()> {
    if doomed.is_empty() {
        return Ok(());
    }
    for object in repo.storage().list("index")? {
        let file: IndexFile = match repo.load_json_listed(ObjectKind::Index, &object) {
            Ok(file) => file,
            Err(RepoError::Storage(e)) if !e.is_damage() => return Err(e.into()),
            // Unreadable: it lists nothing anyone uses (the next prune removes it).
            Err(_) => continue,
        };
        if !file.packs.iter().any(|p| doomed.contains(&p.id)) {
            continue;
        }
        let kept: Vec<IndexedPack> = file
            .packs
            .into_iter()
            .filter(|p| !doomed.contains(&p.id))
            .collect();
        if !kept.is_empty() {
            repo.save_json(ObjectKind::Index, "index", &IndexFile { packs: kept })?;
        }
        delete_if_present(repo, &object.name)?;
    }
    Ok(())
}

pub(crate) fn delete_if_present(repo: &Repository, name: &str) -> Result<()> {
    match repo.storage().delete(name) {
        Err(e) if e.is_not_found() => Ok(()),
        other => Ok(other?),
    }
}

#[derive(Debug, Clone)]
struct PackUsage {
    pack: Id,
    size: u64,
    /// Stored bytes of the blobs this pack keeps for the snapshots, and of the others.
    used: u64,
    unused: u64,
    keeps: Vec<Id>,
}

/// How much of each pack not yet condemned the snapshots use. A blob stored in several
/// packs is counted in one (the first by pack id), so duplicates become garbage.
fn pack_usage(index: &MasterIndex, reachable: &Reachable, pending: &HashSet<Id>) -> Vec<PackUsage> {
    let mut packs: Vec<(&Id, &Vec<pack::PackedBlob>)> = index
        .packs()
        .filter(|(id, _)| !pending.contains(id))
        .collect();
    packs.sort_by_key(|(id, _)| **id);
    let mut kept: HashSet<Id> = HashSet::new();
    packs
        .into_iter()
        .map(|(id, blobs)| {
            let keeps: Vec<Id> = blobs
                .iter()
                .filter(|b| reachable.contains(&b.id) && kept.insert(b.id))
                .map(|b| b.id)
                .collect();
            let keep_set: HashSet<&Id> = keeps.iter().collect();
            let (kept_blobs, other_blobs): (Vec<&pack::PackedBlob>, Vec<_>) =
                blobs.iter().partition(|b| keep_set.contains(&b.id));
            PackUsage {
                pack: *id,
                size: expected_pack_size(blobs),
                used: kept_blobs.iter().map(|b| b.length as u64).sum(),
                unused: other_blobs.iter().map(|b| b.length as u64).sum(),
                keeps,
            }
        })
        .collect()
}

/// The partly used packs to repack, most wasteful first, until what stays unused is
/// within the allowance.
fn choose_repacks(
    partly_used: &mut [&PackUsage],
    report: &PruneReport,
    max_unused_percent: f64,
) -> Vec<PackUsage> {
    partly_used.sort_by_key(|u| std::cmp::Reverse(u.unused));
    let allowance = (report.used_bytes as f64 * max_unused_percent / 100.0) as u64;
    let mut unused_left: u64 = partly_used.iter().map(|u| u.unused).sum();
    let mut chosen = Vec::new();
    for usage in partly_used.iter() {
        if unused_left <= allowance {
            break;
        }
        unused_left -= usage.unused;
        chosen.push((*usage).clone());
    }
    chosen
}

/// Copies the blobs the snapshots need out of `packs` into new packs (sealed bytes as
/// they are, each checked first), then indexes the new packs. Returns blobs and bytes
/// written.
fn repack(repo: &Repository, index: &MasterIndex, packs: &[PackUsage]) -> Result<(usize, u64)> {
    let target = repo.config().pack_size as usize;
    let mut builder = PackBuilder::new(target);
    let mut written: Vec<IndexedPack> = Vec::new();
    let (mut blobs, mut bytes) = (0usize, 0u64);
    let flush = |builder: PackBuilder, written: &mut Vec<IndexedPack>| -> Result<u64> {
        let (id, data, packed) = builder.finish(repo.key());
        let size = data.len() as u64;
        repo.storage().write(&pack::pack_name(&id), data)?;
        written.push(IndexedPack { id, blobs: packed });
        Ok(size)
    };
    for usage in packs {
        let name = pack::pack_name(&usage.pack);
        let data = repo.storage().read(&name)?;
        crate::repository::check_name(&name, &data)?;
        let listed = index.pack(&usage.pack).expect("pack is indexed");
        let keep: HashSet<&Id> = usage.keeps.iter().collect();
        for blob in listed.iter().filter(|b| keep.contains(&b.id)) {
            let start = blob.offset as usize;
            let sealed = data
                .get(start..start + blob.length as usize)
                .ok_or_else(|| RepoError::damaged(&name, "shorter than its index entry"))?;
            repo.open_blob(&name, &blob.id, blob.kind, blob.raw_length, sealed)?;
            builder.add(blob.id, blob.kind, sealed, blob.raw_length as usize);
            blobs += 1;
            if builder.len() >= target {
                let full = std::mem::replace(&mut builder, PackBuilder::new(target));
                bytes += flush(full, &mut written)?;
            }
        }
    }
    if !builder.is_empty() {
        bytes += flush(builder, &mut written)?;
    }
    for packs in written.chunks(PACKS_PER_INDEX) {
        let file = IndexFile {
            packs: packs.to_vec(),
        };
        repo.save_json(ObjectKind::Index, "index", &file)?;
    }
    Ok((blobs, bytes))
}
