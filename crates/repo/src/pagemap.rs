//! Page maps: a database stored page by page, so the next backup stores only changed pages.
//!
//! A page map says, for every page of a database file, which data blob holds it and at
//! which slot (blobs hold whole pages back to back). A first backup groups consecutive
//! pages into blobs of [`GROUP_BYTES`]; a later one groups only the pages that changed
//! and points at the parent's blobs for the rest. The map itself is stored as data blobs
//! (see `docs/FORMAT.md`, "Page maps").

use std::collections::HashMap;

use crate::id::Id;

/// Bytes of pages per blob: big enough to compress as well as a content-defined chunk.
pub const GROUP_BYTES: usize = 256 * 1024;

const MAGIC: &[u8; 8] = b"LBPGMAP1";
const HEADER_LEN: usize = 8 + 4 * 4;
const EXTENT_LEN: usize = 16;

/// Where one run of consecutive pages lives: `count` pages starting at `first_page`
/// (0-based) are slots `slot..slot + count` of `blobs[blob]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub first_page: u32,
    pub count: u32,
    pub blob: u32,
    pub slot: u32,
}

/// `count` pages from `slot` of one blob, which belong at `first_page` of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub slot: u32,
    pub count: u32,
    pub first_page: u32,
}

/// A page's location: a blob and a slot in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRef {
    pub blob: Id,
    pub slot: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMap {
    pub page_size: u32,
    pub page_count: u32,
    pub blobs: Vec<Id>,
    /// Sorted, contiguous and covering pages `0..page_count` exactly.
    pub extents: Vec<Extent>,
}

impl PageMap {
    pub fn file_size(&self) -> u64 {
        self.page_size as u64 * self.page_count as u64
    }

    /// `magic || page_size || page_count || blob count || extent count` (u32 LE), then the
    /// blob ids, then 16 bytes per extent (four u32 LE).
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(HEADER_LEN + self.blobs.len() * 32 + self.extents.len() * 16);
        out.extend_from_slice(MAGIC);
        for n in [
            self.page_size,
            self.page_count,
            self.blobs.len() as u32,
            self.extents.len() as u32,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for id in &self.blobs {
            out.extend_from_slice(&id.0);
        }
        for e in &self.extents {
            for n in [e.first_page, e.count, e.blob, e.slot] {
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
        out
    }

    /// Parses and checks a page map: every page covered once, every blob index valid.
    pub fn decode(bytes: &[u8]) -> Result<PageMap, String> {
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err("page map: bad magic or too short".into());
        }
        let (page_size, page_count) = (u32_at(8), u32_at(12));
        let (blob_count, extent_count) = (u32_at(16) as usize, u32_at(20) as usize);
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(format!("page map: invalid page size {page_size}"));
        }
        let expected = HEADER_LEN as u64 + blob_count as u64 * 32 + extent_count as u64 * 16;
        if bytes.len() as u64 != expected {
            return Err(format!(
                "page map: {} bytes, its counts need {expected}",
                bytes.len()
            ));
        }
        let mut at = HEADER_LEN;
        let mut blobs = Vec::with_capacity(blob_count);
        for _ in 0..blob_count {
            blobs.push(Id(bytes[at..at + 32].try_into().expect("32")));
            at += 32;
        }
        let mut extents = Vec::with_capacity(extent_count);
        let mut next_page = 0u64;
        for _ in 0..extent_count {
            let e = Extent {
                first_page: u32_at(at),
                count: u32_at(at + 4),
                blob: u32_at(at + 8),
                slot: u32_at(at + 12),
            };
            at += EXTENT_LEN;
            if e.first_page as u64 != next_page || e.count == 0 || e.blob as usize >= blob_count {
                return Err(format!(
                    "page map: extent at page {} is out of order, empty or names no blob",
                    e.first_page
                ));
            }
            next_page += e.count as u64;
            extents.push(e);
        }
        if next_page != page_count as u64 {
            return Err(format!(
                "page map: extents cover {next_page} pages, the map says {page_count}"
            ));
        }
        Ok(PageMap {
            page_size,
            page_count,
            blobs,
            extents,
        })
    }

    /// Every page's location, in page order.
    pub fn pages(&self) -> impl Iterator<Item = PageRef> + '_ {
        self.extents.iter().flat_map(move |e| {
            (0..e.count).map(move |i| PageRef {
                blob: self.blobs[e.blob as usize],
                slot: e.slot + i,
            })
        })
    }

    /// For each blob, the runs of pages to copy out of it.
    pub fn runs_by_blob(&self) -> Vec<(Id, Vec<Run>)> {
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); self.blobs.len()];
        for e in &self.extents {
            runs[e.blob as usize].push(Run {
                slot: e.slot,
                count: e.count,
                first_page: e.first_page,
            });
        }
        self.blobs.iter().copied().zip(runs).collect()
    }
}

/// Builds a page map from page locations given in page order.
pub struct PageMapBuilder {
    map: PageMap,
    blob_numbers: HashMap<Id, u32>,
}

impl PageMapBuilder {
    pub fn new(page_size: u32) -> PageMapBuilder {
        PageMapBuilder {
            map: PageMap {
                page_size,
                page_count: 0,
                blobs: Vec::new(),
                extents: Vec::new(),
            },
            blob_numbers: HashMap::new(),
        }
    }

    /// Appends the next page's location.
    pub fn push(&mut self, page: PageRef) {
        let first_page = self.map.page_count;
        self.map.page_count += 1;
        // Most pages continue the last extent: compared by id, without hashing it (a
        // gigabyte is 262,144 pages, and this runs after the scan, on one core).
        if let Some(last) = self.map.extents.last_mut() {
            if self.map.blobs[last.blob as usize] == page.blob
                && last.slot + last.count == page.slot
            {
                last.count += 1;
                return;
            }
        }
        let blobs = &mut self.map.blobs;
        let blob = *self.blob_numbers.entry(page.blob).or_insert_with(|| {
            blobs.push(page.blob);
            (blobs.len() - 1) as u32
        });
        self.map.extents.push(Extent {
            first_page,
            count: 1,
            blob,
            slot: page.slot,
        });
    }

    pub fn finish(self) -> PageMap {
        self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u8) -> Id {
        Id([n; 32])
    }

    proptest! {
        #[test]
        fn encode_decode_roundtrip(pages in proptest::collection::vec((0u8..6, 0u32..70), 0..400)) {
            let mut builder = PageMapBuilder::new(4096);
            for &(blob, slot) in &pages {
                builder.push(PageRef { blob: id(blob), slot });
            }
            let map = builder.finish();
            let decoded = PageMap::decode(&map.encode()).unwrap();
            prop_assert_eq!(&decoded, &map);
            let back: Vec<_> = decoded.pages().map(|p| (p.blob.0[0], p.slot)).collect();
            prop_assert_eq!(back, pages);
        }

        #[test]
        fn damaged_maps_are_refused_not_misread(
            pages in proptest::collection::vec((0u8..3, 0u32..8), 1..50),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut builder = PageMapBuilder::new(4096);
            for &(blob, slot) in &pages {
                builder.push(PageRef { blob: id(blob), slot });
            }
            let bytes = builder.finish().encode();
            let cut = cut.index(bytes.len());
            prop_assert!(PageMap::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn consecutive_slots_of_one_blob_form_one_extent() {
        let mut builder = PageMapBuilder::new(4096);
        for slot in 0..64 {
            builder.push(PageRef { blob: id(1), slot });
        }
        builder.push(PageRef {
            blob: id(2),
            slot: 0,
        });
        builder.push(PageRef {
            blob: id(1),
            slot: 65,
        });
        let map = builder.finish();
        assert_eq!(map.extents.len(), 3);
        assert_eq!(map.blobs, vec![id(1), id(2)]);
        assert_eq!(map.file_size(), 66 * 4096);
        let runs = map.runs_by_blob();
        let run = |slot, count, first_page| Run {
            slot,
            count,
            first_page,
        };
        assert_eq!(runs[0].1, vec![run(0, 64, 0), run(65, 1, 65)]);
    }

    #[test]
    fn overlapping_or_short_extents_are_refused() {
        let map = PageMap {
            page_size: 4096,
            page_count: 3,
            blobs: vec![id(1)],
            extents: vec![
                Extent {
                    first_page: 0,
                    count: 2,
                    blob: 0,
                    slot: 0,
                },
                Extent {
                    first_page: 1,
                    count: 2,
                    blob: 0,
                    slot: 2,
                },
            ],
        };
        assert!(PageMap::decode(&map.encode()).is_err());
        let short = PageMap {
            page_count: 5,
            ..map.clone()
        };
        assert!(PageMap::decode(&short.encode()).is_err());
    }
}
