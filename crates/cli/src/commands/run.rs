//! `lifeboat run --snapshot-before -- CMD...`: the safety net for risky changes such as
//! `npx prisma migrate deploy`. Each source gets a pinned snapshot first; if the command
//! fails, the one command that puts the data back is printed, ready to paste.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::args::{BackupArgs, RunArgs};
use crate::context::Context;
use crate::exit::WithCode;

pub fn run(ctx: &Context, args: &RunArgs) -> Result<()> {
    let sources: Vec<String> = if args.source.is_empty() {
        vec![std::env::var("DATABASE_URL").map_err(|_| {
            crate::exit::Usage(
                "give --source (a path or a database URL) or set DATABASE_URL".into(),
            )
        })?]
    } else {
        args.source.clone()
    };
    let mut rollbacks = Vec::new();
    for source in &sources {
        let backup = BackupArgs {
            paths: vec![PathBuf::from(source)],
            stdin_from_command: None,
            name: None,
            tags: vec!["before-run".to_string()],
            pin: true,
            force: false,
            skip_if_unchanged: false,
            select: Default::default(),
            dry_run: false,
            host: None,
            plan: None,
            file: crate::args::ConfigFileArgs {
                config: "lifeboat.toml".into(),
            },
        };
        let report = crate::commands::backup::take(ctx, &backup).with_context(|| {
            format!("no snapshot of {source} could be taken; the command was not run")
        })?;
        rollbacks.push(report.rollback.with_context(|| {
            format!("{source}: no command can put its snapshot back; the command was not run")
        })?);
    }
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let status = lifeboat_sources::child_env::user_command(program)
        .args(rest)
        .status()
        .with_context(|| format!("cannot run {program:?}"))?;
    if status.success() {
        ctx.say(format!(
            "{program} succeeded; the snapshot(s) taken before it stay pinned (tag before-run)"
        ));
        return Ok(());
    }
    let code = status.code().unwrap_or(1);
    eprintln!("{program} failed ({status}). To put the data back as it was just before it:");
    for rollback in &rollbacks {
        eprintln!("  {rollback}");
    }
    Err(WithCode {
        code,
        message: format!("{program} failed; nothing was rolled back"),
    }
    .into())
}
