//! Stream segments (FORMAT §10.1): every generation's chain runs 1, 2, ... n on an
//! existing base snapshot, from the listing; reading data also opens each segment (its
//! name's hash, its authentication tag, its transactions) and holds its header to the
//! same link rule restore uses ([`SegmentHeader::follows`]).
//!
//! A broken segment costs the restore points from it to the end of its generation:
//! restore rolls a generation forward from segment 1.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::CheckReport;
use super::{describe, Findings, Sample};
use crate::error::{RepoError, Result};
use crate::id::Id;
use crate::repository::{parallel_map, Repository};
use crate::segment::{generation_name, SegmentName};

pub(super) fn check(
    repo: &Repository,
    snapshots: &HashSet<Id>,
    sample: &Sample,
    findings: &mut Findings,
    report: &mut CheckReport,
) -> Result<()> {
    let objects = repo.storage().list("streams")?;
    let streams: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.name.split('/').nth(1))
        .collect();
    let mut parsed: HashSet<String> = HashSet::new();
    let mut to_read: Vec<(String, String, usize, SegmentName)> = Vec::new();
    let mut generations: BTreeMap<(String, String), Generation> = BTreeMap::new();
    for stream in streams {
        let segments = repo.list_segments(stream)?;
        report.segments += segments.len();
        for segment in segments {
            parsed.insert(segment.name.clone());
            generations
                .entry((stream.to_string(), segment.generation.clone()))
                .or_default()
                .chain
                .push(segment);
        }
    }
    for object in objects.iter().filter(|o| !parsed.contains(&o.name)) {
        findings.add(
            &object.name,
            "not a stream segment name (restore ignores it)",
        );
    }
    for ((stream, generation), state) in &mut generations {
        state.base = snapshots
            .iter()
            .find(|id| &generation_name(id) == generation)
            .copied();
        state.check_listing(stream, generation);
        let readable = state.readable();
        for (at, segment) in state.chain.iter().enumerate().take(readable) {
            to_read.push((stream.clone(), generation.clone(), at, segment.clone()));
        }
    }

    let to_read = sample.choose(to_read, |(_, _, _, s)| s.name.as_bytes().to_vec());
    report.segments_read = to_read.len();
    let results = parallel_map(&to_read, 4, |(_, _, _, name)| {
        match repo.load_segment(&name.name) {
            Ok(segment) => Ok(Ok(segment)),
            Err(RepoError::Storage(e)) if !e.is_damage() => Err(RepoError::Storage(e)),
            Err(e) => Ok(Err(describe(&e))),
        }
    })?;
    for ((stream, generation, at, name), result) in to_read.iter().zip(results) {
        let state = generations
            .get_mut(&(stream.clone(), generation.clone()))
            .expect("listed above");
        match result {
            Err(detail) => state.broken(*at, &name.name, detail),
            Ok(segment) => {
                let header = &segment.header;
                state.source.get_or_insert_with(|| header.source.clone());
                let previous = at.checked_sub(1).map(|i| state.chain[i].name.as_str());
                if header.stream != *stream {
                    state.broken(
                        *at,
                        &name.name,
                        "belongs to another stream (a misplaced object)".into(),
                    );
                } else if state
                    .base
                    .is_some_and(|base| !header.follows(name.seq, previous, &base))
                {
                    state.broken(
                        *at,
                        &name.name,
                        "does not follow the segment before it or its base snapshot (a fork or a misplaced object)".into(),
                    );
                } else if name.transactions.is_some()
                    && header.transaction_range() != name.transactions
                {
                    state.broken(
                        *at,
                        &name.name,
                        "its transaction numbers do not match its name (a misplaced object)".into(),
                    );
                }
            }
        }
    }

    for ((stream, generation), mut state) in generations {
        if state.problems.is_empty() {
            continue;
        }
        if state.source.is_none() {
            state.source = find_source(repo, &state.chain);
        }
        let source = state.source.as_deref();
        for (at, object, detail) in &state.problems {
            findings.add(object, detail.clone());
            let lost = &state.chain[*at..];
            let (Some(first), Some(last)) = (lost.first(), lost.last()) else {
                continue;
            };
            let time = |ms: i64| {
                chrono::DateTime::from_timestamp_millis(ms)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default()
            };
            let point = format!(
                "stream {stream}: segments {} to {} of generation {generation} ({} to {})",
                first.seq,
                last.seq,
                time(first.time_ms),
                time(last.time_ms)
            );
            findings.loses(object, source, point);
        }
    }
    Ok(())
}

/// One generation of a stream, as listed (sorted by sequence number).
#[derive(Default)]
struct Generation {
    chain: Vec<SegmentName>,
    base: Option<Id>,
    /// The database the stream replicates, from a segment header.
    source: Option<String>,
    /// (position in `chain` from which restore points are lost, object, detail)
    problems: Vec<(usize, String, String)>,
}

impl Generation {
    fn broken(&mut self, at: usize, object: &str, detail: String) {
        self.problems.push((at, object.to_string(), detail));
    }

    /// What the listing alone proves: a base snapshot, and numbers 1, 2, ... n.
    fn check_listing(&mut self, stream: &str, generation: &str) {
        if self.base.is_none() {
            let detail = format!(
                "its base snapshot {generation}... is missing, so none of its {} segment(s) can be restored",
                self.chain.len()
            );
            self.broken(0, &format!("streams/{stream}/{generation}"), detail);
        }
        for at in 0..self.chain.len() {
            let (expected, seq) = (at as u64 + 1, self.chain[at].seq);
            if seq == expected {
                continue;
            }
            let (object, detail) = if seq < expected {
                (
                    self.chain[at].name.clone(),
                    format!("a second segment numbered {seq} (a fork)"),
                )
            } else {
                (
                    format!("streams/{stream}/{generation}/{expected:010}"),
                    format!("segment {expected} is missing (segment {seq} comes next)"),
                )
            };
            self.broken(at, &object, detail);
            break;
        }
    }

    /// Segments up to the first gap in the numbering: only they have a known
    /// predecessor to be checked against.
    fn readable(&self) -> usize {
        self.chain
            .iter()
            .enumerate()
            .take_while(|(at, s)| s.seq == *at as u64 + 1)
            .count()
    }
}

/// The replicated database's path, from the first segment of `chain` that opens.
fn find_source(repo: &Repository, chain: &[SegmentName]) -> Option<String> {
    chain
        .iter()
        .find_map(|name| repo.load_segment(&name.name).ok())
        .map(|segment| segment.header.source)
}
