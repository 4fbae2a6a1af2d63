//! Restoring a snapshot's trees to a directory, in parallel, with metadata.
//!
//! Every tree is read and checked first (the tree rules refuse duplicate, unsorted and
//! unsafe names), so a hostile repository is refused before anything is written. Then
//! directories (0700) and empty, correctly sized files (0600) are laid out, private until
//! the end; worker threads fill files segment by segment (reading, decrypting and checking
//! each blob) with positioned writes; all-zero chunks are skipped, so holes stay holes.
//! Symlinks are made next, then ownership (when running as root), permissions and times
//! are applied, files first and directories deepest first, so writing into a directory
//! does not disturb its restored mtime and no directory opens up before what is inside
//! it is complete. Nothing below the target is reached through a symlink ([`beneath`]).

mod beneath;

use std::ffi::OsStr;
use std::fs;
use std::ops::Range;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::tree::{escape_path, Node, NodeType};
use lifeboat_repo::{Id, Repository};

pub use beneath::Partial;
use beneath::{Beneath, FileId};

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

/// A directory to restore; the target itself is number 0 (without a node). Its children
/// in the plan are contiguous, so each directory is opened once to lay them out.
struct PlannedDir {
    rel: PathBuf,
    node: Option<Node>,
    id: FileId,
    dirs: Range<usize>,
    files: Range<usize>,
    links: Range<usize>,
}

struct PlannedFile {
    rel: PathBuf,
    node: Node,
    id: FileId,
}

/// Directories in breadth-first order (parents before children), then their entries.
struct Plan {
    dirs: Vec<PlannedDir>,
    files: Vec<PlannedFile>,
    links: Vec<Node>,
    segments: Vec<Segment>,
}

fn name_of(node: &Node) -> &OsStr {
    OsStr::from_bytes(node.name_key())
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

/// Reads every tree below `root` (each checked as it is decoded) into a plan; touches no
/// file.
fn plan(
    repo: &Repository,
    index: &MasterIndex,
    root: Id,
    options: &RestoreOptions,
) -> Result<Plan> {
    let mut plan = Plan {
        dirs: vec![PlannedDir {
            rel: PathBuf::new(),
            node: None,
            id: FileId::default(),
            dirs: 0..0,
            files: 0..0,
            links: 0..0,
        }],
        files: Vec::new(),
        links: Vec::new(),
        segments: Vec::new(),
    };
    // `/uploads/a.png` (as `ls` prints it), `./uploads/a.png/` and `uploads/a.png` are one
    // path inside the snapshot.
    let include: Vec<PathBuf> = options
        .include
        .iter()
        .map(|i| {
            i.components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
                .collect::<PathBuf>()
        })
        .collect();
    let mut matched = vec![false; include.len()];
    let mut next = 0;
    while next < plan.dirs.len() {
        let subtree = match &plan.dirs[next].node {
            None => Some(root),
            Some(node) => node.subtree,
        };
        let tree = match subtree {
            Some(id) => repo.load_tree(index, &id)?,
            None => Default::default(),
        };
        let rel_dir = plan.dirs[next].rel.clone();
        let (dirs, files, links) = (plan.dirs.len(), plan.files.len(), plan.links.len());
        for node in tree.nodes {
            let rel = rel_dir.join(name_of(&node));
            for (wanted, seen) in include.iter().zip(matched.iter_mut()) {
                *seen |= *wanted == rel;
            }
            let included = inclusion(&rel, &include);
            match node.node_type {
                _ if included == Inclusion::Skip => {}
                NodeType::Dir => plan.dirs.push(PlannedDir {
                    rel,
                    node: Some(node),
                    id: FileId::default(),
                    dirs: 0..0,
                    files: 0..0,
                    links: 0..0,
                }),
                _ if included == Inclusion::Ancestor => {}
                NodeType::File => {
                    let segments = segments(repo, index, plan.files.len(), &node, &rel)?;
                    plan.segments.extend(segments);
                    plan.files.push(PlannedFile {
                        rel,
                        node,
                        id: FileId::default(),
                    });
                }
                NodeType::Symlink => plan.links.push(node),
            }
        }
        let ends = (plan.dirs.len(), plan.files.len(), plan.links.len());
        let dir = &mut plan.dirs[next];
        dir.dirs = dirs..ends.0;
        dir.files = files..ends.1;
        dir.links = links..ends.2;
        next += 1;
    }
    // An include that matches nothing would restore nothing and look like success.
    let missing: Vec<String> = include
        .iter()
        .zip(&matched)
        .filter(|(_, seen)| !**seen)
        .map(|(wanted, _)| escape_path(wanted))
        .collect();
    if !missing.is_empty() {
        return Err(SourceError::Invalid(format!(
            "nothing in the snapshot is at {} (give paths as `lifeboat ls SNAPSHOT` shows them)",
            missing.join(", ")
        )));
    }
    Ok(plan)
}

pub fn restore_tree(
    repo: &Repository,
    index: &MasterIndex,
    root: Id,
    target: &Path,
    options: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreStats> {
    let mut plan = plan(repo, index, root, options)?;
    let io = |rel: &Path, e: std::io::Error| SourceError::Io {
        path: escape_path(&target.join(rel)),
        source: e,
    };
    let within = Beneath::open(target).map_err(|e| io(Path::new(""), e))?;
    let owner = |node: &Node| beneath::is_root().then_some((node.uid, node.gid));
    let mtime = |node: &Node| (node.mtime, node.mtime_nsec);

    // Lay out: every directory private, every file empty, private and full length.
    plan.dirs[0].id = within
        .open_at(Path::new(""), rustix::fs::OFlags::RDONLY)
        .and_then(|fd| beneath::FileId::of(&fd))
        .map_err(|e| io(Path::new(""), e))?;
    for i in 0..plan.dirs.len() {
        let dir = &plan.dirs[i];
        let fd = within
            .open_dir(&dir.rel, dir.id)
            .map_err(|e| io(&dir.rel, e))?;
        let (dirs, files) = (dir.dirs.clone(), dir.files.clone());
        for child in &mut plan.dirs[dirs] {
            let node = child.node.as_ref().expect("only the target has no node");
            child.id =
                beneath::make_dir(fd.as_fd(), name_of(node)).map_err(|e| io(&child.rel, e))?;
        }
        for file in &mut plan.files[files] {
            file.id = beneath::create_file(fd.as_fd(), name_of(&file.node), file.node.size)
                .map_err(|e| io(&file.rel, e))?;
        }
    }

    fill_files(
        repo,
        index,
        &plan.segments,
        |i| {
            let file = &plan.files[i];
            within
                .open_file(&file.rel, true, file.id)
                .map_err(|e| io(&file.rel, e))
        },
        |i| escape_path(&target.join(&plan.files[i].rel)),
        progress,
    )?;
    lifeboat_repo::fault::point("restore-filled");

    for dir in &plan.dirs {
        if dir.links.is_empty() {
            continue;
        }
        let fd = within
            .open_dir(&dir.rel, dir.id)
            .map_err(|e| io(&dir.rel, e))?;
        for node in &plan.links[dir.links.clone()] {
            let link = match &node.target_bytes {
                Some(bytes) => OsStr::from_bytes(bytes).to_os_string(),
                None => node.target.clone().unwrap_or_default().into(),
            };
            beneath::make_symlink(fd.as_fd(), name_of(node), &link, owner(node), mtime(node))
                .map_err(|e| io(&dir.rel.join(name_of(node)), e))?;
        }
    }
    for file in &plan.files {
        if file.node.sqlite {
            // SQLite only takes paths: every directory of the restore is still private
            // to the restoring user here, so nobody else can swap what the path names.
            crate::sqlite::after_restore(&target.join(&file.rel))?;
        }
        let handle = within
            .open_file(&file.rel, false, file.id)
            .map_err(|e| io(&file.rel, e))?;
        let node = &file.node;
        beneath::set_metadata(&handle, owner(node), node.mode, mtime(node))
            .map_err(|e| io(&file.rel, e))?;
    }
    // Breadth-first order reversed is deepest first: restoring a child does not bump a
    // parent's mtime, and a directory opens up only when everything below it is done.
    for dir in plan.dirs.iter().rev() {
        let Some(node) = &dir.node else { continue };
        let fd = within
            .open_dir(&dir.rel, dir.id)
            .map_err(|e| io(&dir.rel, e))?;
        beneath::set_metadata(&fd, owner(node), node.mode, mtime(node))
            .map_err(|e| io(&dir.rel, e))?;
    }
    Ok(RestoreStats {
        files: plan.files.len() as u64,
        dirs: plan.dirs.len() as u64 - 1,
        symlinks: plan.links.len() as u64,
        bytes: plan.files.iter().map(|f| f.node.size).sum(),
        databases: plan.files.iter().filter(|f| f.node.sqlite).count() as u64,
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
            escape_path(rel),
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
            escape_path(rel),
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
    let what = escape_path(target);
    let io = |e: std::io::Error| SourceError::Io {
        path: what.clone(),
        source: e,
    };
    let partial = Partial::beside(target).map_err(io)?;
    let file = partial.file();
    let segments = segments(repo, index, 0, node, Path::new(name_of(node)))?;
    file.set_len(node.size).map_err(io)?;
    fill_files(
        repo,
        index,
        &segments,
        |_| file.try_clone().map_err(io),
        |_| what.clone(),
        progress,
    )?;
    edit(file)?;
    file.sync_all().map_err(io)?;
    if node.sqlite {
        crate::sqlite::check(&partial.temp_path())?;
        crate::sqlite::remove_stale_companions(target)?;
    }
    file.set_permissions(fs::Permissions::from_mode(node.mode & 0o7777))
        .map_err(io)?;
    partial.persist().map_err(io)
}

/// Writes `target` whole or not at all: `fill` writes a scratch file beside it, which is
/// synced and renamed over `target` only if `fill` succeeded.
pub(crate) fn write_then_rename(
    target: &Path,
    fill: impl FnOnce(&mut fs::File) -> Result<()>,
) -> Result<()> {
    let io = |e: std::io::Error| SourceError::Io {
        path: escape_path(target),
        source: e,
    };
    let mut partial = Partial::beside(target).map_err(io)?;
    fill(partial.file_mut())?;
    partial.persist().map_err(io)
}

/// The largest read one job makes, and the largest gap between two blobs it reads
/// through rather than making another request for the second.
const RUN_BYTES: u64 = 8 << 20;
const RUN_GAP: u64 = 256 << 10;

/// One blob to write into one file.
struct Part<'a> {
    file: usize,
    piece: &'a Piece,
}

/// Groups every piece of `segments` into runs of blobs that lie close together in one
/// pack, each fetched with a single ranged read: restoring many small files (or a
/// database's pages) makes a request per run, not one per blob.
fn runs<'a>(index: &MasterIndex, segments: &'a [Segment]) -> Result<Vec<Vec<Part<'a>>>> {
    let mut parts = Vec::new();
    for segment in segments {
        for piece in &segment.pieces {
            let location = index
                .get(&piece.blob)
                .ok_or(lifeboat_repo::RepoError::BlobMissing(piece.blob))?;
            parts.push((
                location.pack,
                location.offset,
                location.length,
                Part {
                    file: segment.file,
                    piece,
                },
            ));
        }
    }
    parts.sort_by_key(|(pack, offset, _, _)| (*pack, *offset));
    let mut runs: Vec<Vec<Part>> = Vec::new();
    let mut current: Option<(lifeboat_repo::Id, u64, u64)> = None;
    for (pack, offset, length, part) in parts {
        let end = offset + length as u64;
        let joins = current.is_some_and(|(p, start, last)| {
            p == pack && offset <= last + RUN_GAP && end.max(last) - start <= RUN_BYTES
        });
        if joins {
            let (_, _, last) = current.as_mut().expect("joined");
            *last = (*last).max(end);
            runs.last_mut().expect("joined").push(part);
        } else {
            current = Some((pack, offset, end));
            runs.push(vec![part]);
        }
    }
    Ok(runs)
}

/// Fills files from `segments` on several threads; `open` gives a writable handle on file
/// number `i`, `label` its name for messages.
fn fill_files(
    repo: &Repository,
    index: &MasterIndex,
    segments: &[Segment],
    open: impl Fn(usize) -> Result<fs::File> + Sync,
    label: impl Fn(usize) -> String + Sync,
    progress: &dyn Progress,
) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .clamp(2, 16);
    let runs = runs(index, segments)?;
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<SourceError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                if failure.lock().expect("failure slot").is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(run) = runs.get(i) else {
                    return;
                };
                if let Err(e) = fill_run(repo, index, run, &open, &label, progress) {
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

fn fill_run(
    repo: &Repository,
    index: &MasterIndex,
    run: &[Part],
    open: &(impl Fn(usize) -> Result<fs::File> + Sync),
    label: &(impl Fn(usize) -> String + Sync),
    progress: &dyn Progress,
) -> Result<()> {
    let ids: Vec<lifeboat_repo::Id> = run.iter().map(|p| p.piece.blob).collect();
    let blobs = repo.read_blob_run(index, &ids)?;
    let mut handle: Option<(usize, fs::File)> = None;
    for (part, data) in run.iter().zip(blobs) {
        let file = match &handle {
            Some((i, file)) if *i == part.file => file,
            _ => &handle.insert((part.file, open(part.file)?)).1,
        };
        let piece = part.piece;
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
                    .map_err(|e| SourceError::Io {
                        path: label(part.file),
                        source: e,
                    })?;
            }
            progress.bytes(bytes.len() as u64);
        }
    }
    Ok(())
}
