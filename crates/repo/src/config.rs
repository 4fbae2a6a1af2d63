//! The repository config: format version and the parameters every writer must share.

use serde::{Deserialize, Serialize};

use crate::id::Id;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Always "fastcdc-2020" in format version 1.
    pub algorithm: String,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    /// 64 KiB / 256 KiB / 1 MiB: a quarter of restic's sizes, so an isolated change costs
    /// about 256 KiB rather than 1 MiB while a 1 GiB file needs only ~4,000 index entries.
    /// Measured (bench/results/chunk-sizes-2026-11-26.md): for 1% of rows changed at random,
    /// every size from 64 KiB up re-stores the whole database or dump, and only 8-16 KiB
    /// chunks help; database files need page-level increments, not smaller chunks.
    fn default() -> Self {
        ChunkerParams {
            algorithm: "fastcdc-2020".into(),
            min_size: 64 * 1024,
            avg_size: 256 * 1024,
            max_size: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub version: u32,
    pub id: Id,
    pub created: chrono::DateTime<chrono::Utc>,
    pub chunker: ChunkerParams,
    /// zstd level used for blobs; readers do not need it.
    pub compression_level: i32,
    /// Packs are closed once they reach this many bytes.
    pub pack_size: u32,
    /// S3 Object Lock: every writer locks what it stores for this long, and deletes wait for
    /// the retention to expire (FORMAT §5, "Object lock"). Absent: objects are not locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<lifeboat_storage::LockPolicy>,
}

impl RepoConfig {
    pub fn new() -> RepoConfig {
        RepoConfig {
            version: FORMAT_VERSION,
            id: Id::random(),
            created: chrono::Utc::now(),
            chunker: ChunkerParams::default(),
            compression_level: 3,
            pack_size: 8 * 1024 * 1024,
            object_lock: None,
        }
    }
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig::new()
    }
}
