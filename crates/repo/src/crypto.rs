//! Authenticated encryption of every stored object, and the keys that do it.
//!
//! A sealed object is `nonce (24 bytes) || XChaCha20-Poly1305 ciphertext || tag (16 bytes)`.
//! The plaintext starts with one byte naming the compression of the rest (0 = none,
//! 1 = zstd). The associated data names the kind of object, so an index file cannot be
//! passed off as a snapshot. (Blob ids do not depend on the kind: identical bytes stored as
//! a data blob and as a tree blob dedup to one blob, and readers take the kind from the
//! index, which is what the authentication tag is checked against.)

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::id::Id;

pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Bytes a sealed object adds to its plaintext (which includes the 1-byte compression tag).
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

const COMPRESSION_NONE: u8 = 0;
const COMPRESSION_ZSTD: u8 = 1;

pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// What a sealed object is; bound into its authentication tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Config,
    Index,
    Snapshot,
    Lock,
    PackHeader,
    DataBlob,
    TreeBlob,
    Segment,
    PgWal,
    MysqlBinlog,
    PruneNotice,
    DamagedNotice,
    DrillRecord,
}

impl ObjectKind {
    pub fn aad(self) -> &'static [u8] {
        match self {
            ObjectKind::Config => b"lifeboat/config",
            ObjectKind::Index => b"lifeboat/index",
            ObjectKind::Snapshot => b"lifeboat/snapshot",
            ObjectKind::Lock => b"lifeboat/lock",
            ObjectKind::PackHeader => b"lifeboat/pack-header",
            ObjectKind::DataBlob => b"lifeboat/blob/data",
            ObjectKind::TreeBlob => b"lifeboat/blob/tree",
            ObjectKind::Segment => b"lifeboat/stream-segment",
            ObjectKind::PgWal => b"lifeboat/pg-wal",
            ObjectKind::MysqlBinlog => b"lifeboat/mysql-binlog",
            ObjectKind::PruneNotice => b"lifeboat/prune-notice",
            ObjectKind::DamagedNotice => b"lifeboat/damaged-notice",
            ObjectKind::DrillRecord => b"lifeboat/drill",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("too short to be an encrypted object ({0} bytes)")]
    TooShort(usize),
    #[error("authentication failed: the object was damaged or written with another key")]
    Authentication,
    #[error("unknown compression tag {0}")]
    UnknownCompression(u8),
    #[error("decompression failed: {0}")]
    Decompression(String),
}

/// The repository's master key: 32 bytes for encryption and 32 bytes for chunk ids.
#[derive(Clone)]
pub struct MasterKey {
    encryption: [u8; 32],
    chunk_id: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub const LEN: usize = 64;

    pub fn generate() -> MasterKey {
        let mut bytes = [0u8; Self::LEN];
        fill_random(&mut bytes);
        MasterKey::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8; Self::LEN]) -> MasterKey {
        let mut encryption = [0u8; 32];
        let mut chunk_id = [0u8; 32];
        encryption.copy_from_slice(&bytes[..32]);
        chunk_id.copy_from_slice(&bytes[32..]);
        MasterKey {
            encryption,
            chunk_id,
        }
    }

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut bytes = [0u8; Self::LEN];
        bytes[..32].copy_from_slice(&self.encryption);
        bytes[32..].copy_from_slice(&self.chunk_id);
        bytes
    }

    /// The id of a blob: BLAKE3 keyed with the repository's chunk-id key, so ids reveal
    /// nothing about content to someone without the key.
    pub fn blob_id(&self, data: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.chunk_id, data).as_bytes())
    }

    /// The seed that perturbs the chunker's gear table, so chunk boundaries (and thus
    /// blob sizes) do not reveal which known files a repository holds.
    pub fn chunker_seed(&self) -> u64 {
        let derived = blake3::derive_key("lifeboat 2026 chunker seed v1", &self.chunk_id);
        u64::from_le_bytes(derived[..8].try_into().expect("8 bytes"))
    }

    /// The key of the local cache of SQLite page hashes: a cache file reveals nothing about
    /// page contents to someone without the repository key.
    pub fn page_hash_key(&self) -> [u8; 32] {
        blake3::derive_key("lifeboat 2026 page hash v1", &self.chunk_id)
    }

    /// Seals `data`, compressing it with zstd at `level` when that makes it smaller.
    pub fn seal(&self, kind: ObjectKind, data: &[u8], zstd_level: Option<i32>) -> Vec<u8> {
        let mut compressor = zstd_level.and_then(|level| zstd::bulk::Compressor::new(level).ok());
        self.seal_with(kind, data, compressor.as_mut())
    }

    /// Like [`MasterKey::seal`], with a compressor that the caller keeps: hot paths reuse
    /// one zstd context per thread instead of allocating one per blob.
    pub fn seal_with(
        &self,
        kind: ObjectKind,
        data: &[u8],
        compressor: Option<&mut zstd::bulk::Compressor<'static>>,
    ) -> Vec<u8> {
        let mut plaintext = Vec::with_capacity(data.len() + 1);
        let compressed = compressor.and_then(|c| c.compress(data).ok());
        match compressed {
            Some(c) if c.len() < data.len() => {
                plaintext.push(COMPRESSION_ZSTD);
                plaintext.extend_from_slice(&c);
            }
            _ => {
                plaintext.push(COMPRESSION_NONE);
                plaintext.extend_from_slice(data);
            }
        }
        seal_raw(&self.encryption, kind.aad(), &plaintext)
    }

    /// Opens a sealed object and undoes its compression. `size_hint` bounds the
    /// decompressed size where the caller knows it (blobs); metadata uses a generous cap.
    pub fn open(
        &self,
        kind: ObjectKind,
        sealed: &[u8],
        size_hint: Option<usize>,
    ) -> Result<Vec<u8>, CryptoError> {
        let plaintext = open_raw(&self.encryption, kind.aad(), sealed)?;
        let (&tag, body) = plaintext.split_first().ok_or(CryptoError::TooShort(0))?;
        match tag {
            COMPRESSION_NONE => Ok(body.to_vec()),
            COMPRESSION_ZSTD => {
                let cap = size_hint.unwrap_or(1 << 30);
                zstd::bulk::decompress(body, cap)
                    .map_err(|e| CryptoError::Decompression(e.to_string()))
            }
            other => Err(CryptoError::UnknownCompression(other)),
        }
    }
}

pub fn seal_raw(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

pub fn open_raw(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::TooShort(sealed.len()));
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn seal_open_roundtrip(data in proptest::collection::vec(any::<u8>(), 0..5000), level in proptest::option::of(1i32..6)) {
            let key = MasterKey::generate();
            let sealed = key.seal(ObjectKind::DataBlob, &data, level);
            prop_assert_eq!(key.open(ObjectKind::DataBlob, &sealed, Some(data.len())).unwrap(), data);
        }

        #[test]
        fn any_flipped_bit_is_detected(data in proptest::collection::vec(any::<u8>(), 1..2000), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let key = MasterKey::generate();
            let mut sealed = key.seal(ObjectKind::Index, &data, Some(3));
            let i = pos.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert_eq!(key.open(ObjectKind::Index, &sealed, None), Err(CryptoError::Authentication));
        }
    }

    #[test]
    fn kind_is_authenticated() {
        let key = MasterKey::generate();
        let sealed = key.seal(ObjectKind::Index, b"{}", None);
        assert_eq!(
            key.open(ObjectKind::Snapshot, &sealed, None),
            Err(CryptoError::Authentication)
        );
        let other = MasterKey::generate();
        assert_eq!(
            other.open(ObjectKind::Index, &sealed, None),
            Err(CryptoError::Authentication)
        );
    }

    #[test]
    fn blob_ids_depend_on_the_key() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_eq!(a.blob_id(b"x"), a.blob_id(b"x"));
        assert_ne!(a.blob_id(b"x"), b.blob_id(b"x"));
    }
}
