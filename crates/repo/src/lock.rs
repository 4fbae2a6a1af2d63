//! Locks: leases that tell other processes what is happening in the repository.
//!
//! Every writer creates a unique lock object (`locks/<id>`) and refreshes it while it
//! works; none is ever overwritten, so no conditional write is needed. A lock whose
//! `expires` time has passed belongs to a process that died and is ignored. Backups take
//! shared locks; work that deletes data (prune) takes an exclusive one (only one prune at
//! a time) and waits, by session id, for the shared locks it saw to end (see `prune.rs`).

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::crypto::ObjectKind;
use crate::error::Result;
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

/// The lock records still in force: not expired, and not left by a process of this host
/// that has died. Unreadable records are skipped.
pub fn live_records(repo: &Repository) -> Result<Vec<LiveLock>> {
    let now = chrono::Utc::now();
    let mut live = Vec::new();
    for object in repo.storage().list("locks")? {
        let Ok(record) = repo.load_json::<LockRecord>(ObjectKind::Lock, &object.name) else {
            continue;
        };
        let ours = record.host == crate::hostname();
        // SAFETY: kill with signal 0 only asks whether the process exists.
        let dead = ours && unsafe { libc::kill(record.pid as i32, 0) } != 0;
        if record.expires > now && !dead {
            live.push(LiveLock {
                name: object.name,
                record,
            });
        }
    }
    Ok(live)
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
