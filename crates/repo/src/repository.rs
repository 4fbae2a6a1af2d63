//! Opening, creating and reading a repository.

use std::sync::Arc;

use lifeboat_storage::{ObjectInfo, Storage};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{RepoConfig, FORMAT_VERSION};
use crate::crypto::{MasterKey, ObjectKind};
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::index::{IndexFile, MasterIndex};
use crate::keys::{KdfParams, KeyError, KeyFile, MAX_KEY_FILE_SIZE};
use crate::pack::BlobKind;
use crate::pagemap::PageMap;
use crate::snapshot::{Snapshot, StoredSnapshot, SNAPSHOT_VERSION};
use crate::snapshot_filter::SnapshotFilter;
use crate::tree::Tree;

/// An open repository: storage plus the unlocked master key. Cheap to clone.
#[derive(Clone)]
pub struct Repository {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Storage,
    key: MasterKey,
    config: RepoConfig,
    key_name: String,
}

/// A key slot as `lifeboat key list` shows it.
#[derive(Debug, Clone)]
pub struct KeySlot {
    pub id: String,
    pub file: KeyFile,
    pub current: bool,
}

/// A pack whose header cannot be read: its id and its listing.
pub type UnreadablePack = (Id, ObjectInfo);

impl Repository {
    /// Creates a repository. The config is written last: its presence is what makes a
    /// location a repository, so an interrupted `init` can simply be run again.
    pub fn init(storage: Storage, passphrase: &[u8], params: KdfParams) -> Result<Repository> {
        Repository::init_with(storage, passphrase, params, None)
    }

    /// [`Repository::init`], with every object locked for a period when `object_lock` is
    /// given. The store is asked first: a bucket without object lock is refused before
    /// anything is written, with the reason.
    pub fn init_with(
        storage: Storage,
        passphrase: &[u8],
        params: KdfParams,
        object_lock: Option<lifeboat_storage::LockPolicy>,
    ) -> Result<Repository> {
        if storage.exists("config")? {
            return Err(RepoError::AlreadyExists(storage.location().to_string()));
        }
        // A repository that lost its config still holds data that its own key opens; a new
        // key and config here would make it unreadable (and look like a working repository).
        let found = repository_objects(&storage)?;
        if !found.is_empty() {
            return Err(RepoError::ConfigMissing {
                location: storage.location().to_string(),
                found: found.join(", "),
                during_init: true,
            });
        }
        let key = MasterKey::generate();
        let mut config = RepoConfig::new();
        let storage = match object_lock {
            None => storage,
            Some(policy) => {
                let unavailable = |reason: String| RepoError::ObjectLockUnavailable {
                    location: storage.location().to_string(),
                    reason,
                };
                match storage.probe_object_lock()? {
                    lifeboat_storage::LockSupport::Enabled { .. } => {}
                    lifeboat_storage::LockSupport::NotEnabled => return Err(unavailable(
                        "the bucket was created without object lock (on most stores it can only be turned on when a bucket is created: create a new bucket with object lock enabled)".into(),
                    )),
                    lifeboat_storage::LockSupport::Unsupported(reason) => return Err(unavailable(reason)),
                }
                config.object_lock = Some(policy);
                storage.with_object_lock(policy)?
            }
        };
        let key_file = KeyFile::wrap(&key, passphrase, params)
            .map_err(|e| RepoError::Invalid(e.to_string()))?;
        let key_bytes = key_file.to_bytes();
        let key_name = format!("keys/{}", KeyFile::id(&key_bytes));
        storage.write(&key_name, key_bytes)?;
        let sealed = key.seal(
            ObjectKind::Config,
            &serde_json::to_vec(&config).expect("config serializes"),
            None,
        );
        storage.write("config", sealed)?;
        Ok(Repository {
            inner: Arc::new(Inner {
                storage,
                key,
                config,
                key_name,
            }),
        })
    }

    pub fn open(storage: Storage, passphrase: &[u8]) -> Result<Repository> {
        let config_bytes = match storage.read_limited("config", max_stored_size(ObjectKind::Config))
        {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => {
                let found = repository_objects(&storage)?;
                if found.is_empty() {
                    return Err(RepoError::NotARepository(storage.location().to_string()));
                }
                return Err(RepoError::ConfigMissing {
                    location: storage.location().to_string(),
                    found: found.join(", "),
                    during_init: false,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let (key_name, key) = unlock(&storage, passphrase)?;
        let config_json = key
            .open(ObjectKind::Config, &config_bytes, None)
            .map_err(|e| RepoError::damaged("config", e))?;
        let version = serde_json::from_slice::<serde_json::Value>(&config_json)
            .ok()
            .and_then(|v| v.get("version").and_then(|v| v.as_u64()))
            .ok_or_else(|| RepoError::damaged("config", "no format version"))?;
        if version != FORMAT_VERSION as u64 {
            return Err(RepoError::UnsupportedVersion {
                found: version as u32,
                supported: FORMAT_VERSION,
            });
        }
        let config: RepoConfig =
            serde_json::from_slice(&config_json).map_err(|e| RepoError::damaged("config", e))?;
        let storage = match config.object_lock {
            Some(policy) => storage.with_object_lock(policy)?,
            None => storage,
        };
        Ok(Repository {
            inner: Arc::new(Inner {
                storage,
                key,
                config,
                key_name,
            }),
        })
    }

    /// Inside this crate only: the front ends ask by meaning (`housekeeping.rs`), never
    /// by object name.
    pub(crate) fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The plaintext of the sealed object `name` of `kind`, or `None` when there is no
    /// such object; one bigger than `kind` allows, or that fails to open, is damage.
    pub(crate) fn open_if_present(&self, kind: ObjectKind, name: &str) -> Result<Option<Vec<u8>>> {
        let sealed = match self.storage().read_limited(name, max_stored_size(kind)) {
            Ok(sealed) => sealed,
            Err(lifeboat_storage::StorageError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.key()
            .open(kind, &sealed, None)
            .map(Some)
            .map_err(|e| RepoError::damaged(name, e))
    }

    pub(crate) fn key(&self) -> &MasterKey {
        &self.inner.key
    }

    pub fn config(&self) -> &RepoConfig {
        &self.inner.config
    }

    /// Seals `value` as JSON and stores it at `<dir>/<BLAKE3 of the sealed bytes>`.
    pub fn save_json<T: Serialize>(&self, kind: ObjectKind, dir: &str, value: &T) -> Result<Id> {
        let json = serde_json::to_vec(value).expect("metadata serializes");
        let sealed = self.key().seal(kind, &json, Some(3));
        let id = Id::of_stored(&sealed);
        self.storage().write(&format!("{dir}/{id}"), sealed)?;
        Ok(id)
    }

    /// Reads, checks and decodes a sealed JSON object; one bigger than any object of its
    /// kind can be ([`max_stored_size`]) is refused as damaged before it is read.
    pub fn load_json<T: DeserializeOwned>(&self, kind: ObjectKind, name: &str) -> Result<T> {
        let sealed = self.storage().read_limited(name, max_stored_size(kind))?;
        self.decode_json(kind, name, sealed)
    }

    /// [`Repository::load_json`] for an object just listed (its listed size is checked
    /// without asking the store again).
    pub fn load_json_listed<T: DeserializeOwned>(
        &self,
        kind: ObjectKind,
        object: &ObjectInfo,
    ) -> Result<T> {
        let sealed = self.storage().read_listed(object, max_stored_size(kind))?;
        self.decode_json(kind, &object.name, sealed)
    }

    fn decode_json<T: DeserializeOwned>(
        &self,
        kind: ObjectKind,
        name: &str,
        sealed: Vec<u8>,
    ) -> Result<T> {
        check_name(name, &sealed)?;
        let json = self
            .key()
            .open(kind, &sealed, None)
            .map_err(|e| RepoError::damaged(name, e))?;
        serde_json::from_slice(&json).map_err(|e| RepoError::damaged(name, e))
    }

    /// Reads and merges every index file. One that cannot be decoded (junk, damage, an
    /// object far too large) is reported and skipped, and the packs that no remaining file
    /// lists are then indexed from their own headers, in memory: a damaged index costs
    /// reading some pack headers, never a backup or a restore. (`prune` writes the
    /// recovered entries to a new index file and removes the damaged one.)
    pub fn load_index(&self) -> Result<MasterIndex> {
        let (mut index, skipped) = self.load_index_files()?;
        if !skipped.is_empty() {
            self.index_unlisted_packs(&mut index, &Default::default())?;
        }
        crate::check::damaged::prefer_intact_copies(self, index)
    }

    /// Reads and merges the index files that decode; returns the index and the names of
    /// those that do not (each reported with a warning). Storage failures stop it: only
    /// the repository's content is skipped, never what could not be reached.
    pub fn load_index_files(&self) -> Result<(MasterIndex, Vec<String>)> {
        let objects = self.storage().list("index")?;
        let files = parallel_map(&objects, 8, |object| {
            match self.load_json_listed::<IndexFile>(ObjectKind::Index, object) {
                Ok(file) => Ok(Ok(file)),
                Err(RepoError::Storage(e)) if !e.is_damage() => Err(RepoError::Storage(e)),
                Err(e) => Ok(Err(e)),
            }
        })?;
        let mut index = MasterIndex::default();
        let mut skipped = Vec::new();
        for (object, file) in objects.iter().zip(files) {
            match file {
                Ok(file) => index.add_file(&file),
                // Gone since the listing: `prune` rewrote it (the new file was stored
                // first, but perhaps after the listing). Its packs are read below.
                Err(RepoError::Storage(e)) if e.is_not_found() => skipped.push(object.name.clone()),
                Err(e) => {
                    tracing::warn!(
                        "skipping index file {}: {e}; the packs it listed are read instead",
                        object.name
                    );
                    skipped.push(object.name.clone());
                }
            }
        }
        Ok((index, skipped))
    }

    /// Lists `data/` and adds every pack that `index` does not know (other than those in
    /// `skip`), from the pack's own header. Returns the packs added, and those whose header
    /// cannot be read (damage; storage failures stop it).
    pub fn index_unlisted_packs(
        &self,
        index: &mut MasterIndex,
        skip: &std::collections::HashSet<Id>,
    ) -> Result<(Vec<crate::index::IndexedPack>, Vec<UnreadablePack>)> {
        let unlisted: Vec<(Id, ObjectInfo)> = self
            .storage()
            .list("data")?
            .into_iter()
            .filter_map(|o| crate::pack::pack_id_from_name(&o.name).map(|id| (id, o)))
            .filter(|(id, _)| !index.has_pack(id) && !skip.contains(id))
            .collect();
        let headers =
            parallel_map(
                &unlisted,
                8,
                |(id, object)| match crate::session::read_pack_header(
                    self,
                    id,
                    &object.name,
                    object.size,
                ) {
                    Ok(pack) => Ok(Ok(pack)),
                    Err(RepoError::Storage(e)) if !e.is_damage() => Err(RepoError::Storage(e)),
                    Err(e) => Ok(Err(e)),
                },
            )?;
        let (mut added, mut damaged) = (Vec::new(), Vec::new());
        for ((id, object), header) in unlisted.into_iter().zip(headers) {
            match header {
                Ok(pack) => {
                    index.add_pack(&pack);
                    added.push(pack);
                }
                Err(e) => {
                    tracing::warn!("cannot index {}: {e}", object.name);
                    damaged.push((id, object));
                }
            }
        }
        Ok((added, damaged))
    }

    pub fn list_snapshots(&self) -> Result<Vec<StoredSnapshot>> {
        let objects = self.storage().list("snapshots")?;
        let loaded = parallel_map(&objects, 8, |object| {
            let id: Id = match Id::from_object_name(&object.name) {
                Some(id) => id,
                None => return Ok(Err(RepoError::damaged(&object.name, "not a snapshot name"))),
            };
            match self.load_json_listed::<Snapshot>(ObjectKind::Snapshot, object) {
                Ok(snapshot) if snapshot.version != SNAPSHOT_VERSION => Ok(Err(RepoError::damaged(
                    &object.name,
                    format!(
                        "snapshot version {} is not supported (this lifeboat reads {SNAPSHOT_VERSION})",
                        snapshot.version
                    ),
                ))),
                Ok(snapshot) => Ok(Ok(StoredSnapshot { id, snapshot })),
                // Storage trouble fails the listing; one damaged snapshot must not hide
                // the others, so it is reported and skipped (`verify` names it too).
                Err(RepoError::Storage(e)) if !e.is_damage() => Err(RepoError::Storage(e)),
                Err(e) => Ok(Err(e)),
            }
        })?;
        let mut snapshots = Vec::with_capacity(loaded.len());
        for entry in loaded {
            match entry {
                Ok(snapshot) => snapshots.push(snapshot),
                Err(e) => tracing::warn!("skipping {e}"),
            }
        }
        snapshots.sort_by(|a, b| a.snapshot.time.cmp(&b.snapshot.time).then(a.id.cmp(&b.id)));
        Ok(snapshots)
    }

    /// Finds a snapshot by `latest`, a full id or a unique id prefix.
    pub fn find_snapshot(&self, wanted: &str) -> Result<StoredSnapshot> {
        self.find_snapshot_matching(wanted, &SnapshotFilter::default())
    }

    /// [`Repository::find_snapshot`], where `latest` is the newest snapshot that `filter`
    /// matches (an id is taken as given, as restic does).
    pub fn find_snapshot_matching(
        &self,
        wanted: &str,
        filter: &SnapshotFilter,
    ) -> Result<StoredSnapshot> {
        let snapshots = self.list_snapshots()?;
        if wanted == "latest" {
            return snapshots
                .into_iter()
                .rfind(|s| filter.matches(&s.snapshot))
                .ok_or_else(|| {
                    RepoError::Invalid(if filter.is_empty() {
                        "the repository has no snapshots yet".into()
                    } else {
                        format!("no snapshot matches {}", filter.describe())
                    })
                });
        }
        let matching: Vec<_> = snapshots
            .into_iter()
            .filter(|s| s.id.to_hex().starts_with(&wanted.to_lowercase()))
            .collect();
        match matching.len() {
            1 => Ok(matching.into_iter().next().expect("one")),
            0 => Err(RepoError::Invalid(format!(
                "no snapshot matches {wanted:?}"
            ))),
            n => Err(RepoError::Invalid(format!(
                "{n} snapshots match {wanted:?}; give more of the id"
            ))),
        }
    }

    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<Id> {
        crate::fault::point("snapshot-write");
        self.save_json(ObjectKind::Snapshot, "snapshots", snapshot)
    }

    /// Reads one blob, checking its authentication tag and its keyed id.
    pub fn read_blob(&self, index: &MasterIndex, id: &Id) -> Result<Vec<u8>> {
        let location = index.get(id).ok_or(RepoError::BlobMissing(*id))?;
        let pack = crate::pack::pack_name(&location.pack);
        let sealed = self
            .storage()
            .read_range(&pack, location.offset, location.length as u64)?;
        self.open_blob(&pack, id, location.kind, location.raw_length, &sealed)
    }

    /// Reads blobs `ids`, all in one pack, with a single ranged read covering them (the
    /// gaps between them are read and dropped): a restore of many small blobs makes one
    /// request per run instead of one per blob. Each blob is checked as by
    /// [`read_blob`](Self::read_blob); they come back in the order of `ids`.
    pub fn read_blob_run(&self, index: &MasterIndex, ids: &[Id]) -> Result<Vec<Vec<u8>>> {
        let locations = ids
            .iter()
            .map(|id| index.get(id).ok_or(RepoError::BlobMissing(*id)))
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = locations.first() else {
            return Ok(Vec::new());
        };
        if locations.iter().any(|l| l.pack != first.pack) {
            return Err(RepoError::Invalid("a run of blobs spans packs".into()));
        }
        let start = locations.iter().map(|l| l.offset).min().expect("not empty");
        let end = locations
            .iter()
            .map(|l| l.offset + l.length as u64)
            .max()
            .expect("not empty");
        let pack = crate::pack::pack_name(&first.pack);
        let sealed = self.storage().read_range(&pack, start, end - start)?;
        ids.iter()
            .zip(&locations)
            .map(|(id, l)| {
                let at = (l.offset - start) as usize;
                let bytes = sealed.get(at..at + l.length as usize).ok_or_else(|| {
                    RepoError::damaged(&pack, format!("blob {} lies past its end", id.short()))
                })?;
                self.open_blob(&pack, id, l.kind, l.raw_length, bytes)
            })
            .collect()
    }

    /// Opens a sealed blob read from `pack`, and checks that it is the blob `id`.
    pub fn open_blob(
        &self,
        pack: &str,
        id: &Id,
        kind: BlobKind,
        raw_length: u32,
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        let data = self
            .key()
            .open(kind.object_kind(), sealed, Some(raw_length as usize))
            .map_err(|e| RepoError::damaged(pack, format!("blob {}: {e}", id.short())))?;
        if data.len() != raw_length as usize || self.key().blob_id(&data) != *id {
            return Err(RepoError::damaged(
                pack,
                format!("blob {} does not match its id", id.short()),
            ));
        }
        Ok(data)
    }

    pub fn load_tree(&self, index: &MasterIndex, id: &Id) -> Result<Tree> {
        let bytes = self.read_blob(index, id)?;
        Tree::parse(&bytes).map_err(|e| RepoError::damaged(format!("tree {}", id.short()), e))
    }

    /// Reads and checks a page map stored as the data blobs `ids`.
    pub fn load_page_map(&self, index: &MasterIndex, ids: &[Id]) -> Result<PageMap> {
        let mut bytes = Vec::new();
        for id in ids {
            bytes.extend_from_slice(&self.read_blob(index, id)?);
        }
        let name = ids.first().map(|id| id.short()).unwrap_or_default();
        PageMap::decode(&bytes).map_err(|e| RepoError::damaged(format!("page map {name}"), e))
    }

    pub fn list_keys(&self) -> Result<Vec<KeySlot>> {
        let mut slots = Vec::new();
        for object in self.storage().list("keys")? {
            let file = match read_key_file(self.storage(), &object) {
                Ok(file) => file,
                Err(RepoError::Storage(e)) if !e.is_damage() => return Err(e.into()),
                Err(e) => {
                    tracing::warn!("skipping {e}");
                    continue;
                }
            };
            slots.push(KeySlot {
                id: object.name.trim_start_matches("keys/").to_string(),
                current: object.name == self.inner.key_name,
                file,
            });
        }
        Ok(slots)
    }

    /// Adds a key slot for another passphrase; returns its id.
    pub fn add_key(&self, passphrase: &[u8], params: KdfParams) -> Result<String> {
        let file = KeyFile::wrap(self.key(), passphrase, params)
            .map_err(|e| RepoError::Invalid(e.to_string()))?;
        let bytes = file.to_bytes();
        let id = KeyFile::id(&bytes).to_hex();
        self.storage().write(&format!("keys/{id}"), bytes)?;
        Ok(id)
    }

    /// Removes a key slot. The slot in use and the last slot cannot be removed.
    pub fn remove_key(&self, id_prefix: &str) -> Result<String> {
        let slots = self.list_keys()?;
        let matching: Vec<_> = slots
            .iter()
            .filter(|s| s.id.starts_with(id_prefix))
            .collect();
        let slot = match matching.as_slice() {
            [one] => *one,
            [] => return Err(RepoError::Invalid(format!("no key matches {id_prefix:?}"))),
            _ => {
                return Err(RepoError::Invalid(format!(
                    "several keys match {id_prefix:?}"
                )))
            }
        };
        if slot.current {
            return Err(RepoError::Invalid(
                "refusing to remove the key slot this passphrase opened; open with another passphrase first".into(),
            ));
        }
        self.storage().delete(&format!("keys/{}", slot.id))?;
        Ok(slot.id.clone())
    }

    /// Replaces the current slot's passphrase: the new slot is written before the old one
    /// is removed, so a crash in between leaves both passphrases working.
    pub fn change_passphrase(&self, new_passphrase: &[u8], params: KdfParams) -> Result<String> {
        let id = self.add_key(new_passphrase, params)?;
        self.storage().delete(&self.inner.key_name)?;
        Ok(id)
    }
}

/// The largest stored object of each kind that a reader accepts. Far above what writers
/// make (a snapshot is a few KiB, an index file lists at most a few hundred packs), far
/// below what would exhaust memory: a 40 GB sparse file among the snapshots stopped
/// `snapshots` with "out of memory" before this.
pub fn max_stored_size(kind: ObjectKind) -> u64 {
    const MIB: u64 = 1024 * 1024;
    match kind {
        ObjectKind::Config | ObjectKind::Lock => MIB,
        ObjectKind::DrillRecord => 16 * MIB,
        ObjectKind::Snapshot => 64 * MIB,
        ObjectKind::PruneNotice => 256 * MIB,
        ObjectKind::Index => 512 * MIB,
        // PostgreSQL's WAL files are at most 1 GiB (`--wal-segsize`); sealing adds little.
        ObjectKind::PgWal => 1024 * MIB + MIB,
        // A binlog piece is cut at 16 MiB, but one event (a large row) can be bigger;
        // MariaDB's binlog files stop at 1 GiB (`max_binlog_size`).
        ObjectKind::MysqlBinlog => 1024 * MIB + MIB,
        // Blobs and pack headers are read by length or range; a stream segment holds
        // what one tick shipped, which a bulk load can make large.
        _ => 4 * 1024 * MIB,
    }
}

/// The top-level kinds of repository object a location holds (`keys/`, `data/`, ...),
/// for telling an empty location from a repository that lost its `config`.
fn repository_objects(storage: &Storage) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for dir in lifeboat_storage::REPOSITORY_DIRECTORIES {
        if !storage.list(dir)?.is_empty() {
            found.push(format!("{dir}/"));
        }
    }
    Ok(found)
}

fn read_key_file(storage: &Storage, object: &ObjectInfo) -> Result<KeyFile> {
    let bytes = storage.read_listed(object, MAX_KEY_FILE_SIZE)?;
    let file = KeyFile::parse(&bytes).map_err(|e| RepoError::damaged(&object.name, e))?;
    Ok(file)
}

/// Finds the key slot that `passphrase` opens.
///
/// Anyone who can write to the storage can add key files, without knowing any key. So the
/// order of trying them must not be theirs to choose (names are: a costly slot named to
/// sort first made every command hang): slots whose parameters are out of bounds
/// ([`KdfParams::check`]) or that do not parse are skipped with a warning naming them, the
/// rest are tried cheapest derivation first (ties by name), and the first that opens
/// wins. A planted slot is then tried before the real one only when it costs no more than
/// the real one, so each file an attacker adds costs at most one derivation of the real
/// slot's price, never an unbounded one.
fn unlock(storage: &Storage, passphrase: &[u8]) -> Result<(String, MasterKey)> {
    let objects = storage.list("keys")?;
    if objects.is_empty() {
        return Err(RepoError::damaged(
            "keys/",
            "the repository has no key files",
        ));
    }
    let mut problems = Vec::new();
    let mut slots = Vec::new();
    for object in &objects {
        let checked = read_key_file(storage, object).and_then(|file| {
            file.params
                .check()
                .map_err(|e| RepoError::damaged(&object.name, e))?;
            Ok(file)
        });
        match checked {
            Ok(file) => slots.push((object.name.clone(), file)),
            Err(e) => {
                tracing::warn!("skipping key file {}: {e}", object.name);
                problems.push(e);
            }
        }
    }
    order_slots(&mut slots);
    for (name, file) in slots {
        match file.unwrap_key(passphrase) {
            Ok(key) => return Ok((name, key)),
            Err(KeyError::WrongPassphrase) => {}
            Err(e) => {
                let e = RepoError::damaged(&name, e);
                tracing::warn!("skipping key file {name}: {e}");
                problems.push(e);
            }
        }
    }
    // A damaged key file is worth naming; otherwise the passphrase is wrong.
    Err(problems
        .into_iter()
        .next()
        .unwrap_or_else(|| RepoError::WrongPassphrase(storage.location().to_string())))
}

/// The order key slots are tried in: cheapest derivation first, then by name.
fn order_slots(slots: &mut [(String, KeyFile)]) {
    slots.sort_by(|(a_name, a), (b_name, b)| {
        (a.params.cost(), a_name).cmp(&(b.params.cost(), b_name))
    });
}

/// Checks that an object's name is the BLAKE3 of its bytes (for content-named objects).
pub fn check_name(name: &str, bytes: &[u8]) -> Result<()> {
    let Some(expected) = Id::from_object_name(name) else {
        return Ok(());
    };
    if Id::of_stored(bytes) != expected {
        return Err(RepoError::damaged(
            name,
            "content does not match its name (damaged or truncated)",
        ));
    }
    Ok(())
}

/// Runs `f` over `items` on up to `threads` threads, keeping order; the first error wins.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    if items.len() <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<R>>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.min(items.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                *results[i].lock().expect("result slot") = Some(f(&items[i]));
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .expect("result slot")
                .expect("every item ran")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A planted slot sorts before the real one only if it costs no more.
    #[test]
    fn key_slots_are_tried_cheapest_first_whatever_their_names() {
        let master = MasterKey::generate();
        let slot = |memory_kib, iterations| {
            let params = KdfParams {
                memory_kib,
                iterations,
                parallelism: 1,
            };
            let mut file = KeyFile::wrap(
                &master,
                b"p",
                KdfParams {
                    iterations: 1,
                    ..params
                },
            )
            .unwrap();
            file.params = params;
            file
        };
        let mut slots = vec![
            ("keys/000-costly".to_string(), slot(8192, 64)),
            ("keys/fff-real".to_string(), slot(8192, 4)),
            ("keys/001-bigger".to_string(), slot(65536, 4)),
            ("keys/aaa-same".to_string(), slot(8192, 4)),
        ];
        order_slots(&mut slots);
        let names: Vec<&str> = slots.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "keys/aaa-same",
                "keys/fff-real",
                "keys/001-bigger",
                "keys/000-costly"
            ]
        );
    }

    /// A repository in a new directory, with a key slot cheap to open.
    fn new_repository() -> (tempfile::TempDir, Storage, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path().to_str().unwrap()).unwrap();
        let fast = KdfParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        };
        let repo = Repository::init(storage.clone(), b"pw", fast).unwrap();
        (dir, storage, repo)
    }

    /// Moved from the CLI's tests when the master key stopped being public: a config of
    /// a later format, sealed with the real key, is refused with a message that says so.
    #[test]
    fn unknown_format_version_is_refused() {
        let (_dir, storage, repo) = new_repository();
        let mut config = serde_json::to_value(repo.config()).unwrap();
        config["version"] = 99.into();
        let sealed = repo.key().seal(
            ObjectKind::Config,
            &serde_json::to_vec(&config).unwrap(),
            None,
        );
        storage.write("config", sealed).unwrap();
        let refused = Repository::open(storage, b"pw").err().expect("refused");
        assert!(
            refused.to_string().contains("format version 99"),
            "{refused}"
        );
    }

    #[test]
    fn oversized_objects_of_each_kind_are_refused() {
        let (dir, _, repo) = new_repository();
        let name = format!("snapshots/{}", "4".repeat(64));
        std::fs::create_dir_all(dir.path().join("snapshots")).unwrap();
        let file = std::fs::File::create(dir.path().join(&name)).unwrap();
        file.set_len(max_stored_size(ObjectKind::Snapshot) + 1)
            .unwrap();
        let err = repo
            .load_json::<Snapshot>(ObjectKind::Snapshot, &name)
            .unwrap_err();
        assert!(
            matches!(&err, RepoError::Storage(e) if e.is_damage())
                && err.to_string().contains(&name),
            "{err}"
        );
        assert!(repo.list_snapshots().unwrap().is_empty());

        // Stream segments and WAL files are read whole too: a sparse giant is refused
        // before it is read, not read until memory runs out.
        let segment = format!("streams/s/g/1-1767268800000-t1_1-{}", "5".repeat(64));
        let wal = crate::pg_wal::wal_object_name("c", "000000010000000000000001");
        for (object, max) in [
            (&segment, max_stored_size(ObjectKind::Segment)),
            (&wal, max_stored_size(ObjectKind::PgWal)),
        ] {
            let path = dir.path().join(object);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::File::create(&path)
                .unwrap()
                .set_len(max + 1)
                .unwrap();
        }
        // Refused by size, not after reading it all (then it failed authentication).
        let refused_by_size = |err: &RepoError| {
            matches!(err, RepoError::Storage(e) if e.is_damage())
                && err.to_string().contains("an object of its kind may have")
        };
        let err = repo.load_segment(&segment).unwrap_err();
        assert!(refused_by_size(&err), "{err}");
        let err = repo.fetch_wal("c", "000000010000000000000001").unwrap_err();
        assert!(refused_by_size(&err), "{err}");
    }
}
