//! One module per command, as Litestream keeps one file per command.

mod agent;
mod backup;
mod compare;
mod config;
mod copy;
mod docs;
mod drill;
mod dump;
mod find;
mod forget;
mod init;
mod key;
mod ls;
mod mount;
mod mysql;
mod pg;
mod plan;
mod prune;
mod recover;
mod repair;
mod replicate;
mod request;
mod restore;
mod rows;
mod run;
mod serve;
mod snapshots;
mod stats;
mod status;
mod subject;
mod tag;
mod timeline;
mod timeline_db;
mod unlock;
mod verify;

use anyhow::Result;

pub(crate) use lifeboat_ops::shell_word;

use crate::args::{Cli, Command};
use crate::context::Context;

pub fn run(cli: Cli) -> Result<()> {
    let ctx = Context {
        global: &cli.global,
    };
    match &cli.command {
        Command::Init(args) => init::run(&ctx, args),
        Command::Backup(args) => backup::run(&ctx, args),
        Command::Snapshots(args) => snapshots::run(&ctx, args),
        Command::Ls(args) => ls::run(&ctx, args),
        Command::Restore(args) => restore::run(&ctx, args),
        Command::Replicate(args) => replicate::run(&ctx, args),
        Command::Timeline(args) => timeline::run(&ctx, args),
        Command::Request(args) => request::run(&ctx, args),
        Command::Verify(args) => verify::run(&ctx, args),
        Command::Key(args) => key::run(&ctx, args),
        Command::Pg(args) => pg::run(&ctx, args),
        Command::Mysql(args) => mysql::run(&ctx, args),
        Command::Run(args) => run::run(&ctx, args),
        Command::Forget(args) => forget::run(&ctx, args),
        Command::Prune(args) => prune::run(&ctx, args),
        Command::Config(args) => config::run(&ctx, args),
        Command::Copy(args) => copy::run(&ctx, args),
        Command::Drill(args) => drill::run(&ctx, args),
        Command::Recover(args) => recover::run(&ctx, args),
        Command::Plan(args) => plan::run(&ctx, args),
        Command::Diff(args) => rows::diff(&ctx, args),
        Command::RestoreRows(args) => rows::restore_rows(&ctx, args),
        Command::Repair(args) => repair::run(&ctx, args),
        Command::Status(args) => status::run(&ctx, args),
        Command::Agent(args) => agent::run(&ctx, args),
        Command::Serve(args) => serve::run(&ctx, args),
        Command::Dump(args) => dump::run(&ctx, args),
        Command::Tag(args) => tag::run(&ctx, args),
        Command::Find(args) => find::run(&ctx, args),
        Command::Compare(args) => compare::run(&ctx, args),
        Command::Mount(args) => mount::run(&ctx, args),
        Command::Stats(args) => stats::run(&ctx, args),
        Command::Unlock(args) => unlock::run(&ctx, args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}
