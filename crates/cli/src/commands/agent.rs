//! `lifeboat agent`: load and check the configuration, then hand over to the agent crate.

use anyhow::{Context as _, Result};
use lifeboat_agent::AgentOptions;

use crate::args::AgentArgs;
use crate::context::Context;

pub fn run(_ctx: &Context, args: &AgentArgs) -> Result<()> {
    let config = super::config::load(&args.file.config)?;
    let config_path = std::fs::canonicalize(&args.file.config)
        .with_context(|| format!("cannot resolve {}", args.file.config.display()))?;
    let exe = std::env::current_exe().context("cannot find the lifeboat binary")?;
    lifeboat_agent::run(
        config,
        AgentOptions {
            config_path,
            exe,
            check_every: args.check_every,
        },
    )
}
