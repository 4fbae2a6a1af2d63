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
    /// Sorted by name bytes.
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("tree serializes")
    }

    pub fn parse(bytes: &[u8]) -> Result<Tree, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("tree is not valid: {e}"))
    }
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
