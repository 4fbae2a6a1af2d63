//! 32-byte identifiers of blobs and stored objects, written as lowercase hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 32-byte id: a keyed BLAKE3 hash for blobs, a plain BLAKE3 hash of the stored bytes
/// for repository objects.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub [u8; 32]);

impl Id {
    /// Plain BLAKE3 of stored bytes: names packs, index files, snapshots, keys and locks,
    /// so a reader can tell a renamed or damaged object without any key.
    pub fn of_stored(bytes: &[u8]) -> Id {
        Id(*blake3::hash(bytes).as_bytes())
    }

    pub fn random() -> Id {
        let mut bytes = [0u8; 32];
        crate::crypto::fill_random(&mut bytes);
        Id(bytes)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The id in the last component of an object name (`snapshots/<id>`, `data/ab/<id>`).
    pub fn from_object_name(name: &str) -> Option<Id> {
        name.rsplit('/').next()?.parse().ok()
    }

    /// The first 8 hex digits, as people see ids in listings.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a 64-digit hex id")]
pub struct BadId(pub String);

impl FromStr for Id {
    type Err = BadId;
    fn from_str(s: &str) -> Result<Id, BadId> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| BadId(s.to_string()))?;
        Ok(Id(bytes))
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
