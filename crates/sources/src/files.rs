//! Files and directories: walk paths into trees of nodes with their metadata.
//!
//! A file whose size, modification time and inode match the same path in the parent
//! snapshot is not read again: its blob list is reused (as restic and borg do).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::session::WriteSession;
use lifeboat_repo::tree::{Node, NodeType, Tree};
use lifeboat_repo::{Id, Repository};

use crate::sqlite::page_cache::PageCache;
use crate::{Progress, Result, SourceError};

/// Counts for the snapshot summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesSummary {
    pub files: u64,
    pub dirs: u64,
    pub total_bytes: u64,
    /// Files whose content was reused from the parent snapshot without reading.
    pub unchanged_files: u64,
    /// SQLite databases, read page by page from one committed state.
    pub databases: u64,
    /// Of those, the ones stored incrementally (changed pages only).
    pub incremental_databases: u64,
    /// Pages of databases stored anew, and pages in all.
    pub changed_pages: u64,
    pub database_pages: u64,
}

/// The parent snapshot's trees, read lazily, used to skip unchanged files.
pub struct Parent<'a> {
    pub repo: &'a Repository,
    pub index: &'a MasterIndex,
    pub root: Id,
}

struct Walker<'a> {
    session: &'a WriteSession,
    progress: &'a dyn Progress,
    parent: Option<&'a Parent<'a>>,
    page_cache: Option<&'a PageCache>,
    summary: FilesSummary,
}

/// Backs up `paths` and returns the root tree: one node per path, named by its last
/// component. Two paths with the same last component are refused. SQLite databases are
/// stored page by page; `page_cache` lets them be stored incrementally.
pub fn backup_paths(
    session: &WriteSession,
    paths: &[PathBuf],
    parent: Option<&Parent>,
    page_cache: Option<&PageCache>,
    progress: &dyn Progress,
) -> Result<(Id, FilesSummary)> {
    let mut walker = Walker {
        session,
        progress,
        parent,
        page_cache,
        summary: FilesSummary::default(),
    };
    let parent_root = match parent {
        Some(p) => walker.load_parent_tree(Some(p.root)),
        None => None,
    };
    let mut nodes = Vec::new();
    for path in paths {
        let meta = fs::symlink_metadata(path).map_err(|e| SourceError::io(path, e))?;
        let name = root_name(path)?;
        if nodes.iter().any(|n: &Node| node_key(n) == name.as_bytes()) {
            return Err(SourceError::Invalid(format!(
                "two paths end in {name:?}; back them up separately or from a common parent"
            )));
        }
        let previous = parent_root
            .as_ref()
            .and_then(|t| t.get(name.as_bytes()).cloned());
        nodes.push(walker.node(path, &name, &meta, previous.as_ref())?);
    }
    nodes.sort_by(|a, b| node_key(a).cmp(node_key(b)));
    let root = session.store_tree(&Tree { nodes })?;
    Ok((root, walker.summary))
}

fn root_name(path: &Path) -> Result<std::ffi::OsString> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| SourceError::io(".", e))?
            .join(path)
    };
    let normalized: PathBuf = absolute.components().collect();
    Ok(normalized
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "root".into()))
}

pub fn node_key(node: &Node) -> &[u8] {
    node.name_bytes.as_deref().unwrap_or(node.name.as_bytes())
}

type ParentTree = HashMap<Vec<u8>, Node>;

impl Walker<'_> {
    fn load_parent_tree(&self, id: Option<Id>) -> Option<ParentTree> {
        let parent = self.parent?;
        let tree = parent.repo.load_tree(parent.index, &id?).ok()?;
        Some(
            tree.nodes
                .into_iter()
                .map(|n| (node_key(&n).to_vec(), n))
                .collect(),
        )
    }

    fn node(
        &mut self,
        path: &Path,
        name: &OsStr,
        meta: &Metadata,
        previous: Option<&Node>,
    ) -> Result<Node> {
        let file_type = meta.file_type();
        let mut node = base_node(name, meta);
        if file_type.is_dir() {
            node.node_type = NodeType::Dir;
            node.size = 0;
            node.subtree = Some(self.dir(path, previous)?);
            self.summary.dirs += 1;
        } else if file_type.is_symlink() {
            node.node_type = NodeType::Symlink;
            node.size = 0;
            let target = fs::read_link(path).map_err(|e| SourceError::io(path, e))?;
            node.target = Some(target.to_string_lossy().into_owned());
            if target.to_str().is_none() {
                node.target_bytes = Some(target.as_os_str().as_bytes().to_vec());
            }
        } else if file_type.is_file() && crate::sqlite::is_sqlite(path) {
            // Never reused from the parent by metadata: in WAL mode commits land in the
            // -wal file and the database file's mtime says nothing.
            node.node_type = NodeType::File;
            node.sqlite = true;
            self.progress.file(path);
            let parent_map = previous
                .filter(|p| p.sqlite && self.parent.is_some())
                .map(|p| p.page_map.as_slice());
            let stored = crate::sqlite::store::store_database(
                self.session,
                path,
                parent_map,
                self.page_cache,
                self.progress,
            )?;
            node.size = stored.size;
            node.page_map = stored.page_map;
            self.summary.files += 1;
            self.summary.databases += 1;
            self.summary.incremental_databases += u64::from(stored.incremental);
            self.summary.changed_pages += stored.changed_pages as u64;
            self.summary.database_pages += stored.pages as u64;
            self.summary.total_bytes += node.size;
        } else if file_type.is_file() {
            node.node_type = NodeType::File;
            self.progress.file(path);
            node.content = match previous.filter(|p| self.unchanged(p, &node)) {
                Some(p) => {
                    self.summary.unchanged_files += 1;
                    self.progress.bytes(node.size);
                    p.content.clone()
                }
                None => self.file_content(path, &mut node)?,
            };
            self.summary.files += 1;
            self.summary.total_bytes += node.size;
        } else {
            return Err(SourceError::Invalid(format!(
                "{}: sockets, devices and FIFOs cannot be backed up",
                path.display()
            )));
        }
        Ok(node)
    }

    fn unchanged(&self, previous: &Node, node: &Node) -> bool {
        let Some(parent) = self.parent else {
            return false;
        };
        previous.node_type == NodeType::File
            && previous.size == node.size
            && previous.mtime == node.mtime
            && previous.mtime_nsec == node.mtime_nsec
            && previous.inode == node.inode
            && previous.device == node.device
            && previous.content.iter().all(|id| parent.index.contains(id))
    }

    fn file_content(&mut self, path: &Path, node: &mut Node) -> Result<Vec<Id>> {
        let file = File::open(path).map_err(|e| SourceError::io(path, e))?;
        let path_text = path.display().to_string();
        let stored = self
            .session
            .store_reader(file, &path_text, |n| self.progress.bytes(n))?;
        // The size is what was read: a file growing under us is recorded consistently.
        node.size = stored.size;
        Ok(stored.ids)
    }

    fn dir(&mut self, path: &Path, previous: Option<&Node>) -> Result<Id> {
        let previous_tree = previous
            .filter(|p| p.node_type == NodeType::Dir)
            .and_then(|p| self.load_parent_tree(p.subtree));
        let mut entries: Vec<_> = fs::read_dir(path)
            .map_err(|e| SourceError::io(path, e))?
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| SourceError::io(path, e))?;
        entries.sort_by_key(|e| e.file_name());
        let mut nodes = Vec::with_capacity(entries.len());
        for entry in entries {
            let child = entry.path();
            // A database's -wal/-shm/-journal are part of its consistent copy.
            if crate::sqlite::is_companion(&child) {
                continue;
            }
            let meta = fs::symlink_metadata(&child).map_err(|e| SourceError::io(&child, e))?;
            let name = entry.file_name();
            let previous = previous_tree.as_ref().and_then(|t| t.get(name.as_bytes()));
            nodes.push(self.node(&child, &name, &meta, previous)?);
        }
        Ok(self.session.store_tree(&Tree { nodes })?)
    }
}

pub(crate) fn base_node(name: &OsStr, meta: &Metadata) -> Node {
    let (name_text, name_bytes) = match name.to_str() {
        Some(s) => (s.to_string(), None),
        None => (
            name.to_string_lossy().into_owned(),
            Some(name.as_bytes().to_vec()),
        ),
    };
    Node {
        name_bytes,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec() as u32,
        size: meta.len(),
        inode: meta.ino(),
        device: meta.dev(),
        ..Node::new(name_text, NodeType::File)
    }
}
