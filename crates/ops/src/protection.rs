//! How well each source is protected, judged from `lifeboat.toml` and what its targets'
//! repositories hold: copies, media and off-site copies (the 3-2-1 rule), immutability,
//! the newest restore point and the last drill against each plan's objectives, and the
//! gaps. The runbook is written from this report.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use lifeboat_config::{Config, Target};
use lifeboat_repo::snapshot::SnapshotSource;
use lifeboat_repo::Repository;
use lifeboat_storage::{Location, LockPolicy};

use crate::source_kind::SourceKind;
use crate::DrillReport;

/// What kind of place a target is, for the 3-2-1 picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Medium {
    pub kind: &'static str,
    pub offsite: bool,
}

impl Medium {
    pub fn of(target: &Target) -> Medium {
        match Location::parse(&target.url) {
            Ok(Location::Local(path)) => Medium {
                // A mount under /mnt or /media is usually another disk; still on this host.
                kind: if path.starts_with("/mnt") || path.starts_with("/media") {
                    "disk (mounted)"
                } else {
                    "local disk"
                },
                offsite: false,
            },
            Ok(Location::Service { scheme, .. }) => Medium {
                kind: match scheme.as_str() {
                    "s3" => "S3 object storage",
                    "gcs" => "Google Cloud Storage",
                    "azblob" => "Azure Blob Storage",
                    _ => "object storage",
                },
                offsite: true,
            },
            Ok(Location::Server { authority, .. }) => Medium {
                kind: "Lifeboat server",
                // On this very host it is no further away than a local disk.
                offsite: !["localhost:", "127.", "[::1]:"]
                    .iter()
                    .any(|local| authority.starts_with(local)),
            },
            Err(_) => Medium {
                kind: "unknown",
                offsite: false,
            },
        }
    }
}

/// Facts read from one target's repository.
#[derive(Debug, Clone, Default)]
pub struct TargetFacts {
    /// Why the repository could not be opened.
    pub unreachable: Option<String>,
    /// Whether the credentials this host uses cannot delete or overwrite what is stored:
    /// a `lifeboat serve` token of role append (the server said so).
    pub append_only: bool,
    /// S3 Object Lock as this host's writes apply it: nobody can delete a locked object.
    pub object_lock: Option<LockPolicy>,
    /// The newest snapshot of each source (by its `source:` tag).
    pub newest: HashMap<String, DateTime<Utc>>,
    /// Drill records, oldest first.
    pub drills: Vec<DrillReport>,
    /// PostgreSQL base backups held: (server, major version), one per server.
    pub pg_bases: Vec<(String, u32)>,
}

impl TargetFacts {
    /// How the target is immutable from this host, if it is.
    pub fn immutability(&self) -> Option<String> {
        if self.append_only {
            return Some("append-only token".into());
        }
        let lock = self.object_lock?;
        Some(format!("object lock {} {}", lock_period(&lock), lock.mode))
    }
}

/// How long an object lock keeps each object.
pub fn lock_period(lock: &LockPolicy) -> String {
    lifeboat_config::format_duration(std::time::Duration::from_secs(lock.period_secs))
}

/// Reads the facts of a target from its opened repository (or the error opening it).
pub fn observe(repo: anyhow::Result<Repository>) -> TargetFacts {
    let repo = match repo {
        Ok(repo) => repo,
        Err(e) => {
            return TargetFacts {
                unreachable: Some(crate::one_line(&e)),
                ..Default::default()
            }
        }
    };
    let mut facts = TargetFacts {
        append_only: matches!(
            repo.server_access(),
            Ok(Some(access)) if access.role == "append"
        ),
        object_lock: repo.object_lock(),
        ..Default::default()
    };
    if let Ok(snapshots) = repo.list_snapshots() {
        for s in &snapshots {
            if let SnapshotSource::PgBase(meta) = &s.snapshot.source {
                facts.pg_bases.retain(|(server, _)| server != &meta.server);
                facts.pg_bases.push((meta.server.clone(), meta.version));
            }
            for tag in &s.snapshot.tags {
                if let Some(source) = crate::tags::source_of_tag(tag) {
                    let entry = facts
                        .newest
                        .entry(source.to_string())
                        .or_insert(s.snapshot.time);
                    *entry = (*entry).max(s.snapshot.time);
                }
            }
        }
    }
    if let Ok(records) = repo.drill_records::<DrillReport>() {
        facts.drills = records;
    }
    facts.drills.sort_by_key(|d| d.time);
    facts
}

/// One source's copies.
#[derive(Debug, Clone)]
pub struct SourceCopies {
    pub source: String,
    /// What it is ("SQLite database", ...).
    pub kind: String,
    /// The targets of every plan that backs it up.
    pub targets: Vec<String>,
    /// The distinct kinds of media among them, sorted.
    pub media: Vec<&'static str>,
    pub offsite: bool,
    /// (target, how) for each target this host cannot delete from.
    pub immutable: Vec<(String, String)>,
    /// Three copies (the live data and two targets), two media, one off-site.
    pub three_two_one: bool,
}

/// A plan's source on one of its targets, against the plan's objectives.
#[derive(Debug, Clone)]
pub struct ObjectiveRow {
    pub plan: String,
    pub source: String,
    pub target: String,
    pub rpo: Option<std::time::Duration>,
    pub rto: Option<std::time::Duration>,
    /// The target's repository could not be read.
    pub unreachable: Option<String>,
    pub newest: Option<DateTime<Utc>>,
    /// The source's last drill on this target.
    pub last_drill: Option<DrillReport>,
}

#[derive(Debug, Clone)]
pub struct ProtectionReport {
    pub time: DateTime<Utc>,
    /// Each target of the configuration with what its repository said.
    pub targets: Vec<(Target, TargetFacts)>,
    pub sources: Vec<SourceCopies>,
    pub objectives: Vec<ObjectiveRow>,
    /// What falls short, one line each (Markdown).
    pub gaps: Vec<String>,
}

/// Judges every source of `config`; `open` opens a target's repository.
pub fn assess(
    config: &Config,
    open: impl Fn(&Target) -> anyhow::Result<Repository>,
    now: DateTime<Utc>,
) -> ProtectionReport {
    let targets: Vec<(Target, TargetFacts)> = config
        .targets
        .iter()
        .map(|t| (t.clone(), observe(open(t))))
        .collect();
    let facts_of = |name: &str| targets.iter().find(|(t, _)| t.name == name).map(|(_, f)| f);
    let mut gaps = Vec::new();
    let mut sources = Vec::new();
    for source in &config.sources {
        let its_targets: Vec<&Target> = config
            .plans
            .iter()
            .filter(|p| p.sources.contains(&source.name))
            .flat_map(|p| p.targets.iter())
            .filter_map(|t| config.target(t))
            .collect();
        let mut media: Vec<&'static str> = its_targets.iter().map(|t| Medium::of(t).kind).collect();
        media.sort();
        media.dedup();
        let offsite = its_targets.iter().any(|t| Medium::of(t).offsite);
        // The live data is one copy; each target another.
        let three_two_one = its_targets.len() + 1 >= 3 && media.len() + 1 >= 2 && offsite;
        let immutable = its_targets
            .iter()
            .filter_map(|t| Some((t.name.clone(), facts_of(&t.name)?.immutability()?)))
            .collect();
        if its_targets.is_empty() {
            gaps.push(format!(
                "source **{}** is in no plan: nothing backs it up",
                source.name
            ));
        } else if !offsite {
            gaps.push(format!(
                "source **{}** has no off-site copy (every target is on this host's disks)",
                source.name
            ));
        }
        sources.push(SourceCopies {
            source: source.name.clone(),
            kind: SourceKind::of(&source.location).describe().to_string(),
            targets: its_targets.iter().map(|t| t.name.clone()).collect(),
            media,
            offsite,
            immutable,
            three_two_one,
        });
    }
    let mut objectives = Vec::new();
    for plan in &config.plans {
        for source in &plan.sources {
            for (target, facts) in targets
                .iter()
                .filter(|(t, _)| plan.targets.contains(&t.name))
            {
                let newest = facts.newest.get(source).copied();
                let last_drill = facts.drills.iter().rev().find(|d| &d.source == source);
                if let (None, Some(newest), Some(rpo)) = (&facts.unreachable, newest, plan.rpo) {
                    if (now - newest).to_std().unwrap_or_default() > rpo {
                        gaps.push(format!(
                            "{source} on {}: the newest restore point is older than the RPO",
                            target.name
                        ));
                    }
                }
                if last_drill.is_none_or(|d| now - d.time > Duration::days(30)) {
                    gaps.push(format!(
                        "{source} on {}: no drill in the last 30 days",
                        target.name
                    ));
                }
                if let (Some(d), Some(objective)) = (last_drill, plan.rto) {
                    if d.rto_seconds > objective.as_secs_f64() {
                        gaps.push(format!(
                            "{source} on {}: the measured RTO exceeds the objective",
                            target.name
                        ));
                    }
                }
                objectives.push(ObjectiveRow {
                    plan: plan.name.clone(),
                    source: source.clone(),
                    target: target.name.clone(),
                    rpo: plan.rpo,
                    rto: plan.rto,
                    unreachable: facts.unreachable.clone(),
                    newest,
                    last_drill: last_drill.cloned(),
                });
            }
        }
    }
    ProtectionReport {
        time: now,
        targets,
        sources,
        objectives,
        gaps,
    }
}
