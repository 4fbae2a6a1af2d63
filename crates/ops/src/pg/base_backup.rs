//! A physical base backup of a PostgreSQL cluster (through `pg_basebackup`), saved as a
//! snapshot that point-in-time recovery starts from.

use std::time::{Duration, Instant};

use anyhow::Result;
use lifeboat_repo::session::WriteSession;
use lifeboat_repo::snapshot::{PgBaseBackup, SnapshotDraft, SnapshotSource, SnapshotSummary};
use lifeboat_repo::{Id, Repository};
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::postgres::physical;
use serde::{Deserialize, Serialize};

use crate::meters::Meters;

/// `lifeboat pg basebackup --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseBackupReport {
    pub id: Id,
    pub short_id: String,
    pub base_backup: PgBaseBackup,
    pub summary: SnapshotSummary,
}

pub struct BaseBackupRequest<'a> {
    pub server: &'a DatabaseUrl,
    pub tags: Vec<String>,
    pub pinned: bool,
    /// How long to wait for the WAL the backup needs to be archived.
    pub wal_timeout: Duration,
}

/// Takes a base backup of `request.server` into `repo`.
pub fn take(
    repo: &Repository,
    request: BaseBackupRequest,
    meters: &dyn Meters,
) -> Result<BaseBackupReport> {
    let started = Instant::now();
    let time = chrono::Utc::now();
    let session = WriteSession::start(repo, "pg basebackup")?;
    let backup = {
        let meter = meters.start("base backup", None);
        physical::basebackup(
            repo,
            &session,
            request.server,
            request.wal_timeout,
            meter.as_ref(),
        )?
    };
    let finished = session.finish()?;
    let meta = backup.meta;
    let draft = SnapshotDraft {
        time,
        host: None,
        paths: vec![request.server.server()],
        tags: request.tags,
        pinned: request.pinned,
        source: SnapshotSource::PgBase(meta.clone()),
        tree: backup.root,
        parent: None,
        summary: SnapshotSummary {
            files: backup.stats.files,
            dirs: backup.stats.dirs,
            total_bytes: backup.stats.bytes,
            ..Default::default()
        },
        warnings: Vec::new(),
        started,
    };
    let (id, snapshot) = finished.save(draft)?;
    Ok(BaseBackupReport {
        id,
        short_id: id.short(),
        base_backup: meta,
        summary: snapshot.summary,
    })
}
