//! Stream segments: the pages that committed transactions of a replicated database wrote,
//! shipped continuously between base snapshots.
//!
//! A stream is one database path. Each generation starts from a base snapshot
//! (an ordinary snapshot of the database) and numbers its segments from 1; each segment
//! names the one before it, so a gap or a fork is found on restore. Segments hold their
//! pages inline (they are small and written every second), sealed as one object named
//! `streams/<stream>/<generation>/<seq>-<unix ms>-<BLAKE3 of the sealed bytes>`, so the
//! timeline can be listed without reading them.

use serde::{Deserialize, Serialize};

use crate::crypto::{MasterKey, ObjectKind};
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::repository::Repository;

const MAGIC: &[u8; 8] = b"LBSEG001";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentHeader {
    pub stream: String,
    /// The replicated database's path, as given to `replicate` (absolute).
    pub source: String,
    pub host: String,
    /// The generation's base snapshot.
    pub base_snapshot: Id,
    /// 1 for the first segment after the base.
    pub seq: u64,
    /// Object name of segment `seq - 1` (none for the first).
    pub previous: Option<String>,
    /// When the last transaction in the segment was captured.
    pub time: chrono::DateTime<chrono::Utc>,
    pub page_size: u32,
    /// Database size in pages after the segment.
    pub page_count: u32,
    pub transactions: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub header: SegmentHeader,
    /// (1-based page number, page) in page order.
    pub pages: Vec<(u32, Vec<u8>)>,
}

/// A segment as listed: what its name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentName {
    pub name: String,
    pub generation: String,
    pub seq: u64,
    pub time_ms: i64,
}

/// The stream of the database at `source` (an absolute path): keyed, so names reveal no
/// path. Not tied to the host, so a new machine finds the stream of a lost one.
pub fn stream_id(key: &MasterKey, source: &str) -> String {
    let id = key.blob_id(format!("stream\0{source}").as_bytes());
    id.to_hex()[..16].to_string()
}

/// A generation's directory name: the base snapshot's id, shortened.
pub fn generation_name(base_snapshot: &Id) -> String {
    base_snapshot.to_hex()[..16].to_string()
}

impl Segment {
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("segment header serializes");
        let page_size = self.header.page_size as usize;
        let mut out = Vec::with_capacity(12 + header.len() + self.pages.len() * (4 + page_size));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        for (page, data) in &self.pages {
            out.extend_from_slice(&page.to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> std::result::Result<Segment, String> {
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err("not a stream segment".into());
        }
        let header_len = u32::from_le_bytes(bytes[8..12].try_into().expect("4")) as usize;
        let header_bytes = bytes
            .get(12..12 + header_len)
            .ok_or("segment header is truncated")?;
        let header: SegmentHeader =
            serde_json::from_slice(header_bytes).map_err(|e| format!("segment header: {e}"))?;
        let record = 4 + header.page_size as usize;
        let body = &bytes[12 + header_len..];
        if header.page_size == 0 || !body.len().is_multiple_of(record) {
            return Err("segment pages are truncated".into());
        }
        let pages = body
            .chunks_exact(record)
            .map(|r| {
                (
                    u32::from_le_bytes(r[..4].try_into().expect("4")),
                    r[4..].to_vec(),
                )
            })
            .collect();
        Ok(Segment { header, pages })
    }
}

impl Repository {
    /// Seals and stores a segment; returns its object name.
    pub fn save_segment(&self, segment: &Segment) -> Result<String> {
        let sealed = self
            .key()
            .seal(ObjectKind::Segment, &segment.encode(), Some(3));
        let header = &segment.header;
        let name = format!(
            "streams/{}/{}/{:010}-{}-{}",
            header.stream,
            generation_name(&header.base_snapshot),
            header.seq,
            header.time.timestamp_millis(),
            Id::of_stored(&sealed)
        );
        self.storage().write(&name, sealed)?;
        Ok(name)
    }

    /// Every segment of `stream`, by generation and then sequence number.
    pub fn list_segments(&self, stream: &str) -> Result<Vec<SegmentName>> {
        let mut names = Vec::new();
        for object in self.storage().list(&format!("streams/{stream}"))? {
            let parts: Vec<&str> = object.name.rsplit('/').take(2).collect();
            let [file, generation] = parts[..] else {
                continue;
            };
            let mut fields = file.splitn(3, '-');
            let (Some(seq), Some(time), Some(_)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (Ok(seq), Ok(time_ms)) = (seq.parse(), time.parse()) else {
                continue;
            };
            names.push(SegmentName {
                name: object.name.clone(),
                generation: generation.to_string(),
                seq,
                time_ms,
            });
        }
        names.sort_by(|a, b| (&a.generation, a.seq).cmp(&(&b.generation, b.seq)));
        Ok(names)
    }

    /// Reads, authenticates and decodes one segment.
    pub fn load_segment(&self, name: &str) -> Result<Segment> {
        let sealed = self.storage().read(name)?;
        let hash = name.rsplit('-').next().unwrap_or_default();
        if Id::of_stored(&sealed).to_hex() != hash {
            return Err(RepoError::damaged(
                name,
                "content does not match its name (damaged or truncated)",
            ));
        }
        let plain = self
            .key()
            .open(ObjectKind::Segment, &sealed, None)
            .map_err(|e| RepoError::damaged(name, e))?;
        Segment::decode(&plain).map_err(|e| RepoError::damaged(name, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(seq: u64) -> SegmentHeader {
        SegmentHeader {
            stream: "s".into(),
            source: "/srv/app.db".into(),
            host: "h".into(),
            base_snapshot: Id([1; 32]),
            seq,
            previous: None,
            time: chrono::Utc::now(),
            page_size: 512,
            page_count: 9,
            transactions: 2,
        }
    }

    proptest! {
        #[test]
        fn encode_decode_roundtrip(pages in proptest::collection::vec((1u32..100, any::<u8>()), 0..20)) {
            let segment = Segment {
                header: header(3),
                pages: pages.iter().map(|&(p, b)| (p, vec![b; 512])).collect(),
            };
            prop_assert_eq!(Segment::decode(&segment.encode()).unwrap(), segment.clone());
            let bytes = segment.encode();
            prop_assert!(Segment::decode(&bytes[..bytes.len() - 1]).is_err());
        }
    }
}
