//! `lifeboat mysql binlog-stream`: a MySQL/MariaDB server's binary log archived into the
//! repository as it is written ([`lifeboat_sources::mysql::binlog_stream`]).

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};
use lifeboat_repo::snapshot::Engine;
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::mysql::binlog_stream::{self, StreamOptions};

use crate::args::{MysqlArgs, MysqlBinlogStreamArgs, MysqlCommand};
use crate::context::Context;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn run(ctx: &Context, args: &MysqlArgs) -> Result<()> {
    match &args.command {
        MysqlCommand::BinlogStream(args) => binlog_stream(ctx, args),
    }
}

fn binlog_stream(ctx: &Context, args: &MysqlBinlogStreamArgs) -> Result<()> {
    let subject = crate::commands::subject::resolve(
        ctx,
        &args.source,
        args.from.as_deref(),
        &args.file.config,
    )?;
    let url = match DatabaseUrl::parse(&subject.location) {
        Some(url) => url?,
        None => bail!(
            "{} is not a MySQL server: give mysql://user@host:port or a mysql source of lifeboat.toml",
            subject.name
        ),
    };
    if url.engine != Engine::Mysql {
        bail!(
            "{} is a PostgreSQL server: its WAL is archived with `lifeboat pg setup`",
            url.redacted()
        );
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        for signal in [libc::SIGTERM, libc::SIGINT] {
            libc::signal(signal, request_stop as *const () as libc::sighandler_t);
        }
    }
    let options = StreamOptions {
        interval: args.interval,
        once: args.once,
    };
    if !args.once {
        ctx.say(format!(
            "archiving the binary log of {} (stored every {:?}); stop with Ctrl-C",
            url.server(),
            args.interval
        ));
    }
    let streamed = binlog_stream::stream(&subject.repo, &url, &options, &|| {
        STOP.load(Ordering::SeqCst)
    })?;
    ctx.say(format!(
        "stored {} binlog pieces ({} bytes){}",
        streamed.pieces,
        streamed.bytes,
        streamed
            .reaches
            .map(|(file, end)| format!("; the archive reaches {file} byte {end}"))
            .unwrap_or_default()
    ));
    Ok(())
}
