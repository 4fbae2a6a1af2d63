//! Reading what a backup walks without following symlinks or blocking on special files.
//!
//! Every entry is reached relative to its parent directory's handle (`openat`,
//! `fstatat`, `readlinkat` with `O_NOFOLLOW`), so an entry replaced by a symlink during
//! the walk is never followed, and a directory swapped for a link to somewhere else is
//! not walked into. Regular files are opened with `O_NONBLOCK` and checked with `fstat`:
//! a FIFO that took a file's place cannot make the backup wait forever for a writer.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// The metadata a node records, from `fstatat` or `fstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attrs {
    pub kind: FileType,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub size: u64,
    pub inode: u64,
    pub device: u64,
}

impl Attrs {
    // `stat`'s field types differ between architectures: the casts are needed on some.
    #[allow(clippy::unnecessary_cast)]
    fn from_stat(st: &rustix::fs::Stat) -> Attrs {
        Attrs {
            kind: FileType::from_raw_mode(st.st_mode as _),
            mode: st.st_mode as u32 & 0o7777,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            mtime: st.st_mtime as i64,
            mtime_nsec: st.st_mtime_nsec as u32,
            size: st.st_size as u64,
            inode: st.st_ino as u64,
            device: st.st_dev as u64,
        }
    }

    pub fn from_metadata(meta: &Metadata) -> Attrs {
        Attrs {
            kind: FileType::from_raw_mode(meta.mode() as _),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec() as u32,
            size: meta.len(),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }

    /// Whether `self` and `other` are the same file (not the same content).
    pub fn same_file(&self, other: &Attrs) -> bool {
        self.inode == other.inode && self.device == other.device
    }
}

/// What a special file is, in the words of a warning.
pub(crate) fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Symlink => "a symlink",
        FileType::Directory => "a directory",
        FileType::RegularFile => "a regular file",
        _ => "a file of unknown type",
    }
}

/// Why `e` kept an entry out, in the words of a warning.
pub(crate) fn problem(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => "vanished during the backup".into(),
        // O_NOFOLLOW met a link where the listing showed something else.
        Some(libc::ELOOP) => "was replaced by a symlink during the backup".into(),
        _ => format!("cannot be read ({e})"),
    }
}

/// Opens the directory at `path` as the user gave it (symlinks in it are followed, as
/// `backup /srv/app` through a linked `/srv` means).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The entry `name` of `dir` itself (a symlink is not followed).
pub(crate) fn lstat_at(dir: impl AsFd, name: &OsStr) -> io::Result<Attrs> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(Attrs::from_stat(&st))
}

/// Opens the subdirectory `name` of `dir`; a symlink fails with `ELOOP`/`ENOTDIR`.
pub(crate) fn open_dir_at(dir: impl AsFd, name: &OsStr) -> io::Result<(OwnedFd, Attrs)> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let attrs = Attrs::from_stat(&rustix::fs::fstat(&fd)?);
    Ok((fd, attrs))
}

/// Opens the regular file `name` of `dir` for reading. `O_NONBLOCK` keeps a FIFO (or a
/// device) that took the file's place from blocking the open; `fstat` on the handle then
/// refuses anything but a regular file, and `O_NONBLOCK` is cleared again for reading.
pub(crate) fn open_file_at(dir: impl AsFd, name: &OsStr) -> io::Result<(File, Attrs)> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let attrs = Attrs::from_stat(&rustix::fs::fstat(&fd)?);
    if attrs.kind != FileType::RegularFile {
        return Err(io::Error::other(format!(
            "is {} now, not a regular file",
            describe(attrs.kind)
        )));
    }
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK)?;
    Ok((File::from(fd), attrs))
}

/// The target of the symlink `name` of `dir`.
pub(crate) fn read_link_at(dir: impl AsFd, name: &OsStr) -> io::Result<OsString> {
    let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
    Ok(OsString::from_vec(target.into_bytes()))
}

/// The names in `dir` (without `.` and `..`), and the error that ended the listing
/// early, if one did: the names read before it are still returned.
pub(crate) fn list(dir: &OwnedFd) -> (Vec<OsString>, Option<io::Error>) {
    let mut names = Vec::new();
    let entries = match rustix::fs::Dir::read_from(dir) {
        Ok(entries) => entries,
        Err(e) => return (names, Some(e.into())),
    };
    for entry in entries {
        match entry {
            Ok(entry) => {
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    names.push(OsStr::from_bytes(name).to_os_string());
                }
            }
            Err(e) => return (names, Some(e.into())),
        }
    }
    (names, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_followed_and_nothing_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let fd = open_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join("file"), b"data").unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo reads a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("fifo", dir.path().join("link")).unwrap();

        let (_, attrs) = open_file_at(&fd, OsStr::new("file")).unwrap();
        assert_eq!((attrs.kind, attrs.size), (FileType::RegularFile, 4));
        // A FIFO opens without a writer (O_NONBLOCK) and is refused, not read.
        let err = open_file_at(&fd, OsStr::new("fifo")).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        // A symlink is never opened through.
        let err = open_file_at(&fd, OsStr::new("link")).unwrap_err();
        assert_eq!(problem(&err), "was replaced by a symlink during the backup");
        assert!(open_dir_at(&fd, OsStr::new("link")).is_err());
        assert_eq!(
            lstat_at(&fd, OsStr::new("link")).unwrap().kind,
            FileType::Symlink
        );
        assert_eq!(read_link_at(&fd, OsStr::new("link")).unwrap(), "fifo");
        let err = lstat_at(&fd, OsStr::new("gone")).unwrap_err();
        assert_eq!(problem(&err), "vanished during the backup");
        let (mut names, error) = list(&fd);
        names.sort();
        assert!(error.is_none());
        assert_eq!(names, ["fifo", "file", "link"]);
    }
}
