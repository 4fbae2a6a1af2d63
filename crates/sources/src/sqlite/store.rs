//! Backing up a database page by page: full the first time, only changed pages after.
//!
//! Pages are read from one committed state ([`PageScan`]) and compared with the local
//! cache of the parent's page hashes on every core ([`scan_changes`]). A page whose hash
//! matches the cache for the parent snapshot's page map keeps the parent's location; every other page goes into a new blob with the other new
//! pages of this backup, [`GROUP_BYTES`] at a time. With no usable cache every page is
//! new, and the blobs hold aligned runs of pages, so unchanged runs still deduplicate by
//! blob id against earlier full backups.

use std::path::Path;

use lifeboat_repo::pack::BlobKind;
use lifeboat_repo::pagemap::{PageMap, PageMapBuilder, PageRef, GROUP_BYTES};
use lifeboat_repo::session::{Effort, WriteSession};
use lifeboat_repo::Id;

use super::changes::scan_changes;
use super::page_cache::{CachedPages, PageCache, PageHash};
use super::pages::PageScan;
use crate::{Progress, Result};

/// What one database backup stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDatabase {
    /// The data blobs of the encoded page map.
    pub page_map: Vec<Id>,
    pub size: u64,
    pub pages: u32,
    /// Pages stored anew (all of them when there was no usable cache).
    pub changed_pages: u32,
    /// Whether the parent's page map and the local cache were used.
    pub incremental: bool,
}

/// Where a page of the new map comes from: the same page of the parent, or a slot of a
/// new group. Kept small: a gigabyte of 4 KiB pages is 262,144 of them.
enum Location {
    Parent,
    NewGroup { group: u32, slot: u32 },
}

/// The parent's page map and the cached hashes of its pages.
struct Previous {
    map: PageMap,
    hashes: Vec<PageHash>,
}

pub fn store_database(
    session: &WriteSession,
    path: &Path,
    parent_map: Option<&[Id]>,
    cache: Option<&PageCache>,
    progress: &dyn Progress,
) -> Result<StoredDatabase> {
    let scan = PageScan::open(path)?;
    let page_size = scan.page_size;
    let previous = match (parent_map, cache) {
        (Some(ids), Some(cache)) if !ids.is_empty() => {
            previous(session, path, ids, cache, page_size)
        }
        _ => None,
    };
    let group_pages = (GROUP_BYTES / page_size as usize).max(1);
    let mut locations = Vec::with_capacity(scan.page_count as usize);
    let mut hashes: Vec<PageHash> = Vec::with_capacity(scan.page_count as usize);
    let mut group = Vec::with_capacity(group_pages * page_size as usize);
    let mut group_ids: Vec<Id> = Vec::new();
    let mut changed = 0u32;
    let previous_hashes = previous.as_ref().map(|p| &p.hashes[..]);
    // An increment is compressed fast (see `Effort::Fast`); a full backup, the bulk of
    // the repository, at the repository's level.
    let effort = match previous {
        Some(_) => Effort::Fast,
        None => Effort::Default,
    };
    scan_changes(scan, cache, previous_hashes, |batch| {
        let mut changed_pages = batch
            .changed
            .iter()
            .zip(batch.data.chunks_exact(page_size as usize))
            .peekable();
        for offset in 0..batch.pages {
            let Some((_, page)) = changed_pages.next_if(|(o, _)| **o == offset) else {
                locations.push(Location::Parent);
                continue;
            };
            changed += 1;
            let number = group_ids.len() as u32;
            group.extend_from_slice(page);
            let slot = (group.len() / page_size as usize - 1) as u32;
            if group.len() == group_pages * page_size as usize {
                let full = std::mem::replace(
                    &mut group,
                    Vec::with_capacity(group_pages * page_size as usize),
                );
                group_ids.push(session.store_blob_with(BlobKind::Data, full, effort)?);
            }
            locations.push(Location::NewGroup {
                group: number,
                slot,
            });
        }
        hashes.extend_from_slice(&batch.hashes);
        progress.bytes(batch.pages as u64 * page_size as u64);
        Ok(())
    })?;
    if !group.is_empty() {
        group_ids.push(session.store_blob_with(
            BlobKind::Data,
            std::mem::take(&mut group),
            effort,
        )?);
    }

    let mut builder = PageMapBuilder::new(page_size);
    let mut parent_pages = previous.as_ref().map(|p| p.map.pages());
    for location in locations {
        let parent_page = parent_pages.as_mut().and_then(|pages| pages.next());
        builder.push(match location {
            Location::Parent => parent_page.expect("a page matched the parent's, so it has one"),
            Location::NewGroup { group, slot } => PageRef {
                blob: group_ids[group as usize],
                slot,
            },
        });
    }
    let map = builder.finish();
    let encoded = map.encode();
    let map_digest = session.repo().keyed_id(&encoded).0;
    let stored = session.store_reader(
        &encoded[..],
        &format!("{} page map", path.display()),
        |_| {},
    )?;
    if let Some(cache) = cache {
        cache.save(
            path,
            &CachedPages {
                page_size,
                map_digest,
                hashes,
            },
        );
    }
    Ok(StoredDatabase {
        page_map: stored.ids,
        size: map.file_size(),
        pages: map.page_count,
        changed_pages: changed,
        incremental: previous.is_some(),
    })
}

/// The parent's map and the cached hashes, when they describe the same pages and every
/// blob they name is still in the repository.
fn previous(
    session: &WriteSession,
    path: &Path,
    parent_map: &[Id],
    cache: &PageCache,
    page_size: u32,
) -> Option<Previous> {
    let cached = cache.load(path)?;
    let map: PageMap = match session.repo().load_page_map(session.index(), parent_map) {
        Ok(map) => map,
        Err(e) => {
            tracing::warn!(
                "{}: the parent's page map is unreadable ({e}); reading every page",
                path.display()
            );
            return None;
        }
    };
    let digest = session.repo().keyed_id(&map.encode()).0;
    let usable = digest == cached.map_digest
        && map.page_size == page_size
        && cached.page_size == page_size
        && cached.hashes.len() == map.page_count as usize
        && map.blobs.iter().all(|id| session.index().contains(id));
    if !usable {
        tracing::info!(
            "{}: no page cache for the parent snapshot; reading every page",
            path.display()
        );
        return None;
    }
    Some(Previous {
        map,
        hashes: cached.hashes,
    })
}
