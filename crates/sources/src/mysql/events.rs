//! Just enough of the binary log's format (v4 events, as MariaDB and MySQL write them) to
//! archive and replay it: event boundaries and their offsets in the server's file, CRC32
//! checks, and where each transaction ends, with its commit time and GTID. Replaying
//! the events themselves is `mariadb-binlog`'s job.

use std::fmt;
use std::str::FromStr;

/// Every binlog file starts with these four bytes.
pub const MAGIC: &[u8; 4] = b"\xfebin";
pub const HEADER: usize = 19;

pub const QUERY: u8 = 2;
pub const STOP: u8 = 3;
pub const ROTATE: u8 = 4;
pub const FORMAT_DESCRIPTION: u8 = 15;
pub const XID: u8 = 16;
/// MariaDB's GTID event: starts each transaction (or stands alone before one DDL).
pub const GTID: u8 = 162;
pub const XA_PREPARE: u8 = 164;
/// The GTID event's flag for a statement that is its own transaction (DDL).
const FL_STANDALONE: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub timestamp: u32,
    pub kind: u8,
    pub server_id: u32,
    pub size: u32,
    /// The offset just past this event in the server's file (0 for events a server
    /// makes up while streaming).
    pub log_pos: u32,
}

pub fn header(bytes: &[u8]) -> Option<Header> {
    let b = bytes.get(..HEADER)?;
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    Some(Header {
        timestamp: u32_at(0),
        kind: b[4],
        server_id: u32_at(5),
        size: u32_at(9),
        log_pos: u32_at(13),
    })
}

impl Header {
    /// Where this event starts in the server's file; `None` for an event the server made
    /// up for a streaming client (they are not in the file).
    pub fn offset_in_file(&self) -> Option<u64> {
        if self.kind == FORMAT_DESCRIPTION {
            // Always the first event; sent with log_pos 0 when a stream resumes later.
            return Some(MAGIC.len() as u64);
        }
        (self.log_pos >= self.size && self.size as usize >= HEADER)
            .then(|| (self.log_pos - self.size) as u64)
    }

    /// The file's last event: the server moves on to the next file after it.
    pub fn ends_file(&self) -> bool {
        matches!(self.kind, ROTATE | STOP)
    }
}

/// Whether a format description event ends with a valid CRC32, which tells that every
/// event of its file does.
pub fn has_checksums(format_description: &[u8]) -> bool {
    crc_ok(format_description)
}

/// Whether an event's last four bytes are the CRC32 of the rest.
pub fn crc_ok(event: &[u8]) -> bool {
    let Some(split) = event.len().checked_sub(4) else {
        return false;
    };
    let (body, crc) = event.split_at(split);
    crc32fast::hash(body) == u32::from_le_bytes(crc.try_into().expect("4 bytes"))
}

/// A MariaDB global transaction id, `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gtid {
    pub domain: u32,
    pub server: u32,
    pub sequence: u64,
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.sequence)
    }
}

impl FromStr for Gtid {
    type Err = String;
    fn from_str(text: &str) -> Result<Gtid, String> {
        let bad = || format!("{text:?} is not a GTID (DOMAIN-SERVER-SEQUENCE, like 0-1-42)");
        let mut parts = text.trim().split('-');
        let (Some(d), Some(s), Some(n), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(Gtid {
            domain: d.parse().map_err(|_| bad())?,
            server: s.parse().map_err(|_| bad())?,
            sequence: n.parse().map_err(|_| bad())?,
        })
    }
}

/// The end of one transaction: replaying up to `end` of its file applies it whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub file: String,
    pub end: u64,
    /// The commit's time, in whole seconds since the epoch (the binlog has no finer).
    pub time: u32,
    pub gtid: Option<Gtid>,
    /// The statements of the transaction logged as text.
    pub statements: Vec<Statement>,
}

/// A statement logged as text (DDL, in row-based logging), with the database that was
/// current when it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub database: String,
    pub text: String,
    pub gtid: Option<Gtid>,
}

/// Damage found while reading a file's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage(pub String);

/// The events of one whole binlog file (`bytes` from offset 0), from byte `from` on.
pub struct Events<'a> {
    bytes: &'a [u8],
    at: usize,
    checksums: bool,
}

impl<'a> Events<'a> {
    /// The events of `bytes`, a run of whole events cut from a file whose format
    /// description said `checksums`.
    pub fn within(bytes: &'a [u8], checksums: bool) -> Events<'a> {
        Events {
            bytes,
            at: 0,
            checksums,
        }
    }

    pub fn new(bytes: &'a [u8], from: u64) -> Result<Events<'a>, Damage> {
        if bytes.get(..4) != Some(MAGIC.as_slice()) {
            return Err(Damage("does not start as a binlog file".into()));
        }
        let fd = header(&bytes[4..])
            .filter(|h| h.kind == FORMAT_DESCRIPTION)
            .ok_or_else(|| Damage("has no format description event".into()))?;
        let fd_bytes = bytes
            .get(4..4 + fd.size as usize)
            .ok_or_else(|| Damage("format description event is cut short".into()))?;
        Ok(Events {
            bytes,
            at: (from as usize).max(4),
            checksums: has_checksums(fd_bytes),
        })
    }

    pub fn checksums(&self) -> bool {
        self.checksums
    }
}

impl<'a> Iterator for Events<'a> {
    /// The event's offset, header and bytes.
    type Item = Result<(u64, Header, &'a [u8]), Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let offset = self.at;
        let damage = |what: &str| Some(Err(Damage(format!("event at byte {offset}: {what}"))));
        let Some(h) = header(&self.bytes[offset..]) else {
            return damage("cut short");
        };
        let Some(event) = self.bytes.get(offset..offset + h.size as usize) else {
            return damage("cut short");
        };
        if (h.size as usize) < HEADER + if self.checksums { 4 } else { 0 } {
            return damage("too small");
        }
        if self.checksums && !crc_ok(event) {
            return damage("CRC32 does not match");
        }
        self.at = offset + h.size as usize;
        Some(Ok((offset as u64, h, event)))
    }
}

fn gtid_of(h: &Header, event: &[u8]) -> Option<(Gtid, u8)> {
    let body = event.get(HEADER..HEADER + 13)?;
    let sequence = u64::from_le_bytes(body[..8].try_into().ok()?);
    let domain = u32::from_le_bytes(body[8..12].try_into().ok()?);
    Some((
        Gtid {
            domain,
            server: h.server_id,
            sequence,
        },
        body[12],
    ))
}

/// A query event's current database and text.
fn query_of(event: &[u8], checksums: bool) -> Option<(String, String)> {
    let body = event.get(HEADER..event.len() - if checksums { 4 } else { 0 })?;
    let db_len = *body.get(8)? as usize;
    let vars_len = u16::from_le_bytes(body.get(11..13)?.try_into().ok()?) as usize;
    let db_start = 13 + vars_len;
    let db = body.get(db_start..db_start + db_len)?;
    let text = body.get(db_start + db_len + 1..)?;
    Some((
        String::from_utf8_lossy(db).into_owned(),
        String::from_utf8_lossy(text).into_owned(),
    ))
}

/// Walks one file's transactions from byte `from`. A transaction cut off by the end of
/// `bytes` is left out.
pub fn commits(file: &str, bytes: &[u8], from: u64) -> Result<Vec<Commit>, Damage> {
    let events = Events::new(bytes, from)?;
    commits_of(file, events, 0)
}

/// The commits among `events`, whose offsets in the file are `base` higher.
pub fn commits_of(file: &str, events: Events<'_>, base: u64) -> Result<Vec<Commit>, Damage> {
    let checksums = events.checksums();
    let mut found = Vec::new();
    let mut open: Option<(Option<Gtid>, bool)> = None;
    let mut statements = Vec::new();
    for event in events {
        let (offset, h, event) = event?;
        let offset = offset + base;
        let end = offset + h.size as u64;
        let mut ends = false;
        match h.kind {
            GTID => {
                let (gtid, flags) = gtid_of(&h, event)
                    .ok_or_else(|| Damage(format!("GTID event at byte {offset} is cut short")))?;
                open = Some((Some(gtid), flags & FL_STANDALONE != 0));
            }
            XID | XA_PREPARE => ends = true,
            QUERY => {
                let (database, text) = query_of(event, checksums)
                    .ok_or_else(|| Damage(format!("query event at byte {offset} is cut short")))?;
                let word = text.trim().to_ascii_uppercase();
                match word.as_str() {
                    "BEGIN" | "START TRANSACTION" => {
                        if open.is_none() {
                            open = Some((None, false));
                        }
                    }
                    "COMMIT" | "ROLLBACK" => ends = true,
                    _ => {
                        let gtid = open.and_then(|(g, _)| g);
                        statements.push(Statement {
                            database,
                            text,
                            gtid,
                        });
                        // A statement outside BEGIN/COMMIT is its own transaction.
                        ends = open.is_none_or(|(_, standalone)| standalone);
                    }
                }
            }
            _ => {}
        }
        if ends {
            found.push(Commit {
                file: file.to_string(),
                end,
                time: h.timestamp,
                gtid: open.and_then(|(g, _)| g),
                statements: std::mem::take(&mut statements),
            });
            open = None;
        }
    }
    Ok(found)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An event as a server writes it, CRC32 included.
    pub fn event(kind: u8, time: u32, log_pos_base: u64, body: &[u8]) -> Vec<u8> {
        let size = (HEADER + body.len() + 4) as u32;
        let mut e = Vec::new();
        e.extend_from_slice(&time.to_le_bytes());
        e.push(kind);
        e.extend_from_slice(&7u32.to_le_bytes());
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&((log_pos_base as u32) + size).to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(body);
        let crc = crc32fast::hash(&e);
        e.extend_from_slice(&crc.to_le_bytes());
        e
    }

    pub fn query_body(db: &str, text: &str) -> Vec<u8> {
        let mut b = vec![0u8; 8];
        b.push(db.len() as u8);
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(db.as_bytes());
        b.push(0);
        b.extend_from_slice(text.as_bytes());
        b
    }

    pub fn gtid_body(seq: u64, standalone: bool) -> Vec<u8> {
        let mut b = seq.to_le_bytes().to_vec();
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(if standalone { FL_STANDALONE } else { 0 });
        b
    }

    /// A file: magic, a format description, then `events` (kind, time, body).
    pub fn file(events: &[(u8, u32, Vec<u8>)]) -> Vec<u8> {
        let mut f = MAGIC.to_vec();
        let fd_body = vec![4u8; 80];
        let fd = event(FORMAT_DESCRIPTION, 100, f.len() as u64, &fd_body);
        f.extend_from_slice(&fd);
        for (kind, time, body) in events {
            let e = event(*kind, *time, f.len() as u64, body);
            f.extend_from_slice(&e);
        }
        f
    }

    #[test]
    fn finds_commits_ddl_and_offsets() {
        let bytes = file(&[
            (GTID, 200, gtid_body(1, true)),
            (QUERY, 200, query_body("shop", "CREATE TABLE t (id int)")),
            (GTID, 201, gtid_body(2, false)),
            (QUERY, 201, query_body("shop", "BEGIN")),
            (19, 201, vec![1, 2, 3]),
            (XID, 202, vec![9; 8]),
            (GTID, 203, gtid_body(3, false)),
            (QUERY, 203, query_body("shop", "BEGIN")),
        ]);
        let commits = commits("b.000001", &bytes, 0).unwrap();
        assert_eq!(
            commits.len(),
            2,
            "the open transaction at the end is left out"
        );
        assert_eq!(commits[0].gtid.unwrap().to_string(), "0-7-1");
        assert_eq!(commits[1].time, 202);
        let statements = &commits[0].statements;
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0].database, "shop");
        assert_eq!(statements[0].text, "CREATE TABLE t (id int)");
        assert!(commits[1].statements.is_empty());
        for (offset, h, _) in Events::new(&bytes, 0).unwrap().map(Result::unwrap) {
            assert_eq!(h.offset_in_file(), Some(offset));
        }
        // Resuming from a commit's end finds only what follows.
        let later = super::commits("b.000001", &bytes, commits[0].end).unwrap();
        assert_eq!(later, commits[1..]);
    }

    #[test]
    fn a_flipped_byte_is_damage() {
        let mut bytes = file(&[(XID, 202, vec![9; 8])]);
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        assert!(commits("f.1", &bytes, 0).is_err());
        assert!(Events::new(b"nope", 0).is_err());
    }

    #[test]
    fn gtids_parse_and_print() {
        let g: Gtid = "0-1-42".parse().unwrap();
        assert_eq!(g.to_string(), "0-1-42");
        assert!("0-1".parse::<Gtid>().is_err());
        assert!("a-b-c".parse::<Gtid>().is_err());
    }
}
