//! `lifeboat pg ...`: PostgreSQL base backups, the archive_command and restore_command
//! pair, point-in-time recovery and the setup that ties them to a server.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use lifeboat_repo::pg_wal::WalPush;
use lifeboat_repo::session::WriteSession;
use lifeboat_repo::snapshot::{SnapshotDraft, SnapshotSource, SnapshotSummary};
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::postgres::recovery::{self, RecoverySettings, RecoveryTarget};
use lifeboat_sources::postgres::{physical, wal, Psql};
use serde_json::json;

use crate::args::{
    PgArgs, PgBasebackupArgs, PgCommand, PgRestoreArgs, PgSetupArgs, PgWalFetchArgs, PgWalPushArgs,
};
use crate::commands::backup::human;
use crate::context::Context;
use crate::exit::{code_for, one_line, WithCode, DAMAGE_FOUND, FAILURE};
use crate::progress::Bar;
use lifeboat_ops::pg_archive::check_time_is_archived;

pub fn run(ctx: &Context, args: &PgArgs) -> Result<()> {
    match &args.command {
        PgCommand::Basebackup(a) => basebackup(ctx, a),
        PgCommand::WalPush(a) => wal_push(ctx, a),
        PgCommand::WalFetch(a) => wal_fetch(ctx, a),
        PgCommand::Restore(a) => restore(ctx, a),
        PgCommand::Setup(a) => setup(ctx, a),
    }
}

/// The server URL given, else DATABASE_URL.
fn server_url(given: &Option<String>) -> Result<DatabaseUrl> {
    let text = match given {
        Some(url) => url.clone(),
        None => std::env::var("DATABASE_URL").map_err(|_| {
            crate::exit::Usage("give the server as postgres://... or set DATABASE_URL".into())
        })?,
    };
    match DatabaseUrl::parse(&text) {
        Some(Ok(url)) if url.engine == lifeboat_repo::snapshot::Engine::Postgres => Ok(url),
        Some(Err(e)) => Err(e.into()),
        _ => bail!("{text}: not a postgres:// URL"),
    }
}

fn basebackup(ctx: &Context, args: &PgBasebackupArgs) -> Result<()> {
    let url = server_url(&args.url)?;
    let repo = ctx.open()?;
    let started = Instant::now();
    let time = chrono::Utc::now();
    let session = WriteSession::start(&repo, "pg basebackup")?;
    let bar = Bar::bytes(ctx.progress_enabled(), None, "base backup");
    let backup = physical::basebackup(&repo, &session, &url, args.wal_timeout, &bar)?;
    bar.finish();
    let finished = session.finish()?;
    let meta = backup.meta;
    let draft = SnapshotDraft {
        time,
        host: None,
        paths: vec![url.server()],
        tags: args.tags.clone(),
        pinned: args.pin,
        source: SnapshotSource::PgBase(meta.clone()),
        tree: backup.root,
        parent: None,
        summary: SnapshotSummary {
            files: backup.stats.files,
            dirs: backup.stats.dirs,
            total_bytes: backup.stats.bytes,
            ..Default::default()
        },
        warnings: Vec::new(),
        started,
    };
    let (id, snapshot) = finished.save(draft)?;
    let summary = snapshot.summary;
    if ctx.global.json {
        ctx.print_json(
            &json!({ "id": id, "short_id": id.short(), "base_backup": meta, "summary": summary }),
        );
    } else {
        ctx.say(format!(
            "base backup {} of cluster {} saved: {} ({} new, {} stored), WAL {} to {} archived, in {:.1}s",
            id.short(),
            meta.cluster,
            human(summary.total_bytes),
            human(summary.new_bytes),
            human(summary.stored_bytes),
            meta.start_wal,
            meta.end_wal,
            summary.duration_ms as f64 / 1000.0
        ));
    }
    Ok(())
}

fn wal_push(ctx: &Context, args: &PgWalPushArgs) -> Result<()> {
    let repo = ctx.open()?;
    let (name, outcome) = wal::push(&repo, &args.path, &args.pgdata)?;
    match outcome {
        WalPush::Stored => tracing::info!("archived {name}"),
        WalPush::AlreadyArchived => {
            tracing::info!("{name} was already archived with the same contents")
        }
    }
    Ok(())
}

/// Exit 1 means "not in the archive" (PostgreSQL then tries elsewhere or ends recovery);
/// a real failure never exits 1, so a script (or a person) can tell the two apart.
fn wal_fetch(ctx: &Context, args: &PgWalFetchArgs) -> Result<()> {
    let fetched = (|| -> Result<bool> {
        if args.prefetch > 0 && wal::take_prefetched(&args.pgdata, &args.file, &args.dest)? {
            return Ok(true);
        }
        let cluster = match &args.cluster {
            Some(c) => c.clone(),
            None => wal::cluster_of(&args.pgdata)?,
        };
        let repo = ctx.open()?;
        let found = wal::fetch(&repo, &cluster, &args.file, &args.dest)?;
        if found && args.prefetch > 0 && wal::is_segment(&args.file) {
            let mut head = [0u8; 64];
            let size = std::fs::File::open(&args.dest)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .ok()
                .and_then(|_| wal::segment_size_of(&head))
                .unwrap_or(16 << 20);
            // Fetching ahead is an optimisation: its failure never fails this fetch.
            if let Err(e) = wal::prefetch(
                &repo,
                &cluster,
                &args.file,
                &args.pgdata,
                args.prefetch,
                size,
            ) {
                tracing::warn!("fetching WAL ahead: {e}");
            }
        }
        Ok(found)
    })();
    match fetched {
        Ok(true) => Ok(()),
        Ok(false) => Err(WithCode {
            code: FAILURE,
            message: format!("{} is not in the archive", args.file),
        }
        .into()),
        Err(e) => {
            let code = match code_for(&e) {
                FAILURE => DAMAGE_FOUND,
                other => other,
            };
            Err(WithCode {
                code,
                message: format!("fetching {}: {}", args.file, one_line(&e)),
            }
            .into())
        }
    }
}

/// The command PostgreSQL runs to fetch WAL: this binary, this repository, and the
/// passphrase file if one was given (the passphrase itself never goes into a file).
pub(crate) fn lifeboat_command(ctx: &Context, tail: &str) -> Result<String> {
    let exe = std::env::current_exe().context("cannot find the lifeboat executable")?;
    // The command goes into postgresql.conf and every archiver's command line (`ps`).
    if let Ok(lifeboat_storage::Location::Service { options, .. }) =
        lifeboat_storage::Location::parse(ctx.repo_url()?)
    {
        let secret = ["secret", "key", "token", "password", "credential", "sas"];
        if let Some((name, _)) = options.iter().find(|(name, _)| {
            let name = name.to_ascii_lowercase();
            secret.iter().any(|word| name.contains(word))
        }) {
            bail!(
                "the repository URL holds a credential ({name}), which PostgreSQL's command \
                 would show to every user: give it to the server through its environment \
                 (e.g. AWS_SECRET_ACCESS_KEY) instead"
            );
        }
    }
    let quote = crate::commands::shell_word;
    let mut command = format!(
        "{} --repo {}",
        quote(&exe.display().to_string()),
        quote(ctx.repo_url()?)
    );
    if let Some(file) = &ctx.global.password_file {
        let file = std::path::absolute(file).unwrap_or(file.clone());
        command.push_str(&format!(
            " --password-file {}",
            quote(&file.display().to_string())
        ));
    }
    command.push(' ');
    command.push_str(tail);
    Ok(command)
}

fn restore(ctx: &Context, args: &PgRestoreArgs) -> Result<()> {
    let target = RecoveryTarget::parse(&args.at, chrono::Utc::now());
    let repo = ctx.open()?;
    let started = Instant::now();
    let snapshots = repo.list_snapshots()?;
    let bases = recovery::base_backups(&snapshots, args.cluster.as_deref());
    let (base, meta) = recovery::choose_base(&bases, &target)?;
    if let RecoveryTarget::Time(time) = &target {
        check_time_is_archived(&repo, meta, *time)?;
    }
    let index = repo.load_index()?;
    let settings = RecoverySettings {
        target: target.clone(),
        restore_command: lifeboat_command(
            ctx,
            &format!("pg wal-fetch --cluster {} %f %p", meta.cluster),
        )?,
        timeline: args.timeline,
        keep_archiving: args.archive,
    };
    let bar = Bar::bytes(
        ctx.progress_enabled(),
        Some(base.snapshot.summary.total_bytes),
        "restoring",
    );
    recovery::prepare(&repo, &index, base, meta, &args.target_dir, &settings, &bar)?;
    bar.finish();
    let restored_in = started.elapsed().as_secs_f64();
    if args.start {
        let port = args.port.expect("clap requires --port with --start");
        if let Err(e) = recovery::start(&args.target_dir, port, args.wait) {
            return Err(clean_up_failed_start(&args.target_dir, e));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if ctx.global.json {
        ctx.print_json(&json!({
            "base_backup": base.id,
            "cluster": meta.cluster,
            "target": target.describe(),
            "timeline": args.timeline.unwrap_or(meta.timeline),
            "target_dir": args.target_dir,
            "restored_seconds": restored_in,
            "started": args.start,
            "port": args.port,
            "seconds": seconds,
        }));
        return Ok(());
    }
    ctx.say(format!(
        "restored base backup {} (cluster {}, ended {}) into {} in {restored_in:.1}s; \
         recovery replays archived WAL to {} on timeline {}",
        base.id.short(),
        meta.cluster,
        meta.finished
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        args.target_dir.display(),
        target.describe(),
        args.timeline.unwrap_or(meta.timeline)
    ));
    if args.start {
        ctx.say(format!(
            "PostgreSQL is up on 127.0.0.1:{}, recovered and promoted, after {seconds:.1}s",
            args.port.unwrap_or_default()
        ));
    } else {
        if ctx.global.password_file.is_none() {
            ctx.say("the server needs the repository passphrase to fetch WAL: start it with LIFEBOAT_PASSWORD_FILE (or LIFEBOAT_PASSWORD) in its environment");
        }
        ctx.say(format!(
            "start it with: pg_ctl -D {} start",
            args.target_dir.display()
        ));
    }
    Ok(())
}

/// After a recovered server failed to come up: stop it if it runs, keep its log, and
/// remove the directory `pg restore` filled (it was empty or missing), so that a second
/// attempt can start over.
fn clean_up_failed_start(
    dir: &std::path::Path,
    error: lifeboat_sources::SourceError,
) -> anyhow::Error {
    let _ = recovery::stop(dir);
    let log = dir.join("lifeboat-recovery.log");
    let kept = std::env::temp_dir().join(format!(
        "lifeboat-recovery-{}-{}.log",
        std::process::id(),
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    let kept = std::fs::copy(&log, &kept).ok().map(|_| kept);
    let removed = std::fs::remove_dir_all(dir).is_ok();
    anyhow::anyhow!(
        "{}{}{}",
        one_line(&error.into()).replace(&format!(" (log: {})", log.display()), ""),
        kept.map(|k| format!(" (log kept as {})", k.display()))
            .unwrap_or_default(),
        if removed {
            format!("; {} was removed", dir.display())
        } else {
            String::new()
        }
    )
}

/// Whether the server's user lacks access to a local repository (see [`pg_access`]).
fn access_problem(ctx: &Context, psql: &Psql) -> Option<String> {
    let Ok(lifeboat_storage::Location::Local(root)) =
        lifeboat_storage::Location::parse(ctx.repo_url().ok()?)
    else {
        return None;
    };
    // Reading it needs a superuser or pg_read_all_settings, as --apply does anyway.
    let data_directory = psql
        .query(None, "SELECT current_setting('data_directory')")
        .ok()?;
    let password_file = ctx
        .global
        .password_file
        .as_ref()
        .map(|f| std::path::absolute(f).unwrap_or(f.clone()));
    crate::commands::pg_access::problem(&data_directory, &root, password_file.as_deref())
}

fn setup(ctx: &Context, args: &PgSetupArgs) -> Result<()> {
    let url = server_url(&args.url)?;
    let psql = Psql::new(&url)?;
    let archive_command = lifeboat_command(ctx, "pg wal-push %p")?;
    let access = access_problem(ctx, &psql);
    if let (Some(problem), true) = (&access, args.apply) {
        bail!("{problem}; nothing was changed");
    }
    let current = psql.query(
        None,
        "SELECT current_setting('wal_level'), current_setting('archive_mode'), \
         current_setting('archive_command'), system_identifier, \
         (SELECT setting FROM pg_settings WHERE name = 'archive_timeout') FROM pg_control_system()",
    )?;
    let fields: Vec<&str> = current.split('|').collect();
    let [wal_level, archive_mode, current_command, cluster, archive_timeout] = fields[..] else {
        bail!("unexpected answer from {}: {current:?}", url.server());
    };
    // A WAL file is archived when it fills or after archive_timeout: on a quiet server
    // the last minutes of commits would otherwise wait in an unfilled file, out of reach
    // of point-in-time recovery.
    let wanted_timeout = (args.rpo.as_secs() / 2).max(30);
    let current_timeout: u64 = archive_timeout.trim().parse().unwrap_or(0);
    let timeout = if current_timeout == 0 || current_timeout > wanted_timeout {
        format!("{wanted_timeout}s")
    } else {
        format!("{current_timeout}s")
    };
    let settings = [
        (
            "wal_level",
            if wal_level == "minimal" {
                "replica"
            } else {
                wal_level
            },
        ),
        (
            "archive_mode",
            if archive_mode == "off" {
                "on"
            } else {
                archive_mode
            },
        ),
        ("archive_command", archive_command.as_str()),
        ("archive_timeout", timeout.as_str()),
    ];
    let restart = wal_level == "minimal" || archive_mode == "off";
    if !args.apply {
        ctx.say(format!(
            "# postgresql.conf for {} (cluster {cluster}):",
            url.server()
        ));
        for (name, value) in settings {
            out!("{name} = '{}'", value.replace('\'', "''"));
        }
        if ctx.global.password_file.is_none() {
            ctx.say("# the server needs the passphrase: give --password-file (readable by the postgres user) so archive_command names it");
        }
        if let Some(problem) = &access {
            ctx.say(format!("# warning: {problem}"));
        }
        ctx.say("# or run again with --apply (ALTER SYSTEM; needs a superuser)");
        if current_command != archive_command || restart {
            return Ok(());
        }
    } else {
        for (name, value) in settings {
            psql.query(
                None,
                &format!("ALTER SYSTEM SET {name} = '{}'", value.replace('\'', "''")),
            )?;
        }
        psql.query(None, "SELECT pg_reload_conf()")?;
        if restart {
            ctx.say(format!(
                "settings written; archive_mode and wal_level take effect after a restart of {}: \
                 restart it, then run `lifeboat pg setup` again to check archiving",
                url.server()
            ));
            return Ok(());
        }
        // The reload is asynchronous: give the archiver a moment to read it.
        std::thread::sleep(Duration::from_millis(500));
    }
    let repo = ctx.open()?;
    let file = psql.query(
        None,
        "SELECT pg_walfile_name(pg_create_restore_point('lifeboat setup check')), pg_switch_wal()",
    )?;
    let file = file.split('|').next().unwrap_or_default().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while repo.fetch_wal(cluster, &file)?.is_none() {
        if Instant::now() >= deadline {
            let why = psql.query(
                None,
                "SELECT coalesce(last_failed_wal, '-') || ' at ' || coalesce(last_failed_time::text, '-') FROM pg_stat_archiver",
            )?;
            bail!(
                "WAL file {file} did not reach the repository within 30s (last archive failure: {why}); \
                 see the server log for archive_command's error (it runs as the server's user, \
                 which must be able to read the passphrase file and the keys and write the repository)"
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    ctx.say(format!(
        "archiving works: WAL file {file} of cluster {cluster} reached the repository"
    ));
    Ok(())
}
