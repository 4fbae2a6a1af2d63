//! Locks: leases that tell other processes what is happening in the repository.
//!
//! Every writer creates a unique lock object (`locks/<id>`) and refreshes it while it
//! works; none is ever overwritten, so no conditional write is needed. A lock whose
//! `expires` time has passed belongs to a process that died and is ignored. Before that, a
//! lock counts as dead only when it names this very process table (same boot of the same
//! kernel, same PID namespace: [`pid_space`]) and `kill(pid, 0)` says there is no such
//! process (`ESRCH`). A host name proves nothing (containers with their own PID namespace
//! often share one, and cloned machines too), and `EPERM` means the process lives under
//! another user: taking either for death let a prune run by one user delete the packs of
//! a backup still running as root. Backups take
//! shared locks; work that deletes data (prune) takes an exclusive one (only one prune at
//! a time) and waits, by session id, for the shared locks it saw to end (see `prune.rs`).

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::crypto::ObjectKind;
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::repository::Repository;

/// How long a lock stays valid without a refresh.
pub const LEASE: Duration = Duration::from_secs(30 * 60);
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockRecord {
    pub host: String,
    pub pid: u32,
    pub exclusive: bool,
    pub purpose: String,
    pub created: chrono::DateTime<chrono::Utc>,
    pub expires: chrono::DateTime<chrono::Utc>,
    /// Stays the same across refreshes (which write a new object under a new name), so
    /// `prune` can tell when the session it waits for has ended. Empty in records written
    /// before it existed; the object name stands in then.
    #[serde(default)]
    pub session: String,
    /// The process table `pid` belongs to ([`pid_space`]); empty in records written before
    /// it existed, and where it cannot be read: such locks end only by their lease.
    #[serde(default)]
    pub pid_space: String,
}

/// Names the process table this process's pid is valid in: the kernel's boot id (random at
/// every boot, shared by every container of one kernel) and the inode of the PID
/// namespace. Two equal values mean that a pid names the same process in both; empty
/// when either cannot be read (then no lock is judged by its pid).
pub fn pid_space() -> &'static str {
    static SPACE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SPACE.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id");
        let namespace = std::fs::read_link("/proc/self/ns/pid");
        match (boot, namespace) {
            (Ok(boot), Ok(namespace)) if !boot.trim().is_empty() => {
                format!("{}/{}", boot.trim(), namespace.display())
            }
            _ => String::new(),
        }
    })
}

/// Whether this process can see the holder of `record` and knows that it has exited.
fn holder_has_exited(record: &LockRecord) -> bool {
    let Ok(pid) = i32::try_from(record.pid) else {
        return false;
    };
    if pid <= 0 || record.pid_space.is_empty() || record.pid_space != pid_space() {
        return false;
    }
    // SAFETY: kill with signal 0 only asks whether the process exists; pid is positive, so
    // it names one process, never a group.
    let status = unsafe { libc::kill(pid, 0) };
    // EPERM: the process exists but belongs to another user; it is alive.
    status != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

impl LockRecord {
    /// One line that tells people whose lock this is.
    pub fn describe(&self) -> String {
        format!(
            "{} on {} (pid {}, since {})",
            self.purpose,
            self.host,
            self.pid,
            self.created
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

/// A live lock record with the object it was read from.
#[derive(Debug, Clone)]
pub struct LiveLock {
    pub name: String,
    pub record: LockRecord,
}

impl LiveLock {
    pub fn session(&self) -> &str {
        if self.record.session.is_empty() {
            &self.name
        } else {
            &self.record.session
        }
    }

    /// The holder's pid when it runs in this process table (so it can be told apart from
    /// other processes here).
    pub fn local_pid(&self) -> Option<u32> {
        (!self.record.pid_space.is_empty() && self.record.pid_space == pid_space())
            .then_some(self.record.pid)
    }

    /// A replicator's lease on its stream; it guards the stream, not blobs.
    pub fn is_stream_lease(&self) -> bool {
        self.record.purpose.starts_with("replicate ")
    }
}

/// A held lock; dropping or releasing it removes the lock object.
pub struct Lock {
    repo: Repository,
    session: String,
    name: Arc<Mutex<String>>,
    /// Dropped to stop the refresher at once (it waits on the other end).
    stop: Option<crossbeam_channel::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

fn write_record(
    repo: &Repository,
    exclusive: bool,
    purpose: &str,
    session: &str,
) -> Result<String> {
    let now = chrono::Utc::now();
    let record = LockRecord {
        session: session.to_string(),
        pid_space: pid_space().to_string(),
        host: crate::hostname(),
        pid: std::process::id(),
        exclusive,
        purpose: purpose.to_string(),
        created: now,
        expires: now + chrono::Duration::from_std(LEASE).expect("lease fits"),
    };
    let json = serde_json::to_vec(&record).expect("lock serializes");
    let sealed = repo.key().seal(ObjectKind::Lock, &json, None);
    let name = format!("locks/{}", Id::of_stored(&sealed));
    repo.storage().write(&name, sealed)?;
    Ok(name)
}

/// The lock records still in force: not expired, and not left by a process of this
/// process table that has exited. Unreadable records are skipped.
pub fn live_records(repo: &Repository) -> Result<Vec<LiveLock>> {
    let now = chrono::Utc::now();
    let mut live = Vec::new();
    for object in repo.storage().list("locks")? {
        // A lock that cannot be read (another user's private file, a flaky store) may
        // be a live backup's: stop rather than act as if it were not there. One that
        // reads but does not decode is damage, and cannot protect anything.
        let record = match repo.load_json_listed::<LockRecord>(ObjectKind::Lock, &object) {
            Ok(record) => record,
            Err(RepoError::Storage(e)) if !e.is_damage() => return Err(RepoError::Storage(e)),
            Err(e) => {
                tracing::warn!("skipping lock {}: {e}", object.name);
                continue;
            }
        };
        if record.expires > now && !holder_has_exited(&record) {
            live.push(LiveLock {
                name: object.name,
                record,
            });
        }
    }
    Ok(live)
}

/// A lock object that protects nothing, and why: its lease ran out, its holder has exited,
/// or it does not decode. Every command already ignores these; `unlock` removes them.
#[derive(Debug, Clone)]
pub struct StaleLock {
    pub name: String,
    pub record: Option<LockRecord>,
    pub why: String,
}

/// The lock objects that protect nothing (see [`StaleLock`]), and the live ones.
pub fn stale_and_live(repo: &Repository) -> Result<(Vec<StaleLock>, Vec<LiveLock>)> {
    let now = chrono::Utc::now();
    let (mut stale, mut live) = (Vec::new(), Vec::new());
    for object in repo.storage().list("locks")? {
        let record = match repo.load_json_listed::<LockRecord>(ObjectKind::Lock, &object) {
            Ok(record) => record,
            Err(RepoError::Storage(e)) if !e.is_damage() => return Err(RepoError::Storage(e)),
            Err(e) => {
                stale.push(StaleLock {
                    name: object.name,
                    record: None,
                    why: format!("cannot be decoded ({e})"),
                });
                continue;
            }
        };
        let why = if record.expires <= now {
            Some("its lease ran out".to_string())
        } else if holder_has_exited(&record) {
            Some(format!("process {} has exited", record.pid))
        } else {
            None
        };
        match why {
            Some(why) => stale.push(StaleLock {
                name: object.name,
                record: Some(record),
                why,
            }),
            None => live.push(LiveLock {
                name: object.name,
                record,
            }),
        }
    }
    Ok((stale, live))
}

/// The streams a live replicator is writing.
pub fn live_streams(repo: &Repository) -> Result<Vec<String>> {
    Ok(live_records(repo)?
        .into_iter()
        .filter_map(|l| {
            l.record
                .purpose
                .strip_prefix("replicate ")
                .map(str::to_string)
        })
        .collect())
}

impl Lock {
    pub fn acquire_shared(repo: &Repository, purpose: &str) -> Result<Lock> {
        Lock::acquire(repo, false, purpose)
    }

    /// The lock of work that deletes data: refused while another exclusive lock lives.
    /// Shared locks do not stop it; the deleting side must follow the protocol in
    /// `prune.rs` to stay clear of what their sessions need.
    pub fn acquire_exclusive(repo: &Repository, purpose: &str) -> Result<Lock> {
        let lock = Lock::acquire(repo, true, purpose)?;
        let own = lock.name();
        for live in live_records(repo)? {
            if live.name != own && live.record.exclusive {
                let _ = lock.release();
                return Err(crate::RepoError::Invalid(format!(
                    "the repository is locked by {}; wait for it to finish",
                    live.record.describe()
                )));
            }
        }
        Ok(lock)
    }

    /// The session id that stays the same across refreshes.
    pub fn session(&self) -> &str {
        &self.session
    }

    fn name(&self) -> String {
        self.name.lock().expect("lock name").clone()
    }

    fn acquire(repo: &Repository, exclusive: bool, purpose: &str) -> Result<Lock> {
        let session = crate::Id::random().to_hex();
        let name = write_record(repo, exclusive, purpose, &session)?;
        let name = Arc::new(Mutex::new(name));
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let refresher = {
            let (repo, name) = (repo.clone(), name.clone());
            let (purpose, session) = (purpose.to_string(), session.clone());
            std::thread::spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(REFRESH_EVERY)
                {
                    // Write the new lease before removing the old, so there is no gap.
                    if let Ok(new_name) = write_record(&repo, exclusive, &purpose, &session) {
                        let old =
                            std::mem::replace(&mut *name.lock().expect("lock name"), new_name);
                        let _ = repo.storage().delete(&old);
                    }
                }
            })
        };
        Ok(Lock {
            repo: repo.clone(),
            session,
            name,
            stop: Some(stop),
            refresher: Some(refresher),
        })
    }

    /// A lease on one replication stream: refused while another live process holds one.
    /// Both sides write their lease before looking, so two starting at once both back off
    /// rather than both proceed.
    pub fn acquire_stream(repo: &Repository, stream: &str) -> Result<Lock> {
        let purpose = format!("replicate {stream}");
        let lock = Lock::acquire_shared(repo, &purpose)?;
        let own = lock.name();
        for LiveLock { name, record } in live_records(repo)? {
            if name != own && record.purpose == purpose {
                let _ = lock.release();
                return Err(crate::RepoError::Invalid(format!(
                    "another replicator is writing this stream (host {}, pid {}, since {}); stop it first",
                    record.host,
                    record.pid,
                    record.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )));
            }
        }
        Ok(lock)
    }

    pub fn release(mut self) -> Result<()> {
        self.stop_refresher();
        let name = self.name.lock().expect("lock name").clone();
        self.repo.storage().delete(&name)?;
        Ok(())
    }

    fn stop_refresher(&mut self) {
        self.stop.take();
        if let Some(handle) = self.refresher.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.refresher.is_some() {
            self.stop_refresher();
            let name = self.name.lock().expect("lock name").clone();
            let _ = self.repo.storage().delete(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32, pid_space: &str) -> LockRecord {
        let now = chrono::Utc::now();
        LockRecord {
            host: crate::hostname(),
            pid,
            exclusive: false,
            purpose: "backup".into(),
            created: now,
            expires: now + chrono::Duration::minutes(30),
            session: "s".into(),
            pid_space: pid_space.into(),
        }
    }

    /// A pid that no process has: the highest possible pid is far below i32::MAX.
    const NO_SUCH_PID: u32 = i32::MAX as u32 - 1;

    #[test]
    fn only_a_missing_process_of_this_process_table_is_dead() {
        assert!(!pid_space().is_empty(), "this test needs /proc");
        assert!(holder_has_exited(&record(NO_SUCH_PID, pid_space())));
        assert!(!holder_has_exited(&record(std::process::id(), pid_space())));
        // pid 1 exists; to an unprivileged caller kill says EPERM, which is life too.
        assert!(!holder_has_exited(&record(1, pid_space())));
        // Another kernel or PID namespace (a container sharing the host name), or a record
        // that does not say: only the lease can end it.
        assert!(!holder_has_exited(&record(
            NO_SUCH_PID,
            "other-boot/pid:[1]"
        )));
        assert!(!holder_has_exited(&record(NO_SUCH_PID, "")));
        // A pid that would name a process group is never probed.
        assert!(!holder_has_exited(&record(u32::MAX, pid_space())));
    }
}
