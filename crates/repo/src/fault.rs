//! Crash points for tests: `LIFEBOAT_CRASH_AT=<point>:<n>` kills the process with SIGKILL
//! the n-th time it reaches `<point>`, so crash tests hit exact places in the write order
//! instead of guessing with timers. `LIFEBOAT_PAUSE_AT=<point>:<file>` instead creates
//! `<file>.reached` there and waits (at most two minutes) until `<file>.go` exists, so
//! concurrency tests can interleave two processes exactly. Unset (always, outside tests)
//! this costs one load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
static HITS: AtomicUsize = AtomicUsize::new(0);
static PAUSE: OnceLock<Option<(String, String)>> = OnceLock::new();

/// Names a point in the write path: `pack-stored`, `index-stored`, `snapshot-write`,
/// `session-started`, and prune's `prune-condemned`, `prune-armed`,
/// `prune-index-rewritten`, `prune-pack-deleted`; `dump-snapshot` (a PostgreSQL dump,
/// just before its snapshot is taken) and restore's `restore-filled`.
pub fn point(name: &str) {
    // Release builds ignore both variables: whoever can set a service's environment must
    // not be able to crash it at a chosen point of its write order.
    if !cfg!(debug_assertions) {
        return;
    }
    pause(name);
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

fn pause(name: &str) {
    let pause = PAUSE.get_or_init(|| {
        let value = std::env::var("LIFEBOAT_PAUSE_AT").ok()?;
        let (point, file) = value.split_once(':')?;
        Some((point.to_string(), file.to_string()))
    });
    if let Some((point, file)) = pause {
        if point == name {
            let _ = std::fs::write(format!("{file}.reached"), b"");
            let go = std::path::PathBuf::from(format!("{file}.go"));
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while !go.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}
