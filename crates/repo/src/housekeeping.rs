//! What the front ends may ask of the storage beneath a repository, by meaning rather
//! than by object name: where it is and what guards it, its inventory, and the removals
//! that `forget`, `tag` and `unlock` make. The storage itself and the master key stay
//! inside this crate, so no front end can write or delete an object by a name it built.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lifeboat_storage::{LockPolicy, ObjectInfo, ServerAccess, StorageError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::crypto::ObjectKind;
use crate::error::Result;
use crate::id::Id;
use crate::pg_wal::wal_object_name;
use crate::segment::generation_name;
use crate::snapshot::snapshot_name;
use crate::Repository;

/// Where restore drills keep their records.
const DRILLS: &str = "drills";

impl Repository {
    /// Where the repository is, as messages show it (no credentials).
    pub fn location(&self) -> &str {
        self.storage().location()
    }

    /// For a repository behind `lifeboat serve`: the role this client's token has.
    pub fn server_access(&self) -> Result<Option<ServerAccess>> {
        Ok(self.storage().server_access()?)
    }

    /// The S3 Object Lock policy new objects are written under, if any.
    pub fn object_lock(&self) -> Option<LockPolicy> {
        self.storage().object_lock()
    }

    /// Every object the repository holds, with its stored size: the config and each
    /// repository directory.
    pub fn inventory(&self) -> Result<Vec<ObjectInfo>> {
        let mut objects = vec![ObjectInfo {
            name: "config".into(),
            size: self.storage().size("config")?,
        }];
        for dir in lifeboat_storage::REPOSITORY_DIRECTORIES {
            objects.extend(self.storage().list(dir)?);
        }
        Ok(objects)
    }

    /// The repository's keyed id of `bytes`: an id derived from data that reveals
    /// nothing of it to anyone without the key.
    pub fn keyed_id(&self, bytes: &[u8]) -> Id {
        self.key().blob_id(bytes)
    }

    /// The replication stream of the database at `source` (an absolute path).
    pub fn stream_id(&self, source: &str) -> String {
        crate::segment::stream_id(self.key(), source)
    }

    /// The key page hashes of SQLite databases are keyed with (the backup cache's
    /// page-level change detection).
    pub fn page_hash_key(&self) -> [u8; 32] {
        self.key().page_hash_key()
    }

    /// Keeps a restore drill's record; its id.
    pub fn save_drill_record<T: Serialize>(&self, record: &T) -> Result<Id> {
        self.save_json(ObjectKind::DrillRecord, DRILLS, record)
    }

    /// Every drill record that can be read (a damaged one is skipped with a warning:
    /// records describe the past, nothing restores from them).
    pub fn drill_records<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let mut records = Vec::new();
        for object in self.storage().list(DRILLS)? {
            match self.load_json_listed(ObjectKind::DrillRecord, &object) {
                Ok(record) => records.push(record),
                Err(e) => tracing::warn!("{}: skipped: {e}", object.name),
            }
        }
        Ok(records)
    }

    /// Removes a snapshot (its data stays until a prune finds it unreferenced).
    pub fn delete_snapshot(&self, id: &Id) -> Result<()> {
        Ok(self.storage().delete(&snapshot_name(id))?)
    }

    /// Of `ids`, the snapshots S3 Object Lock still holds, with when their retention ends.
    pub fn held_snapshots(&self, ids: &[Id]) -> Result<BTreeMap<Id, DateTime<Utc>>> {
        let names: Vec<String> = ids.iter().map(snapshot_name).collect();
        let held = self.storage().held_objects(&names)?;
        Ok(ids
            .iter()
            .filter_map(|id| Some((*id, *held.get(&snapshot_name(id))?)))
            .collect())
    }

    /// Removes the stream segments of the generations based on `bases` (which nothing
    /// can restore from without their base), except those Object Lock still holds; how
    /// many were removed.
    pub fn delete_generations(&self, bases: &[Id]) -> Result<usize> {
        let generations: Vec<String> = bases.iter().map(generation_name).collect();
        let mut removed = 0;
        for object in self.storage().list("streams")? {
            let generation = object.name.split('/').nth(2).unwrap_or_default();
            if generations.iter().any(|g| g == generation)
                && self.delete_unless_held(&object.name)?
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes one archived WAL file of `cluster` unless Object Lock still holds it;
    /// whether it was removed.
    pub fn delete_wal_file(&self, cluster: &str, file: &str) -> Result<bool> {
        self.delete_unless_held(&wal_object_name(cluster, file))
    }

    /// Removes one archived binlog piece of `server` unless Object Lock still holds it;
    /// whether it was removed.
    pub fn delete_binlog_piece(
        &self,
        server: &str,
        piece: &crate::mysql_binlog::BinlogPiece,
    ) -> Result<bool> {
        crate::mysql_binlog::check_name("server", server)?;
        self.delete_unless_held(&piece.object_name(server))
    }

    /// Removes a lock object (`unlock`), as [`crate::lock::stale_and_live`] named it;
    /// nothing outside `locks/`.
    pub fn remove_lock(&self, name: &str) -> Result<()> {
        if !name.starts_with("locks/") || name.contains("..") {
            return Err(crate::RepoError::Invalid(format!(
                "{name} is not a lock; refusing to remove it"
            )));
        }
        Ok(self.storage().delete(name)?)
    }

    fn delete_unless_held(&self, name: &str) -> Result<bool> {
        match self.storage().delete(name) {
            Ok(()) => Ok(true),
            Err(StorageError::Locked { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
