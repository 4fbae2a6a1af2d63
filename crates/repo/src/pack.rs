//! Packs: many sealed blobs in one object, with a sealed header at the end listing them.
//!
//! Layout: `blob_0 || blob_1 || ... || sealed header || header length (u32 LE)`.
//! The header plaintext is one 41-byte entry per blob, in order:
//! `kind (u8: 0 data, 1 tree) || stored length (u32 LE) || raw length (u32 LE) || id (32)`.
//! Blob offsets follow from the lengths. A pack's object name is the BLAKE3 of its bytes.

use serde::{Deserialize, Serialize};

use crate::crypto::{MasterKey, ObjectKind, SEAL_OVERHEAD};
use crate::id::Id;

pub const HEADER_ENTRY_LEN: usize = 41;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    Data,
    Tree,
}

impl BlobKind {
    pub fn object_kind(self) -> ObjectKind {
        match self {
            BlobKind::Data => ObjectKind::DataBlob,
            BlobKind::Tree => ObjectKind::TreeBlob,
        }
    }
    fn code(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }
    fn from_code(code: u8) -> Option<BlobKind> {
        match code {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}

/// Where one blob sits inside its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedBlob {
    pub id: Id,
    pub kind: BlobKind,
    pub offset: u64,
    pub length: u32,
    pub raw_length: u32,
}

/// The object name of a pack with this id.
pub fn pack_name(id: &Id) -> String {
    let hex = id.to_hex();
    format!("data/{}/{}", &hex[..2], hex)
}

/// Parses a pack object name back into its id.
pub fn pack_id_from_name(name: &str) -> Option<Id> {
    Id::from_object_name(name)
}

/// The exact size of a pack holding `blobs`; lets `verify` spot truncation by listing alone.
pub fn expected_pack_size(blobs: &[PackedBlob]) -> u64 {
    let data: u64 = blobs.iter().map(|b| b.length as u64).sum();
    data + (SEAL_OVERHEAD + 1 + blobs.len() * HEADER_ENTRY_LEN) as u64 + 4
}

/// Accumulates sealed blobs into one pack.
#[derive(Default)]
pub struct PackBuilder {
    bytes: Vec<u8>,
    blobs: Vec<PackedBlob>,
}

impl PackBuilder {
    pub fn new(capacity: usize) -> PackBuilder {
        PackBuilder {
            bytes: Vec::with_capacity(capacity),
            blobs: Vec::new(),
        }
    }

    pub fn add(&mut self, id: Id, kind: BlobKind, sealed: &[u8], raw_length: usize) {
        self.blobs.push(PackedBlob {
            id,
            kind,
            offset: self.bytes.len() as u64,
            length: sealed.len() as u32,
            raw_length: raw_length as u32,
        });
        self.bytes.extend_from_slice(sealed);
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Appends the sealed header and returns the pack's bytes, id and blob list.
    pub fn finish(mut self, key: &MasterKey) -> (Id, Vec<u8>, Vec<PackedBlob>) {
        let mut header = Vec::with_capacity(self.blobs.len() * HEADER_ENTRY_LEN);
        for blob in &self.blobs {
            header.push(blob.kind.code());
            header.extend_from_slice(&blob.length.to_le_bytes());
            header.extend_from_slice(&blob.raw_length.to_le_bytes());
            header.extend_from_slice(&blob.id.0);
        }
        let sealed = key.seal(ObjectKind::PackHeader, &header, None);
        self.bytes.extend_from_slice(&sealed);
        self.bytes
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        let id = Id::of_stored(&self.bytes);
        (id, self.bytes, self.blobs)
    }
}

/// Reads the blob list from a pack's tail. `tail` must hold at least the last
/// `header length + 4` bytes of the pack; `pack_len` is the whole pack's size.
pub fn parse_header(
    key: &MasterKey,
    pack_len: u64,
    tail: &[u8],
) -> Result<Vec<PackedBlob>, String> {
    if tail.len() < 4 {
        return Err("too short to hold a pack header".into());
    }
    let header_len =
        u32::from_le_bytes(tail[tail.len() - 4..].try_into().expect("4 bytes")) as usize;
    if header_len + 4 > tail.len() || (header_len as u64 + 4) > pack_len {
        return Err(format!("header length {header_len} does not fit the pack"));
    }
    let sealed = &tail[tail.len() - 4 - header_len..tail.len() - 4];
    let header = key
        .open(ObjectKind::PackHeader, sealed, None)
        .map_err(|e| format!("pack header: {e}"))?;
    if header.len() % HEADER_ENTRY_LEN != 0 {
        return Err("pack header has a partial entry".into());
    }
    let mut offset = 0u64;
    let mut blobs = Vec::with_capacity(header.len() / HEADER_ENTRY_LEN);
    for entry in header.chunks_exact(HEADER_ENTRY_LEN) {
        let kind = BlobKind::from_code(entry[0])
            .ok_or_else(|| format!("unknown blob kind {}", entry[0]))?;
        let length = u32::from_le_bytes(entry[1..5].try_into().expect("4 bytes"));
        let raw_length = u32::from_le_bytes(entry[5..9].try_into().expect("4 bytes"));
        let id = Id(entry[9..41].try_into().expect("32 bytes"));
        blobs.push(PackedBlob {
            id,
            kind,
            offset,
            length,
            raw_length,
        });
        offset += length as u64;
    }
    if offset + header_len as u64 + 4 != pack_len {
        return Err("pack header does not match the pack's size".into());
    }
    Ok(blobs)
}

/// The largest header a pack may have; bounds the tail read when recovering packs.
pub fn max_header_len(pack_len: u64) -> u64 {
    pack_len.min(4 + SEAL_OVERHEAD as u64 + 1 + 200_000 * HEADER_ENTRY_LEN as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn header_roundtrip(blobs in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..3000), any::<bool>()), 0..20)) {
            let key = MasterKey::generate();
            let mut builder = PackBuilder::new(0);
            for (data, tree) in &blobs {
                let kind = if *tree { BlobKind::Tree } else { BlobKind::Data };
                let sealed = key.seal(kind.object_kind(), data, Some(3));
                builder.add(key.blob_id(data), kind, &sealed, data.len());
            }
            let (id, bytes, listed) = builder.finish(&key);
            prop_assert_eq!(id, Id::of_stored(&bytes));
            prop_assert_eq!(expected_pack_size(&listed), bytes.len() as u64);
            let parsed = parse_header(&key, bytes.len() as u64, &bytes).unwrap();
            prop_assert_eq!(&parsed, &listed);
            for (blob, (data, _)) in parsed.iter().zip(&blobs) {
                let sealed = &bytes[blob.offset as usize..(blob.offset + blob.length as u64) as usize];
                let opened = key.open(blob.kind.object_kind(), sealed, Some(blob.raw_length as usize)).unwrap();
                prop_assert_eq!(&opened, data);
                prop_assert_eq!(key.blob_id(&opened), blob.id);
            }
        }
    }

    #[test]
    fn truncated_pack_is_rejected() {
        let key = MasterKey::generate();
        let mut builder = PackBuilder::new(0);
        let sealed = key.seal(ObjectKind::DataBlob, b"abc", None);
        builder.add(key.blob_id(b"abc"), BlobKind::Data, &sealed, 3);
        let (_, bytes, _) = builder.finish(&key);
        let cut = &bytes[..bytes.len() - 1];
        assert!(parse_header(&key, cut.len() as u64, cut).is_err());
        assert!(parse_header(&key, 2, &bytes[..2]).is_err());
    }
}
