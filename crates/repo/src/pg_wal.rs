//! The PostgreSQL WAL archive: every file `archive_command` hands over (segments,
//! `.history`, `.backup`, `.partial`), sealed as one object each at
//! `wal/<system identifier>/<file name>`. The name is PostgreSQL's own, so
//! `restore_command` finds a file with one read; the sealed plaintext repeats the cluster
//! and name, so an object moved to another name does not open as that file.

use crate::crypto::ObjectKind;
use crate::error::{RepoError, Result};
use crate::Repository;

const MAGIC: &[u8; 8] = b"LBPGWAL1";

/// What a push found.
#[derive(Debug, PartialEq, Eq)]
pub enum WalPush {
    Stored,
    /// The same bytes were archived before: PostgreSQL may push a file again after a
    /// crash, and must hear success.
    AlreadyArchived,
}

pub fn wal_object_name(cluster: &str, file: &str) -> String {
    format!("wal/{cluster}/{file}")
}

pub(crate) fn check_names(cluster: &str, file: &str) -> Result<()> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            && !s.starts_with('.')
    };
    if ok(cluster) && ok(file) {
        Ok(())
    } else {
        Err(RepoError::Invalid(format!(
            "{file:?} (cluster {cluster:?}) is not a PostgreSQL WAL file name"
        )))
    }
}

fn encode(cluster: &str, file: &str, data: &[u8]) -> Vec<u8> {
    crate::labelled::encode(MAGIC, &format!("{cluster}/{file}"), data)
}

fn decode(object: &str, cluster: &str, file: &str, plain: Vec<u8>) -> Result<Vec<u8>> {
    let label = format!("{cluster}/{file}");
    crate::labelled::decode(MAGIC, "an archived WAL file", object, &label, plain)
}

impl Repository {
    /// Archives one WAL file. Returns only once the object is durable (the storage layer
    /// fsyncs local files and their directory; an object store acknowledges a PUT once
    /// stored). A different file already archived under the same name is an error:
    /// two clusters (or timelines) writing one archive would make recovery replay the
    /// wrong history.
    pub fn push_wal(&self, cluster: &str, file: &str, data: &[u8]) -> Result<WalPush> {
        check_names(cluster, file)?;
        let name = wal_object_name(cluster, file);
        if let Some(existing) = self.fetch_wal(cluster, file)? {
            if existing == data {
                return Ok(WalPush::AlreadyArchived);
            }
            return Err(RepoError::Invalid(format!(
                "{file} is already archived for cluster {cluster} with different contents \
                 ({} bytes archived, {} bytes offered); refusing to overwrite it — is a second \
                 server with the same system identifier archiving into this repository?",
                existing.len(),
                data.len()
            )));
        }
        let sealed = self
            .key()
            .seal(ObjectKind::PgWal, &encode(cluster, file, data), Some(3));
        self.storage().write(&name, sealed)?;
        Ok(WalPush::Stored)
    }

    /// One archived WAL file, or `None` when the archive does not hold it.
    pub fn fetch_wal(&self, cluster: &str, file: &str) -> Result<Option<Vec<u8>>> {
        check_names(cluster, file)?;
        let name = wal_object_name(cluster, file);
        match self.open_if_present(ObjectKind::PgWal, &name)? {
            Some(plain) => decode(&name, cluster, file, plain).map(Some),
            None => Ok(None),
        }
    }

    /// The names of every file archived for `cluster`, sorted.
    pub fn list_wal(&self, cluster: &str) -> Result<Vec<String>> {
        let prefix = format!("wal/{cluster}");
        Ok(self
            .storage()
            .list(&prefix)?
            .into_iter()
            .filter_map(|o| o.name.rsplit('/').next().map(str::to_string))
            .collect())
    }
}

/// The name of the WAL segment holding `lsn` on `timeline`.
pub fn segment_name(timeline: u32, lsn: u64, segment_size: u64) -> String {
    let segno = lsn / segment_size;
    let per_id = 0x1_0000_0000 / segment_size;
    format!("{timeline:08X}{:08X}{:08X}", segno / per_id, segno % per_id)
}

/// The timeline and segment number of a segment file name.
pub fn parse_segment_name(name: &str, segment_size: u64) -> Option<(u32, u64)> {
    if name.len() != 24 || !is_segment(name) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| u64::from_str_radix(&name[range], 16).ok();
    let per_id = 0x1_0000_0000 / segment_size;
    Some((field(0..8)? as u32, field(8..16)? * per_id + field(16..24)?))
}

/// How far the archive reaches from a base backup's first WAL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveReach {
    /// The last file of the unbroken run of segments from the start, on its timeline.
    pub last: String,
    /// The first file missing after that run, when later ones exist (a gap).
    pub gap: Option<String>,
}

/// Follows the archived segments of `cluster` from `start_wal` for as long as they are
/// consecutive.
pub fn archive_reach(
    archived: &[String],
    start_wal: &str,
    segment_size: u64,
) -> Option<ArchiveReach> {
    let (timeline, start) = parse_segment_name(start_wal, segment_size)?;
    let mut segnos: Vec<u64> = archived
        .iter()
        .filter_map(|n| parse_segment_name(n, segment_size))
        .filter(|(t, n)| *t == timeline && *n >= start)
        .map(|(_, n)| n)
        .collect();
    segnos.sort_unstable();
    segnos.dedup();
    if segnos.first() != Some(&start) {
        return None;
    }
    let mut last = start;
    for &n in &segnos[1..] {
        if n != last + 1 {
            break;
        }
        last = n;
    }
    let name = |n: u64| segment_name(timeline, n * segment_size, segment_size);
    let gap = (segnos.last() != Some(&last)).then(|| name(last + 1));
    Some(ArchiveReach {
        last: name(last),
        gap,
    })
}

/// Whether `name` is a WAL segment (as opposed to `.history` or `.backup` files).
pub fn is_segment(name: &str) -> bool {
    let base = name.strip_suffix(".partial").unwrap_or(name);
    base.len() == 24 && base.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encode_decode_roundtrip(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let plain = encode("7311", "000000010000000000000002", &data);
            prop_assert_eq!(decode("o", "7311", "000000010000000000000002", plain.clone()).unwrap(), data);
            prop_assert!(decode("o", "7311", "000000010000000000000003", plain).is_err());
        }
    }

    #[test]
    fn only_wal_file_names() {
        assert!(check_names("7311", "00000002.history").is_ok());
        assert!(check_names("7311", "000000010000000000000002.00000028.backup").is_ok());
        assert!(check_names("7311", "../config").is_err());
        assert!(check_names("", "x").is_err());
    }
}
