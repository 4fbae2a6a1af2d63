//! Copying restore points between repositories, which may have different keys: every
//! blob is read and checked in the source, stored (deduplicated) in the destination
//! under the destination's id, and trees and page maps are rewritten to the new ids.
//! Stream segments follow their base snapshots, archived WAL its cluster.
//!
//! Copying again copies only what is new: a copied snapshot records the snapshot it
//! came from (`original`, kept through chains of copies), and segments and WAL files
//! already in the destination are skipped.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::id::Id;
use crate::index::MasterIndex;
use crate::pack::BlobKind;
use crate::repository::Repository;
use crate::segment::{generation_name, stream_id};
use crate::session::WriteSession;
use crate::snapshot::{Snapshot, StoredSnapshot};
use crate::tree::Tree;

#[derive(Debug, Default, Clone, Serialize)]
pub struct CopyReport {
    pub snapshots_copied: usize,
    pub snapshots_present: usize,
    pub blobs_read: usize,
    pub new_bytes: u64,
    pub stored_bytes: u64,
    pub segments_copied: usize,
    pub wal_files_copied: usize,
    pub binlog_pieces_copied: usize,
}

/// The identity a snapshot keeps across copies.
pub(crate) fn lineage(s: &StoredSnapshot) -> Id {
    s.snapshot.original.unwrap_or(s.id)
}

pub fn copy(from: &Repository, to: &Repository) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let sources = from.list_snapshots()?;
    let present: HashMap<Id, Id> = to
        .list_snapshots()?
        .iter()
        .map(|s| (lineage(s), s.id))
        .collect();
    let missing: Vec<&StoredSnapshot> = sources
        .iter()
        .filter(|s| !present.contains_key(&lineage(s)))
        .collect();
    report.snapshots_present = sources.len() - missing.len();
    // Source snapshot id -> destination snapshot id, for segments and parents.
    let mut copied: HashMap<Id, Id> = sources
        .iter()
        .filter_map(|s| present.get(&lineage(s)).map(|d| (s.id, *d)))
        .collect();

    if !missing.is_empty() {
        let index = from.load_index()?;
        let session = WriteSession::start(to, "copy")?;
        let mut mapper = Mapper::new(from, &index, &session);
        let mut pending = Vec::new();
        for source in &missing {
            let tree = mapper.tree(&source.snapshot.tree)?;
            pending.push((source, tree));
        }
        report.blobs_read = mapper.read();
        let finished = session.finish()?;
        report.new_bytes = finished.stats.new_bytes;
        report.stored_bytes = finished.stats.stored_bytes;
        // Oldest first, so a parent is copied before the snapshots that name it.
        for (source, tree) in pending {
            let snapshot = Snapshot {
                tree,
                parent: source.snapshot.parent.and_then(|p| copied.get(&p).copied()),
                original: Some(lineage(source)),
                ..source.snapshot.clone()
            };
            let id = finished.store_snapshot(&snapshot)?;
            copied.insert(source.id, id);
            report.snapshots_copied += 1;
        }
        finished.release()?;
    }
    report.segments_copied = copy_segments(from, to, &copied)?;
    report.wal_files_copied = copy_wal(from, to)?;
    report.binlog_pieces_copied = copy_binlog(from, to, &sources)?;
    Ok(report)
}

/// Blob and tree ids of one repository mapped to another's, storing what the other lacks.
pub(crate) struct Mapper<'a> {
    from: &'a Repository,
    index: &'a MasterIndex,
    session: &'a WriteSession,
    blobs: HashMap<Id, Id>,
    trees: HashMap<Id, Id>,
}

impl<'a> Mapper<'a> {
    pub(crate) fn new(
        from: &'a Repository,
        index: &'a MasterIndex,
        session: &'a WriteSession,
    ) -> Mapper<'a> {
        Mapper {
            from,
            index,
            session,
            blobs: HashMap::new(),
            trees: HashMap::new(),
        }
    }

    /// Blobs and trees read so far.
    pub(crate) fn read(&self) -> usize {
        self.blobs.len() + self.trees.len()
    }

    fn data(&mut self, id: &Id) -> Result<Id> {
        if let Some(mapped) = self.blobs.get(id) {
            return Ok(*mapped);
        }
        let data = self.from.read_blob(self.index, id)?;
        let mapped = self.session.store_blob(BlobKind::Data, data)?;
        self.blobs.insert(*id, mapped);
        Ok(mapped)
    }

    pub(crate) fn tree(&mut self, id: &Id) -> Result<Id> {
        if let Some(mapped) = self.trees.get(id) {
            return Ok(*mapped);
        }
        let mut tree: Tree = self.from.load_tree(self.index, id)?;
        for node in &mut tree.nodes {
            node.content = node
                .content
                .iter()
                .map(|id| self.data(id))
                .collect::<Result<_>>()?;
            if !node.page_map.is_empty() {
                let mut map = self.from.load_page_map(self.index, &node.page_map)?;
                map.blobs = map
                    .blobs
                    .iter()
                    .map(|id| self.data(id))
                    .collect::<Result<_>>()?;
                let encoded = map.encode();
                node.page_map = self
                    .session
                    .store_reader(
                        &encoded[..],
                        &format!("the page map of {}", node.name),
                        |_| {},
                    )?
                    .ids;
            }
            if let Some(subtree) = node.subtree {
                node.subtree = Some(self.tree(&subtree)?);
            }
        }
        let mapped = self.session.store_tree(&tree)?;
        self.trees.insert(*id, mapped);
        Ok(mapped)
    }
}

/// The segments of every copied base's generation that the destination lacks, in order,
/// re-chained to the destination's names.
fn copy_segments(from: &Repository, to: &Repository, bases: &HashMap<Id, Id>) -> Result<usize> {
    let generations: HashMap<String, (Id, Id)> = bases
        .iter()
        .map(|(src, dst)| (generation_name(src), (*src, *dst)))
        .collect();
    let streams: HashSet<String> = from
        .storage()
        .list("streams")?
        .into_iter()
        .filter_map(|o| o.name.split('/').nth(1).map(str::to_string))
        .collect();
    let mut copied = 0;
    let mut in_destination: HashMap<String, Vec<crate::segment::SegmentName>> = HashMap::new();
    for stream in streams {
        let segments = from.list_segments(&stream)?;
        let mut previous: Option<String> = None;
        let mut generation_of_previous = String::new();
        for name in segments {
            let Some((_, dst_base)) = generations.get(&name.generation) else {
                continue;
            };
            let mut segment = from.load_segment(&name.name)?;
            let dst_stream = stream_id(to.key(), &segment.header.source);
            let dst_generation = generation_name(dst_base);
            if generation_of_previous != name.generation {
                previous = None;
                generation_of_previous = name.generation.clone();
            }
            if !in_destination.contains_key(&dst_stream) {
                in_destination.insert(dst_stream.clone(), to.list_segments(&dst_stream)?);
            }
            let existing = in_destination[&dst_stream]
                .iter()
                .find(|s| s.generation == dst_generation && s.seq == name.seq)
                .cloned();
            if let Some(existing) = existing {
                previous = Some(existing.name);
                continue;
            }
            segment.header.stream = dst_stream;
            segment.header.base_snapshot = *dst_base;
            segment.header.previous = previous.take();
            previous = Some(to.save_segment(&segment)?);
            copied += 1;
        }
    }
    Ok(copied)
}

/// Archived binlog pieces the destination lacks, for every MySQL server a snapshot
/// names (the archive's names are keyed, so a server is found through its dumps).
fn copy_binlog(from: &Repository, to: &Repository, snapshots: &[StoredSnapshot]) -> Result<usize> {
    use crate::mysql_binlog::server_key;
    let servers: HashSet<&str> = snapshots
        .iter()
        .filter_map(|s| match &s.snapshot.source {
            crate::snapshot::SnapshotSource::Database(dump)
                if dump.engine == crate::snapshot::Engine::Mysql =>
            {
                Some(dump.server.as_str())
            }
            _ => None,
        })
        .collect();
    let mut copied = 0;
    for server in servers {
        let (source, destination) = (server_key(from, server), server_key(to, server));
        let have: HashSet<String> = to
            .list_binlog(&destination)?
            .iter()
            .map(|p| p.object_name(&destination))
            .collect();
        for piece in from.list_binlog(&source)? {
            if have.contains(&piece.object_name(&destination)) {
                continue;
            }
            if let Some(data) = from.fetch_binlog(&source, &piece)? {
                to.push_binlog(&destination, &piece, &data)?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

/// Archived WAL files the destination lacks (same cluster and file name).
fn copy_wal(from: &Repository, to: &Repository) -> Result<usize> {
    let clusters: HashSet<String> = from
        .storage()
        .list("wal")?
        .into_iter()
        .filter_map(|o| o.name.split('/').nth(1).map(str::to_string))
        .collect();
    let mut copied = 0;
    for cluster in clusters {
        let have: HashSet<String> = to.list_wal(&cluster)?.into_iter().collect();
        for file in from.list_wal(&cluster)? {
            if have.contains(&file) {
                continue;
            }
            if let Some(data) = from.fetch_wal(&cluster, &file)? {
                to.push_wal(&cluster, &file, &data)?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}
