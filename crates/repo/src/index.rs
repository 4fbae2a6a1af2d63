//! Index files: which blob lives in which pack, at which offset.
//!
//! Each writing session writes one or more index files (`index/<id>`), each a sealed,
//! zstd-compressed JSON document listing whole packs. Readers merge them all; the same
//! pack or blob listed twice is harmless.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::pack::{BlobKind, PackedBlob};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexFile {
    pub packs: Vec<IndexedPack>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexedPack {
    pub id: Id,
    pub blobs: Vec<PackedBlob>,
}

/// Where a blob can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: Id,
    pub kind: BlobKind,
    pub offset: u64,
    pub length: u32,
    pub raw_length: u32,
}

/// All index files merged in memory.
#[derive(Debug, Default, Clone)]
pub struct MasterIndex {
    blobs: HashMap<Id, BlobLocation>,
    packs: HashMap<Id, Vec<PackedBlob>>,
}

impl MasterIndex {
    pub fn add_pack(&mut self, pack: &IndexedPack) {
        for blob in &pack.blobs {
            self.blobs.entry(blob.id).or_insert(BlobLocation {
                pack: pack.id,
                kind: blob.kind,
                offset: blob.offset,
                length: blob.length,
                raw_length: blob.raw_length,
            });
        }
        self.packs
            .entry(pack.id)
            .or_insert_with(|| pack.blobs.clone());
    }

    pub fn add_file(&mut self, file: &IndexFile) {
        for pack in &file.packs {
            self.add_pack(pack);
        }
    }

    pub fn get(&self, id: &Id) -> Option<&BlobLocation> {
        self.blobs.get(id)
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.blobs.contains_key(id)
    }

    pub fn has_pack(&self, id: &Id) -> bool {
        self.packs.contains_key(id)
    }

    pub fn pack(&self, id: &Id) -> Option<&Vec<PackedBlob>> {
        self.packs.get(id)
    }

    pub fn packs(&self) -> impl Iterator<Item = (&Id, &Vec<PackedBlob>)> {
        self.packs.iter()
    }

    /// The same index without the packs in `excluded`: blobs that live only in them are
    /// gone, blobs that also live elsewhere point there.
    pub fn without_packs(&self, excluded: &std::collections::HashSet<Id>) -> MasterIndex {
        let mut index = MasterIndex::default();
        for (id, blobs) in self.packs.iter().filter(|(id, _)| !excluded.contains(id)) {
            index.add_pack(&IndexedPack {
                id: *id,
                blobs: blobs.clone(),
            });
        }
        index
    }

    /// The plain and the stored (compressed, sealed) bytes of these blobs; ids the index
    /// does not hold are left out.
    pub fn sizes_of<'a>(&self, ids: impl IntoIterator<Item = &'a Id>) -> (u64, u64) {
        ids.into_iter()
            .filter_map(|id| self.blobs.get(id))
            .fold((0, 0), |(raw, stored), b| {
                (raw + b.raw_length as u64, stored + b.length as u64)
            })
    }

    /// [`MasterIndex::sizes_of`] every blob the index holds.
    pub fn total_sizes(&self) -> (u64, u64) {
        self.sizes_of(self.blobs.keys())
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }
}
