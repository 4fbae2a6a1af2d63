//! Opening, creating and reading a repository.

use std::sync::Arc;

use lifeboat_storage::Storage;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{RepoConfig, FORMAT_VERSION};
use crate::crypto::{MasterKey, ObjectKind};
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::index::{IndexFile, MasterIndex};
use crate::keys::{KdfParams, KeyError, KeyFile};
use crate::pack::BlobKind;
use crate::pagemap::PageMap;
use crate::snapshot::{Snapshot, StoredSnapshot, SNAPSHOT_VERSION};
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

impl Repository {
    /// Creates a repository. The config is written last: its presence is what makes a
    /// location a repository, so an interrupted `init` can simply be run again.
    pub fn init(storage: Storage, passphrase: &[u8], params: KdfParams) -> Result<Repository> {
        if storage.exists("config")? {
            return Err(RepoError::AlreadyExists(storage.location().to_string()));
        }
        let key = MasterKey::generate();
        let config = RepoConfig::new();
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
        let config_bytes = match storage.read("config") {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => {
                return Err(RepoError::NotARepository(storage.location().to_string()))
            }
            Err(e) => return Err(e.into()),
        };
        let keys = storage.list("keys")?;
        if keys.is_empty() {
            return Err(RepoError::damaged(
                "keys/",
                "the repository has no key files",
            ));
        }
        let mut unlocked = None;
        let mut problems = Vec::new();
        for object in &keys {
            let parsed = storage
                .read(&object.name)
                .map_err(RepoError::from)
                .and_then(|bytes| {
                    KeyFile::parse(&bytes).map_err(|e| RepoError::damaged(&object.name, e))
                });
            let file = match parsed {
                Ok(file) => file,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            match file.unwrap_key(passphrase) {
                Ok(key) => {
                    unlocked = Some((object.name.clone(), key));
                    break;
                }
                Err(KeyError::WrongPassphrase) => {}
                Err(e) => problems.push(RepoError::damaged(&object.name, e)),
            }
        }
        let Some((key_name, key)) = unlocked else {
            // A damaged key file is worth naming; otherwise the passphrase is wrong.
            return Err(problems
                .into_iter()
                .next()
                .unwrap_or_else(|| RepoError::WrongPassphrase(storage.location().to_string())));
        };
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
        Ok(Repository {
            inner: Arc::new(Inner {
                storage,
                key,
                config,
                key_name,
            }),
        })
    }

    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    pub fn key(&self) -> &MasterKey {
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

    pub fn load_json<T: DeserializeOwned>(&self, kind: ObjectKind, name: &str) -> Result<T> {
        let sealed = self.storage().read(name)?;
        check_name(name, &sealed)?;
        let json = self
            .key()
            .open(kind, &sealed, None)
            .map_err(|e| RepoError::damaged(name, e))?;
        serde_json::from_slice(&json).map_err(|e| RepoError::damaged(name, e))
    }

    /// Reads and merges every index file.
    pub fn load_index(&self) -> Result<MasterIndex> {
        let names: Vec<String> = self
            .storage()
            .list("index")?
            .into_iter()
            .map(|o| o.name)
            .collect();
        let files = parallel_map(&names, 8, |name| {
            self.load_json::<IndexFile>(ObjectKind::Index, name)
        })?;
        let mut index = MasterIndex::default();
        for file in &files {
            index.add_file(file);
        }
        crate::check::damaged::prefer_intact_copies(self, index)
    }

    pub fn list_snapshots(&self) -> Result<Vec<StoredSnapshot>> {
        let objects = self.storage().list("snapshots")?;
        let loaded = parallel_map(&objects, 8, |object| {
            let id: Id = match Id::from_object_name(&object.name) {
                Some(id) => id,
                None => return Ok(Err(RepoError::damaged(&object.name, "not a snapshot name"))),
            };
            match self.load_json::<Snapshot>(ObjectKind::Snapshot, &object.name) {
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
        let snapshots = self.list_snapshots()?;
        if wanted == "latest" {
            return snapshots
                .into_iter()
                .last()
                .ok_or_else(|| RepoError::Invalid("the repository has no snapshots yet".into()));
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
            let bytes = self.storage().read(&object.name)?;
            let file = KeyFile::parse(&bytes).map_err(|e| RepoError::damaged(&object.name, e))?;
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
