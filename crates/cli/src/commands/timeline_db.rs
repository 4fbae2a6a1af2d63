//! `lifeboat timeline postgres://... | mysql://...`: the restore points of a database
//! server: its logical dumps, and (PostgreSQL) the window that base backups and the WAL
//! archive cover.

use anyhow::Result;
use chrono::SecondsFormat;
use lifeboat_repo::snapshot::SnapshotSource;
use lifeboat_repo::Repository;
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::postgres::recovery::base_backups;
use lifeboat_sources::postgres::wal::archive_reach;
use serde_json::json;

use crate::context::Context;

pub fn run(ctx: &Context, repo: &Repository, url: &DatabaseUrl) -> Result<()> {
    let snapshots = repo.list_snapshots()?;
    let server = url.server();
    let database = url.database();
    let time = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);

    let dumps: Vec<serde_json::Value> = snapshots
        .iter()
        .filter_map(|s| match &s.snapshot.source {
            SnapshotSource::Database(d) if d.server == server => {
                let names: Vec<&str> = d.databases.iter().map(|db| db.name.as_str()).collect();
                let holds = database.as_deref().is_none_or(|want| names.contains(&want));
                holds.then(|| json!({"time": time(&s.snapshot.time), "snapshot": s.id, "databases": names}))
            }
            _ => None,
        })
        .collect();

    let mut clusters: Vec<serde_json::Value> = Vec::new();
    let bases: Vec<_> = base_backups(&snapshots, None)
        .into_iter()
        .filter(|(_, meta)| meta.server == server)
        .collect();
    let mut ids: Vec<&str> = bases.iter().map(|(_, m)| m.cluster.as_str()).collect();
    ids.dedup();
    for cluster in ids {
        let archived = repo.list_wal(cluster)?;
        let mut entries = Vec::new();
        for (snapshot, meta) in bases.iter().filter(|(_, m)| m.cluster == cluster) {
            let reach = archive_reach(&archived, &meta.start_wal, meta.wal_segment_size);
            entries.push(json!({
                "snapshot": snapshot.id,
                "finished": time(&meta.finished),
                "timeline": meta.timeline,
                "start_wal": meta.start_wal,
                "end_wal": meta.end_wal,
                "wal_reaches": reach.as_ref().map(|r| r.last.clone()),
                "wal_gap": reach.as_ref().and_then(|r| r.gap.clone()),
            }));
        }
        // The archive's end as a time: the last archived commit after the newest base
        // backup the archive reaches from (pg_waldump reads it; without it, only names).
        let end = bases
            .iter()
            .rev()
            .filter(|(_, m)| m.cluster == cluster)
            .find_map(|(_, meta)| {
                let reach = archive_reach(&archived, &meta.start_wal, meta.wal_segment_size)?;
                match lifeboat_sources::postgres::archive_end::archive_end(repo, meta, &reach) {
                    Ok(end) => end,
                    Err(e) => {
                        tracing::warn!("cannot read the archive's last commit time: {e}");
                        None
                    }
                }
            });
        clusters.push(json!({
            "cluster": cluster,
            "archived_files": archived.len(),
            "from": entries.first().map(|e| e["finished"].clone()),
            "to_wal": entries.iter().filter_map(|e| e["wal_reaches"].as_str()).max(),
            "to": end.as_ref().map(|e| time(&e.last_commit)),
            "base_backups": entries,
        }));
    }

    if ctx.global.json {
        ctx.print_json(&json!({
            "source": url.redacted(),
            "dumps": dumps,
            "clusters": clusters,
        }));
        return Ok(());
    }
    if dumps.is_empty() && clusters.is_empty() {
        anyhow::bail!("no restore point of {} in this repository", url.redacted());
    }
    ctx.say(format!("{}:", url.redacted()));
    if !dumps.is_empty() {
        ctx.say(format!(
            "  {} logical dump(s) (restore one with `lifeboat restore SNAPSHOT --into URL`):",
            dumps.len()
        ));
        for dump in &dumps {
            ctx.say(format!(
                "    {}  snapshot {}",
                dump["time"].as_str().unwrap_or_default(),
                &dump["snapshot"].as_str().unwrap_or_default()[..8]
            ));
        }
    }
    for cluster in &clusters {
        let to = match cluster["to"].as_str() {
            Some(last_commit) => format!(
                "up to (not including) the last archived commit at {last_commit}, or all of it with --at latest; WAL up to {}",
                cluster["to_wal"].as_str().unwrap_or("-")
            ),
            None => format!(
                "to the end of WAL file {}",
                cluster["to_wal"].as_str().unwrap_or("-")
            ),
        };
        ctx.say(format!(
            "  cluster {}: point-in-time recovery from {} {to} ({} files archived; `lifeboat pg restore --at TIME`)",
            cluster["cluster"].as_str().unwrap_or_default(),
            cluster["from"].as_str().unwrap_or("-"),
            cluster["archived_files"]
        ));
        for base in cluster["base_backups"].as_array().into_iter().flatten() {
            let gap = match base["wal_gap"].as_str() {
                Some(missing) => format!("; GAP: {missing} is missing, recovery stops before it"),
                None => String::new(),
            };
            ctx.say(format!(
                "    base backup {} finished {} (WAL {} .. {}), archive reaches {}{gap}",
                &base["snapshot"].as_str().unwrap_or_default()[..8],
                base["finished"].as_str().unwrap_or_default(),
                base["start_wal"].as_str().unwrap_or_default(),
                base["end_wal"].as_str().unwrap_or_default(),
                base["wal_reaches"]
                    .as_str()
                    .unwrap_or("nothing: its first WAL file is missing"),
            ));
        }
    }
    Ok(())
}
