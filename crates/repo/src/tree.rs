//! Trees: one directory's entries, stored as a JSON blob (kind "tree") in a pack.

use serde::{Deserialize, Serialize};

use crate::id::Id;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    File,
    Dir,
    Symlink,
}

/// One directory entry. Names that are not valid UTF-8 are kept byte-exact in `name_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub name_bytes: Option<Vec<u8>>,
    #[serde(rename = "type")]
    pub node_type: NodeType,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time: seconds and nanoseconds since the Unix epoch.
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Bytes of file content (0 for dirs and symlinks).
    #[serde(default)]
    pub size: u64,
    /// Inode and device, used only to decide whether a file changed since the parent.
    #[serde(default)]
    pub inode: u64,
    #[serde(default)]
    pub device: u64,
    /// Data blob ids, in order, for files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Id>,
    /// The tree blob of a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    /// A symlink's target, as stored in the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A symlink target that is not valid UTF-8, byte-exact (then `target` is lossy).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub target_bytes: Option<Vec<u8>>,
    /// Set when the content is a consistent copy of a live SQLite database (taken with
    /// SQLite's backup API) rather than the file's raw bytes; restore then removes stale
    /// `-wal`/`-shm`/`-journal` files beside it and checks the database.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sqlite: bool,
    /// A database stored page by page: the data blobs of its encoded page map (see
    /// [`crate::pagemap`]). Set instead of `content`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub page_map: Vec<Id>,
}

impl Node {
    /// The entry's exact name: `name_bytes` when present, else the UTF-8 of `name`.
    pub fn name_key(&self) -> &[u8] {
        self.name_bytes.as_deref().unwrap_or(self.name.as_bytes())
    }

    /// A node with a name and a type and nothing else: no content, no owner, mode 0,
    /// time 0. Sources fill in what they know.
    pub fn new(name: impl Into<String>, node_type: NodeType) -> Node {
        Node {
            name: name.into(),
            name_bytes: None,
            node_type,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: 0,
            mtime_nsec: 0,
            size: 0,
            inode: 0,
            device: 0,
            content: Vec::new(),
            subtree: None,
            target: None,
            target_bytes: None,
            sqlite: false,
            page_map: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Strictly sorted by name bytes ([`Node::name_key`]): no duplicates.
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("tree serializes")
    }

    /// Decodes a tree and refuses one that breaks the tree rules ([`Tree::check`]): every
    /// reader (restore, `verify`, `ls`, copy, prune) gets only trees that are safe to
    /// restore.
    pub fn parse(bytes: &[u8]) -> Result<Tree, String> {
        let tree: Tree =
            serde_json::from_slice(bytes).map_err(|e| format!("tree is not valid: {e}"))?;
        tree.check()?;
        Ok(tree)
    }

    /// The tree rules (FORMAT.md §8): every name is one safe path component
    /// ([`check_name`], for `name` and `name_bytes` alike), and names are strictly sorted
    /// by their bytes, so none appears twice. A duplicate would let a hostile repository
    /// restore a directory and a symlink at one path, and follow the link.
    pub fn check(&self) -> Result<(), String> {
        for node in &self.nodes {
            check_name(node.name.as_bytes())?;
            if let Some(bytes) = &node.name_bytes {
                check_name(bytes)?;
            }
        }
        for pair in self.nodes.windows(2) {
            let (a, b) = (pair[0].name_key(), pair[1].name_key());
            match a.cmp(b) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    return Err(format!(
                        "tree is not valid: the name \"{}\" appears twice",
                        escape_name(a)
                    ))
                }
                std::cmp::Ordering::Greater => {
                    return Err(format!(
                        "tree is not valid: names are not sorted (\"{}\" before \"{}\")",
                        escape_name(a),
                        escape_name(b)
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Whether `name` is one safe path component: not empty, not `.` or `..`, without `/` or
/// NUL. Anything else could address a path outside the directory it is restored into.
pub fn check_name(name: &[u8]) -> Result<(), String> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name == b"." || name == b".." {
        "is not a file name"
    } else if name.contains(&b'/') {
        "contains '/'"
    } else if name.contains(&0) {
        "contains NUL"
    } else {
        return Ok(());
    };
    Err(format!(
        "tree is not valid: the name \"{}\" {problem}",
        escape_name(name)
    ))
}

/// A name made safe to print: control characters (C0, DEL, C1), bidirectional-text
/// controls and bytes that are not UTF-8 become escapes (`\n`, `\t`, `\r`, `\xNN`,
/// `\u{NNNN}`), and a backslash is doubled so that an escape cannot be mistaken for a
/// name. A file name must never move the cursor, recolour a terminal or fake a line.
pub fn escape_name(name: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x80 && c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() || is_bidi_control(c) => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// [`escape_name`] for a path: each byte sequence between `/` escaped, the `/` kept.
pub fn escape_path(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    escape_name(path.as_os_str().as_bytes())
}

/// Characters that reorder how a line is shown (a name could display as another).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

mod opt_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&hex::encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(names: &[&[u8]]) -> Vec<u8> {
        let nodes: Vec<Node> = names
            .iter()
            .map(|n| match std::str::from_utf8(n) {
                Ok(s) => Node::new(s, NodeType::File),
                Err(_) => Node {
                    name_bytes: Some(n.to_vec()),
                    ..Node::new(String::from_utf8_lossy(n), NodeType::File)
                },
            })
            .collect();
        Tree { nodes }.to_bytes()
    }

    #[test]
    fn sorted_unique_safe_names_decode() {
        assert!(Tree::parse(&tree(&[])).is_ok());
        assert!(Tree::parse(&tree(&[b"A", b"a", b"a.txt", b"b", b"\xff"])).is_ok());
        // Byte order, not character order: U+00E9 (0xc3 0xa9) sorts after 'z'.
        assert!(Tree::parse(&tree(&["z".as_bytes(), "\u{e9}".as_bytes()])).is_ok());
    }

    #[test]
    fn duplicate_and_unsorted_names_are_refused() {
        let err = Tree::parse(&tree(&[b"d", b"d"])).unwrap_err();
        assert!(err.contains("\"d\" appears twice"), "{err}");
        let err = Tree::parse(&tree(&[b"b", b"a"])).unwrap_err();
        assert!(err.contains("not sorted"), "{err}");
        // Two spellings of one name: `name_bytes` wins, so these are the same entry.
        let mut nodes = vec![
            Node::new("d", NodeType::Dir),
            Node::new("e", NodeType::Symlink),
        ];
        nodes[1].name_bytes = Some(b"d".to_vec());
        let err = Tree::parse(&Tree { nodes }.to_bytes()).unwrap_err();
        assert!(err.contains("appears twice"), "{err}");
    }

    #[test]
    fn unsafe_names_are_refused() {
        for name in [&b""[..], b".", b"..", b"a/b", b"/abs", b"a\0b"] {
            assert!(Tree::parse(&tree(&[name])).is_err(), "{name:?}");
        }
        // A safe `name` does not excuse unsafe `name_bytes`, nor the reverse.
        let mut node = Node::new("ok", NodeType::File);
        node.name_bytes = Some(b"../x".to_vec());
        assert!(Tree::parse(&Tree { nodes: vec![node] }.to_bytes()).is_err());
        let node = Node {
            name_bytes: Some(b"ok".to_vec()),
            ..Node::new("../x", NodeType::File)
        };
        assert!(Tree::parse(&Tree { nodes: vec![node] }.to_bytes()).is_err());
    }

    #[test]
    fn names_print_escaped() {
        assert_eq!(escape_name(b"plain name.txt"), "plain name.txt");
        assert_eq!(escape_name(b"\x1b[31mred\nline"), "\\x1b[31mred\\nline");
        assert_eq!(escape_name(b"a\\x1b"), "a\\\\x1b");
        assert_eq!(escape_name(b"\xff\x7f"), "\\xff\\x7f");
        assert_eq!(
            escape_name("\u{202e}txt.exe".as_bytes()),
            "\\u{202e}txt.exe"
        );
        assert_eq!(escape_name("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(escape_name("\u{85}".as_bytes()), "\\u{0085}");
    }
}
