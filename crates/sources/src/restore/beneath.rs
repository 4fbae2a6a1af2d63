//! File operations confined to a restore target that may be hostile.
//!
//! Whoever can write inside the target (the web app's user, whose `uploads/` a root
//! restore brings back) may plant symlinks or swap entries while a restore runs. So no
//! path below the target is ever resolved through a link: every open starts from a
//! directory handle of the target and uses `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`
//! (or, on kernels without it, an `O_NOFOLLOW` walk one component at a time); an existing
//! entry of the wrong kind is removed, never followed; files are always created anew
//! (`O_EXCL`), never opened for writing where they stood (a planted hard link would
//! otherwise carry the writes elsewhere); and ownership, mode and times are set on handles
//! (`fchown`, `fchmod`, `futimens`) or with `AT_SYMLINK_NOFOLLOW`. Files the restore made
//! are re-opened only after checking they are still the same inode.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps,
};

/// Set once `openat2` turned out to be missing (old kernel, or a seccomp filter).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// A file or directory the restore made, by device and inode, to re-open only it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub(super) fn of(fd: impl AsFd) -> io::Result<FileId> {
        let stat = rfs::fstat(fd)?;
        Ok(FileId {
            dev: stat.st_dev,
            ino: stat.st_ino,
        })
    }
}

/// Whether the process may give files away (only root restores ownership).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A handle on the restore target; every path given to it is relative to the target and
/// made only of plain components.
pub struct Beneath {
    root: OwnedFd,
}

impl Beneath {
    /// Creates `target` if needed and opens it. The target's own path is the user's
    /// choice and is resolved normally; nothing below it is.
    pub fn open(target: &Path) -> io::Result<Beneath> {
        std::fs::create_dir_all(target)?;
        let root = rfs::open(
            target,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Beneath { root })
    }

    /// Opens `rel` without following any symlink on the way or at the end.
    pub fn open_at(&self, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if rel.as_os_str().is_empty() {
            return Ok(rfs::openat(&self.root, ".", flags, Mode::empty())?);
        }
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            let resolve =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rfs::openat2(&self.root, rel, flags, Mode::empty(), resolve) {
                Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::PERM) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed)
                }
                result => return Ok(result?),
            }
        }
        walk(self.root.as_fd(), rel, flags)
    }

    /// Opens the directory `rel`, which must be `expected` (the one this restore made or
    /// took over).
    pub fn open_dir(&self, rel: &Path, expected: FileId) -> io::Result<OwnedFd> {
        let fd = self.open_at(rel, OFlags::RDONLY | OFlags::DIRECTORY)?;
        same_file(&fd, expected)?;
        Ok(fd)
    }

    /// Opens the regular file `rel` that this restore created as `expected`.
    pub fn open_file(&self, rel: &Path, write: bool, expected: FileId) -> io::Result<File> {
        let access = if write {
            OFlags::WRONLY
        } else {
            OFlags::RDONLY
        };
        let fd = self.open_at(rel, access | OFlags::NONBLOCK)?;
        same_file(&fd, expected)?;
        Ok(File::from(fd))
    }
}

fn same_file(fd: impl AsFd, expected: FileId) -> io::Result<()> {
    if FileId::of(fd)? == expected {
        Ok(())
    } else {
        Err(io::Error::other(
            "was replaced by something else while the restore ran",
        ))
    }
}

/// The `O_NOFOLLOW` walk for kernels without `openat2`.
fn walk(root: BorrowedFd, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let names: Vec<&OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a plain relative path",
            )),
        })
        .collect::<io::Result<_>>()?;
    let (last, dirs) = names.split_last().expect("a non-empty path");
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir: Option<OwnedFd> = None;
    for name in dirs {
        let parent = dir.as_ref().map_or(root, |d| d.as_fd());
        dir = Some(rfs::openat(parent, *name, dir_flags, Mode::empty())?);
    }
    let parent = dir.as_ref().map_or(root, |d| d.as_fd());
    Ok(rfs::openat(parent, *last, flags, Mode::empty())?)
}

/// Makes `name` in `parent` a private directory of this restore: an existing directory is
/// kept but taken over (owned by the restoring user, mode 0700) so nobody else can change
/// what is inside while the restore runs; anything else there is removed first.
pub fn make_dir(parent: BorrowedFd, name: &OsStr) -> io::Result<FileId> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Directory => {
            let fd = rfs::openat(parent, name, dir_flags, Mode::empty())?;
            if is_root() {
                rfs::fchown(&fd, Some(rfs::Uid::ROOT), Some(rfs::Gid::ROOT))?;
            }
            rfs::fchmod(&fd, Mode::from_raw_mode(0o700))?;
            return FileId::of(&fd);
        }
        Ok(_) => rfs::unlinkat(parent, name, AtFlags::empty())?,
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))?;
    let fd = rfs::openat(parent, name, dir_flags, Mode::empty())?;
    FileId::of(&fd)
}

/// Creates `name` in `parent` as a new private (0600) file of `size` bytes, replacing
/// whatever was there.
pub fn create_file(parent: BorrowedFd, name: &OsStr, size: u64) -> io::Result<FileId> {
    remove_entry(parent, name)?;
    let fd = rfs::openat(
        parent,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    rfs::ftruncate(&fd, size)?;
    FileId::of(&fd)
}

/// Creates the symlink `name` in `parent` pointing at `target`, replacing whatever was
/// there, and sets its owner (as root) and times without following it.
pub fn make_symlink(
    parent: BorrowedFd,
    name: &OsStr,
    target: &OsStr,
    owner: Option<(u32, u32)>,
    mtime: (i64, u32),
) -> io::Result<()> {
    remove_entry(parent, name)?;
    rfs::symlinkat(target, parent, name)?;
    if let Some((uid, gid)) = owner {
        rfs::chownat(
            parent,
            name,
            uid_of(uid),
            gid_of(gid),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    rfs::utimensat(parent, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Sets owner (when `owner` is given), permission bits and times on an open handle;
/// owner first, since `chown` clears set-user-ID and set-group-ID bits.
pub fn set_metadata(
    fd: impl AsFd,
    owner: Option<(u32, u32)>,
    mode: u32,
    mtime: (i64, u32),
) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        rfs::fchown(&fd, uid_of(uid), gid_of(gid))?;
    }
    rfs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777))?;
    rfs::futimens(&fd, &times(mtime))?;
    Ok(())
}

/// A tree's owner as `chown` takes it; `u32::MAX` means "leave as is" to the kernel, so
/// it is passed as exactly that rather than as an id.
fn uid_of(uid: u32) -> Option<rfs::Uid> {
    (uid != u32::MAX).then(|| rfs::Uid::from_raw(uid))
}

fn gid_of(gid: u32) -> Option<rfs::Gid> {
    (gid != u32::MAX).then(|| rfs::Gid::from_raw(gid))
}

fn times((sec, nsec): (i64, u32)) -> Timestamps {
    let at = Timespec {
        tv_sec: sec,
        tv_nsec: nsec.min(999_999_999) as _,
    };
    Timestamps {
        last_access: at,
        last_modification: at,
    }
}

/// Removes `name` from `parent` if it exists: a directory with everything below it, any
/// other entry (a symlink included) by unlinking it. Nothing is followed.
pub fn remove_entry(parent: BorrowedFd, name: &OsStr) -> io::Result<()> {
    match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Directory => {
            remove_tree(parent, name)
        }
        Ok(_) => Ok(rfs::unlinkat(parent, name, AtFlags::empty())?),
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn remove_tree(parent: BorrowedFd, name: &OsStr) -> io::Result<()> {
    let fd = rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut entries = Vec::new();
    for entry in rfs::Dir::read_from(&fd)? {
        let entry = entry?;
        let child = OsStr::from_bytes(entry.file_name().to_bytes());
        if child != "." && child != ".." {
            entries.push((child.to_os_string(), entry.file_type()));
        }
    }
    for (child, kind) in entries {
        match kind {
            FileType::Directory => remove_tree(fd.as_fd(), &child)?,
            FileType::Unknown => remove_entry(fd.as_fd(), &child)?,
            _ => rfs::unlinkat(&fd, &child, AtFlags::empty())?,
        }
    }
    drop(fd);
    Ok(rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)?)
}

/// A file written under a temporary name in a directory and renamed over its final name
/// only when complete: a failed restore leaves nothing under the final name. The
/// directory is opened once; the names are single components inside it, so neither the
/// scratch file nor the final name is ever reached through a symlink.
pub struct Partial {
    dir: OwnedFd,
    dir_path: PathBuf,
    name: OsString,
    temp: OsString,
    file: File,
    done: bool,
}

impl Partial {
    /// A scratch file (mode 0600) for `name` in the directory `dir`.
    pub fn new(dir: &Path, name: &OsStr) -> io::Result<Partial> {
        lifeboat_repo::tree::check_name(name.as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let dir_path = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_path_buf()
        };
        let dir = rfs::open(
            dir_path.as_path(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let temp = OsString::from(format!(
                ".lifeboat-restore-{}-{n}-{nanos:08x}",
                std::process::id()
            ));
            match rfs::openat(
                &dir,
                &temp,
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => {
                    return Ok(Partial {
                        dir,
                        dir_path,
                        name: name.to_os_string(),
                        temp,
                        file: File::from(fd),
                        done: false,
                    })
                }
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A scratch file beside the file `target`.
    pub fn beside(target: &Path) -> io::Result<Partial> {
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        Partial::new(target.parent().unwrap_or(Path::new("")), name)
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// The scratch file's path, for tools that only take paths (SQLite's checks).
    pub fn temp_path(&self) -> PathBuf {
        self.dir_path.join(&self.temp)
    }

    /// Syncs the file and renames it over the final name (a directory there is removed
    /// first; a symlink or file is replaced by the rename itself, never followed).
    pub fn persist(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        if let Ok(stat) = rfs::statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW) {
            if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                remove_tree(self.dir.as_fd(), &self.name)?;
            }
        }
        rfs::renameat(&self.dir, &self.temp, &self.dir, &self.name)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.done {
            let _ = rfs::unlinkat(&self.dir, &self.temp, AtFlags::empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn new_files_and_directories_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let target = Beneath::open(dir.path()).unwrap();
        let root = target.open_at(Path::new(""), OFlags::RDONLY).unwrap();
        make_dir(root.as_fd(), OsStr::new("d")).unwrap();
        create_file(root.as_fd(), OsStr::new("f"), 10).unwrap();
        let d = std::fs::metadata(dir.path().join("d")).unwrap();
        assert_eq!(d.permissions().mode() & 0o7777, 0o700);
        let f = std::fs::metadata(dir.path().join("f")).unwrap();
        assert_eq!(f.permissions().mode() & 0o7777, 0o600);
        assert_eq!(f.size(), 10);
    }

    #[test]
    fn an_existing_directory_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::set_permissions(dir.path().join("d"), PermissionsExt::from_mode(0o777)).unwrap();
        std::fs::write(dir.path().join("d/keep"), b"x").unwrap();
        let target = Beneath::open(dir.path()).unwrap();
        let root = target.open_at(Path::new(""), OFlags::RDONLY).unwrap();
        let id = make_dir(root.as_fd(), OsStr::new("d")).unwrap();
        let meta = std::fs::metadata(dir.path().join("d")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
        assert!(dir.path().join("d/keep").exists());
        assert!(target.open_dir(Path::new("d"), id).is_ok());
    }

    #[test]
    fn links_below_the_target_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("f"), b"outside").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let target = Beneath::open(dir.path()).unwrap();
        let err = target
            .open_at(Path::new("link/f"), OFlags::RDONLY)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        // The walk used without openat2 refuses it too.
        let root = target.open_at(Path::new(""), OFlags::RDONLY).unwrap();
        assert!(walk(
            root.as_fd(),
            Path::new("link/f"),
            OFlags::RDONLY | OFlags::NOFOLLOW
        )
        .is_err());
        assert!(walk(
            root.as_fd(),
            Path::new("link"),
            OFlags::RDONLY | OFlags::NOFOLLOW
        )
        .is_err());
        // A directory is made where the link was; the outside stays as it was.
        let id = make_dir(root.as_fd(), OsStr::new("link")).unwrap();
        assert!(!std::fs::symlink_metadata(dir.path().join("link"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(target.open_dir(Path::new("link"), id).is_ok());
        // A file is made where a link was, not written through it.
        std::os::unix::fs::symlink(outside.path().join("f"), dir.path().join("f")).unwrap();
        create_file(root.as_fd(), OsStr::new("f"), 3).unwrap();
        assert_eq!(std::fs::read(outside.path().join("f")).unwrap(), b"outside");
        assert!(std::fs::symlink_metadata(dir.path().join("f"))
            .unwrap()
            .is_file());
    }

    #[test]
    fn a_replaced_file_is_not_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let target = Beneath::open(dir.path()).unwrap();
        let root = target.open_at(Path::new(""), OFlags::RDONLY).unwrap();
        let id = create_file(root.as_fd(), OsStr::new("f"), 0).unwrap();
        // Moved aside, not deleted: a freed inode number could be handed out again.
        std::fs::rename(dir.path().join("f"), dir.path().join("g")).unwrap();
        std::fs::write(dir.path().join("f"), b"planted").unwrap();
        let err = target.open_file(Path::new("f"), true, id).unwrap_err();
        assert!(err.to_string().contains("replaced"), "{err}");
    }

    #[test]
    fn a_directory_tree_is_removed_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"x").unwrap();
        std::fs::create_dir_all(dir.path().join("d/e")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("d/e/link")).unwrap();
        let target = Beneath::open(dir.path()).unwrap();
        let root = target.open_at(Path::new(""), OFlags::RDONLY).unwrap();
        remove_entry(root.as_fd(), OsStr::new("d")).unwrap();
        assert!(!dir.path().join("d").exists());
        assert!(outside.path().join("precious").exists());
    }
}
