//! Files and directories: walk paths into trees of nodes with their metadata.
//!
//! A file whose size, modification time and inode match the same path in the parent
//! snapshot is not read again: its blob list is reused (as restic and borg do).
//!
//! One odd entry never stops the backup of the others: inside a directory, a FIFO, socket
//! or device, an unreadable file, an entry that vanished during the walk, or a database
//! that cannot be read consistently is skipped, and a file with the SQLite header that is
//! not a readable database is stored as plain bytes; each becomes a warning that the
//! snapshot records. Paths given on the command line are held to more: an odd one fails
//! the backup, since the user named exactly that. Nothing is opened through a symlink
//! and nothing blocks on a special file (see [`open`]).

mod open;
pub mod select;

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::session::WriteSession;
use lifeboat_repo::snapshot::SnapshotWarning;
use lifeboat_repo::tree::{Node, NodeType, Tree};
use lifeboat_repo::{Id, Repository};
use rustix::fs::FileType;

use self::open::Attrs;
use self::select::Selection;
use crate::sqlite::page_cache::PageCache;
use crate::sqlite::Probe;
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
    /// Paths skipped or stored in a lesser form, in the order the walk met them.
    pub warnings: Vec<SnapshotWarning>,
    /// Entries left out on purpose: by an exclude pattern or marker file, or on another
    /// file system with `--one-file-system` (a directory counts once, not its contents).
    pub excluded: u64,
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
    selection: &'a Selection,
    /// The device of the path being walked, for `--one-file-system`.
    root_device: Option<u64>,
    summary: FilesSummary,
}

/// Where an entry is: its name in an open directory, and its path (for messages, and
/// for SQLite, which opens databases by path).
struct Place<'p> {
    dir: &'p OwnedFd,
    name: &'p OsStr,
    path: &'p Path,
    /// Named on the command line: an odd entry fails the backup instead of a warning.
    explicit: bool,
}

/// What became of one entry (short-lived: one at a time, so its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Entry {
    Stored(Node),
    /// Left out, and why ("a FIFO").
    Skipped(String),
    /// Left out as the user asked (a marker file in it).
    Excluded,
}

/// Backs up `paths` and returns the root tree: one node per path, named by its last
/// component. Two paths with the same last component are refused. SQLite databases are
/// stored page by page; `page_cache` lets them be stored incrementally. What `selection`
/// excludes below the paths is left out.
pub fn backup_paths(
    session: &WriteSession,
    paths: &[PathBuf],
    parent: Option<&Parent>,
    page_cache: Option<&PageCache>,
    selection: &Selection,
    progress: &dyn Progress,
) -> Result<(Id, FilesSummary)> {
    let mut walker = Walker {
        session,
        progress,
        parent,
        page_cache,
        selection,
        root_device: None,
        summary: FilesSummary::default(),
    };
    let parent_root = match parent {
        Some(p) => walker.load_parent_tree(Some(p.root)),
        None => None,
    };
    let mut nodes = Vec::new();
    for path in paths {
        let name = root_name(path)?;
        if nodes.iter().any(|n: &Node| node_key(n) == name.as_bytes()) {
            return Err(SourceError::Invalid(format!(
                "two paths end in {name:?}; back them up separately or from a common parent"
            )));
        }
        // The path is opened as given up to its last component (a linked `/srv` is
        // followed, as the user meant); the last component is treated like any entry.
        let (dir_path, entry_name) = match (path.parent(), path.file_name()) {
            (Some(dir), Some(entry)) => (dir, entry),
            _ => (path.as_path(), OsStr::new(".")),
        };
        // Named as given: a missing parent means the path itself is missing.
        let dir = open::open_dir(dir_path).map_err(|e| SourceError::io(path, e))?;
        let previous = parent_root
            .as_ref()
            .and_then(|t| t.get(name.as_bytes()).cloned());
        let place = Place {
            dir: &dir,
            name: entry_name,
            path,
            explicit: true,
        };
        walker.root_device = None;
        match walker.entry(&place, &name, previous.as_ref())? {
            Entry::Stored(node) => nodes.push(node),
            Entry::Excluded => unreachable!("paths named on the command line are not excluded"),
            Entry::Skipped(problem) => {
                return Err(SourceError::Invalid(format!(
                    "{}: {problem}; not backed up",
                    path.display()
                )))
            }
        }
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

/// Counts what `store_reader` reads and keeps the first read error: an error reading
/// the file must skip the file, while an error storing it must fail the backup, and
/// `store_reader` reports both alike.
struct Tracked<R> {
    inner: R,
    error: Option<String>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != std::io::ErrorKind::Interrupted {
                self.error.get_or_insert_with(|| e.to_string());
            }
        })
    }
}

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

    fn warn(&mut self, path: &Path, problem: String) {
        tracing::info!("{}: {problem}", path.display());
        self.summary.warnings.push(SnapshotWarning {
            path: path.to_string_lossy().into_owned(),
            problem,
        });
    }

    /// Backs up the entry at `at` as a node named `name`.
    fn entry(&mut self, at: &Place, name: &OsStr, previous: Option<&Node>) -> Result<Entry> {
        let attrs = match open::lstat_at(at.dir, at.name) {
            Ok(attrs) => attrs,
            Err(e) => return Ok(Entry::Skipped(open::problem(&e))),
        };
        match attrs.kind {
            FileType::Directory => self.directory(at, name, previous),
            FileType::Symlink => {
                let target = match open::read_link_at(at.dir, at.name) {
                    Ok(target) => target,
                    Err(e) => return Ok(Entry::Skipped(open::problem(&e))),
                };
                let mut node = node_from(name, &attrs);
                node.node_type = NodeType::Symlink;
                node.size = 0;
                node.target = Some(target.to_string_lossy().into_owned());
                if target.to_str().is_none() {
                    node.target_bytes = Some(target.as_bytes().to_vec());
                }
                Ok(Entry::Stored(node))
            }
            FileType::RegularFile => self.file(at, name, previous),
            // The tree format has no node for these; restic stores them, borg skips them.
            other => Ok(Entry::Skipped(format!(
                "{}; sockets, devices and FIFOs cannot be backed up",
                open::describe(other)
            ))),
        }
    }

    fn directory(&mut self, at: &Place, name: &OsStr, previous: Option<&Node>) -> Result<Entry> {
        let (fd, attrs) = match open::open_dir_at(at.dir, at.name) {
            Ok(opened) => opened,
            Err(e) => return Ok(Entry::Skipped(open::problem(&e))),
        };
        let root_device = *self.root_device.get_or_insert(attrs.device);
        let marked = !at.explicit
            && self
                .selection
                .markers()
                .iter()
                .any(|marker| open::lstat_at(&fd, marker).is_ok());
        if marked {
            self.summary.excluded += 1;
            return Ok(Entry::Excluded);
        }
        let mut node = node_from(name, &attrs);
        node.node_type = NodeType::Dir;
        node.size = 0;
        // A mount point on another file system stays, empty, so a restore recreates it.
        let other_file_system = self.selection.one_file_system() && attrs.device != root_device;
        node.subtree = Some(if other_file_system {
            self.summary.excluded += 1;
            self.session.store_tree(&Tree { nodes: Vec::new() })?
        } else {
            self.dir(&fd, at.path, previous)?
        });
        self.summary.dirs += 1;
        Ok(Entry::Stored(node))
    }

    fn file(&mut self, at: &Place, name: &OsStr, previous: Option<&Node>) -> Result<Entry> {
        let (file, attrs) = match open::open_file_at(at.dir, at.name) {
            Ok(opened) => opened,
            Err(e) => return Ok(Entry::Skipped(open::problem(&e))),
        };
        let mut header = [0u8; 16];
        let sqlite = file.read_exact_at(&mut header, 0).is_ok() && &header == crate::sqlite::HEADER;
        let mut node = node_from(name, &attrs);
        node.node_type = NodeType::File;
        self.progress.file(at.path);
        if sqlite {
            // Closed before SQLite opens the file: closing any descriptor of a file drops
            // every POSIX lock this process holds on it, SQLite's included.
            drop(file);
            return self.database(at, node, &attrs, previous);
        }
        node.content = match previous.filter(|p| self.unchanged(p, &node)) {
            Some(p) => {
                self.summary.unchanged_files += 1;
                self.progress.bytes(node.size);
                p.content.clone()
            }
            None => match self.content(at.path, file, &mut node)? {
                Ok(ids) => ids,
                Err(problem) => return Ok(Entry::Skipped(problem)),
            },
        };
        self.summary.files += 1;
        self.summary.total_bytes += node.size;
        Ok(Entry::Stored(node))
    }

    /// A file with the SQLite header: from one committed state if SQLite can read it,
    /// else (inside a directory) as plain bytes.
    fn database(
        &mut self,
        at: &Place,
        mut node: Node,
        attrs: &Attrs,
        previous: Option<&Node>,
    ) -> Result<Entry> {
        match unsafe_to_open(at, attrs) {
            Ok(None) => {}
            Ok(Some(problem)) => {
                return self.plain_bytes(at, format!("not opened as a database: {problem}"))
            }
            Err(problem) => return Ok(Entry::Skipped(problem)),
        }
        match crate::sqlite::probe(at.path) {
            Probe::Database => {}
            Probe::NotADatabase(reason) => {
                let problem =
                    format!("has the SQLite header but is not a readable database ({reason})");
                return self.plain_bytes(at, problem);
            }
            Probe::Unreadable(reason) => {
                return Ok(Entry::Skipped(format!(
                    "cannot be read as a database ({reason})"
                )))
            }
        }
        // Never reused from the parent by metadata: in WAL mode commits land in the
        // -wal file and the database file's mtime says nothing.
        let parent_map = previous
            .filter(|p| p.sqlite && self.parent.is_some())
            .map(|p| p.page_map.as_slice());
        let stored = match crate::sqlite::store::store_database(
            self.session,
            at.path,
            parent_map,
            self.page_cache,
            self.progress,
        ) {
            Ok(stored) => stored,
            Err(SourceError::Repo(e)) => return Err(e.into()),
            Err(e) => {
                return Ok(Entry::Skipped(format!(
                    "cannot be read as a database ({e})"
                )))
            }
        };
        node.sqlite = true;
        node.size = stored.size;
        node.page_map = stored.page_map;
        self.summary.files += 1;
        self.summary.databases += 1;
        self.summary.incremental_databases += u64::from(stored.incremental);
        self.summary.changed_pages += stored.changed_pages as u64;
        self.summary.database_pages += stored.pages as u64;
        self.summary.total_bytes += node.size;
        Ok(Entry::Stored(node))
    }

    /// Stores a file that is not a readable database as the bytes it holds, with a
    /// warning; a database named on the command line fails instead (a backup that
    /// "succeeds" with junk in place of the database asked for would rotate good
    /// snapshots out of retention).
    fn plain_bytes(&mut self, at: &Place, problem: String) -> Result<Entry> {
        if at.explicit {
            return Err(SourceError::Invalid(format!(
                "{}: {problem}; back up the directory holding it to store it as plain bytes",
                at.path.display()
            )));
        }
        let (file, attrs) = match open::open_file_at(at.dir, at.name) {
            Ok(opened) => opened,
            Err(e) => return Ok(Entry::Skipped(open::problem(&e))),
        };
        let mut node = node_from(at.name, &attrs);
        node.content = match self.content(at.path, file, &mut node)? {
            Ok(ids) => ids,
            Err(problem) => return Ok(Entry::Skipped(problem)),
        };
        self.summary.files += 1;
        self.summary.total_bytes += node.size;
        self.warn(at.path, format!("{problem}; stored as plain bytes"));
        Ok(Entry::Stored(node))
    }

    fn unchanged(&self, previous: &Node, node: &Node) -> bool {
        let Some(parent) = self.parent else {
            return false;
        };
        previous.node_type == NodeType::File
            && !previous.sqlite
            && previous.size == node.size
            && previous.mtime == node.mtime
            && previous.mtime_nsec == node.mtime_nsec
            && previous.inode == node.inode
            && previous.device == node.device
            && previous.content.iter().all(|id| parent.index.contains(id))
    }

    /// Stores the content of `file`; `Ok(Err(problem))` when reading it failed.
    fn content(
        &mut self,
        path: &Path,
        file: File,
        node: &mut Node,
    ) -> Result<std::result::Result<Vec<Id>, String>> {
        let mut tracked = Tracked {
            inner: file,
            error: None,
        };
        let path_text = path.display().to_string();
        let progress = self.progress;
        match self
            .session
            .store_reader(&mut tracked, &path_text, |n| progress.bytes(n))
        {
            Ok(stored) => {
                // The size is what was read: a file growing under us is recorded consistently.
                node.size = stored.size;
                Ok(Ok(stored.ids))
            }
            Err(_) if tracked.error.is_some() => Ok(Err(format!(
                "cannot be read ({})",
                tracked.error.unwrap_or_default()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    fn dir(&mut self, fd: &OwnedFd, path: &Path, previous: Option<&Node>) -> Result<Id> {
        let previous_tree = previous
            .filter(|p| p.node_type == NodeType::Dir)
            .and_then(|p| self.load_parent_tree(p.subtree));
        let (mut names, error) = open::list(fd);
        if let Some(e) = error {
            self.warn(
                path,
                format!("could not be listed to the end ({e}); stored with the entries read"),
            );
        }
        lifeboat_repo::fault::point("walk-dir-listed");
        names.sort();
        let mut nodes = Vec::with_capacity(names.len());
        // Files stored as databases in this directory: their -wal/-shm/-journal are part
        // of the consistent copy. A name sorts before its companions, so it is known
        // before they come up.
        let mut databases: HashSet<OsString> = HashSet::new();
        for name in names {
            if crate::sqlite::companion_base(&name).is_some_and(|base| databases.contains(base)) {
                continue;
            }
            let child = path.join(&name);
            if self.selection.excludes(&child) {
                self.summary.excluded += 1;
                continue;
            }
            let previous = previous_tree.as_ref().and_then(|t| t.get(name.as_bytes()));
            let place = Place {
                dir: fd,
                name: &name,
                path: &child,
                explicit: false,
            };
            match self.entry(&place, &name, previous)? {
                Entry::Stored(node) => {
                    if node.sqlite {
                        databases.insert(name.clone());
                    }
                    nodes.push(node);
                }
                Entry::Skipped(problem) => self.warn(&child, format!("{problem}; skipped")),
                Entry::Excluded => {}
            }
        }
        Ok(self.session.store_tree(&Tree { nodes })?)
    }
}

/// Why SQLite must not open the database at `at`, whose handle had `attrs`: `Ok(Some)`
/// when what SQLite would open beside it is not a regular file (a `-wal` that is a FIFO
/// or a link to one would block SQLite or let it follow a link), `Err` when the path no
/// longer leads to the file the walk opened (SQLite opens by path).
fn unsafe_to_open(at: &Place, attrs: &Attrs) -> std::result::Result<Option<String>, String> {
    for suffix in crate::sqlite::COMPANION_SUFFIXES {
        let mut companion = at.name.to_os_string();
        companion.push(suffix);
        match open::lstat_at(at.dir, &companion) {
            Ok(found) if found.kind != FileType::RegularFile => {
                return Ok(Some(format!(
                    "{} is {}",
                    companion.to_string_lossy(),
                    open::describe(found.kind)
                )))
            }
            _ => {}
        }
    }
    match std::fs::symlink_metadata(at.path) {
        Ok(meta) if Attrs::from_metadata(&meta).same_file(attrs) && meta.is_file() => Ok(None),
        Ok(_) => Err("was replaced during the backup".into()),
        Err(e) => Err(open::problem(&e)),
    }
}

/// A node for `name` with the metadata in `attrs` (type `File`; callers set the rest).
fn node_from(name: &OsStr, attrs: &Attrs) -> Node {
    let (name_text, name_bytes) = match name.to_str() {
        Some(s) => (s.to_string(), None),
        None => (
            name.to_string_lossy().into_owned(),
            Some(name.as_bytes().to_vec()),
        ),
    };
    Node {
        name_bytes,
        mode: attrs.mode,
        uid: attrs.uid,
        gid: attrs.gid,
        mtime: attrs.mtime,
        mtime_nsec: attrs.mtime_nsec,
        size: attrs.size,
        inode: attrs.inode,
        device: attrs.device,
        ..Node::new(name_text, NodeType::File)
    }
}

/// A node for `name` with the metadata in `meta`.
pub(crate) fn base_node(name: &OsStr, meta: &Metadata) -> Node {
    node_from(name, &Attrs::from_metadata(meta))
}
