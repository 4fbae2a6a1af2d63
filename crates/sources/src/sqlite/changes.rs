//! Finding the pages of a database that changed since the parent snapshot, using every
//! core.
//!
//! Each worker takes every n-th span of pages, hashes its pages and compares them with
//! the parent's cached hashes, and hands on the hashes and a copy of only the pages that
//! changed. When the pinned state is a file (rollback-journal mode, or a scratch copy),
//! each worker reads its own spans with `pread` into one small buffer that stays in
//! the core's cache while it is hashed: the gigabyte of unchanged pages never crosses a
//! thread, and reading and hashing run on every core. In WAL mode pages come through
//! SQLite's pager, which one thread must drive, so a reader thread fills batches and the
//! workers hash them.
//!
//! Workers hand over one message per span of the file (a few MiB), not per read: most of
//! a span is unchanged pages whose only trace is their hash, and every hand-over can wake
//! a sleeping core, which costs tens of microseconds on a virtual machine (measured: with
//! a message per 256 KiB read, 4,400 context switches and 1.3 of 2 cores busy during an
//! incremental backup of 1 GiB). A message closes early once it carries
//! [`Sizes::message_data`] bytes of changed pages (it can then hold up to one read more),
//! so a first backup, where every page changed, holds a few MiB in flight, not spans.
//!
//! Results come back in the same rotation as the spans went out: page order is kept
//! without a reorder buffer, and a slow worker holds the others up instead of letting
//! finished spans pile up in memory.

use crossbeam_channel::{bounded, unbounded};

use super::page_cache::{PageCache, PageHash};
use super::pages::PageScan;
use crate::{Result, SourceError};

/// Bytes per read: small enough to stay in a core's cache between the read and the
/// hash (measured: `pread` plus a pass over 1 GiB took 0.10 s on two threads with
/// 256 KiB buffers, 0.11-0.13 s with 1 MiB ones).
pub const BATCH_BYTES: usize = 256 * 1024;

/// Messages queued after each worker: slack for a worker the scheduler pauses briefly.
const QUEUE: usize = 4;

/// How the file is cut up between workers and messages.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Bytes per read (and per batch in WAL mode).
    read: usize,
    /// Bytes of the file per span: the unit that rotates between workers.
    span: usize,
    /// A message closes once it carries this many bytes of changed pages.
    message_data: usize,
}

impl Sizes {
    const DEFAULT: Sizes = Sizes {
        read: BATCH_BYTES,
        span: 4 * 1024 * 1024,
        message_data: 256 * 1024,
    };
}

/// A run of consecutive pages, as the consumer sees it.
#[derive(Default)]
pub struct ScannedBatch {
    /// Number of the first page (0-based) and how many pages the batch covers.
    pub first: u32,
    pub pages: u32,
    /// The keyed hash of every page of the batch (empty without a cache).
    pub hashes: Vec<PageHash>,
    /// Offsets within the batch of the pages that changed, ascending.
    pub changed: Vec<u32>,
    /// The changed pages' bytes, in the order of `changed`.
    pub data: Vec<u8>,
    /// Whether this is the last message of its span.
    ends_span: bool,
}

/// Calls `each` with every batch of `scan`, in page order. A page counts as changed
/// unless `previous` holds the same hash at its number; with no `previous` every page
/// has changed. `each` runs on the calling thread.
/// The scan ends (and its read transaction with it) when this returns.
pub fn scan_changes(
    scan: PageScan,
    cache: Option<&PageCache>,
    previous: Option<&[PageHash]>,
    each: impl FnMut(&ScannedBatch) -> Result<()>,
) -> Result<()> {
    scan_changes_in(scan, cache, previous, Sizes::DEFAULT, each)
}

fn scan_changes_in(
    scan: PageScan,
    cache: Option<&PageCache>,
    previous: Option<&[PageHash]>,
    sizes: Sizes,
    each: impl FnMut(&ScannedBatch) -> Result<()>,
) -> Result<()> {
    let finder = Finder {
        page_size: scan.page_size as usize,
        cache,
        previous,
    };
    let page_count = scan.page_count;
    if scan.file().is_some() {
        let file = scan.file().expect("checked above");
        run(
            Source::File(file, scan.path()),
            page_count,
            &finder,
            sizes,
            each,
        )
    } else {
        run(Source::Pager(scan), page_count, &finder, sizes, each)
    }
}

/// Where the workers' pages come from.
enum Source<'a> {
    /// Read by each worker at the pages' offsets.
    File(&'a std::fs::File, &'a std::path::Path),
    /// Read in order through SQLite, by one thread that owns the scan.
    Pager(PageScan),
}

fn run(
    source: Source<'_>,
    page_count: u32,
    finder: &Finder<'_>,
    sizes: Sizes,
    mut each: impl FnMut(&ScannedBatch) -> Result<()>,
) -> Result<()> {
    let page_size = finder.page_size;
    let read_pages = (sizes.read / page_size).max(1) as u32;
    // In WAL mode one reader thread deals out reads; a span is one read.
    let span_pages = match source {
        Source::File(..) => (sizes.span / page_size).max(read_pages as usize) as u32,
        Source::Pager(_) => read_pages,
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let spans = page_count.div_ceil(span_pages) as usize;
    let stopped = || SourceError::Invalid("the page scan stopped".into());
    // Buffers go back to the workers once `each` is done with them.
    let (spare_tx, spare_rx) = unbounded::<ScannedBatch>();
    // Read buffers go back to the reader once a worker has hashed them (WAL mode).
    let (raw_back_tx, raw_back_rx) = unbounded::<Vec<u8>>();
    let mut results = Vec::new();
    std::thread::scope(|scope| -> Result<()> {
        let mut inputs = Vec::new();
        let mut worker_handles = Vec::new();
        for worker in 0..workers {
            let (result_tx, result_rx) = bounded::<Result<ScannedBatch>>(QUEUE);
            results.push(result_rx);
            let spare_rx = spare_rx.clone();
            match &source {
                &Source::File(file, path) => {
                    worker_handles.push(scope.spawn(move || {
                        let mut raw = Vec::new();
                        let fresh = |first| ScannedBatch::reuse(spare_rx.try_recv().ok(), first);
                        for span in (worker..spans).step_by(workers) {
                            let (span_first, span_end) =
                                span_pages_of(span, span_pages, page_count);
                            let mut message = fresh(span_first);
                            for first in (span_first..span_end).step_by(read_pages as usize) {
                                let pages = read_pages.min(span_end - first);
                                if message.data.len() >= sizes.message_data {
                                    let full = std::mem::replace(&mut message, fresh(first));
                                    if result_tx.send(Ok(full)).is_err() {
                                        return;
                                    }
                                }
                                raw.resize(pages as usize * page_size, 0);
                                let read = std::os::unix::fs::FileExt::read_exact_at(
                                    file,
                                    &mut raw,
                                    first as u64 * page_size as u64,
                                );
                                if let Err(e) = read {
                                    let _ = result_tx.send(Err(SourceError::io(path, e)));
                                    return;
                                }
                                finder.append(&raw, &mut message);
                            }
                            message.ends_span = true;
                            if result_tx.send(Ok(message)).is_err() {
                                return;
                            }
                        }
                    }));
                }
                Source::Pager(_) => {
                    let (raw_tx, raw_rx) = bounded::<(u32, Vec<u8>)>(QUEUE);
                    inputs.push(raw_tx);
                    let raw_back = raw_back_tx.clone();
                    worker_handles.push(scope.spawn(move || {
                        for (first, raw) in raw_rx {
                            let mut found = ScannedBatch::reuse(spare_rx.try_recv().ok(), first);
                            finder.append(&raw, &mut found);
                            found.ends_span = true;
                            let _ = raw_back.send(raw);
                            if result_tx.send(Ok(found)).is_err() {
                                return;
                            }
                        }
                    }));
                }
            }
        }
        drop((spare_rx, raw_back_tx));
        // In WAL mode this thread reads through SQLite and the consumer runs beside it.
        let reader = match source {
            Source::File(..) => None,
            Source::Pager(scan) => Some(scope.spawn(move || {
                let mut turn = 0usize;
                scan.read(read_pages, |first, batch| {
                    let spare = raw_back_rx.try_recv().unwrap_or_default();
                    turn += 1;
                    inputs[(turn - 1) % workers]
                        .send((first, std::mem::replace(batch, spare)))
                        .map_err(|_| stopped())
                })
            })),
        };
        // Whether every span arrived: a worker or the reader that stopped early has
        // its own error to tell.
        let consumed = (|| -> Result<bool> {
            for turn in 0..spans {
                loop {
                    let Ok(found) = results[turn % workers].recv() else {
                        return Ok(false);
                    };
                    let found = found?;
                    each(&found)?;
                    let ends_span = found.ends_span;
                    let _ = spare_tx.send(found);
                    if ends_span {
                        break;
                    }
                }
            }
            Ok(true)
        })();
        // Dropping the receivers stops the workers (and the reader) after a failure.
        drop(results);
        let read = reader.map_or(Ok(()), |r| r.join().expect("page reader panicked"));
        for handle in worker_handles {
            handle.join().expect("page worker panicked");
        }
        match (consumed?, read) {
            (_, Err(e)) => Err(e),
            (false, Ok(())) => Err(stopped()),
            (true, Ok(())) => Ok(()),
        }
    })
}

/// The first page of span number `span` and the page after its last. Never overflows,
/// even for a database of nearly 2^32 pages.
fn span_pages_of(span: usize, span_pages: u32, page_count: u32) -> (u32, u32) {
    let first = (span as u64 * span_pages as u64).min(page_count as u64) as u32;
    (first, first + span_pages.min(page_count - first))
}

impl ScannedBatch {
    /// An empty message starting at page `first`, in the buffers of `spare` if there is one.
    fn reuse(spare: Option<ScannedBatch>, first: u32) -> ScannedBatch {
        let ScannedBatch {
            mut hashes,
            mut changed,
            mut data,
            ..
        } = spare.unwrap_or_default();
        hashes.clear();
        changed.clear();
        data.clear();
        ScannedBatch {
            first,
            pages: 0,
            hashes,
            changed,
            data,
            ends_span: false,
        }
    }
}

struct Finder<'a> {
    page_size: usize,
    cache: Option<&'a PageCache>,
    previous: Option<&'a [PageHash]>,
}

impl Finder<'_> {
    /// Hashes the pages of `raw`, which follow the pages `found` covers, and adds them
    /// to it, keeping the bytes of the changed ones.
    fn append(&self, raw: &[u8], found: &mut ScannedBatch) {
        for page in raw.chunks_exact(self.page_size) {
            let offset = found.pages;
            found.pages += 1;
            let hash = self.cache.map(|cache| cache.hash_page(page));
            let number = (found.first + offset) as usize;
            let unchanged = match (self.previous, &hash) {
                (Some(previous), Some(hash)) => previous.get(number) == Some(hash),
                _ => false,
            };
            if !unchanged {
                found.changed.push(offset);
                found.data.extend_from_slice(page);
            }
            found.hashes.extend(hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// Every page's hash, and the whole pages of the changed ones keyed by number.
    fn scan(
        path: &std::path::Path,
        cache: &PageCache,
        previous: Option<&[PageHash]>,
        sizes: Sizes,
    ) -> (Vec<PageHash>, Vec<(u32, Vec<u8>)>) {
        let scan = PageScan::open(path).unwrap();
        let page_size = scan.page_size as usize;
        let (mut hashes, mut changed) = (Vec::new(), Vec::new());
        scan_changes_in(scan, Some(cache), previous, sizes, |batch| {
            assert_eq!(batch.first as usize, hashes.len(), "batches out of order");
            assert_eq!(batch.hashes.len(), batch.pages as usize);
            assert!(
                batch.data.len() <= sizes.message_data + sizes.read,
                "a message of {} bytes of changed pages",
                batch.data.len()
            );
            hashes.extend_from_slice(&batch.hashes);
            for (offset, page) in batch.changed.iter().zip(batch.data.chunks(page_size)) {
                changed.push((batch.first + offset, page.to_vec()));
            }
            Ok(())
        })
        .unwrap();
        (hashes, changed)
    }

    fn pages_of(bytes: &[u8]) -> Vec<&[u8]> {
        bytes.chunks(4096).collect()
    }

    fn check_changes_are_exactly_the_differing_pages(wal: bool, sizes: Sizes) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let app = Connection::open(&path).unwrap();
        let mode = if wal { "WAL" } else { "DELETE" };
        app.execute_batch(&format!(
            "PRAGMA page_size=4096; PRAGMA journal_mode={mode}; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
        ))
        .unwrap();
        // About 700 pages: many batches, the last one partial.
        for i in 0..2500 {
            app.execute("INSERT INTO t(v) VALUES (?1)", [format!("{i:0>1000}")])
                .unwrap();
        }
        let cache = PageCache::new(dir.path(), "repo", [5; 32]);
        let (first_hashes, first_changed) = scan(&path, &cache, None, sizes);
        // What the committed state holds, read page by page in order through the
        // sequential reader (checked against the file in pages.rs).
        let committed = || {
            let mut all = Vec::new();
            PageScan::open(&path)
                .unwrap()
                .read(16, |_, batch| {
                    all.extend_from_slice(batch);
                    Ok(())
                })
                .unwrap();
            all
        };
        let before = committed();
        // Without a parent every page counts as changed, in order and whole.
        assert!(before.len() / 4096 > 3 * BATCH_BYTES / 4096);
        assert_eq!(first_changed.len(), before.len() / 4096);
        for (number, page) in &first_changed {
            let same = page.as_slice() == pages_of(&before)[*number as usize];
            assert!(same, "page {number} is not the committed one");
        }

        for id in [3, 900, 2400] {
            app.execute("UPDATE t SET v = 'changed' WHERE id = ?1", [id])
                .unwrap();
        }
        let (second_hashes, second_changed) = scan(&path, &cache, Some(&first_hashes), sizes);
        let after = committed();
        let differing: Vec<u32> = pages_of(&after)
            .iter()
            .enumerate()
            .filter(|(n, page)| pages_of(&before).get(*n) != Some(*page))
            .map(|(n, _)| n as u32)
            .collect();
        assert!(!differing.is_empty());
        let numbers: Vec<u32> = second_changed.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, differing);
        for (number, page) in &second_changed {
            let same = page.as_slice() == pages_of(&after)[*number as usize];
            assert!(same, "page {number} is not the committed one");
        }
        assert_eq!(second_hashes.len(), after.len() / 4096);
    }

    #[test]
    fn rollback_journal_changes_are_exactly_the_differing_pages() {
        check_changes_are_exactly_the_differing_pages(false, Sizes::DEFAULT);
    }

    /// Spans of several reads, many spans per worker, and messages that close early on
    /// their changed bytes, on a database of about 700 pages.
    #[test]
    fn small_spans_and_messages_keep_every_change_in_order() {
        let small = Sizes {
            read: 16 * 1024,
            span: 64 * 1024,
            message_data: 32 * 1024,
        };
        check_changes_are_exactly_the_differing_pages(false, small);
        check_changes_are_exactly_the_differing_pages(true, small);
    }

    #[test]
    fn spans_cover_every_page_once_up_to_the_largest_page_count() {
        for (span_pages, page_count) in [(1024, 5000), (1024, 1024), (7, 1), (1024, u32::MAX)] {
            let spans = page_count.div_ceil(span_pages) as usize;
            let mut next = 0u32;
            for span in [0, 1, spans.saturating_sub(2), spans - 1] {
                if span >= spans {
                    continue;
                }
                let (first, end) = span_pages_of(span, span_pages, page_count);
                assert!(
                    first < end && end <= page_count,
                    "{span_pages} {page_count}"
                );
                if span + 1 < spans {
                    assert_eq!(end - first, span_pages);
                }
                next = next.max(end);
            }
            assert_eq!(next, page_count);
        }
    }

    #[test]
    fn wal_changes_are_exactly_the_differing_pages() {
        check_changes_are_exactly_the_differing_pages(true, Sizes::DEFAULT);
    }

    #[test]
    fn a_failing_consumer_stops_the_scan_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let app = Connection::open(&path).unwrap();
        app.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (zeroblob(2000000));")
            .unwrap();
        let mut calls = 0;
        let err = scan_changes(PageScan::open(&path).unwrap(), None, None, |_| {
            calls += 1;
            match calls {
                3 => Err(SourceError::Invalid("the repository is full".into())),
                _ => Ok(()),
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("repository is full"), "{err}");
        assert_eq!(calls, 3);
        // The scan's read transaction is over: a writer gets in at once.
        app.busy_timeout(std::time::Duration::ZERO).unwrap();
        app.execute("INSERT INTO t VALUES (1)", []).unwrap();
    }
}
