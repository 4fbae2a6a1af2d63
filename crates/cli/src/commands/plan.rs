//! `lifeboat plan`: the disaster-recovery runbook, written from lifeboat.toml and what the
//! repositories say (newest restore points, drill history). It names where every
//! credential is kept, never a secret itself, and flags the gaps.

use std::fmt::Write as _;

use anyhow::Result;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use lifeboat_config::{format_duration, Config, Target};
use lifeboat_storage::Location;

mod recovery_steps;

use recovery_steps::write_recovery_steps;

use crate::args::RunbookArgs;
use crate::context::Context;
use lifeboat_ops::source_kind::SourceKind;
use lifeboat_ops::DrillReport;

/// What one target is, for the 3-2-1 picture.
struct Medium {
    kind: &'static str,
    offsite: bool,
}

fn medium(target: &Target) -> Medium {
    match Location::parse(&target.url) {
        Ok(Location::Local(path)) => Medium {
            // A mount under /mnt or /media is usually another disk; still on this host.
            kind: if path.starts_with("/mnt") || path.starts_with("/media") {
                "disk (mounted)"
            } else {
                "local disk"
            },
            offsite: false,
        },
        Ok(Location::Service { scheme, .. }) => Medium {
            kind: match scheme.as_str() {
                "s3" => "S3 object storage",
                "gcs" => "Google Cloud Storage",
                "azblob" => "Azure Blob Storage",
                _ => "object storage",
            },
            offsite: true,
        },
        Ok(Location::Server { authority, .. }) => Medium {
            kind: "Lifeboat server",
            // On this very host it is no further away than a local disk.
            offsite: !["localhost:", "127.", "[::1]:"]
                .iter()
                .any(|local| authority.starts_with(local)),
        },
        Err(_) => Medium {
            kind: "unknown",
            offsite: false,
        },
    }
}

fn password_place(target: &Target) -> String {
    match (&target.password, &target.password_file) {
        (_, Some(file)) => format!("the file `{}`", file.display()),
        (Some(_), None) => {
            "`password` in lifeboat.toml (usually `${VAR}` from the agent's environment)".into()
        }
        (None, None) => {
            "`LIFEBOAT_PASSWORD` (or `LIFEBOAT_PASSWORD_FILE`) in the agent's environment".into()
        }
    }
}

/// Facts read from one target's repository.
#[derive(Default)]
struct Observed {
    reachable: Option<String>,
    /// Whether the credentials this host uses cannot delete or overwrite what is stored:
    /// a `lifeboat serve` token of role append (the server said so).
    append_only: bool,
    /// S3 Object Lock as this host's writes apply it: nobody can delete a locked object.
    object_lock: Option<lifeboat_storage::LockPolicy>,
    newest: std::collections::HashMap<String, DateTime<Utc>>,
    drills: Vec<DrillReport>,
    /// PostgreSQL base backups held: (server, major version), one per server.
    pg_bases: Vec<(String, u32)>,
}

fn observe(ctx: &Context, target: &Target) -> Observed {
    let repo = match ctx.open_target(target) {
        Ok(repo) => repo,
        Err(e) => {
            return Observed {
                reachable: Some(crate::exit::one_line(&e)),
                ..Default::default()
            }
        }
    };
    let mut observed = Observed {
        append_only: matches!(
            repo.server_access(),
            Ok(Some(access)) if access.role == "append"
        ),
        object_lock: repo.object_lock(),
        ..Default::default()
    };
    if let Ok(snapshots) = repo.list_snapshots() {
        for s in &snapshots {
            if let lifeboat_repo::snapshot::SnapshotSource::PgBase(meta) = &s.snapshot.source {
                observed
                    .pg_bases
                    .retain(|(server, _)| server != &meta.server);
                observed.pg_bases.push((meta.server.clone(), meta.version));
            }
        }
        for s in snapshots {
            for tag in &s.snapshot.tags {
                if let Some(source) = lifeboat_ops::tags::source_of_tag(tag) {
                    let entry = observed
                        .newest
                        .entry(source.to_string())
                        .or_insert(s.snapshot.time);
                    *entry = (*entry).max(s.snapshot.time);
                }
            }
        }
    }
    if let Ok(records) = repo.drill_records::<DrillReport>() {
        observed.drills = records;
    }
    observed.drills.sort_by_key(|d| d.time);
    observed
}

pub fn run(ctx: &Context, args: &RunbookArgs) -> Result<()> {
    let config = super::config::load_repositories(&args.file.config)?;
    let markdown = runbook(ctx, &config, &args.file.config.display().to_string());
    let text = match args.format.as_str() {
        "md" | "markdown" => markdown,
        "html" => html(&markdown),
        other => {
            return Err(crate::exit::Usage(format!("--format is md or html, not {other:?}")).into())
        }
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text)?;
            ctx.say(format!("wrote {}", path.display()));
        }
        None => out!("{}", text.strip_suffix('\n').unwrap_or(&text)),
    }
    Ok(())
}

fn runbook(ctx: &Context, config: &Config, origin: &str) -> String {
    // Commands name the file by its absolute path: `recover` puts it back there on a new
    // host, so they run as printed from any directory.
    let absolute = std::path::absolute(origin)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| origin.to_string());
    let origin = absolute.as_str();
    let now = Utc::now();
    let observed: Vec<(&Target, Observed)> = config
        .targets
        .iter()
        .map(|t| (t, observe(ctx, t)))
        .collect();
    let mut out = String::new();
    let mut gaps: Vec<String> = Vec::new();
    let _ = writeln!(
        out,
        "# Disaster-recovery runbook\n\nGenerated {} by lifeboat {} from `{origin}`. Regenerate it after every change: `lifeboat plan --output RUNBOOK.md`.\n",
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
        env!("CARGO_PKG_VERSION")
    );

    let _ = writeln!(out, "## What is protected where\n");
    let _ = writeln!(out, "| source | kind | copies (targets) | media | off-site | immutable | 3-2-1 |\n|---|---|---|---|---|---|---|");
    for source in &config.sources {
        let targets: Vec<&Target> = config
            .plans
            .iter()
            .filter(|p| p.sources.contains(&source.name))
            .flat_map(|p| p.targets.iter())
            .filter_map(|t| config.target(t))
            .collect::<Vec<_>>();
        let mut media: Vec<&str> = targets.iter().map(|t| medium(t).kind).collect();
        media.sort();
        media.dedup();
        let offsite = targets.iter().any(|t| medium(t).offsite);
        // The live data is one copy; each target another.
        let ok = targets.len() + 1 >= 3 && media.len() + 1 >= 2 && offsite;
        let kind = SourceKind::of(&source.location).describe();
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        // Immutable only where it is: this host's credentials cannot delete that copy.
        let immutable: Vec<String> = targets
            .iter()
            .filter_map(|t| immutability(&observed, t).map(|how| format!("{}: {how}", t.name)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {kind} | {} ({}) | {} | {} | {} | {} |",
            source.name,
            targets.len(),
            names.join(", "),
            media.join(", "),
            if offsite { "yes" } else { "**no**" },
            if immutable.is_empty() {
                "no".to_string()
            } else {
                format!("yes ({})", immutable.join("; "))
            },
            if ok { "yes" } else { "**no**" }
        );
        if targets.is_empty() {
            gaps.push(format!(
                "source **{}** is in no plan: nothing backs it up",
                source.name
            ));
        } else if !offsite {
            gaps.push(format!(
                "source **{}** has no off-site copy (every target is on this host's disks)",
                source.name
            ));
        }
    }
    let append_only: Vec<&str> = observed
        .iter()
        .filter(|(_, seen)| seen.append_only)
        .map(|(t, _)| t.name.as_str())
        .collect();
    let locked: Vec<String> = observed
        .iter()
        .filter_map(|(t, seen)| {
            let lock = seen.object_lock?;
            Some(format!(
                "{} (S3 Object Lock, {} mode: each object undeletable for {} after it is written, renewed by prune while needed)",
                t.name,
                lock.mode,
                super::init::lock_period(&lock)
            ))
        })
        .collect();
    if !locked.is_empty() {
        let _ = writeln!(out, "\nLocked: {}.\n", locked.join("; "));
    }
    if append_only.is_empty() && locked.is_empty() {
        let _ = writeln!(out, "\nNo target is immutable: ransomware with this host's repository credentials could delete backups. Put an off-site copy behind `lifeboat serve` with an append-only token for this host (README, \"Giving an app host append-only access\"), or on S3 with object lock (`lifeboat init --object-lock 30d`).\n");
    } else if !append_only.is_empty() {
        let _ = writeln!(out, "\nImmutable from this host: {} (`lifeboat serve` with an append-only token: this host can add backups but not delete or change them). Other targets are not.\n", append_only.join(", "));
    }

    let _ = writeln!(out, "## Objectives and what was measured\n");
    let _ = writeln!(out, "| plan | source | target | RPO objective | newest restore point | RTO objective | last drill | measured RTO |\n|---|---|---|---|---|---|---|---|");
    for plan in &config.plans {
        for source in &plan.sources {
            for (target, seen) in observed
                .iter()
                .filter(|(t, _)| plan.targets.contains(&t.name))
            {
                let newest = match (&seen.reachable, seen.newest.get(source)) {
                    (Some(e), _) => format!("unknown ({e})"),
                    (None, Some(t)) => {
                        let age = now - *t;
                        if plan
                            .rpo
                            .is_some_and(|rpo| age.to_std().unwrap_or_default() > rpo)
                        {
                            gaps.push(format!(
                                "{source} on {}: the newest restore point is older than the RPO",
                                target.name
                            ));
                        }
                        format!(
                            "{} ({} ago)",
                            t.to_rfc3339_opts(SecondsFormat::Secs, true),
                            human(age)
                        )
                    }
                    (None, None) => "none".into(),
                };
                let drill = seen.drills.iter().rev().find(|d| &d.source == source);
                let (last, rto) = match drill {
                    Some(d) => (
                        format!(
                            "{} {}",
                            d.time.to_rfc3339_opts(SecondsFormat::Secs, true),
                            if d.passed { "passed" } else { "**failed**" }
                        ),
                        format!("{:.1}s", d.rto_seconds),
                    ),
                    None => ("never".into(), "—".into()),
                };
                if drill.is_none_or(|d| now - d.time > Duration::days(30)) {
                    gaps.push(format!(
                        "{source} on {}: no drill in the last 30 days",
                        target.name
                    ));
                }
                if let (Some(d), Some(objective)) = (drill, plan.rto) {
                    if d.rto_seconds > objective.as_secs_f64() {
                        gaps.push(format!(
                            "{source} on {}: the measured RTO exceeds the objective",
                            target.name
                        ));
                    }
                }
                let _ = writeln!(
                    out,
                    "| {} | {source} | {} | {} | {newest} | {} | {last} | {rto} |",
                    plan.name,
                    target.name,
                    plan.rpo.map(format_duration).unwrap_or_else(|| "—".into()),
                    plan.rto.map(format_duration).unwrap_or_else(|| "—".into()),
                );
            }
        }
    }

    let _ = writeln!(out, "\n## Gaps\n");
    if gaps.is_empty() {
        let _ = writeln!(out, "None found.");
    }
    for gap in &gaps {
        let _ = writeln!(out, "- {gap}");
    }

    let _ = writeln!(out, "\n## What to do when\n");
    let pitr: Vec<recovery_steps::Pitr> = observed
        .iter()
        .flat_map(|(target, o)| {
            o.pg_bases
                .iter()
                .map(|(server, version)| recovery_steps::Pitr {
                    server: server.clone(),
                    version: *version,
                    target,
                })
        })
        .collect();
    write_recovery_steps(&mut out, config, origin, &pitr);
    let _ = writeln!(out, "## Keys and credentials someone will need\n\nKeep copies of each away from the app host (a password manager, a sealed envelope); a repository cannot be opened without its passphrase.\n");
    let _ = writeln!(
        out,
        "| target | where | passphrase comes from | storage credentials |\n|---|---|---|---|"
    );
    for target in &config.targets {
        let creds = match Location::parse(&target.url) {
            Ok(Location::Service { scheme, .. }) if scheme == "s3" => "`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and `AWS_ENDPOINT_URL`, `AWS_REGION`) in the agent's environment",
            Ok(Location::Service { .. }) => "the OpenDAL credentials of the service in the agent's environment",
            Ok(Location::Server { .. }) => "`LIFEBOAT_SERVER_TOKEN` (and `LIFEBOAT_SERVER_FINGERPRINT`) in the agent's environment; the tokens are managed on the server (`lifeboat serve token`)",
            _ => "file permissions on this host",
        };
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {creds} |",
            target.name,
            Location::parse(&target.url)
                .map(|l| l.display())
                .unwrap_or_else(|_| "(unparsable)".into()),
            password_place(target)
        );
    }
    out
}

/// Where the runbook restores a database to check it: the same server, the database
/// name with `_restored` appended (through the URL parser, so a query string stays a
/// query string), without secrets and quoted for the shell.
fn restored_copy(url: &str) -> String {
    let copy = match lifeboat_sources::database_url::DatabaseUrl::parse(url) {
        Some(Ok(parsed)) => {
            let name = parsed.database().unwrap_or_else(|| "NAME".into());
            parsed.with_database(&format!("{name}_restored")).redacted()
        }
        _ => lifeboat_sources::database_url::redact_text(url),
    };
    crate::commands::shell_word(&copy)
}

fn human(age: Duration) -> String {
    let s = age.num_seconds().max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// HTML for the Markdown this module writes (headings, paragraphs, lists, tables, code
/// blocks, inline code and bold), so the runbook can be opened in a browser or printed.
fn html(markdown: &str) -> String {
    let escape = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let inline = |t: &str| {
        let mut out = String::new();
        for (i, part) in escape(t).split('`').enumerate() {
            if i % 2 == 1 {
                let _ = write!(out, "<code>{part}</code>");
            } else {
                for (j, piece) in part.split("**").enumerate() {
                    if j % 2 == 1 {
                        let _ = write!(out, "<strong>{piece}</strong>");
                    } else {
                        out.push_str(piece);
                    }
                }
            }
        }
        out
    };
    let mut out = String::from("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Disaster-recovery runbook</title>\n<meta name=\"viewport\" content=\"width=device-width\">\n<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em}td code{overflow-wrap:anywhere}pre{background:#f4f4f4;padding:.5em;white-space:pre-wrap;overflow-wrap:anywhere}</style></head><body>\n");
    let mut lines = markdown.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(code) = line.strip_prefix("```") {
            let _ = code;
            out.push_str("<pre><code>");
            for code_line in lines.by_ref() {
                if code_line.starts_with("```") {
                    break;
                }
                out.push_str(&escape(code_line));
                out.push('\n');
            }
            out.push_str("</code></pre>\n");
        } else if let Some(h) = line.strip_prefix("### ") {
            let _ = writeln!(out, "<h3>{}</h3>", inline(h));
        } else if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(out, "<h2>{}</h2>", inline(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(out, "<h1>{}</h1>", inline(h));
        } else if line.starts_with('|') {
            out.push_str("<table>\n");
            let cells = |l: &str| -> Vec<String> {
                l.trim()
                    .trim_matches('|')
                    .split(" | ")
                    .map(|c| inline(c.trim()))
                    .collect()
            };
            let _ = writeln!(
                out,
                "<tr>{}</tr>",
                cells(line)
                    .iter()
                    .map(|c| format!("<th>{c}</th>"))
                    .collect::<String>()
            );
            while let Some(row) = lines.peek().copied().filter(|l| l.starts_with('|')) {
                lines.next();
                if row.starts_with("|---") {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "<tr>{}</tr>",
                    cells(row)
                        .iter()
                        .map(|c| format!("<td>{c}</td>"))
                        .collect::<String>()
                );
            }
            out.push_str("</table>\n");
        } else if let Some(item) = line.strip_prefix("- ") {
            let _ = writeln!(out, "<ul><li>{}</li></ul>", inline(item));
        } else if !line.trim().is_empty() {
            let _ = writeln!(out, "<p>{}</p>", inline(line));
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// How `target` is immutable from this host, if it is: an append-only token (see
/// [`Observed::append_only`]) or S3 Object Lock.
fn immutability(observed: &[(&Target, Observed)], target: &Target) -> Option<String> {
    let (_, seen) = observed.iter().find(|(t, _)| t.name == target.name)?;
    if seen.append_only {
        return Some("append-only token".into());
    }
    let lock = seen.object_lock?;
    Some(format!(
        "object lock {} {}",
        super::init::lock_period(&lock),
        lock.mode
    ))
}
