//! The plaintext of an archived object that repeats its own name (WAL files, binlog
//! pieces): `magic (8 bytes) || label length (u16 LE) || label || data`. A reader checks
//! the label against the name it read, so an object moved to another name does not open
//! as that object.

use crate::error::{RepoError, Result};

pub(crate) fn encode(magic: &[u8; 8], label: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(magic.len() + 2 + label.len() + data.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&(label.len() as u16).to_le_bytes());
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(data);
    out
}

/// The data of `plain`, read from `object`, which must carry `magic` (else it is "not
/// `what`") and hold `label`.
pub(crate) fn decode(
    magic: &[u8; 8],
    what: &str,
    object: &str,
    label: &str,
    plain: Vec<u8>,
) -> Result<Vec<u8>> {
    let damaged = |detail: &str| RepoError::damaged(object, detail);
    if plain.len() < magic.len() + 2 || &plain[..magic.len()] != magic {
        return Err(damaged(&format!("not {what}")));
    }
    let len = u16::from_le_bytes([plain[8], plain[9]]) as usize;
    let held = plain
        .get(10..10 + len)
        .ok_or_else(|| damaged("truncated header"))?;
    if held != label.as_bytes() {
        return Err(damaged(&format!(
            "holds {}, not {label}",
            String::from_utf8_lossy(held)
        )));
    }
    Ok(plain[10 + len..].to_vec())
}
