//! The PostgreSQL WAL archive (FORMAT §10.2): from the listing, each base backup's WAL
//! is there from its first file to its last and how far it reaches past that, with
//! gaps found as `lifeboat timeline` finds them ([`archive_reach`]); reading data also
//! opens each archived file (authentication tag, and the name it holds).

use std::collections::BTreeMap;

use super::CheckReport;
use super::{describe, Findings, Sample};
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::pg_wal::{archive_reach, check_names, parse_segment_name, segment_name, ArchiveReach};
use crate::repository::{parallel_map, Repository};
use crate::snapshot::{PgBaseBackup, Snapshot, SnapshotSource};

struct Base<'a> {
    id: Id,
    meta: &'a PgBaseBackup,
    reach: Option<ArchiveReach>,
}

impl Base<'_> {
    fn segment(&self, name: &str) -> Option<(u32, u64)> {
        parse_segment_name(name, self.meta.wal_segment_size)
    }
    fn name(&self, timeline: u32, segno: u64) -> String {
        let size = self.meta.wal_segment_size;
        segment_name(timeline, segno * size, size)
    }
}

pub(super) fn check(
    repo: &Repository,
    snapshots: &[(Id, Snapshot)],
    sample: &Sample,
    findings: &mut Findings,
    report: &mut CheckReport,
) -> Result<()> {
    let mut clusters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for object in repo.storage().list("wal")? {
        report.wal_files += 1;
        match object.name.split('/').collect::<Vec<_>>()[..] {
            ["wal", cluster, file] if check_names(cluster, file).is_ok() => clusters
                .entry(cluster.to_string())
                .or_default()
                .push(file.to_string()),
            _ => findings.add(&object.name, "not an archived WAL file name"),
        }
    }
    let mut bases: BTreeMap<&str, Vec<Base>> = BTreeMap::new();
    for (id, snapshot) in snapshots {
        let SnapshotSource::PgBase(meta) = &snapshot.source else {
            continue;
        };
        let size = meta.wal_segment_size;
        if !(size.is_power_of_two() && (1 << 20..=1 << 30).contains(&size)) {
            let object = crate::snapshot::snapshot_name(id);
            findings.add(
                &object,
                format!("WAL segment size {size} is not one PostgreSQL uses"),
            );
            findings.affects(&object, id);
            continue;
        }
        let archived = clusters
            .get(&meta.cluster)
            .map(Vec::as_slice)
            .unwrap_or_default();
        bases.entry(&meta.cluster).or_default().push(Base {
            id: *id,
            meta,
            reach: archive_reach(archived, &meta.start_wal, size),
        });
    }

    for (cluster, bases) in &bases {
        let source = cluster_source(cluster, bases);
        for base in bases {
            check_reach(cluster, &source, base, findings);
        }
    }

    let files: Vec<(String, String)> = clusters
        .iter()
        .flat_map(|(c, files)| files.iter().map(move |f| (c.clone(), f.clone())))
        .collect();
    let to_read = sample.choose(files, |(c, f)| format!("{c}/{f}").into_bytes());
    report.wal_files_read = to_read.len();
    let results = parallel_map(&to_read, 2, |(cluster, file)| {
        match repo.fetch_wal(cluster, file) {
            Ok(Some(_)) => Ok(None),
            Ok(None) => Ok(Some("is missing (deleted while verifying?)".to_string())),
            Err(RepoError::Storage(e)) if !e.is_damage() => Err(RepoError::Storage(e)),
            Err(e) => Ok(Some(describe(&e))),
        }
    })?;
    for ((cluster, file), result) in to_read.iter().zip(results) {
        let Some(detail) = result else { continue };
        let object = crate::pg_wal::wal_object_name(cluster, file);
        findings.add(&object, detail);
        let empty = Vec::new();
        let bases = bases.get(cluster.as_str()).unwrap_or(&empty);
        let source = cluster_source(cluster, bases);
        for base in bases {
            damaged_file_costs(&object, file, &source, base, findings);
        }
    }
    Ok(())
}

fn cluster_source(cluster: &str, bases: &[Base]) -> String {
    match bases.first() {
        Some(base) => format!("PostgreSQL cluster {cluster} ({})", base.meta.server),
        None => format!("PostgreSQL cluster {cluster}"),
    }
}

/// A base backup needs its WAL from `start_wal` to `end_wal`; point-in-time recovery
/// past that runs as far as the archive is unbroken.
fn check_reach(cluster: &str, source: &str, base: &Base, findings: &mut Findings) {
    let meta = base.meta;
    let short = base.id.short();
    let object = |file: &str| crate::pg_wal::wal_object_name(cluster, file);
    let Some(reach) = &base.reach else {
        let object = object(&meta.start_wal);
        findings.add(
            &object,
            format!(
                "is missing: base backup {short} starts here and cannot be recovered without it"
            ),
        );
        findings.affects(&object, &base.id);
        return;
    };
    let (Some((timeline, last)), Some((_, end))) =
        (base.segment(&reach.last), base.segment(&meta.end_wal))
    else {
        return;
    };
    if last < end {
        let object = object(&base.name(timeline, last + 1));
        findings.add(
            &object,
            format!(
                "is missing: base backup {short} needs the WAL up to {}, the archive reaches {}",
                meta.end_wal, reach.last
            ),
        );
        findings.affects(&object, &base.id);
    } else if let Some(gap) = &reach.gap {
        let object = object(gap);
        findings.add(
            &object,
            format!(
                "is missing and later WAL files are archived (a gap): point-in-time recovery stops at the end of {}",
                reach.last
            ),
        );
        findings.loses(
            &object,
            Some(source),
            format!(
                "recovery from base backup {short} past the end of {}",
                reach.last
            ),
        );
    }
}

/// What a damaged archived file costs a base backup whose unbroken run includes it.
fn damaged_file_costs(
    object: &str,
    file: &str,
    source: &str,
    base: &Base,
    findings: &mut Findings,
) {
    let (Some(reach), Some((timeline, segno))) = (&base.reach, base.segment(file)) else {
        return;
    };
    let (Some((t0, start)), Some((_, last)), Some((_, end))) = (
        base.segment(&base.meta.start_wal),
        base.segment(&reach.last),
        base.segment(&base.meta.end_wal),
    ) else {
        return;
    };
    if timeline != t0 || segno < start || segno > last {
        return;
    }
    if segno <= end {
        findings.affects(object, &base.id);
    } else {
        findings.loses(
            object,
            Some(source),
            format!(
                "recovery from base backup {} past the end of {}",
                base.id.short(),
                base.name(timeline, segno - 1)
            ),
        );
    }
}
