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
        let bytes = std::fs::read(self.file_for(database)).ok()?;
        decode(&bytes)
    }

    /// Replaces the cache for `database`; a failure is logged, as it only costs speed.
    pub fn save(&self, database: &Path, pages: &CachedPages) {
        let path = self.file_for(database);
        let result = std::fs::create_dir_all(&self.dir).and_then(|_| {
            let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
            std::io::Write::write_all(&mut temp, &encode(pages))?;
            temp.persist(&path).map(|_| ()).map_err(|e| e.error)
        });
        if let Err(e) = result {
            tracing::warn!("cannot write the page cache {}: {e}", path.display());
        }
    }
}

fn encode(pages: &CachedPages) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + pages.hashes.len() * 16 + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&pages.page_size.to_le_bytes());
    out.extend_from_slice(&(pages.hashes.len() as u32).to_le_bytes());
    out.extend_from_slice(&pages.map_digest);
    for hash in &pages.hashes {
        out.extend_from_slice(hash);
    }
    let checksum = blake3::hash(&out);
    out.extend_from_slice(checksum.as_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<CachedPages> {
    if bytes.len() < HEADER_LEN + 32 || &bytes[..8] != MAGIC {
        return None;
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != checksum {
        return None;
    }
    let page_size = u32::from_le_bytes(body[8..12].try_into().ok()?);
    let count = u32::from_le_bytes(body[12..16].try_into().ok()?) as usize;
    if body.len() != HEADER_LEN + count * 16 {
        return None;
    }
    Some(CachedPages {
        page_size,
        map_digest: body[16..48].try_into().ok()?,
        hashes: body[HEADER_LEN..]
            .chunks_exact(16)
            .map(|h| h.try_into().expect("16 bytes"))
            .collect(),
    })
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
        cache.save(&db, &pages);
        assert_eq!(cache.load(&db), Some(pages));
        let file = cache.file_for(&db);
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[HEADER_LEN + 3] ^= 1;
        std::fs::write(&file, bytes).unwrap();
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
