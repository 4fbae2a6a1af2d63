//! A writing session: deduplicate, compress, encrypt and pack blobs, upload packs, and
//! write index files, using every core.
//!
//! Data flows one way: the caller chunks and hashes (so blob ids are known at once and
//! duplicates are dropped before any work), worker threads compress and seal blobs into
//! packs, uploader threads store finished packs and then list them in index files.
//! Crash safety comes from the order: a pack is stored before any index names it, and
//! the caller writes a snapshot only after [`WriteSession::finish`] has stored every
//! index file. A session killed part-way leaves complete packs behind; the next session
//! finds the ones no index lists and indexes them, so their data is reused.

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::crypto::ObjectKind;
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::index::{IndexFile, IndexedPack, MasterIndex};
use crate::lock::Lock;
use crate::pack::{self, BlobKind, PackBuilder, PackedBlob};
use crate::repository::{parallel_map, Repository};
use crate::snapshot::Snapshot;
use crate::tree::Tree;

/// Index files are written after this many packs, so an interrupted session leaves
/// most of its work indexed even before recovery.
const PACKS_PER_INDEX: usize = 16;

struct BlobJob {
    id: Id,
    kind: BlobKind,
    data: Vec<u8>,
    effort: Effort,
}

/// How hard to compress a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// The repository's `compression_level`.
    Default,
    /// zstd level -1 (or the repository's level, if lower), for data on the critical
    /// path of frequent backups: a database's changed pages. On the benchmark database's
    /// increment (53 MiB of pages in 256 KiB groups) level 1 stored 3% more than level 3
    /// and cut the backup's CPU time by 14%; level -1 stores 3% more again and compresses
    /// 35% faster than level 1 (`zstd -b1` vs `zstd -b --fast=1 -B256K`: 298 vs 403 MB/s
    /// on 2 busy cores; the backup's CPU time fell from 0.38 to 0.34 s). Litestream makes
    /// the same trade with LZ4 for its WAL segments.
    Fast,
}

/// The zstd level of [`Effort::Fast`].
const FAST_LEVEL: i32 = -1;

struct FinishedPack {
    id: Id,
    bytes: Vec<u8>,
    blobs: Vec<PackedBlob>,
}

#[derive(Default)]
struct Shared {
    error: Mutex<Option<RepoError>>,
    builder: Mutex<PackBuilder>,
    active_workers: std::sync::atomic::AtomicUsize,
    pending_index: Mutex<Vec<IndexedPack>>,
    new_blobs: AtomicU64,
    new_bytes: AtomicU64,
    stored_bytes: AtomicU64,
}

impl Shared {
    fn fail(&self, error: RepoError) {
        let mut slot = self.error.lock().expect("error slot");
        if slot.is_none() {
            *slot = Some(error);
        }
    }
    fn failed(&self) -> bool {
        self.error.lock().expect("error slot").is_some()
    }
}

/// Totals for one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub new_blobs: u64,
    /// Raw bytes of blobs that were new to the repository.
    pub new_bytes: u64,
    /// Bytes of packs written (compressed and sealed).
    pub stored_bytes: u64,
    pub recovered_packs: u64,
}

/// The blob ids of one stream of content, and its length.
#[derive(Debug, Clone, Default)]
pub struct StoredContent {
    pub ids: Vec<Id>,
    pub size: u64,
}

pub struct WriteSession {
    repo: Repository,
    index: Arc<MasterIndex>,
    known: Mutex<HashSet<Id>>,
    jobs: Option<Sender<BlobJob>>,
    workers: Vec<JoinHandle<()>>,
    uploaders: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    recovered_packs: u64,
    lock: Option<Lock>,
    /// A dry run: blobs are cut, hashed and counted, never sealed or written.
    dry_run: bool,
}

impl WriteSession {
    /// A session that writes nothing (`backup --dry-run`): it reads the index, takes no
    /// lock, and counts what a real session would add; [`WriteSession::finish`] returns
    /// those counts and a [`FinishedSession`] that refuses to save a snapshot.
    pub fn dry_run(repo: &Repository) -> Result<WriteSession> {
        let mut excluded = crate::prune::condemned_packs(repo)?;
        excluded.extend(crate::check::damaged::damaged_packs(repo)?.into_keys());
        let index = repo.load_index()?.without_packs(&excluded);
        Ok(WriteSession {
            repo: repo.clone(),
            index: Arc::new(index),
            known: Mutex::new(HashSet::new()),
            jobs: None,
            workers: Vec::new(),
            uploaders: Vec::new(),
            shared: Arc::new(Shared::default()),
            recovered_packs: 0,
            lock: None,
            dry_run: true,
        })
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Starts a session: takes a shared lock, loads the index and indexes packs that an
    /// interrupted session left unindexed.
    pub fn start(repo: &Repository, purpose: &str) -> Result<WriteSession> {
        // The lock comes first: `prune` waits for sessions whose lock it saw, and every
        // other session reads its notices below (see prune.rs).
        let lock = Lock::acquire_shared(repo, purpose)?;
        let mut index = repo.load_index()?;
        // Packs being deleted, and packs known damaged: blobs only they hold count as
        // absent, so this session stores them again (see check/damaged.rs).
        let mut excluded = crate::prune::condemned_packs(repo)?;
        excluded.extend(crate::check::damaged::damaged_packs(repo)?.into_keys());
        let recovered = recover_unindexed_packs(repo, &mut index, &excluded)?;
        let index = index.without_packs(&excluded);
        crate::fault::point("session-started");
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        let shared = Arc::new(Shared::default());
        shared.active_workers.store(threads, Ordering::SeqCst);
        let (job_tx, job_rx) = bounded::<BlobJob>(threads * 2);
        let (pack_tx, pack_rx) = bounded::<FinishedPack>(0);
        let workers = (0..threads)
            .map(|_| {
                let (repo, rx, tx, shared) = (
                    repo.clone(),
                    job_rx.clone(),
                    pack_tx.clone(),
                    shared.clone(),
                );
                std::thread::spawn(move || seal_worker(repo, rx, tx, shared))
            })
            .collect();
        drop(pack_tx);
        // Local disks gain nothing from a second writer; object stores hide latency with it.
        let upload_threads = if repo.storage().is_local() { 1 } else { 2 };
        let uploaders = (0..upload_threads)
            .map(|_| {
                let (repo, rx, shared) = (repo.clone(), pack_rx.clone(), shared.clone());
                std::thread::spawn(move || upload_worker(repo, rx, shared))
            })
            .collect();
        Ok(WriteSession {
            repo: repo.clone(),
            index: Arc::new(index),
            known: Mutex::new(HashSet::new()),
            jobs: Some(job_tx),
            workers,
            uploaders,
            shared,
            recovered_packs: recovered,
            lock: Some(lock),
            dry_run: false,
        })
    }

    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// The index as it was when the session started (plus recovered packs).
    pub fn index(&self) -> &MasterIndex {
        &self.index
    }

    fn check_failed(&self) -> Result<()> {
        if let Some(e) = self.shared.error.lock().expect("error slot").take() {
            return Err(e);
        }
        Ok(())
    }

    /// Stores a blob unless the repository (or this session) already has it.
    pub fn store_blob(&self, kind: BlobKind, data: Vec<u8>) -> Result<Id> {
        self.store_blob_with(kind, data, Effort::Default)
    }

    /// [`WriteSession::store_blob`], compressed with the given effort. The blob's id
    /// does not depend on it: the same data stored with either effort deduplicates.
    pub fn store_blob_with(&self, kind: BlobKind, data: Vec<u8>, effort: Effort) -> Result<Id> {
        let id = self.repo.key().blob_id(&data);
        if self.index.contains(&id) || !self.known.lock().expect("known set").insert(id) {
            return Ok(id);
        }
        self.shared.new_blobs.fetch_add(1, Ordering::Relaxed);
        self.shared
            .new_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if self.dry_run {
            return Ok(id);
        }
        let sent = self.jobs.as_ref().expect("session open").send(BlobJob {
            id,
            kind,
            data,
            effort,
        });
        if sent.is_err() || self.shared.failed() {
            self.check_failed()?;
            return Err(RepoError::Invalid("the write session stopped".into()));
        }
        Ok(id)
    }

    /// Chunks a stream and stores its chunks as data blobs. `source` names the stream in
    /// errors; `progress` hears the number of bytes read after each chunk.
    pub fn store_reader<R: Read>(
        &self,
        reader: R,
        source: &str,
        mut progress: impl FnMut(u64),
    ) -> Result<StoredContent> {
        let config = self.repo.config();
        let mut content = StoredContent::default();
        for chunk in crate::chunker::chunks(reader, &config.chunker, self.repo.key().chunker_seed())
        {
            let (_, bytes) = chunk.map_err(|e| RepoError::io(source, e))?;
            let len = bytes.len() as u64;
            content.ids.push(self.store_blob(BlobKind::Data, bytes)?);
            content.size += len;
            progress(len);
        }
        Ok(content)
    }

    pub fn store_tree(&self, tree: &Tree) -> Result<Id> {
        self.store_blob(BlobKind::Tree, tree.to_bytes())
    }

    /// Seals and uploads everything still queued and writes the last index file. Only
    /// after this returns `Ok` may a snapshot refer to the session's blobs; the returned
    /// [`FinishedSession`] keeps the lock until that snapshot is stored.
    pub fn finish(mut self) -> Result<FinishedSession> {
        self.jobs.take();
        for handle in self.workers.drain(..) {
            handle
                .join()
                .map_err(|_| RepoError::Invalid("a sealing thread panicked".into()))?;
        }
        for handle in self.uploaders.drain(..) {
            handle
                .join()
                .map_err(|_| RepoError::Invalid("an upload thread panicked".into()))?;
        }
        self.check_failed()?;
        let remaining =
            std::mem::take(&mut *self.shared.pending_index.lock().expect("pending index"));
        if !remaining.is_empty() {
            self.repo
                .save_json(ObjectKind::Index, "index", &IndexFile { packs: remaining })?;
            crate::fault::point("index-stored");
        }
        Ok(FinishedSession {
            repo: self.repo.clone(),
            lock: self.lock.take(),
            dry_run: self.dry_run,
            stats: SessionStats {
                new_blobs: self.shared.new_blobs.load(Ordering::Relaxed),
                new_bytes: self.shared.new_bytes.load(Ordering::Relaxed),
                stored_bytes: self.shared.stored_bytes.load(Ordering::Relaxed),
                recovered_packs: self.recovered_packs,
            },
        })
    }
}

/// A session whose data and index are stored, still holding its lock so that garbage
/// collection cannot remove the new packs before a snapshot refers to them.
pub struct FinishedSession {
    repo: Repository,
    lock: Option<Lock>,
    dry_run: bool,
    pub stats: SessionStats,
}

impl FinishedSession {
    /// Stores one of several snapshots of this session; the lock stays held until
    /// [`FinishedSession::release`].
    pub fn store_snapshot(&self, snapshot: &Snapshot) -> Result<Id> {
        self.refuse_dry_run()?;
        self.repo.save_snapshot(snapshot)
    }

    fn refuse_dry_run(&self) -> Result<()> {
        if self.dry_run {
            return Err(RepoError::Invalid(
                "a dry run stored no data; its snapshot cannot be saved".into(),
            ));
        }
        Ok(())
    }

    pub fn release(mut self) -> Result<()> {
        if let Some(lock) = self.lock.take() {
            lock.release()?;
        }
        Ok(())
    }

    /// Completes `draft` with this session's stats, stores it and releases the lock.
    pub fn save(self, draft: crate::snapshot::SnapshotDraft) -> Result<(Id, Snapshot)> {
        let snapshot = draft.complete(&self.stats);
        let id = self.save_snapshot(&snapshot)?;
        Ok((id, snapshot))
    }

    /// Stores the snapshot, then releases the lock.
    pub fn save_snapshot(mut self, snapshot: &Snapshot) -> Result<Id> {
        self.refuse_dry_run()?;
        let id = self.repo.save_snapshot(snapshot)?;
        if let Some(lock) = self.lock.take() {
            lock.release()?;
        }
        Ok(id)
    }
}

impl Drop for WriteSession {
    fn drop(&mut self) {
        // An abandoned session: stop the threads; stored packs stay for the next session
        // to recover, and no snapshot refers to anything.
        self.jobs.take();
        self.shared
            .fail(RepoError::Invalid("session abandoned".into()));
        for handle in self.workers.drain(..).chain(self.uploaders.drain(..)) {
            let _ = handle.join();
        }
    }
}

/// Workers seal blobs in parallel but fill one shared pack, so memory holds one pack being
/// filled (plus the one being uploaded) whatever the number of cores, and a small backup
/// writes one pack, not one per core. The last worker to finish sends the partial pack.
fn seal_worker(
    repo: Repository,
    jobs: Receiver<BlobJob>,
    packs: Sender<FinishedPack>,
    shared: Arc<Shared>,
) {
    let target = repo.config().pack_size as usize;
    let level = repo.config().compression_level;
    let mut compressor = zstd::bulk::Compressor::new(level).ok();
    let mut fast_compressor = zstd::bulk::Compressor::new(level.min(FAST_LEVEL)).ok();
    for job in jobs.iter() {
        if shared.failed() {
            continue;
        }
        let sealed = repo.key().seal_with(
            job.kind.object_kind(),
            &job.data,
            match job.effort {
                Effort::Default => compressor.as_mut(),
                Effort::Fast => fast_compressor.as_mut(),
            },
        );
        let full = {
            let mut builder = shared.builder.lock().expect("pack builder");
            builder.add(job.id, job.kind, &sealed, job.data.len());
            // Sized up front: growing an 8 MiB buffer by doubling copies it twice over.
            (builder.len() >= target)
                .then(|| std::mem::replace(&mut *builder, PackBuilder::new(target + 1024 * 1024)))
        };
        if let Some(full) = full {
            let (id, bytes, blobs) = full.finish(repo.key());
            if packs.send(FinishedPack { id, bytes, blobs }).is_err() {
                break;
            }
        }
    }
    if shared.active_workers.fetch_sub(1, Ordering::SeqCst) == 1 && !shared.failed() {
        let last = std::mem::take(&mut *shared.builder.lock().expect("pack builder"));
        if !last.is_empty() {
            let (id, bytes, blobs) = last.finish(repo.key());
            let _ = packs.send(FinishedPack { id, bytes, blobs });
        }
    }
}

fn upload_worker(repo: Repository, packs: Receiver<FinishedPack>, shared: Arc<Shared>) {
    for pack in packs.iter() {
        if shared.failed() {
            continue;
        }
        let size = pack.bytes.len() as u64;
        if let Err(e) = repo.storage().write(&pack::pack_name(&pack.id), pack.bytes) {
            shared.fail(e.into());
            continue;
        }
        shared.stored_bytes.fetch_add(size, Ordering::Relaxed);
        crate::fault::point("pack-stored");
        let full = {
            let mut pending = shared.pending_index.lock().expect("pending index");
            pending.push(IndexedPack {
                id: pack.id,
                blobs: pack.blobs,
            });
            (pending.len() >= PACKS_PER_INDEX).then(|| std::mem::take(&mut *pending))
        };
        if let Some(packs) = full {
            match repo.save_json(ObjectKind::Index, "index", &IndexFile { packs }) {
                Ok(_) => crate::fault::point("index-stored"),
                Err(e) => shared.fail(e),
            }
        }
    }
}

/// Finds packs that no index file lists (left by an interrupted or concurrent session),
/// reads their headers and writes an index file for them. Packs whose header cannot be
/// read are left alone for `verify` to report; condemned packs (which an interrupted
/// prune may have unlisted already) are left for `prune` to delete.
pub fn recover_unindexed_packs(
    repo: &Repository,
    index: &mut MasterIndex,
    condemned: &HashSet<Id>,
) -> Result<u64> {
    let orphans: Vec<_> = repo
        .storage()
        .list("data")?
        .into_iter()
        .filter_map(|o| pack::pack_id_from_name(&o.name).map(|id| (id, o)))
        .filter(|(id, _)| !index.has_pack(id) && !condemned.contains(id))
        .collect();
    if orphans.is_empty() {
        return Ok(0);
    }
    let recovered = parallel_map(&orphans, 8, |(id, object)| {
        Ok(read_pack_header(repo, id, &object.name, object.size)
            .map_err(|e| tracing::warn!("cannot index {}: {e}", object.name))
            .ok())
    })?;
    let packs: Vec<IndexedPack> = recovered.into_iter().flatten().collect();
    let count = packs.len() as u64;
    if !packs.is_empty() {
        let file = IndexFile { packs };
        repo.save_json(ObjectKind::Index, "index", &file)?;
        index.add_file(&file);
        tracing::info!("indexed {count} pack(s) left by an interrupted backup");
    }
    Ok(count)
}

/// Reads a pack's header from storage (two ranged reads).
pub fn read_pack_header(repo: &Repository, id: &Id, name: &str, size: u64) -> Result<IndexedPack> {
    if size < 4 {
        return Err(RepoError::damaged(name, "too short to be a pack"));
    }
    let len_bytes = repo.storage().read_range(name, size - 4, 4)?;
    let header_len = u32::from_le_bytes(len_bytes.as_slice().try_into().expect("4 bytes")) as u64;
    if header_len + 4 > pack::max_header_len(size) {
        return Err(RepoError::damaged(
            name,
            "pack header length is out of range",
        ));
    }
    let tail = repo
        .storage()
        .read_range(name, size - 4 - header_len, header_len + 4)?;
    let blobs =
        pack::parse_header(repo.key(), size, &tail).map_err(|e| RepoError::damaged(name, e))?;
    Ok(IndexedPack { id: *id, blobs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KdfParams;

    fn text(len: usize) -> Vec<u8> {
        // Compressible but not trivially: words from a small vocabulary, pseudo-random.
        let words = [
            "order", "paid", "shipped", "customer", "note", "1234", "box",
        ];
        let mut state = 7u64;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(words[(state >> 33) as usize % words.len()].as_bytes());
            out.extend_from_slice(format!(" {} ", state >> 50).as_bytes());
        }
        out.truncate(len);
        out
    }

    fn stored_bytes(repo: &Repository, data: &[u8], effort: Effort) -> (Id, u64, u64) {
        let session = WriteSession::start(repo, "test").unwrap();
        let id = session
            .store_blob_with(BlobKind::Data, data.to_vec(), effort)
            .unwrap();
        let stats = session.finish().unwrap().stats;
        (id, stats.new_blobs, stats.stored_bytes)
    }

    #[test]
    fn fast_effort_compresses_differently_and_keeps_the_blob_id() {
        let dir = tempfile::tempdir().unwrap();
        let fast_kdf = KdfParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        };
        let open = |name: &str| {
            let storage =
                lifeboat_storage::Storage::open(dir.path().join(name).to_str().unwrap()).unwrap();
            Repository::init(storage, b"pw", fast_kdf).unwrap()
        };
        let data = text(256 * 1024);
        let (fast_repo, default_repo) = (open("fast"), open("default"));
        let (fast_id, _, fast_size) = stored_bytes(&fast_repo, &data, Effort::Fast);
        let (_, _, default_size) = stored_bytes(&default_repo, &data, Effort::Default);
        // Level 1 and level 3 really differ (the effort reached the compressor).
        assert_ne!(fast_size, default_size);
        let index = fast_repo.load_index().unwrap();
        assert!(fast_repo.read_blob(&index, &fast_id).unwrap() == data);
        // The id names the content, not how it was compressed: stored again at the
        // default effort, it is a duplicate.
        let (again_id, new_blobs, _) = stored_bytes(&fast_repo, &data, Effort::Default);
        assert_eq!((again_id, new_blobs), (fast_id, 0));
    }

    /// Issue 20's suspicion: parallel writers storing the same chunk twice before either
    /// records it. Eight threads race to store the same 40 blobs (each thread in its own
    /// order) into one session; each blob must be stored once, whatever the interleaving.
    #[test]
    fn blobs_raced_from_many_threads_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = lifeboat_storage::Storage::open(dir.path().to_str().unwrap()).unwrap();
        let repo = Repository::init(
            storage,
            b"pw",
            KdfParams {
                memory_kib: 256,
                iterations: 1,
                parallelism: 1,
            },
        )
        .unwrap();
        let blobs: Vec<Vec<u8>> = (0..40u8)
            .map(|i| {
                let mut data = text(64 * 1024);
                data[0] = i;
                data
            })
            .collect();
        for round in 0..3 {
            let session = WriteSession::start(&repo, "race").unwrap();
            std::thread::scope(|scope| {
                for thread in 0..8usize {
                    let (session, blobs) = (&session, &blobs);
                    scope.spawn(move || {
                        for k in 0..blobs.len() {
                            let data = &blobs[(k * 7 + thread * 13 + round) % blobs.len()];
                            session.store_blob(BlobKind::Data, data.clone()).unwrap();
                        }
                    });
                }
            });
            let stats = session.finish().unwrap().stats;
            let expected_new = if round == 0 { 40 } else { 0 };
            assert_eq!(stats.new_blobs, expected_new, "round {round}");
        }
        let index = repo.load_index().unwrap();
        assert_eq!(index.blob_count(), 40, "each blob is in the index once");
        // And in the packs once: their bytes hold 40 compressed blobs, not 80 or 320.
        let packs: u64 = walk(&dir.path().join("data"));
        let one: u64 = blobs
            .iter()
            .map(|b| zstd::encode_all(&b[..], 3).unwrap().len() as u64)
            .sum();
        assert!(
            packs < one * 3 / 2,
            "packs hold {packs} bytes for {one} of blobs"
        );
    }

    fn walk(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| match e.file_type() {
                        Ok(t) if t.is_dir() => walk(&e.path()),
                        _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
}
