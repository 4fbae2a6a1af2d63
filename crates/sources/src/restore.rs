//! Restoring a snapshot's trees to a directory, in parallel, with metadata.
//!
//! Directories and empty, correctly sized files are laid out first; then worker threads
//! fill files segment by segment (reading, decrypting and checking each blob) with
//! positioned writes; all-zero chunks are skipped, so holes stay holes. Permissions,
//! ownership (when running as root) and times are applied last, directories deepest
//! first, so writing into a directory does not disturb its restored mtime.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::tree::{Node, NodeType};
use lifeboat_repo::{Id, Repository};

use crate::{Progress, Result, SourceError};

/// Blobs per job: big files are filled by several threads at once.
const BLOBS_PER_SEGMENT: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Restore only these paths (relative to the snapshot root, e.g. `uploads/a.png`)
    /// and what lies below them.
    pub include: Vec<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// SQLite databases restored and checked (integrity and foreign keys).
    pub databases: u64,
}

/// One blob and where its bytes go: `(file offset, range of the blob)`.
struct Piece {
    blob: Id,
    writes: Vec<(u64, std::ops::Range<usize>)>,
}

struct Segment {
    file: usize,
    pieces: Vec<Piece>,
}

struct Plan {
    files: Vec<(PathBuf, Node)>,
    dirs: Vec<(PathBuf, Node)>,
    symlinks: Vec<(PathBuf, Node)>,
    segments: Vec<Segment>,
}

fn name_of(node: &Node) -> &OsStr {
    match &node.name_bytes {
        Some(bytes) => OsStr::from_bytes(bytes),
        None => OsStr::new(&node.name),
    }
}

fn check_name(node: &Node) -> Result<()> {
    let name = name_of(node);
    if name.is_empty() || name == "." || name == ".." || name.as_bytes().contains(&b'/') {
        return Err(SourceError::Invalid(format!(
            "refusing to restore an entry named {:?}: it would escape the target",
            node.name
        )));
    }
    Ok(())
}

/// Whether `rel` should be restored (`Full`), only created as a directory on the way
/// to an included path (`Ancestor`), or skipped.
#[derive(PartialEq)]
enum Inclusion {
    Full,
    Ancestor,
    Skip,
}

fn inclusion(rel: &Path, include: &[PathBuf]) -> Inclusion {
    if include.is_empty() || include.iter().any(|i| rel.starts_with(i)) {
        Inclusion::Full
    } else if include.iter().any(|i| i.starts_with(rel)) {
        Inclusion::Ancestor
    } else {
        Inclusion::Skip
    }
}

pub fn restore_tree(
    repo: &Repository,
    index: &MasterIndex,
    root: Id,
    target: &Path,
    options: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreStats> {
    fs::create_dir_all(target).map_err(|e| SourceError::io(target, e))?;
    let mut plan = Plan {
        files: Vec::new(),
        dirs: Vec::new(),
        symlinks: Vec::new(),
        segments: Vec::new(),
    };
    let mut stack = vec![(PathBuf::new(), root)];
    while let Some((rel_dir, tree_id)) = stack.pop() {
        let tree = repo.load_tree(index, &tree_id)?;
        for node in tree.nodes {
            check_name(&node)?;
            let rel = rel_dir.join(name_of(&node));
            let included = inclusion(&rel, &options.include);
            if included == Inclusion::Skip {
                continue;
            }
            let path = target.join(&rel);
            match node.node_type {
                NodeType::Dir => {
                    fs::create_dir_all(&path).map_err(|e| SourceError::io(&path, e))?;
                    if let Some(subtree) = node.subtree {
                        stack.push((rel, subtree));
                    }
                    plan.dirs.push((path, node));
                }
                _ if included == Inclusion::Ancestor => {}
                NodeType::File => {
                    let segments = segments(repo, index, plan.files.len(), &node, &rel)?;
                    plan.segments.extend(segments);
                    plan.files.push((path, node));
                }
                NodeType::Symlink => plan.symlinks.push((path, node)),
            }
        }
    }

    for (path, node) in &plan.files {
        remove_if_not_regular(path)?;
        let file = fs::File::create(path).map_err(|e| SourceError::io(path, e))?;
        file.set_len(node.size)
            .map_err(|e| SourceError::io(path, e))?;
    }
    fill_files(repo, index, &plan, progress)?;
    for (path, node) in &plan.symlinks {
        let target = match &node.target_bytes {
            Some(bytes) => OsStr::from_bytes(bytes).to_os_string(),
            None => node.target.clone().unwrap_or_default().into(),
        };
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                fs::remove_dir_all(path).map_err(|e| SourceError::io(path, e))?
            }
            Ok(_) => fs::remove_file(path).map_err(|e| SourceError::io(path, e))?,
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&target, path).map_err(|e| SourceError::io(path, e))?;
        apply_owner(path, node, true)?;
        let mtime = filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec);
        filetime::set_symlink_file_times(path, mtime, mtime)
            .map_err(|e| SourceError::io(path, e))?;
    }
    for (path, node) in &plan.files {
        if node.sqlite {
            crate::sqlite::after_restore(path)?;
        }
        apply_metadata(path, node)?;
    }
    // Deepest directories first, so restoring a child does not bump a parent's mtime.
    plan.dirs
        .sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (path, node) in &plan.dirs {
        apply_metadata(path, node)?;
    }
    Ok(RestoreStats {
        files: plan.files.len() as u64,
        dirs: plan.dirs.len() as u64,
        symlinks: plan.symlinks.len() as u64,
        bytes: plan.files.iter().map(|(_, n)| n.size).sum(),
        databases: plan.files.iter().filter(|(_, n)| n.sqlite).count() as u64,
    })
}

/// The jobs that fill file number `file` of a plan.
fn segments(
    repo: &Repository,
    index: &MasterIndex,
    file: usize,
    node: &Node,
    rel: &Path,
) -> Result<Vec<Segment>> {
    let pieces = if node.page_map.is_empty() {
        content_pieces(index, node, rel)?
    } else {
        page_pieces(repo, index, node, rel)?
    };
    let mut pieces = pieces.into_iter().peekable();
    let mut segments = Vec::new();
    while pieces.peek().is_some() {
        segments.push(Segment {
            file,
            pieces: pieces.by_ref().take(BLOBS_PER_SEGMENT).collect(),
        });
    }
    Ok(segments)
}

/// A file's blobs laid end to end.
fn content_pieces(index: &MasterIndex, node: &Node, rel: &Path) -> Result<Vec<Piece>> {
    let mut offset = 0u64;
    let mut pieces = Vec::with_capacity(node.content.len());
    for id in &node.content {
        let length = index
            .get(id)
            .ok_or(lifeboat_repo::RepoError::BlobMissing(*id))?
            .raw_length as usize;
        pieces.push(Piece {
            blob: *id,
            writes: vec![(offset, 0..length)],
        });
        offset += length as u64;
    }
    if offset != node.size {
        return Err(SourceError::Invalid(format!(
            "{}: the snapshot records {} bytes but its blobs hold {offset}",
            rel.display(),
            node.size
        )));
    }
    Ok(pieces)
}

/// A database stored page by page: each blob once, its pages copied to where they belong.
fn page_pieces(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    rel: &Path,
) -> Result<Vec<Piece>> {
    let map = repo.load_page_map(index, &node.page_map)?;
    if map.file_size() != node.size {
        return Err(SourceError::Invalid(format!(
            "{}: the snapshot records {} bytes but its page map holds {}",
            rel.display(),
            node.size,
            map.file_size()
        )));
    }
    let page_size = map.page_size as u64;
    Ok(map
        .runs_by_blob()
        .into_iter()
        .map(|(blob, runs)| Piece {
            blob,
            writes: runs
                .into_iter()
                .map(|run| {
                    let start = (run.slot as u64 * page_size) as usize;
                    let end = start + (run.count as u64 * page_size) as usize;
                    (run.first_page as u64 * page_size, start..end)
                })
                .collect(),
        })
        .collect())
}

/// Restores one file node to `target` (a file path), in parallel like a tree restore; a
/// database is then checked and stale `-wal`/`-shm` beside it removed.
pub fn restore_file(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    target: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    restore_file_then(repo, index, node, target, progress, |_| Ok(()))
}

/// Like [`restore_file`], with `edit` applied to the written file before it is checked
/// and renamed into place (to roll a database forward with stream segments).
pub fn restore_file_then(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    target: &Path,
    progress: &dyn Progress,
    edit: impl FnOnce(&fs::File) -> Result<()>,
) -> Result<()> {
    // Written and checked under a temporary name beside the target, then renamed: a
    // failed restore leaves nothing under the final name.
    let temp = partial_file_beside(target)?;
    let plan = Plan {
        files: vec![(temp.path().to_path_buf(), node.clone())],
        dirs: Vec::new(),
        symlinks: Vec::new(),
        segments: segments(repo, index, 0, node, Path::new(&node.name))?,
    };
    let file = temp.as_file();
    file.set_len(node.size)
        .map_err(|e| SourceError::io(temp.path(), e))?;
    fill_files(repo, index, &plan, progress)?;
    edit(file)?;
    file.sync_all()
        .map_err(|e| SourceError::io(temp.path(), e))?;
    if node.sqlite {
        crate::sqlite::check(temp.path())?;
        crate::sqlite::remove_stale_companions(target)?;
    }
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(node.mode))
        .map_err(|e| SourceError::io(temp.path(), e))?;
    remove_if_not_regular(target)?;
    temp.persist(target)
        .map_err(|e| SourceError::io(target, e.error))?;
    Ok(())
}

/// A hidden scratch file in `target`'s directory, removed when dropped unless persisted
/// over `target`: a restore that fails leaves nothing under the final name.
fn partial_file_beside(target: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".lifeboat-restore-")
        .tempfile_in(dir)
        .map_err(|e| SourceError::io(dir, e))
}

/// Writes `target` whole or not at all: `fill` writes a scratch file beside it, which is
/// synced and renamed over `target` only if `fill` succeeded.
pub(crate) fn write_then_rename(
    target: &Path,
    fill: impl FnOnce(&mut fs::File) -> Result<()>,
) -> Result<()> {
    let mut temp = partial_file_beside(target)?;
    fill(temp.as_file_mut())?;
    temp.as_file()
        .sync_all()
        .map_err(|e| SourceError::io(target, e))?;
    temp.persist(target)
        .map_err(|e| SourceError::io(target, e.error))?;
    Ok(())
}

fn remove_if_not_regular(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).map_err(|e| SourceError::io(path, e)),
        Ok(meta) if !meta.is_file() => fs::remove_file(path).map_err(|e| SourceError::io(path, e)),
        _ => Ok(()),
    }
}

fn fill_files(
    repo: &Repository,
    index: &MasterIndex,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .clamp(2, 16);
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<SourceError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                if failure.lock().expect("failure slot").is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(segment) = plan.segments.get(i) else {
                    return;
                };
                if let Err(e) = fill_segment(repo, index, plan, segment, progress) {
                    failure.lock().expect("failure slot").get_or_insert(e);
                    return;
                }
            });
        }
    });
    match failure.into_inner().expect("failure slot") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn fill_segment(
    repo: &Repository,
    index: &MasterIndex,
    plan: &Plan,
    segment: &Segment,
    progress: &dyn Progress,
) -> Result<()> {
    let path = &plan.files[segment.file].0;
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| SourceError::io(path, e))?;
    for piece in &segment.pieces {
        let data = repo.read_blob(index, &piece.blob)?;
        for (offset, range) in &piece.writes {
            let Some(bytes) = data.get(range.clone()) else {
                return Err(lifeboat_repo::RepoError::damaged(
                    format!("data blob {}", piece.blob.short()),
                    format!(
                        "holds {} bytes, the page map needs {}",
                        data.len(),
                        range.end
                    ),
                )
                .into());
            };
            // The file was created at full length and reads as zeros: leave holes as holes.
            if bytes.iter().any(|&b| b != 0) {
                file.write_all_at(bytes, *offset)
                    .map_err(|e| SourceError::io(path, e))?;
            }
            progress.bytes(bytes.len() as u64);
        }
    }
    Ok(())
}

fn apply_metadata(path: &Path, node: &Node) -> Result<()> {
    apply_owner(path, node, false)?;
    fs::set_permissions(path, fs::Permissions::from_mode(node.mode))
        .map_err(|e| SourceError::io(path, e))?;
    let mtime = filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec);
    filetime::set_file_times(path, mtime, mtime).map_err(|e| SourceError::io(path, e))
}

/// Ownership is restored only when running as root; others cannot give files away.
fn apply_owner(path: &Path, node: &Node, symlink: bool) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let result = if symlink {
        std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid))
    } else {
        std::os::unix::fs::chown(path, Some(node.uid), Some(node.gid))
    };
    result.map_err(|e| SourceError::io(path, e))
}
