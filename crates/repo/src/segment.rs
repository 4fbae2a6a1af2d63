//! Stream segments: the pages that committed transactions of a replicated database wrote,
//! shipped continuously between base snapshots.
//!
//! A stream is one database path. Each generation starts from a base snapshot
//! (an ordinary snapshot of the database) and numbers its segments from 1; each segment
//! names the one before it, so a gap or a fork is found on restore. Segments hold their
//! pages inline (they are small and written every second), transaction by transaction,
//! sealed as one object named
//! `streams/<stream>/<generation>/<seq>-<unix ms>-t<first>_<last>-<BLAKE3 of the sealed bytes>`
//! (`first` and `last` are the stream's numbers of the transactions it holds), so the
//! timeline can be listed, and a transaction found, without reading them. Version 1
//! segments (no transaction numbers, one merged set of pages) are still read.

use serde::{Deserialize, Serialize};

use crate::crypto::{MasterKey, ObjectKind};
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::repository::Repository;

/// Version 1: one merged set of pages. Version 2: the pages of each transaction.
const MAGIC_V1: &[u8; 8] = b"LBSEG001";
const MAGIC: &[u8; 8] = b"LBSEG002";

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
    /// The stream's number for the first transaction in the segment; numbers run on
    /// across segments and generations. 0 in version 1 segments, which have none.
    #[serde(default)]
    pub first_transaction: u64,
}

impl SegmentHeader {
    /// Whether this header continues a generation's chain as segment `seq`, after the
    /// segment named `previous` (none for the first), on the base snapshot `base`.
    /// Restore and `verify` both hold segments to this rule.
    pub fn follows(&self, seq: u64, previous: Option<&str>, base: &Id) -> bool {
        self.seq == seq && self.previous.as_deref() == previous && self.base_snapshot == *base
    }

    /// The stream numbers of the first and last transactions held, when numbered.
    pub fn transaction_range(&self) -> Option<(u64, u64)> {
        (self.first_transaction > 0 && self.transactions > 0).then(|| {
            (
                self.first_transaction,
                self.first_transaction + self.transactions as u64 - 1,
            )
        })
    }
}

/// One committed transaction: the database size after it and the pages it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub page_count: u32,
    /// (1-based page number, page) in page order.
    pub pages: Vec<(u32, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub header: SegmentHeader,
    /// In commit order. A version 1 segment decodes as one transaction holding every
    /// page it wrote.
    pub transactions: Vec<Transaction>,
}

/// A segment as listed: what its name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentName {
    pub name: String,
    pub generation: String,
    pub seq: u64,
    pub time_ms: i64,
    /// The stream numbers of its first and last transactions (none in version 1).
    pub transactions: Option<(u64, u64)>,
    /// Its stored size (sealed), as listed.
    pub stored_bytes: u64,
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
    /// `magic || header length (u32 LE) || header JSON`, then per transaction:
    /// `page count after it (u32 LE) || pages written (u32 LE) || (page u32 LE, page)*`.
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("segment header serializes");
        let page_size = self.header.page_size as usize;
        let pages: usize = self.transactions.iter().map(|t| t.pages.len()).sum();
        let mut out = Vec::with_capacity(
            12 + header.len() + self.transactions.len() * 8 + pages * (4 + page_size),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        for transaction in &self.transactions {
            out.extend_from_slice(&transaction.page_count.to_le_bytes());
            out.extend_from_slice(&(transaction.pages.len() as u32).to_le_bytes());
            for (page, data) in &transaction.pages {
                out.extend_from_slice(&page.to_le_bytes());
                out.extend_from_slice(data);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> std::result::Result<Segment, String> {
        let version2 = match bytes.get(..8) {
            Some(m) if m == MAGIC => true,
            Some(m) if m == MAGIC_V1 => false,
            _ => return Err("not a stream segment".into()),
        };
        let header_len = u32::from_le_bytes(
            bytes
                .get(8..12)
                .ok_or("segment header is truncated")?
                .try_into()
                .expect("4"),
        ) as usize;
        let header_bytes = bytes
            .get(12..12 + header_len)
            .ok_or("segment header is truncated")?;
        let header: SegmentHeader =
            serde_json::from_slice(header_bytes).map_err(|e| format!("segment header: {e}"))?;
        if header.page_size == 0 {
            return Err("segment page size is 0".into());
        }
        let record = 4 + header.page_size as usize;
        let mut body = &bytes[12 + header_len..];
        let page = |r: &[u8]| {
            (
                u32::from_le_bytes(r[..4].try_into().expect("4")),
                r[4..].to_vec(),
            )
        };
        if !version2 {
            if !body.len().is_multiple_of(record) {
                return Err("segment pages are truncated".into());
            }
            let transaction = Transaction {
                page_count: header.page_count,
                pages: body.chunks_exact(record).map(page).collect(),
            };
            return Ok(Segment {
                header,
                transactions: vec![transaction],
            });
        }
        let mut transactions = Vec::new();
        while !body.is_empty() {
            let word = |b: &[u8], at: usize| -> std::result::Result<u32, String> {
                Ok(u32::from_le_bytes(
                    b.get(at..at + 4)
                        .ok_or("segment transaction is truncated")?
                        .try_into()
                        .expect("4"),
                ))
            };
            let (page_count, count) = (word(body, 0)?, word(body, 4)? as usize);
            let end = count
                .checked_mul(record)
                .and_then(|n| n.checked_add(8))
                .filter(|&end| end <= body.len())
                .ok_or("segment pages are truncated")?;
            transactions.push(Transaction {
                page_count,
                pages: body[8..end].chunks_exact(record).map(page).collect(),
            });
            body = &body[end..];
        }
        if transactions.len() != header.transactions as usize {
            return Err(format!(
                "segment holds {} transactions, its header says {}",
                transactions.len(),
                header.transactions
            ));
        }
        Ok(Segment {
            header,
            transactions,
        })
    }
}

impl Repository {
    /// Seals and stores a segment; returns its object name.
    pub fn save_segment(&self, segment: &Segment) -> Result<String> {
        let sealed = self
            .key()
            .seal(ObjectKind::Segment, &segment.encode(), Some(3));
        let header = &segment.header;
        let numbers = header
            .transaction_range()
            .map(|(first, last)| format!("t{first}_{last}-"))
            .unwrap_or_default();
        let name = format!(
            "streams/{}/{}/{:010}-{}-{numbers}{}",
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
            let (Some(seq), Some(time), Some(rest)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (Ok(seq), Ok(time_ms)) = (seq.parse(), time.parse()) else {
                continue;
            };
            let transactions = rest
                .strip_prefix('t')
                .and_then(|r| r.split_once('-'))
                .and_then(|(range, _)| range.split_once('_'))
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
            names.push(SegmentName {
                name: object.name.clone(),
                generation: generation.to_string(),
                seq,
                time_ms,
                transactions,
                stored_bytes: object.size,
            });
        }
        names.sort_by(|a, b| (&a.generation, a.seq).cmp(&(&b.generation, b.seq)));
        Ok(names)
    }

    /// Reads, authenticates and decodes one segment.
    pub fn load_segment(&self, name: &str) -> Result<Segment> {
        let limit = crate::repository::max_stored_size(ObjectKind::Segment);
        let sealed = self.storage().read_limited(name, limit)?;
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

    fn header(seq: u64, transactions: u32) -> SegmentHeader {
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
            transactions,
            first_transaction: 40,
        }
    }

    proptest! {
        #[test]
        fn encode_decode_roundtrip(
            transactions in proptest::collection::vec(
                (1u32..50, proptest::collection::vec((1u32..100, any::<u8>()), 0..6)),
                1..8,
            )
        ) {
            let segment = Segment {
                header: header(3, transactions.len() as u32),
                transactions: transactions
                    .iter()
                    .map(|(count, pages)| Transaction {
                        page_count: *count,
                        pages: pages.iter().map(|&(p, b)| (p, vec![b; 512])).collect(),
                    })
                    .collect(),
            };
            let bytes = segment.encode();
            prop_assert_eq!(Segment::decode(&bytes).unwrap(), segment.clone());
            prop_assert!(Segment::decode(&bytes[..bytes.len() - 1]).is_err());
            // A transaction dropped from the end is found: the header counts them.
            let mut fewer = segment.clone();
            fewer.transactions.pop();
            prop_assert!(Segment::decode(&fewer.encode()).is_err());
        }
    }

    #[test]
    fn version_1_segments_read_as_one_transaction() {
        let mut head = header(1, 3);
        head.first_transaction = 0;
        let json = serde_json::to_vec(&head).unwrap();
        let mut bytes = MAGIC_V1.to_vec();
        bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&json);
        for page in [2u32, 7] {
            bytes.extend_from_slice(&page.to_le_bytes());
            bytes.extend_from_slice(&[page as u8; 512]);
        }
        let segment = Segment::decode(&bytes).unwrap();
        assert_eq!(segment.transactions.len(), 1);
        assert_eq!(segment.transactions[0].page_count, 9);
        assert_eq!(segment.transactions[0].pages[1], (7, vec![7; 512]));
        assert_eq!(segment.header.transaction_range(), None);
        assert_eq!(header(1, 3).transaction_range(), Some((40, 42)));
    }
}
