//! `lifeboat pg ...`: PostgreSQL base backups, the archive_command and restore_command
//! pair, point-in-time recovery and the setup that ties them to a server.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use lifeboat_ops::pg::base_backup::{self, BaseBackupRequest};
use lifeboat_ops::pg::recovery::{self, PitrRequest};
use lifeboat_ops::pg::setup;
use lifeboat_repo::pg_wal::WalPush;
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::postgres::{wal, Psql};

use crate::args::{
    PgArgs, PgBasebackupArgs, PgCommand, PgRestoreArgs, PgSetupArgs, PgWalFetchArgs, PgWalPushArgs,
};
use crate::commands::backup::human;
use crate::context::Context;
use crate::exit::{code_for, one_line, WithCode, DAMAGE_FOUND, FAILURE};
use crate::progress::Terminal;

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
    let request = BaseBackupRequest {
        server: &url,
        tags: args.tags.clone(),
        pinned: args.pin,
        wal_timeout: args.wal_timeout,
    };
    let report = base_backup::take(&repo, request, &Terminal::new(ctx))?;
    if ctx.global.json {
        ctx.print_json(&report);
        return Ok(());
    }
    let (meta, summary) = (&report.base_backup, &report.summary);
    ctx.say(format!(
        "base backup {} of cluster {} saved: {} ({} new, {} stored), WAL {} to {} archived, in {:.1}s",
        report.short_id,
        meta.cluster,
        human(summary.total_bytes),
        human(summary.new_bytes),
        human(summary.stored_bytes),
        meta.start_wal,
        meta.end_wal,
        summary.duration_ms as f64 / 1000.0
    ));
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
    let repo = ctx.open()?;
    let request = PitrRequest {
        at: &args.at,
        cluster: args.cluster.as_deref(),
        target_dir: &args.target_dir,
        timeline: args.timeline,
        keep_archiving: args.archive,
        start: args.start.then(|| {
            let port = args.port.expect("clap requires --port with --start");
            (port, args.wait)
        }),
    };
    let restore_command =
        |cluster: &str| lifeboat_command(ctx, &format!("pg wal-fetch --cluster {cluster} %f %p"));
    let report = recovery::restore(&repo, &request, &restore_command, &Terminal::new(ctx))?;
    if ctx.global.json {
        ctx.print_json(&report);
        return Ok(());
    }
    ctx.say(format!(
        "restored base backup {} (cluster {}, ended {}) into {} in {:.1}s; \
         recovery replays archived WAL to {} on timeline {}",
        report.base_backup.short(),
        report.cluster,
        report
            .base_finished
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        report.target_dir.display(),
        report.restored_seconds,
        report.target,
        report.timeline
    ));
    if let Some(port) = report.port {
        ctx.say(format!(
            "PostgreSQL is up on 127.0.0.1:{port}, recovered and promoted, after {:.1}s",
            report.seconds
        ));
    } else {
        if ctx.global.password_file.is_none() {
            ctx.say("the server needs the repository passphrase to fetch WAL: start it with LIFEBOAT_PASSWORD_FILE (or LIFEBOAT_PASSWORD) in its environment");
        }
        ctx.say(format!(
            "start it with: pg_ctl -D {} start",
            report.target_dir.display()
        ));
    }
    Ok(())
}

/// Whether the server's user lacks access to a local repository.
fn access_problem(ctx: &Context, psql: &Psql) -> Option<String> {
    let Ok(lifeboat_storage::Location::Local(root)) =
        lifeboat_storage::Location::parse(ctx.repo_url().ok()?)
    else {
        return None;
    };
    let password_file = ctx
        .global
        .password_file
        .as_ref()
        .map(|f| std::path::absolute(f).unwrap_or(f.clone()));
    setup::access_problem(psql, &root, password_file.as_deref())
}

fn setup(ctx: &Context, args: &PgSetupArgs) -> Result<()> {
    let url = server_url(&args.url)?;
    let psql = Psql::new(&url)?;
    let archive_command = lifeboat_command(ctx, "pg wal-push %p")?;
    let access = access_problem(ctx, &psql);
    if let (Some(problem), true) = (&access, args.apply) {
        bail!("{problem}; nothing was changed");
    }
    let plan = setup::plan(&psql, &archive_command, args.rpo)
        .with_context(|| format!("reading the settings of {}", url.server()))?;
    if !args.apply {
        ctx.say(format!(
            "# postgresql.conf for {} (cluster {}):",
            url.server(),
            plan.cluster
        ));
        for (name, value) in &plan.settings {
            out!("{name} = {}", setup::quoted(value));
        }
        if ctx.global.password_file.is_none() {
            ctx.say("# the server needs the passphrase: give --password-file (readable by the postgres user) so archive_command names it");
        }
        if let Some(problem) = &access {
            ctx.say(format!("# warning: {problem}"));
        }
        ctx.say("# or run again with --apply (ALTER SYSTEM; needs a superuser)");
        if !plan.in_effect() {
            return Ok(());
        }
    } else {
        setup::apply(&psql, &plan)?;
        if plan.restart_needed {
            ctx.say(format!(
                "settings written; archive_mode and wal_level take effect after a restart of {}: \
                 restart it, then run `lifeboat pg setup` again to check archiving",
                url.server()
            ));
            return Ok(());
        }
    }
    let repo = ctx.open()?;
    let file = setup::check_archiving(&repo, &psql, &plan.cluster, Duration::from_secs(30))?;
    ctx.say(format!(
        "archiving works: WAL file {file} of cluster {} reached the repository",
        plan.cluster
    ));
    Ok(())
}
