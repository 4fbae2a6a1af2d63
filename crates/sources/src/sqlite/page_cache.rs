//! The local cache of page hashes that lets the next backup of a database find the pages
//! that changed without reading anything back from the repository.
//!
//! One file per repository and database: the page size, the digest of the page map the
//! hashes describe, a 16-byte keyed hash per page, and a BLAKE3 of all of that. A cache
//! is only used when its digest matches the parent snapshot's page map, so a stale, lost
//! or damaged cache costs a full read of the database, never a wrong page.
//!
//! Pages are hashed with XXH3-128 under a 192-byte secret derived from the repository
//! key, not with BLAKE3: an incremental backup hashes every page of the database, and
//! BLAKE3 was a quarter of its CPU time. The hash only decides whether a page is read
//! again; it names nothing in the repository. Chance collisions are 2^-128 per page, and
//! a page crafted to collide with an older one needs the secret, which never leaves this
//! machine's key (the cache file holds hashes, not the secret). Restic and borg trust a
//! file's mtime and size for the same decision.

use std::path::{Path, PathBuf};

/// 16 bytes of keyed XXH3-128 per page.
pub type PageHash = [u8; 16];

/// Version 2: XXH3-128 page hashes (version 1 held BLAKE3 ones and is not read).
const MAGIC: &[u8; 8] = b"LBPGHSH2";
const SECRET_LEN: usize = 192;
const HEADER_LEN: usize = 8 + 4 + 4 + 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPages {
    pub page_size: u32,
    /// Keyed BLAKE3 of the encoded page map whose pages these hashes describe.
    pub map_digest: [u8; 32],
    pub hashes: Vec<PageHash>,
}

/// Where the cache files of one repository live, and the key that hashes pages.
pub struct PageCache {
    dir: PathBuf,
    key: [u8; 32],
    secret: [u8; SECRET_LEN],
}

impl PageCache {
    /// `root/<repository id>/sqlite-pages/`.
    pub fn new(root: &Path, repository_id: &str, key: [u8; 32]) -> PageCache {
        let mut secret = [0u8; SECRET_LEN];
        blake3::Hasher::new_derive_key("lifeboat 2026 sqlite page cache xxh3 secret")
            .update(&key)
            .finalize_xof()
            .fill(&mut secret);
        PageCache {
            dir: root.join(repository_id).join("sqlite-pages"),
            key,
            secret,
        }
    }

    pub fn hash_page(&self, page: &[u8]) -> PageHash {
        twox_hash::XxHash3_128::oneshot_with_secret(&self.secret, page)
            .expect("the secret is longer than XXH3's minimum")
            .to_le_bytes()
    }

    fn file_for(&self, database: &Path) -> PathBuf {
        let canonical = database
            .canonicalize()
            .unwrap_or_else(|_| database.to_path_buf());
        let name = blake3::keyed_hash(&self.key, canonical.as_os_str().as_encoded_bytes());
        self.dir.join(&name.to_hex()[..32])
    }

    /// The cached hashes for `database`, if a whole, undamaged cache file exists.
    pub fn load(&self, database: &Path) -> Option<CachedPages> {
        read(&mut std::fs::File::open(self.file_for(database)).ok()?)
    }

    /// Replaces the cache for `database`; a failure is logged, as it only costs speed.
    ///
    /// The file is rewritten in place, not beside it and renamed: its pages are then
    /// already in the kernel's cache, where a new file's 4 MiB (per GiB of database) cost
    /// 2.5 ms/MiB of fresh memory on a VM, at the serial end of every backup. A write torn
    /// by a crash or a concurrent backup fails the checksum: the next backup reads every
    /// page, as with no cache.
    pub fn save(&self, database: &Path, pages: &CachedPages) {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.file_for(database);
        let result = std::fs::create_dir_all(&self.dir).and_then(|_| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)?;
            write(&mut file, pages)?;
            let end = std::io::Seek::stream_position(&mut file)?;
            file.set_len(end)
        });
        if let Err(e) = result {
            tracing::warn!("cannot write the page cache {}: {e}", path.display());
        }
    }
}

// The hashes go between the file and their own vector directly, without a second buffer
// of the whole file: a gigabyte's cache is 4 MiB, and fresh memory costs 0.6 ms/MiB on a
// VM, on the serial start and end of every incremental backup.

fn header(pages: &CachedPages) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&pages.page_size.to_le_bytes());
    header[12..16].copy_from_slice(&(pages.hashes.len() as u32).to_le_bytes());
    header[16..].copy_from_slice(&pages.map_digest);
    header
}

fn write(out: &mut impl std::io::Write, pages: &CachedPages) -> std::io::Result<()> {
    let header = header(pages);
    let body = pages.hashes.as_flattened();
    let checksum = blake3::Hasher::new()
        .update(&header)
        .update(body)
        .finalize();
    out.write_all(&header)?;
    out.write_all(body)?;
    out.write_all(checksum.as_bytes())
}

fn read(file: &mut std::fs::File) -> Option<CachedPages> {
    use std::io::Read;
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header).ok()?;
    if &header[..8] != MAGIC {
        return None;
    }
    let count = u32::from_le_bytes(header[12..16].try_into().ok()?) as usize;
    let expected = (HEADER_LEN + count * 16 + 32) as u64;
    if file.metadata().ok()?.len() != expected {
        return None;
    }
    let pages = CachedPages {
        page_size: u32::from_le_bytes(header[8..12].try_into().ok()?),
        map_digest: header[16..48].try_into().ok()?,
        hashes: {
            let mut hashes = vec![[0u8; 16]; count];
            file.read_exact(hashes.as_flattened_mut()).ok()?;
            hashes
        },
    };
    let mut checksum = [0u8; 32];
    file.read_exact(&mut checksum).ok()?;
    let actual = blake3::Hasher::new()
        .update(&header)
        .update(pages.hashes.as_flattened())
        .finalize();
    (actual.as_bytes() == &checksum).then_some(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_cache_loads_back_and_damage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PageCache::new(dir.path(), "repo1", [3; 32]);
        let db = dir.path().join("app.db");
        std::fs::write(&db, b"x").unwrap();
        assert_eq!(cache.load(&db), None);
        let pages = CachedPages {
            page_size: 4096,
            map_digest: [9; 32],
            hashes: vec![cache.hash_page(b"a"), cache.hash_page(b"b")],
        };
        // Saved over a longer cache (it is rewritten in place), the new one is all there is.
        let longer = CachedPages {
            hashes: vec![cache.hash_page(b"c"); 3],
            ..pages.clone()
        };
        cache.save(&db, &longer);
        assert_eq!(cache.load(&db), Some(longer));
        cache.save(&db, &pages);
        assert_eq!(cache.load(&db), Some(pages));
        let file = cache.file_for(&db);
        let good = std::fs::read(&file).unwrap();
        // The layout: header, 16 bytes per page, and a BLAKE3 of both.
        assert_eq!(good.len(), HEADER_LEN + 2 * 16 + 32);
        assert_eq!(&good[..8], MAGIC);
        let (body, checksum) = good.split_at(good.len() - 32);
        assert_eq!(blake3::hash(body).as_bytes(), checksum);
        // A flipped byte in a hash, in the checksum, or a missing byte: no cache.
        for damage in [HEADER_LEN + 3, good.len() - 1] {
            let mut bytes = good.clone();
            bytes[damage] ^= 1;
            std::fs::write(&file, bytes).unwrap();
            assert_eq!(cache.load(&db), None, "byte {damage} flipped");
        }
        std::fs::write(&file, &good[..good.len() - 1]).unwrap();
        assert_eq!(cache.load(&db), None);
        // The hash is keyed: another repository's key hashes the same page differently.
        let other = PageCache::new(dir.path(), "repo1", [4; 32]);
        assert_eq!(cache.hash_page(&[7; 4096]), cache.hash_page(&[7; 4096]));
        assert_ne!(cache.hash_page(&[7; 4096]), other.hash_page(&[7; 4096]));
        assert_ne!(cache.hash_page(&[7; 4096]), cache.hash_page(&[8; 4096]));
        // Another repository keeps its own cache.
        assert_eq!(PageCache::new(dir.path(), "repo2", [3; 32]).load(&db), None);
    }
}
