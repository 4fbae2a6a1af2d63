//! `lifeboat mount DIR`: the read-only FUSE view of crates/mount, until Ctrl-C or SIGTERM.

use anyhow::{ensure, Context as _, Result};

use crate::args::MountArgs;
use crate::context::Context;

pub fn run(ctx: &Context, args: &MountArgs) -> Result<()> {
    ensure!(
        std::path::Path::new("/dev/fuse").exists(),
        "this machine has no FUSE (/dev/fuse is missing): restore instead (`lifeboat restore`, `lifeboat dump`)"
    );
    let empty = std::fs::read_dir(&args.dir)
        .with_context(|| format!("cannot mount on {}", args.dir.display()))?
        .next()
        .is_none();
    ensure!(
        empty,
        "{} is not empty; mount on an empty directory",
        args.dir.display()
    );
    let repo = ctx.open()?;
    let fs = lifeboat_mount::SnapshotFs::new(repo)?;
    ctx.say(format!(
        "snapshots mounted read-only at {}/snapshots; Ctrl-C (or SIGTERM) unmounts",
        args.dir.display()
    ));
    lifeboat_mount::serve(fs, &args.dir)
        .with_context(|| format!("cannot mount on {}", args.dir.display()))
}
