//! `lifeboat plan`: the disaster-recovery runbook, written from lifeboat.toml and what the
//! repositories say (newest restore points, drill history). It names where every
//! credential is kept, never a secret itself, and flags the gaps.

use std::fmt::Write as _;

use anyhow::Result;
use chrono::{Duration, SecondsFormat, Utc};
use lifeboat_config::{format_duration, Config, Target};
use lifeboat_ops::protection;
use lifeboat_storage::Location;

mod recovery_steps;

use recovery_steps::write_recovery_steps;

use crate::args::RunbookArgs;
use crate::context::Context;

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
    let report = protection::assess(config, |t| ctx.open_target(t), Utc::now());
    let now = report.time;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Disaster-recovery runbook\n\nGenerated {} by lifeboat {} from `{origin}`. Regenerate it after every change: `lifeboat plan --output RUNBOOK.md`.\n",
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
        env!("CARGO_PKG_VERSION")
    );

    let _ = writeln!(out, "## What is protected where\n");
    let _ = writeln!(out, "| source | kind | copies (targets) | media | off-site | immutable | 3-2-1 |\n|---|---|---|---|---|---|---|");
    for copies in &report.sources {
        let immutable: Vec<String> = copies
            .immutable
            .iter()
            .map(|(target, how)| format!("{target}: {how}"))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} ({}) | {} | {} | {} | {} |",
            copies.source,
            copies.kind,
            copies.targets.len(),
            copies.targets.join(", "),
            copies.media.join(", "),
            if copies.offsite { "yes" } else { "**no**" },
            if immutable.is_empty() {
                "no".to_string()
            } else {
                format!("yes ({})", immutable.join("; "))
            },
            if copies.three_two_one {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    let append_only: Vec<&str> = report
        .targets
        .iter()
        .filter(|(_, facts)| facts.append_only)
        .map(|(t, _)| t.name.as_str())
        .collect();
    let locked: Vec<String> = report
        .targets
        .iter()
        .filter_map(|(t, facts)| {
            let lock = facts.object_lock?;
            Some(format!(
                "{} (S3 Object Lock, {} mode: each object undeletable for {} after it is written, renewed by prune while needed)",
                t.name,
                lock.mode,
                protection::lock_period(&lock)
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
    for row in &report.objectives {
        let newest = match (&row.unreachable, row.newest) {
            (Some(e), _) => format!("unknown ({e})"),
            (None, Some(t)) => format!(
                "{} ({} ago)",
                t.to_rfc3339_opts(SecondsFormat::Secs, true),
                human(now - t)
            ),
            (None, None) => "none".into(),
        };
        let (last, rto) = match &row.last_drill {
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
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {newest} | {} | {last} | {rto} |",
            row.plan,
            row.source,
            row.target,
            row.rpo.map(format_duration).unwrap_or_else(|| "—".into()),
            row.rto.map(format_duration).unwrap_or_else(|| "—".into()),
        );
    }
    let gaps = &report.gaps;

    let _ = writeln!(out, "\n## Gaps\n");
    if gaps.is_empty() {
        let _ = writeln!(out, "None found.");
    }
    for gap in gaps {
        let _ = writeln!(out, "- {gap}");
    }

    let _ = writeln!(out, "\n## What to do when\n");
    let pitr: Vec<recovery_steps::Pitr> = report
        .targets
        .iter()
        .flat_map(|(target, facts)| {
            facts
                .pg_bases
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
