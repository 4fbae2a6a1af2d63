//! Packs known to be damaged: `damaged/<id>` notices (FORMAT §10.4).
//!
//! Content-addressed storage cannot heal by itself: a blob whose only copy is damaged
//! keeps its id, so a backup that meets the same content again would deduplicate
//! against the broken copy forever. When `verify` proves a pack damaged (missing, of the
//! wrong size, or failing its checks when read), it stores a notice naming it. Then:
//!
//! - a writing session leaves those packs out of the index it deduplicates against (and
//!   never re-indexes them as unindexed packs), so the next backup that has their content
//!   stores it again;
//! - readers prefer any other copy of a blob to the one in a damaged pack;
//! - `prune` never counts a damaged pack as the copy of a blob to keep (so it never frees
//!   a good copy in favour of a damaged one) and leaves damaged packs to `repair`;
//! - `repair` stores the intact blobs of damaged packs again, drops the packs from the
//!   index, deletes them and then the notices.
//!
//! A notice only makes writers store more and readers look elsewhere first, so an
//! unreadable one is skipped with a warning: losing it costs what not having it would.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::crypto::ObjectKind;
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::index::{IndexedPack, MasterIndex};
use crate::repository::Repository;

pub const DIR: &str = "damaged";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DamagedNotice {
    pub created: chrono::DateTime<chrono::Utc>,
    pub packs: Vec<DamagedPack>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamagedPack {
    pub id: Id,
    /// What `verify` found, for people.
    pub detail: String,
}

/// Every readable notice, with its object name.
pub fn load(repo: &Repository) -> Result<Vec<(String, DamagedNotice)>> {
    let mut notices = Vec::new();
    for object in repo.storage().list(DIR)? {
        match repo.load_json::<DamagedNotice>(ObjectKind::DamagedNotice, &object.name) {
            Ok(notice) => notices.push((object.name, notice)),
            Err(RepoError::Storage(e)) if !e.is_damage() => return Err(RepoError::Storage(e)),
            Err(e) => tracing::warn!("{}: skipped, it cannot be read ({e})", object.name),
        }
    }
    Ok(notices)
}

/// The packs every readable notice names, with what was found and when.
pub fn damaged_packs(
    repo: &Repository,
) -> Result<HashMap<Id, (chrono::DateTime<chrono::Utc>, String)>> {
    let mut packs = HashMap::new();
    for (_, notice) in load(repo)? {
        for pack in notice.packs {
            packs
                .entry(pack.id)
                .or_insert((notice.created, pack.detail));
        }
    }
    Ok(packs)
}

/// Stores one notice naming `packs`; nothing when empty.
pub fn record(repo: &Repository, packs: Vec<DamagedPack>) -> Result<Option<Id>> {
    if packs.is_empty() {
        return Ok(None);
    }
    let notice = DamagedNotice {
        created: chrono::Utc::now(),
        packs,
    };
    repo.save_json(ObjectKind::DamagedNotice, DIR, &notice)
        .map(Some)
}

/// The index with every blob that has a copy outside `damaged` pointing there: the
/// damaged packs are added last, and the first location added wins.
pub fn prefer_intact(index: MasterIndex, damaged: &HashSet<Id>) -> MasterIndex {
    if !index.packs().any(|(id, _)| damaged.contains(id)) {
        return index;
    }
    let mut preferred = index.without_packs(damaged);
    for (id, blobs) in index.packs().filter(|(id, _)| damaged.contains(id)) {
        preferred.add_pack(&IndexedPack {
            id: *id,
            blobs: blobs.clone(),
        });
    }
    preferred
}

/// [`prefer_intact`] with the packs the stored notices name.
pub fn prefer_intact_copies(repo: &Repository, index: MasterIndex) -> Result<MasterIndex> {
    let damaged: HashSet<Id> = damaged_packs(repo)?.into_keys().collect();
    Ok(prefer_intact(index, &damaged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::{BlobKind, PackedBlob};

    fn pack(id: u8, blobs: &[u8]) -> IndexedPack {
        IndexedPack {
            id: Id([id; 32]),
            blobs: blobs
                .iter()
                .map(|b| PackedBlob {
                    id: Id([*b; 32]),
                    kind: BlobKind::Data,
                    offset: 0,
                    length: 50,
                    raw_length: 9,
                })
                .collect(),
        }
    }

    #[test]
    fn a_blob_with_an_intact_copy_is_read_from_it() {
        let mut index = MasterIndex::default();
        index.add_pack(&pack(1, &[10, 11]));
        index.add_pack(&pack(2, &[11, 12]));
        assert_eq!(index.get(&Id([11; 32])).unwrap().pack, Id([1; 32]));
        let damaged = HashSet::from([Id([1; 32])]);
        let preferred = prefer_intact(index, &damaged);
        assert_eq!(preferred.get(&Id([11; 32])).unwrap().pack, Id([2; 32]));
        // A blob with no other copy is still found, in the damaged pack.
        assert_eq!(preferred.get(&Id([10; 32])).unwrap().pack, Id([1; 32]));
        assert!(preferred.has_pack(&Id([1; 32])));
    }
}
