//! The restore points of one source: which snapshots hold a given database file, and
//! choosing the one for a point in time.
//!
//! A restore point is a snapshot that holds the file (of the file itself, or of a
//! directory around it), or a stream segment of a replicated database: its generation's
//! base snapshot rolled forward by segments 1 to n.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::segment::{generation_name, SegmentName};
use lifeboat_repo::snapshot::SnapshotSource;
use lifeboat_repo::tree::{Node, NodeType, Tree};
use lifeboat_repo::{Id, Repository};

use crate::files::node_key;
use crate::{Result, SourceError};

/// One state of a source that can be restored.
#[derive(Debug, Clone)]
pub struct RestorePoint {
    pub time: DateTime<Utc>,
    pub snapshot: Id,
    /// The file's node in that snapshot.
    pub node: Node,
    /// For a point of a replication stream: the segment that ends it.
    pub segment: Option<SegmentName>,
}

impl RestorePoint {
    pub fn kind(&self) -> &'static str {
        if self.segment.is_some() {
            "segment"
        } else {
            "snapshot"
        }
    }
}

/// Every restore point of the file at `source` (an absolute path), oldest first.
pub fn restore_points(
    repo: &Repository,
    index: &MasterIndex,
    source: &Path,
) -> Result<Vec<RestorePoint>> {
    let mut trees: HashMap<Id, Tree> = HashMap::new();
    let mut points = Vec::new();
    for stored in repo.list_snapshots()? {
        if stored.snapshot.source != SnapshotSource::Files {
            continue;
        }
        for root_path in &stored.snapshot.paths {
            let Ok(below) = source.strip_prefix(root_path) else {
                continue;
            };
            let Some(root_name) = Path::new(root_path).file_name() else {
                continue;
            };
            let mut names: Vec<&std::ffi::OsStr> = vec![root_name];
            names.extend(below.components().filter_map(|c| match c {
                Component::Normal(name) => Some(name),
                _ => None,
            }));
            if let Some(node) = find_node(repo, index, &mut trees, stored.snapshot.tree, &names)? {
                if node.node_type == NodeType::File {
                    points.push(RestorePoint {
                        time: stored.snapshot.time,
                        snapshot: stored.id,
                        node,
                        segment: None,
                    });
                }
                break;
            }
        }
    }
    let stream = repo.stream_id(&source.display().to_string());
    let mut stream_points = Vec::new();
    for segment in repo.list_segments(&stream)? {
        let base = points
            .iter()
            .find(|p| p.segment.is_none() && generation_name(&p.snapshot) == segment.generation);
        let Some(base) = base else {
            tracing::warn!("{}: its base snapshot is missing; skipped", segment.name);
            continue;
        };
        stream_points.push(RestorePoint {
            time: DateTime::from_timestamp_millis(segment.time_ms).unwrap_or(base.time),
            snapshot: base.snapshot,
            node: base.node.clone(),
            segment: Some(segment),
        });
    }
    points.extend(stream_points);
    points.sort_by_key(|p| p.time);
    Ok(points)
}

/// Restores `point` to `target`: its snapshot, rolled forward through its generation's
/// segments when it is a stream point. Segments must run 1, 2, ... n, each naming the
/// one before; a gap or a fork is an error that names it.
pub fn restore_point(
    repo: &Repository,
    index: &MasterIndex,
    points: &[RestorePoint],
    point: &RestorePoint,
    target: &Path,
    progress: &dyn crate::Progress,
) -> Result<()> {
    roll_forward(repo, index, points, point, None, target, progress)
}

/// The point (segment) that holds the stream's transaction `number`; an error that gives
/// the numbered window otherwise.
pub fn choose_transaction<'a>(
    points: &'a [RestorePoint],
    number: u64,
    source: &Path,
) -> Result<&'a RestorePoint> {
    let numbered = || {
        points
            .iter()
            .filter_map(|p| Some((p, p.segment.as_ref()?.transactions?)))
    };
    if let Some((point, _)) =
        numbered().find(|(_, (first, last))| (*first..=*last).contains(&number))
    {
        return Ok(point);
    }
    let window = numbered()
        .map(|(_, r)| r.0)
        .min()
        .zip(numbered().map(|(_, r)| r.1).max());
    Err(SourceError::Invalid(match window {
        Some((first, last)) => format!(
            "transaction {number} is not in the restore window of {}: replicated transactions run from {first} to {last}",
            source.display()
        ),
        None => format!(
            "{} has no numbered transactions in this repository (replicate it to restore to a transaction)",
            source.display()
        ),
    }))
}

/// Restores the state right after the stream's transaction `number`, which `point`
/// (from [`choose_transaction`]) holds.
pub fn restore_transaction(
    repo: &Repository,
    index: &MasterIndex,
    points: &[RestorePoint],
    point: &RestorePoint,
    number: u64,
    target: &Path,
    progress: &dyn crate::Progress,
) -> Result<()> {
    roll_forward(repo, index, points, point, Some(number), target, progress)
}

/// [`restore_point`], stopping after transaction `upto` (in the last segment) if given.
fn roll_forward(
    repo: &Repository,
    index: &MasterIndex,
    points: &[RestorePoint],
    point: &RestorePoint,
    upto: Option<u64>,
    target: &Path,
    progress: &dyn crate::Progress,
) -> Result<()> {
    let Some(last) = &point.segment else {
        return crate::restore::restore_file(repo, index, &point.node, target, progress);
    };
    let mut chain: Vec<&SegmentName> = points
        .iter()
        .filter_map(|p| p.segment.as_ref())
        .filter(|s| s.generation == last.generation && s.seq <= last.seq)
        .collect();
    chain.sort_by_key(|s| s.seq);
    let mut segments = Vec::with_capacity(chain.len());
    let mut previous: Option<&str> = None;
    for (i, name) in chain.iter().enumerate() {
        let expected = i as u64 + 1;
        if name.seq != expected {
            return Err(SourceError::Invalid(format!(
                "stream generation {} has a gap: segment {expected} is missing (found {} next)",
                last.generation, name.seq
            )));
        }
        let segment = repo.load_segment(&name.name)?;
        if !segment.header.follows(expected, previous, &point.snapshot) {
            return Err(SourceError::Invalid(format!(
                "{}: does not follow the segment before it (a fork or a misplaced object)",
                name.name
            )));
        }
        previous = Some(&name.name);
        segments.push(segment);
    }
    if let Some(segment) = segments.last() {
        let numbers = segment.header.transaction_range();
        if upto.is_some() && numbers != last.transactions {
            return Err(SourceError::Invalid(format!(
                "{}: its transaction numbers do not match its name (a misplaced object)",
                last.name
            )));
        }
    }
    crate::restore::restore_file_then(repo, index, &point.node, target, progress, |file| {
        use std::os::unix::fs::FileExt;
        let (mut page_count, mut page_size) = (0u64, 0u64);
        for segment in &segments {
            page_size = segment.header.page_size as u64;
            let numbers = segment.header.first_transaction..;
            for (transaction, number) in segment.transactions.iter().zip(numbers) {
                if upto.is_some_and(|n| number > n) && segment.header.seq == last.seq {
                    break;
                }
                for (page, data) in &transaction.pages {
                    file.write_all_at(data, (*page as u64 - 1) * page_size)
                        .map_err(|e| SourceError::io(target, e))?;
                }
                page_count = transaction.page_count as u64;
            }
        }
        file.set_len(page_count * page_size)
            .map_err(|e| SourceError::io(target, e))
    })
}

fn find_node(
    repo: &Repository,
    index: &MasterIndex,
    trees: &mut HashMap<Id, Tree>,
    root: Id,
    names: &[&std::ffi::OsStr],
) -> Result<Option<Node>> {
    use std::os::unix::ffi::OsStrExt;
    let mut tree_id = root;
    for (depth, name) in names.iter().enumerate() {
        let tree = match trees.entry(tree_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(repo.load_tree(index, &tree_id)?)
            }
        };
        let Some(node) = tree.nodes.iter().find(|n| node_key(n) == name.as_bytes()) else {
            return Ok(None);
        };
        if depth + 1 == names.len() {
            return Ok(Some(node.clone()));
        }
        match node.subtree {
            Some(subtree) => tree_id = subtree,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// Whether a restore point of `time` is at or before the instant `at`. Points are
/// listed (and named in `--at`) to the millisecond, so a point counts from the start of
/// its millisecond: the time `timeline` prints for it selects it, and nothing later does.
pub fn at_or_before(time: DateTime<Utc>, at: DateTime<Utc>) -> bool {
    to_millis(time) <= at
}

fn to_millis(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time)
}

/// A restore point's time as messages show it: to the millisecond, as `--at` takes it.
pub fn show_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The newest point at or before the instant `at` (a time given to the second means
/// that second's start, as PostgreSQL's `recovery_target_time` does); an error that
/// gives the window otherwise.
pub fn choose<'a>(
    points: &'a [RestorePoint],
    at: DateTime<Utc>,
    source: &Path,
) -> Result<&'a RestorePoint> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Err(SourceError::Invalid(format!(
            "no restore point of {} in this repository (back it up or replicate it first)",
            source.display()
        )));
    };
    points
        .iter()
        .rev()
        .find(|p| at_or_before(p.time, at))
        .ok_or_else(|| {
            SourceError::Invalid(format!(
                "{} is before the restore window of {}: {} to {}",
                show_time(at),
                source.display(),
                show_time(first.time),
                show_time(last.time),
            ))
        })
}

/// When `chosen` was picked for `at` and the next point lies in the same second as `at`
/// (a time typed to the second, the next point a few milliseconds after it), how to name
/// that next point instead; `None` otherwise.
pub fn later_in_same_second(
    points: &[RestorePoint],
    chosen: &RestorePoint,
    at: DateTime<Utc>,
) -> Option<String> {
    let next = points
        .iter()
        .find(|p| p.time > chosen.time && !at_or_before(p.time, at))?;
    (next.time.timestamp() == at.timestamp()).then(|| {
        format!(
            "a later restore point is at {}, after the instant given: name it with --at {}",
            show_time(next.time),
            show_time(next.time)
        )
    })
}

/// Parses `latest`/`now`, an RFC 3339 time (`2026-11-26T09:30:00Z`), or a time relative to
/// `now` such as `-10m`, `-2h`, `-1d`, `-30s`.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let text = text.trim();
    if text == "latest" || text == "now" {
        return Ok(now);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let bad = || {
        SourceError::Invalid(format!(
            "cannot read the time {text:?}: give RFC 3339 (2026-11-26T09:30:00Z), a relative time (-10m, -2h, -1d) or latest"
        ))
    };
    let rest = text.strip_prefix('-').ok_or_else(bad)?;
    let unit_at = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let amount: i64 = rest[..unit_at].parse().map_err(|_| bad())?;
    let ago = match &rest[unit_at..] {
        "s" => Duration::try_seconds(amount),
        "m" | "min" => Duration::try_minutes(amount),
        "h" => Duration::try_hours(amount),
        "d" => Duration::try_days(amount),
        _ => None,
    }
    .ok_or_else(bad)?;
    Ok(now - ago)
}

/// An absolute, normalised path for a source given as a path or a `sqlite:`/`file:` URL.
pub fn source_path(text: &str) -> Result<PathBuf> {
    let path = crate::sqlite::path_from_url(text).unwrap_or_else(|| PathBuf::from(text));
    let absolute = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map_err(|e| SourceError::io(".", e))?
            .join(path)
    };
    Ok(absolute.components().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_absolute_relative_and_bad() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s| parse_time(s, now).unwrap().to_rfc3339();
        assert_eq!(at("-10m"), "2026-11-26T09:50:00+00:00");
        assert_eq!(at("-2h"), "2026-11-26T08:00:00+00:00");
        assert_eq!(at("-1d"), "2026-11-25T10:00:00+00:00");
        assert_eq!(at("-30s"), "2026-11-26T09:59:30+00:00");
        assert_eq!(at("latest"), now.to_rfc3339());
        assert_eq!(at("2026-11-26T11:00:00+01:00"), "2026-11-26T10:00:00+00:00");
        for bad in ["10m", "-m", "-5y", "yesterday", ""] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }

    fn point(time: &str) -> RestorePoint {
        RestorePoint {
            time: DateTime::parse_from_rfc3339(time)
                .unwrap()
                .with_timezone(&Utc),
            snapshot: Id([0; 32]),
            node: Node::new("db", NodeType::File),
            segment: None,
        }
    }

    #[test]
    fn a_time_is_an_instant_and_a_listed_time_names_its_point() {
        let points = [
            point("2026-11-26T05:53:37.100Z"),
            point("2026-11-26T05:53:38.792417Z"),
        ];
        let at = |s| {
            let at = parse_time(s, Utc::now()).unwrap();
            show_time(choose(&points, at, Path::new("/db")).unwrap().time)
        };
        // Given to the second: that second's start, not its end.
        assert_eq!(at("2026-11-26T05:53:38Z"), "2026-11-26T05:53:37.100Z");
        // As `timeline` lists it, to the millisecond, though stored finer.
        assert_eq!(at("2026-11-26T05:53:38.792Z"), "2026-11-26T05:53:38.792Z");
        assert_eq!(at("2026-11-26T05:53:38.791Z"), "2026-11-26T05:53:37.100Z");
        let before = parse_time("2026-11-26T05:53:37.099Z", Utc::now()).unwrap();
        let refused = choose(&points, before, Path::new("/db"))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("05:53:37.099Z is before"), "{refused}");
        let typed = parse_time("2026-11-26T05:53:38Z", Utc::now()).unwrap();
        let hint = later_in_same_second(&points, &points[0], typed).unwrap();
        assert!(hint.contains("--at 2026-11-26T05:53:38.792Z"), "{hint}");
        let later = parse_time("2026-11-26T05:53:39Z", Utc::now()).unwrap();
        assert_eq!(later_in_same_second(&points, &points[1], later), None);
    }
}
