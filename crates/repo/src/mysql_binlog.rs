//! The MySQL/MariaDB binary log archive: the server's binlog files, stored in pieces as
//! they grow, one sealed object each at `binlog/<server>/<file>/<start>-<end>[-rotated]`.
//! A piece holds the bytes `[start, end)` of the file, whole events only; `-rotated`
//! marks the piece ending with the file's last event (ROTATE or STOP), so how far the
//! archive reaches is known from the listing alone. Pieces are never rewritten: a
//! streamer that restarts resumes at the end of what is archived, which suits an
//! append-only repository. The plaintext repeats the name, so a piece moved to another
//! name does not open as that piece.

use crate::crypto::ObjectKind;
use crate::error::{RepoError, Result};
use crate::Repository;

const MAGIC: &[u8; 8] = b"LBBINLG1";
const ROTATED: &str = "-rotated";

/// One stored piece of one binlog file, as named in the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogPiece {
    pub file: String,
    pub start: u64,
    pub end: u64,
    /// Ends with the file's last event: the next file continues the log.
    pub rotated: bool,
}

impl BinlogPiece {
    pub fn object_name(&self, server: &str) -> String {
        format!(
            "binlog/{server}/{}/{:016x}-{:016x}{}",
            self.file,
            self.start,
            self.end,
            if self.rotated { ROTATED } else { "" }
        )
    }

    /// Reads a piece's last name component (`<start>-<end>[-rotated]`).
    fn parse(file: &str, name: &str) -> Option<BinlogPiece> {
        let (span, rotated) = match name.strip_suffix(ROTATED) {
            Some(span) => (span, true),
            None => (name, false),
        };
        let (start, end) = span.split_once('-')?;
        if start.len() != 16 || end.len() != 16 {
            return None;
        }
        let start = u64::from_str_radix(start, 16).ok()?;
        let end = u64::from_str_radix(end, 16).ok()?;
        (start < end).then(|| BinlogPiece {
            file: file.to_string(),
            start,
            end,
            rotated,
        })
    }
}

/// `host:port` of a server URL without password or database, as snapshots record it
/// (`mysql://app@db:3306`); MySQL's port when none is given.
pub fn server_address(server_url: &str) -> String {
    let rest = server_url.split_once("://").map_or(server_url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    let has_port = match rest.rsplit_once(':') {
        Some((host, port)) => !host.ends_with(':') && port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    };
    if has_port && !rest.ends_with(']') {
        rest.to_string()
    } else {
        format!("{rest}:3306")
    }
}

/// The name the archive of the server at `server_url` is filed under: keyed, so it
/// reveals no address, and the same for every user and database of that server.
pub fn server_key(repo: &Repository, server_url: &str) -> String {
    crate::segment::stream_id(
        repo.key(),
        &format!("mysql-binlog\0{}", server_address(server_url)),
    )
}

/// What a push found.
#[derive(Debug, PartialEq, Eq)]
pub enum BinlogPush {
    Stored,
    /// The same piece was archived before (a streamer restarted after storing it).
    AlreadyArchived,
}

/// A server name (a keyed id) or binlog file name that may appear in an object name.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RepoError::Invalid(format!(
            "{name:?} is not a usable binlog {what} name (letters, digits, '.', '_' and '-')"
        )))
    }
}

/// The number a binlog file name ends with (`mysql-bin.000042` is 42): files follow
/// each other in this order.
pub fn file_number(file: &str) -> Option<u64> {
    file.rsplit_once('.')?.1.parse().ok()
}

fn encode(label: &str, data: &[u8]) -> Vec<u8> {
    crate::labelled::encode(MAGIC, label, data)
}

fn decode(object: &str, label: &str, plain: Vec<u8>) -> Result<Vec<u8>> {
    crate::labelled::decode(MAGIC, "an archived binlog piece", object, label, plain)
}

impl Repository {
    /// Archives one piece. Returns once the object is durable. The same name holding
    /// other bytes is an error: two servers filed under one name would replay the wrong
    /// history.
    pub fn push_binlog(
        &self,
        server: &str,
        piece: &BinlogPiece,
        data: &[u8],
    ) -> Result<BinlogPush> {
        check_name("server", server)?;
        check_name("file", &piece.file)?;
        if data.len() as u64 != piece.end - piece.start {
            return Err(RepoError::Invalid(format!(
                "a binlog piece of {} bytes named for {}",
                data.len(),
                piece.end - piece.start
            )));
        }
        if let Some(existing) = self.fetch_binlog(server, piece)? {
            if existing == data {
                return Ok(BinlogPush::AlreadyArchived);
            }
            return Err(RepoError::Invalid(format!(
                "{} bytes {}-{} are already archived with different contents; \
                 is a second server filed under the same name?",
                piece.file, piece.start, piece.end
            )));
        }
        let sealed = self.key().seal(
            ObjectKind::MysqlBinlog,
            &encode(&piece.object_name(server), data),
            Some(3),
        );
        self.storage().write(&piece.object_name(server), sealed)?;
        Ok(BinlogPush::Stored)
    }

    /// One archived piece, or `None` when the archive does not hold it.
    pub fn fetch_binlog(&self, server: &str, piece: &BinlogPiece) -> Result<Option<Vec<u8>>> {
        check_name("server", server)?;
        check_name("file", &piece.file)?;
        let name = piece.object_name(server);
        let Some(plain) = self.open_if_present(ObjectKind::MysqlBinlog, &name)? else {
            return Ok(None);
        };
        let data = decode(&name, &piece.object_name(server), plain)?;
        if data.len() as u64 != piece.end - piece.start {
            return Err(RepoError::damaged(
                &name,
                "holds fewer bytes than its name says",
            ));
        }
        Ok(Some(data))
    }

    /// The pieces among object `names` of `server`'s archive (others are left out).
    pub fn list_binlog_names(&self, server: &str, names: &[String]) -> Vec<BinlogPiece> {
        let prefix = format!("binlog/{server}/");
        names
            .iter()
            .filter_map(|n| n.strip_prefix(&prefix))
            .filter_map(|rest| rest.split_once('/'))
            .filter(|(file, _)| check_name("file", file).is_ok())
            .filter_map(|(file, span)| BinlogPiece::parse(file, span))
            .collect()
    }

    /// Every piece archived for `server`, in log order (file number, then start); names
    /// that are not pieces are left out.
    pub fn list_binlog(&self, server: &str) -> Result<Vec<BinlogPiece>> {
        check_name("server", server)?;
        let names: Vec<String> = self
            .storage()
            .list(&format!("binlog/{server}"))?
            .into_iter()
            .map(|o| o.name)
            .collect();
        let mut pieces = self.list_binlog_names(server, &names);
        sort_pieces(&mut pieces);
        Ok(pieces)
    }
}

pub fn sort_pieces(pieces: &mut [BinlogPiece]) {
    pieces.sort_by(|a, b| {
        (file_number(&a.file), &a.file, a.start, a.end).cmp(&(
            file_number(&b.file),
            &b.file,
            b.start,
            b.end,
        ))
    });
}

/// The pieces that hold one file from its first byte without a hole, longest first
/// where two start at one offset (two streamers that cut differently).
pub fn file_chain<'a>(pieces: &'a [BinlogPiece], file: &str) -> Vec<&'a BinlogPiece> {
    let mut chain = Vec::new();
    let mut at = 0;
    loop {
        let next = pieces
            .iter()
            .filter(|p| p.file == file && p.start == at)
            .max_by_key(|p| (p.rotated, p.end));
        match next {
            Some(p) => {
                at = p.end;
                chain.push(p);
                if p.rotated {
                    return chain;
                }
            }
            None => return chain,
        }
    }
}

/// How far the archive reaches, without a hole, from a position in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogReach {
    /// The files read from `start`'s file on, each held from byte 0 to `end`.
    pub files: Vec<(String, u64)>,
    /// The first thing missing after the run, when the archive holds something later.
    pub gap: Option<String>,
}

/// Follows the archive from byte `position` of `file` through consecutive, complete
/// files. `None` when `file` is not held from its start to `position`.
pub fn binlog_reach(pieces: &[BinlogPiece], file: &str, position: u64) -> Option<BinlogReach> {
    let mut files = Vec::new();
    let mut current = file.to_string();
    loop {
        let chain = file_chain(pieces, &current);
        let end = chain.last().map_or(0, |p| p.end);
        let rotated = chain.last().is_some_and(|p| p.rotated);
        if files.is_empty() && end < position {
            return None;
        }
        files.push((current.clone(), end));
        let later = |f: &BinlogPiece| {
            file_number(&f.file) > file_number(&current) || f.file == current && f.start >= end
        };
        if !rotated {
            let gap = pieces
                .iter()
                .any(later)
                .then(|| format!("{current} from byte {end}"));
            return Some(BinlogReach { files, gap });
        }
        let Some(next) = pieces
            .iter()
            .filter(|p| file_number(&p.file) > file_number(&current))
            .map(|p| p.file.clone())
            .next()
        else {
            return Some(BinlogReach { files, gap: None });
        };
        let consecutive = file_number(&next) == file_number(&current).map(|n| n + 1);
        if !consecutive || file_chain(pieces, &next).is_empty() {
            let gap = Some(match file_number(&current) {
                Some(n) if !consecutive => format!("the file after {current} (number {})", n + 1),
                _ => format!("{next} from byte 0"),
            });
            return Some(BinlogReach { files, gap });
        }
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn piece(file: &str, start: u64, end: u64, rotated: bool) -> BinlogPiece {
        BinlogPiece {
            file: file.into(),
            start,
            end,
            rotated,
        }
    }

    proptest! {
        #[test]
        fn encode_decode_roundtrip(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let plain = encode("binlog/s/f.1/x", &data);
            prop_assert_eq!(decode("o", "binlog/s/f.1/x", plain.clone()).unwrap(), data);
            prop_assert!(decode("o", "binlog/s/f.2/x", plain).is_err());
        }

        #[test]
        fn names_round_trip(start in 0u64..1 << 40, len in 1u64..1 << 30, rotated: bool) {
            let p = piece("mysql-bin.000042", start, start + len, rotated);
            let name = p.object_name("abc");
            let last = name.rsplit('/').next().unwrap();
            prop_assert_eq!(BinlogPiece::parse("mysql-bin.000042", last), Some(p));
        }
    }

    #[test]
    fn reach_follows_rotations_and_names_the_gap() {
        let mut pieces = vec![
            piece("b.000001", 0, 100, false),
            piece("b.000001", 100, 250, true),
            piece("b.000002", 0, 80, false),
            piece("b.000002", 80, 90, false),
        ];
        sort_pieces(&mut pieces);
        let reach = binlog_reach(&pieces, "b.000001", 120).unwrap();
        assert_eq!(
            reach.files,
            vec![("b.000001".into(), 250), ("b.000002".into(), 90)]
        );
        assert_eq!(reach.gap, None);
        assert!(binlog_reach(&pieces, "b.000002", 95).is_none());

        // A hole inside a file, and a missing file.
        pieces.push(piece("b.000002", 120, 200, true));
        pieces.push(piece("b.000004", 0, 50, false));
        sort_pieces(&mut pieces);
        let reach = binlog_reach(&pieces, "b.000001", 4).unwrap();
        assert_eq!(reach.files.last().unwrap(), &("b.000002".to_string(), 90));
        assert_eq!(reach.gap.as_deref(), Some("b.000002 from byte 90"));

        let mut whole = vec![
            piece("b.000002", 0, 10, true),
            piece("b.000004", 0, 50, false),
        ];
        sort_pieces(&mut whole);
        let reach = binlog_reach(&whole, "b.000002", 4).unwrap();
        assert!(reach.gap.unwrap().contains("number 3"));
    }

    #[test]
    fn servers_are_named_by_host_and_port() {
        assert_eq!(
            server_address("mysql://root@127.0.0.1:3399"),
            "127.0.0.1:3399"
        );
        assert_eq!(
            server_address("mysql://app@db.internal"),
            "db.internal:3306"
        );
        assert_eq!(server_address("mysql://db:3306/shop"), "db:3306");
        assert_eq!(server_address("mysql://[::1]:3307"), "[::1]:3307");
        assert_eq!(server_address("mysql://[::1]"), "[::1]:3306");
    }

    #[test]
    fn only_safe_names() {
        assert!(check_name("file", "mysql-bin.000001").is_ok());
        assert!(check_name("file", "../config").is_err());
        assert!(check_name("file", ".hidden").is_err());
        assert!(check_name("server", "").is_err());
    }
}
