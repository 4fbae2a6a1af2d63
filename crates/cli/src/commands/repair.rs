//! `lifeboat repair`: damaged or missing packs put right. With `--from A`: their blobs
//! stored again from A's copy of each affected snapshot. Without: their intact blobs
//! stored again and the rest dropped, so that the next backup of the sources stores it
//! again (restic's `repair packs`); the snapshots still missing data are named.

use anyhow::Result;

use crate::args::RepairArgs;
use crate::context::Context;

pub fn run(ctx: &Context, args: &RepairArgs) -> Result<()> {
    let damaged = match &args.to {
        Some(to) => super::copy::open(ctx, &args.file.config, to, false)?,
        None => ctx.open()?,
    };
    ctx.require_admin(&damaged, "repair")?;
    let report = match &args.from {
        Some(from) => {
            let from = super::copy::open(ctx, &args.file.config, from, true)?;
            if from.config().id == damaged.config().id {
                return Err(crate::exit::Usage(
                    "--from and the repository to repair are the same".into(),
                )
                .into());
            }
            lifeboat_repo::repair::repair(&damaged, &from)?
        }
        None => lifeboat_repo::repair::repair_in_place(&damaged)?,
    };
    if ctx.global.json {
        ctx.print_json(&serde_json::to_value(&report)?);
    } else {
        for pack in &report.dropped_packs {
            ctx.say(format!("dropped damaged pack {pack}"));
        }
        if args.from.is_none() {
            ctx.say(format!(
                "{} blob(s) of damaged packs stored again, {} could not be read",
                report.salvaged_blobs, report.lost_blobs
            ));
        }
        for snapshot in &report.repaired_snapshots {
            ctx.say(format!("snapshot {snapshot}: repaired"));
        }
        for (snapshot, why) in &report.unrepairable {
            ctx.say(format!("snapshot {snapshot}: NOT repaired: {why}"));
        }
        for problem in &report.other_problems {
            ctx.say(format!("not repaired (not a pack): {problem}"));
        }
    }
    if !report.unrepairable.is_empty() || !report.other_problems.is_empty() {
        anyhow::bail!(
            "{} snapshot(s) and {} other problem(s) could not be repaired",
            report.unrepairable.len(),
            report.other_problems.len()
        );
    }
    if !ctx.global.json {
        ctx.say("repaired");
    }
    Ok(())
}
