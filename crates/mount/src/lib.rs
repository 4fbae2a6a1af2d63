//! `lifeboat mount DIR`: the repository's snapshots as a read-only file system, as restic's
//! `mount` shows them. `DIR/snapshots/<time>-<id>/` holds each snapshot's tree and
//! `DIR/snapshots/latest` points at the newest. `DIR/databases/<path>/<time>.db` holds
//! every restore point of each SQLite database backed up or replicated by itself (as
//! `timeline` lists them when the view is mounted), assembled and checked when first
//! looked at. Files are read from the repository when
//! read (every blob checked as a restore checks it); a SQLite database, stored page by
//! page, is assembled and checked into a private scratch file when first opened.
//!
//! Inodes are handed out as directories are listed and never reused while mounted; the
//! kernel caches nothing for long (the repository does not change under a snapshot, but a
//! new snapshot should appear in `snapshots/` on the next listing).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    FileAttr, FileType, Filesystem, MountOption, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry,
    ReplyOpen, Request,
};
use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::snapshot::SnapshotSource;
use lifeboat_repo::tree::{Node, NodeType};
use lifeboat_repo::{Id, Repository};
use lifeboat_sources::timeline::{self, RestorePoint};

const TTL: Duration = Duration::from_secs(1);
const ROOT: u64 = 1;
const SNAPSHOTS: u64 = 2;
const LATEST: u64 = 3;
const DATABASES: u64 = 4;

/// What one inode is.
enum Entry {
    /// A directory of this view (the root, `snapshots/`).
    Synthetic { name: OsString, children: Vec<u64> },
    /// `snapshots/latest`, a link to the newest snapshot's directory.
    Latest { target: OsString },
    /// One restore point of a SQLite database under `databases/` (a snapshot, or a stream
    /// segment rolled forward onto its base): assembled when first looked at.
    Point {
        name: OsString,
        source: usize,
        point: usize,
        time: SystemTime,
        /// The assembled file's size, once assembled (it is in `databases`).
        size: Option<u64>,
    },
    /// An entry of a snapshot's tree; a snapshot's own directory is a `Dir` node whose
    /// subtree is the snapshot's root tree.
    Stored {
        name: OsString,
        node: Box<Node>,
        /// Read on first listing.
        children: Option<Vec<u64>>,
        time: SystemTime,
    },
}

pub struct SnapshotFs {
    repo: Repository,
    index: MasterIndex,
    entries: HashMap<u64, Entry>,
    next: u64,
    /// Content blob offsets per file inode: (start within the file, blob id, length).
    layouts: HashMap<u64, Vec<(u64, Id, u64)>>,
    /// Assembled SQLite databases, by inode.
    databases: HashMap<u64, std::fs::File>,
    scratch: tempfile::TempDir,
    /// The last blob read, for reads smaller than a blob.
    cached: Option<(Id, Vec<u8>)>,
    mounted_at: SystemTime,
    /// SQLite databases with their restore points, as listed at mount time.
    sources: Vec<(PathBuf, Vec<RestorePoint>)>,
}

impl SnapshotFs {
    pub fn new(repo: Repository) -> lifeboat_repo::Result<SnapshotFs> {
        let index = repo.load_index()?;
        let scratch = tempfile::Builder::new()
            .prefix("lifeboat-mount-")
            .tempdir()
            .map_err(|e| lifeboat_repo::RepoError::io("a scratch directory", e))?;
        let mut fs = SnapshotFs {
            repo,
            index,
            entries: HashMap::new(),
            next: DATABASES + 1,
            layouts: HashMap::new(),
            databases: HashMap::new(),
            scratch,
            cached: None,
            mounted_at: SystemTime::now(),
            sources: Vec::new(),
        };
        fs.entries.insert(
            ROOT,
            Entry::Synthetic {
                name: "/".into(),
                children: vec![SNAPSHOTS, DATABASES],
            },
        );
        fs.entries.insert(
            DATABASES,
            Entry::Synthetic {
                name: "databases".into(),
                children: Vec::new(),
            },
        );
        fs.refresh_snapshots()?;
        fs.list_databases()?;
        Ok(fs)
    }

    /// `databases/<path of the database>/<time>.db`: every restore point of every SQLite
    /// database backed up (or replicated) by itself, as `timeline` lists them.
    fn list_databases(&mut self) -> lifeboat_repo::Result<()> {
        let mut found = std::collections::BTreeSet::new();
        for stored in self.repo.list_snapshots()? {
            let snapshot = &stored.snapshot;
            if snapshot.source != SnapshotSource::Files || snapshot.paths.len() != 1 {
                continue;
            }
            let root = self.repo.load_tree(&self.index, &snapshot.tree)?;
            if matches!(root.nodes.as_slice(), [node] if node.sqlite) {
                found.insert(PathBuf::from(&snapshot.paths[0]));
            }
        }
        for path in found {
            let points = timeline::restore_points(&self.repo, &self.index, &path)
                .map_err(|e| lifeboat_repo::RepoError::Invalid(e.to_string()))?;
            if points.is_empty() {
                continue;
            }
            let mut dir = DATABASES;
            for part in path.components().filter_map(|c| match c {
                std::path::Component::Normal(name) => Some(name.to_os_string()),
                _ => None,
            }) {
                dir = self.synthetic_child(dir, part);
            }
            let source = self.sources.len();
            let mut names = Vec::new();
            for (i, point) in points.iter().enumerate() {
                let mut name = format!("{}.db", timeline::show_time(point.time));
                if names.contains(&name) {
                    name = format!("{}-{i}.db", timeline::show_time(point.time));
                }
                names.push(name.clone());
                let time =
                    UNIX_EPOCH + Duration::from_millis(point.time.timestamp_millis().max(0) as u64);
                let ino = self.add(Entry::Point {
                    name: name.into(),
                    source,
                    point: i,
                    time,
                    size: None,
                });
                if let Some(Entry::Synthetic { children, .. }) = self.entries.get_mut(&dir) {
                    children.push(ino);
                }
            }
            self.sources.push((path, points));
        }
        Ok(())
    }

    /// The directory `name` under the view's directory `parent`, made if missing.
    fn synthetic_child(&mut self, parent: u64, name: OsString) -> u64 {
        if let Some(Entry::Synthetic { children, .. }) = self.entries.get(&parent) {
            if let Some(ino) = children
                .iter()
                .find(|ino| self.name_of(**ino) == Some(name.as_os_str()))
            {
                return *ino;
            }
        }
        let ino = self.add(Entry::Synthetic {
            name,
            children: Vec::new(),
        });
        if let Some(Entry::Synthetic { children, .. }) = self.entries.get_mut(&parent) {
            children.push(ino);
        }
        ino
    }

    /// Assembles a restore point's database the first time it is looked at, so that its
    /// size is right before anything reads it.
    fn prepare(&mut self, ino: u64) -> Result<(), i32> {
        let Some(Entry::Point {
            source,
            point,
            size: None,
            ..
        }) = self.entries.get(&ino)
        else {
            return Ok(());
        };
        let (source, point) = (*source, *point);
        let path = self.scratch.path().join(format!("{ino}.db"));
        let (name, points) = &self.sources[source];
        timeline::restore_point(
            &self.repo,
            &self.index,
            points,
            &points[point],
            &path,
            &lifeboat_sources::NoProgress,
        )
        .map_err(|e| {
            tracing::warn!("cannot assemble {}: {e}", name.display());
            libc::EIO
        })?;
        let file = std::fs::File::open(&path).map_err(|_| libc::EIO)?;
        let len = file.metadata().map_err(|_| libc::EIO)?.len();
        self.databases.insert(ino, file);
        if let Some(Entry::Point { size, .. }) = self.entries.get_mut(&ino) {
            *size = Some(len);
        }
        Ok(())
    }

    /// Lists the snapshots again: new ones get directories, the names of known ones stay.
    fn refresh_snapshots(&mut self) -> lifeboat_repo::Result<()> {
        let snapshots = self.repo.list_snapshots()?;
        let known: HashMap<OsString, u64> = match self.entries.get(&SNAPSHOTS) {
            Some(Entry::Synthetic { children, .. }) => children
                .iter()
                .filter_map(|ino| Some((self.name_of(*ino)?.to_os_string(), *ino)))
                .collect(),
            _ => HashMap::new(),
        };
        let names: Vec<OsString> = snapshots
            .iter()
            .map(|stored| {
                format!(
                    "{}-{}",
                    stored.snapshot.time.format("%Y-%m-%dT%H:%M:%SZ"),
                    stored.id.short()
                )
                .into()
            })
            .collect();
        // A snapshot taken since the index was read refers to blobs only newer index
        // files list.
        if !known.is_empty() && names.iter().any(|name| !known.contains_key(name)) {
            self.index = self.repo.load_index()?;
        }
        let mut children = Vec::new();
        let mut newest = None;
        for (stored, name) in snapshots.iter().zip(names) {
            let ino = match known.get(&name) {
                Some(ino) => *ino,
                None => {
                    let mut node = Node::new(name.to_string_lossy(), NodeType::Dir);
                    node.mode = 0o555;
                    node.subtree = Some(stored.snapshot.tree);
                    let time = UNIX_EPOCH
                        + Duration::from_secs(stored.snapshot.time.timestamp().max(0) as u64);
                    self.add(Entry::Stored {
                        name: name.clone(),
                        node: Box::new(node),
                        children: None,
                        time,
                    })
                }
            };
            children.push(ino);
            newest = Some(name);
        }
        if let Some(newest) = newest {
            self.entries
                .insert(LATEST, Entry::Latest { target: newest });
            children.push(LATEST);
        }
        self.entries.insert(
            SNAPSHOTS,
            Entry::Synthetic {
                name: "snapshots".into(),
                children,
            },
        );
        Ok(())
    }

    fn add(&mut self, entry: Entry) -> u64 {
        let ino = self.next;
        self.next += 1;
        self.entries.insert(ino, entry);
        ino
    }

    fn name_of(&self, ino: u64) -> Option<&OsStr> {
        match self.entries.get(&ino)? {
            Entry::Synthetic { name, .. }
            | Entry::Stored { name, .. }
            | Entry::Point { name, .. } => Some(name),
            Entry::Latest { .. } => Some(OsStr::new("latest")),
        }
    }

    /// The children of a directory inode, reading its tree the first time.
    fn children(&mut self, ino: u64) -> Result<Vec<u64>, i32> {
        if ino == SNAPSHOTS {
            self.refresh_snapshots().map_err(|e| {
                tracing::warn!("cannot list the snapshots: {e}");
                libc::EIO
            })?;
        }
        let subtree = match self.entries.get(&ino) {
            Some(Entry::Synthetic { children, .. }) => return Ok(children.clone()),
            Some(Entry::Stored {
                children: Some(children),
                ..
            }) => return Ok(children.clone()),
            Some(Entry::Stored { node, .. }) => node.subtree.ok_or(libc::ENOTDIR)?,
            Some(Entry::Latest { .. } | Entry::Point { .. }) => return Err(libc::ENOTDIR),
            None => return Err(libc::ENOENT),
        };
        let tree = self.repo.load_tree(&self.index, &subtree).map_err(|e| {
            tracing::warn!("cannot read tree {}: {e}", subtree.short());
            libc::EIO
        })?;
        let mut children = Vec::with_capacity(tree.nodes.len());
        for node in tree.nodes {
            let name = OsStr::from_bytes(node.name_key()).to_os_string();
            let time = UNIX_EPOCH
                + Duration::new(node.mtime.max(0) as u64, node.mtime_nsec.min(999_999_999));
            children.push(self.add(Entry::Stored {
                name,
                node: Box::new(node),
                children: None,
                time,
            }));
        }
        if let Some(Entry::Stored { children: slot, .. }) = self.entries.get_mut(&ino) {
            *slot = Some(children.clone());
        }
        Ok(children)
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let (kind, size, perm, time, uid, gid) = match self.entries.get(&ino)? {
            Entry::Synthetic { .. } => (FileType::Directory, 0, 0o555, self.mounted_at, 0, 0),
            Entry::Latest { target } => (
                FileType::Symlink,
                target.len() as u64,
                0o777,
                self.mounted_at,
                0,
                0,
            ),
            Entry::Point { size, time, .. } => {
                (FileType::RegularFile, size.unwrap_or(0), 0o444, *time, 0, 0)
            }
            Entry::Stored { node, time, .. } => (
                match node.node_type {
                    NodeType::Dir => FileType::Directory,
                    NodeType::File => FileType::RegularFile,
                    NodeType::Symlink => FileType::Symlink,
                },
                match node.node_type {
                    NodeType::Symlink => link_target(node).len() as u64,
                    _ => node.size,
                },
                // Read-only whatever the stored mode said.
                (node.mode & 0o7777 & !0o222) as u16,
                *time,
                node.uid,
                node.gid,
            ),
        };
        Some(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            kind,
            perm,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid,
            gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// `len` bytes of file `ino` at `offset`, read from the repository.
    fn read_at(&mut self, ino: u64, offset: u64, len: u64) -> Result<Vec<u8>, i32> {
        if let Some(Entry::Point { .. }) = self.entries.get(&ino) {
            self.prepare(ino)?;
            let mut buf = vec![0; len as usize];
            let n = std::os::unix::fs::FileExt::read_at(&self.databases[&ino], &mut buf, offset)
                .map_err(|_| libc::EIO)?;
            buf.truncate(n);
            return Ok(buf);
        }
        let node = match self.entries.get(&ino) {
            Some(Entry::Stored { node, .. }) if node.node_type == NodeType::File => node.clone(),
            _ => return Err(libc::EISDIR),
        };
        if node.sqlite {
            let file = self.database(ino, &node)?;
            let mut buf = vec![0; len as usize];
            let n = std::os::unix::fs::FileExt::read_at(file, &mut buf, offset)
                .map_err(|_| libc::EIO)?;
            buf.truncate(n);
            return Ok(buf);
        }
        if !self.layouts.contains_key(&ino) {
            let mut layout = Vec::with_capacity(node.content.len());
            let mut start = 0;
            for id in &node.content {
                let length = self.index.get(id).ok_or(libc::EIO)?.raw_length as u64;
                layout.push((start, *id, length));
                start += length;
            }
            self.layouts.insert(ino, layout);
        }
        let end = (offset + len).min(node.size);
        let wanted: Vec<(u64, Id, u64)> = self.layouts[&ino]
            .iter()
            .filter(|(start, _, length)| start + length > offset && *start < end)
            .copied()
            .collect();
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        for (start, id, _) in wanted {
            if self.cached.as_ref().is_none_or(|(cached, _)| *cached != id) {
                let data = self.repo.read_blob(&self.index, &id).map_err(|e| {
                    tracing::warn!("cannot read a blob of {}: {e}", node.name);
                    libc::EIO
                })?;
                self.cached = Some((id, data));
            }
            let blob = &self.cached.as_ref().expect("just cached").1;
            let from = offset.saturating_sub(start) as usize;
            let to = ((end - start) as usize).min(blob.len());
            if from < to {
                out.extend_from_slice(&blob[from..to]);
            }
        }
        Ok(out)
    }

    /// The assembled, checked copy of a SQLite database node.
    fn database(&mut self, ino: u64, node: &Node) -> Result<&std::fs::File, i32> {
        if !self.databases.contains_key(&ino) {
            let path = self.scratch.path().join(format!("{ino}.db"));
            lifeboat_sources::restore::restore_file(
                &self.repo,
                &self.index,
                node,
                &path,
                &lifeboat_sources::NoProgress,
            )
            .map_err(|e| {
                tracing::warn!("cannot assemble database {}: {e}", node.name);
                libc::EIO
            })?;
            let file = std::fs::File::open(&path).map_err(|_| libc::EIO)?;
            self.databases.insert(ino, file);
        }
        Ok(&self.databases[&ino])
    }
}

fn link_target(node: &Node) -> Vec<u8> {
    match (&node.target_bytes, &node.target) {
        (Some(bytes), _) => bytes.clone(),
        (None, Some(text)) => text.as_bytes().to_vec(),
        (None, None) => Vec::new(),
    }
}

impl Filesystem for SnapshotFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let children = match self.children(parent) {
            Ok(children) => children,
            Err(code) => return reply.error(code),
        };
        let found = children
            .into_iter()
            .find(|ino| self.name_of(*ino) == Some(name));
        if let Some(ino) = found {
            if let Err(code) = self.prepare(ino) {
                return reply.error(code);
            }
        }
        match found.and_then(|ino| self.attr(ino)) {
            Some(attr) => reply.entry(&TTL, &attr, 0),
            None => reply.error(libc::ENOENT),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        if let Err(code) = self.prepare(ino) {
            return reply.error(code);
        }
        match self.attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(libc::ENOENT),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        match self.entries.get(&ino) {
            Some(Entry::Latest { target }) => reply.data(target.as_bytes()),
            Some(Entry::Stored { node, .. }) if node.node_type == NodeType::Symlink => {
                reply.data(&link_target(node))
            }
            _ => reply.error(libc::EINVAL),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(libc::EROFS);
        }
        match self.entries.get(&ino) {
            Some(Entry::Stored { node, .. }) if node.node_type == NodeType::File => {
                reply.opened(0, 0)
            }
            Some(Entry::Point { .. }) => reply.opened(0, 0),
            Some(_) => reply.error(libc::EISDIR),
            None => reply.error(libc::ENOENT),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        match self.read_at(ino, offset.max(0) as u64, size as u64) {
            Ok(data) => reply.data(&data),
            Err(code) => reply.error(code),
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let children = match self.children(ino) {
            Ok(children) => children,
            Err(code) => return reply.error(code),
        };
        let mut listing: Vec<(u64, FileType, OsString)> = vec![
            (ino, FileType::Directory, ".".into()),
            (ROOT, FileType::Directory, "..".into()),
        ];
        for child in children {
            if let (Some(attr), Some(name)) = (self.attr(child), self.name_of(child)) {
                listing.push((child, attr.kind, name.to_os_string()));
            }
        }
        for (i, (child, kind, name)) in listing.into_iter().enumerate().skip(offset as usize) {
            if reply.add(child, (i + 1) as i64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }
}

/// Mounts `fs` read-only at `dir` and serves it until SIGINT or SIGTERM; unmounts then.
pub fn serve(fs: SnapshotFs, dir: &Path) -> std::io::Result<()> {
    let options = [
        MountOption::RO,
        MountOption::FSName("lifeboat".into()),
        MountOption::Subtype("lifeboat".into()),
        MountOption::DefaultPermissions,
    ];
    // SAFETY: the signal mask is changed before any other thread of this process starts
    // (fuser's session thread inherits it), so the signals stay pending for sigwait.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let session = fuser::spawn_mount2(fs, dir, &options)?;
    let mut signal = 0;
    // SAFETY: `set` is an initialised signal set; sigwait only writes `signal`.
    unsafe { libc::sigwait(&set, &mut signal) };
    drop(session);
    unmount(dir)
}

/// Makes sure nothing stays mounted at `dir`: without libfuse, fuser leaves the unmount to
/// `fusermount`, which a server may not have. Root unmounts directly.
fn unmount(dir: &Path) -> std::io::Result<()> {
    if !is_mounted(dir) {
        return Ok(());
    }
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: `path` is a NUL-terminated path; umount2 only reads it.
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    for tool in ["fusermount3", "fusermount"] {
        let done = std::process::Command::new(tool)
            .arg("-u")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if done {
            return Ok(());
        }
    }
    Err(std::io::Error::other(format!(
        "{} is still mounted: unmount it with `fusermount -u {}` or `umount {}` as root",
        dir.display(),
        dir.display(),
        dir.display()
    )))
}

/// Whether a file system is mounted at `dir` (per /proc/self/mountinfo).
fn is_mounted(dir: &Path) -> bool {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|table| {
        table.lines().any(|line| {
            line.split(' ')
                .nth(4)
                .is_some_and(|point| Path::new(&unescape(point)) == dir)
        })
    })
}

/// A mount point as mountinfo writes it (`\040` for a space, and so on).
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&digits, 8) {
                Ok(byte) => out.push(byte as char),
                Err(_) => {
                    out.push(c);
                    out.push_str(&digits);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
