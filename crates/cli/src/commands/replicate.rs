use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use lifeboat_repo::lock::Lock;
use lifeboat_sources::sqlite::replicate::{Options, Replicator};
use lifeboat_sources::timeline::source_path;

use crate::args::ReplicateArgs;
use crate::context::Context;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn run(ctx: &Context, args: &ReplicateArgs) -> Result<()> {
    let path = source_path(&args.database)?;
    let repo = ctx.open()?;
    let cache = ctx.page_cache(&repo);
    let options = Options {
        interval: args.interval,
        base_every: args.base_every,
    };
    let mut replicator = Replicator::open(&repo, &path, cache.as_ref(), options)?;
    let lease = Lock::acquire_stream(&repo, replicator.stream())?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            request_stop as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            request_stop as *const () as libc::sighandler_t,
        );
    }
    ctx.say(format!(
        "replicating {} every {:?} (stream {}); stop with Ctrl-C",
        path.display(),
        args.interval,
        replicator.stream()
    ));
    let result = replicate(ctx, &mut replicator, args.interval);
    lease.release()?;
    result
}

fn replicate(ctx: &Context, replicator: &mut Replicator, interval: Duration) -> Result<()> {
    loop {
        let started = Instant::now();
        // The last tick after a stop request ships what committed up to that moment.
        let stopping = STOP.load(Ordering::SeqCst);
        let tick = replicator.tick()?;
        if let Some(why) = &tick.rebased {
            ctx.say(format!("base snapshot taken ({why})"));
        }
        if let Some((seq, transactions, pages)) = tick.shipped {
            tracing::info!("segment {seq}: {transactions} transaction(s), {pages} page(s)");
        }
        if stopping {
            if tick.waiting > 0 {
                anyhow::bail!(
                    "stopped with {} transaction(s) not stored (storage unreachable); they remain in the database and the next base snapshot will hold them",
                    tick.waiting
                );
            }
            ctx.say("stopped; every committed transaction was shipped");
            return Ok(());
        }
        while started.elapsed() < interval && !STOP.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20).min(interval));
        }
    }
}
