//! Crash points for tests: `LIFEBOAT_CRASH_AT=<point>:<n>` kills the process with SIGKILL
//! the n-th time it reaches `<point>`, so crash tests hit exact places in the write order
//! instead of guessing with timers. Unset (always, outside tests) this costs one load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
static HITS: AtomicUsize = AtomicUsize::new(0);

/// Names a point in the write path: `pack-stored`, `index-stored`, `snapshot-write`.
pub fn point(name: &str) {
    let target = TARGET.get_or_init(|| {
        let value = std::env::var("LIFEBOAT_CRASH_AT").ok()?;
        let (point, n) = value.split_once(':').unwrap_or((&value, "1"));
        Some((point.to_string(), n.parse().unwrap_or(1)))
    });
    if let Some((point, n)) = target {
        if point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            // SAFETY: kill and getpid have no preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}
