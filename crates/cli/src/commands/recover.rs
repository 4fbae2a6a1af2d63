//! `lifeboat recover`: rebuild a lost host from its repository. The configuration is a
//! restore point too (the agent keeps `lifeboat.toml` in every target, tagged
//! `lifeboat:config`), so a new machine needs only the repository URL and its
//! passphrase: recover lists what the repository protects and where each source goes,
//! and with `--apply` restores every source of the plans to its place (or under
//! `--root`), checks each, and says what to start next.
//!
//! Nothing that exists is overwritten: each file or directory is restored beside its
//! destination and renamed into place, so a destination holds the whole restore or
//! nothing. Without `--apply` nothing is written: a configuration read from a repository
//! decides where files go, and someone should see that before it happens.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_config::{Config, Needs, SourceLocation};
use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::snapshot::{SnapshotSource, StoredSnapshot};
use lifeboat_repo::tree::escape_path;
use lifeboat_repo::Repository;
use lifeboat_sources::database_url::DatabaseUrl;
use lifeboat_sources::timeline;
use serde_json::json;

use crate::args::RecoverArgs;
use crate::context::Context;
use lifeboat_ops::tags::source_tag;

pub fn run(ctx: &Context, args: &RecoverArgs) -> Result<()> {
    let at = timeline::parse_time(&args.at, Utc::now())?;
    let found = find_config(ctx, args, at)?;
    let config = &found.config;
    let plans: Vec<&lifeboat_config::Plan> = match &args.plan {
        Some(name) => vec![config.plan(name).with_context(|| {
            format!(
                "no plan {name} in the configuration (its plans: {})",
                config
                    .plans
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?],
        None => config.plans.iter().collect(),
    };
    let mut repos: Vec<(String, Repository)> = Vec::new();
    let mut steps = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for plan in &plans {
        let (target, repo) = match &found.repo {
            Some(repo) => ("--repo".to_string(), repo.clone()),
            None => open_plan_repository(ctx, config, plan, args.from.as_deref())?,
        };
        if !repos.iter().any(|(name, _)| name == &target) {
            repos.push((target.clone(), repo.clone()));
        }
        for name in &plan.sources {
            if !seen.insert(name.clone()) {
                continue;
            }
            let source = config.source(name).expect("plans name existing sources");
            steps.push(Step::plan(
                &repo,
                &target,
                source,
                args.root.as_deref(),
                at,
            )?);
        }
    }

    ctx.say(describe_config(&found));
    for step in &steps {
        ctx.say(step.describe());
    }
    if !args.apply {
        if ctx.global.json {
            ctx.print_json(&json!({
                "configuration": found.shown(),
                "sources": steps.iter().map(Step::to_json).collect::<Vec<_>>(),
                "applied": false,
            }));
        }
        ctx.say("nothing written; add --apply to restore the above");
        return Ok(());
    }

    if let (Some(text), Some(original)) = (&found.text, &found.original) {
        let place = destination(args.root.as_deref(), original);
        match place_config(text, &place) {
            Ok(true) => ctx.say(format!("configuration restored to {}", escape_path(&place))),
            Ok(false) => ctx.say(format!(
                "configuration: {} exists; left as it is",
                escape_path(&place)
            )),
            Err(e) => ctx.say(format!(
                "configuration: cannot write {}: {e}",
                escape_path(&place)
            )),
        }
    }
    let mut failures = Vec::new();
    let mut results = Vec::new();
    for step in &steps {
        let outcome = step.apply();
        match &outcome {
            Ok(done) => ctx.say(format!("{}: {done}", step.name)),
            Err(e) => {
                let line = crate::exit::one_line(e);
                ctx.say(format!("{}: FAILED: {line}", step.name));
                failures.push(format!("{}: {line}", step.name));
            }
        }
        results.push(json!({
            "source": step.name,
            "ok": outcome.is_ok(),
            "detail": match &outcome { Ok(d) => d.clone(), Err(e) => crate::exit::one_line(e) },
        }));
    }
    let next = next_steps(config, &found, &plans, args.root.as_deref());
    if ctx.global.json {
        ctx.print_json(&json!({
            "configuration": found.shown(),
            "sources": steps.iter().map(Step::to_json).collect::<Vec<_>>(),
            "applied": true,
            "results": results,
            "next": next,
        }));
    } else {
        ctx.say("next:");
        for line in &next {
            ctx.say(format!("  {line}"));
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} source(s) not recovered: {}",
            failures.len(),
            steps.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

/// The configuration being recovered, and where it came from.
struct FoundConfig {
    config: Config,
    /// The file given on the command line.
    file: Option<PathBuf>,
    /// Read from the repository: its text, the path it had on the lost host, the
    /// snapshot holding it.
    text: Option<String>,
    original: Option<PathBuf>,
    stored: Option<StoredSnapshot>,
    /// The repository of `--repo`, which every source is read from when given.
    repo: Option<Repository>,
}

impl FoundConfig {
    fn shown(&self) -> serde_json::Value {
        json!({
            "file": self.file.as_ref().map(|f| f.display().to_string()),
            "original_path": self.original.as_ref().map(|f| f.display().to_string()),
            "snapshot": self.stored.as_ref().map(|s| s.id.to_hex()),
            "stored": self.stored.as_ref().map(|s| s.snapshot.time.to_rfc3339_opts(SecondsFormat::Secs, true)),
            "host": self.stored.as_ref().map(|s| s.snapshot.host.clone()),
        })
    }
}

/// The file given (`--config`, `LIFEBOAT_CONFIG`, `./lifeboat.toml`) if there is one,
/// else the newest configuration the agent stored in `--repo` at or before `at`.
fn find_config(ctx: &Context, args: &RecoverArgs, at: DateTime<Utc>) -> Result<FoundConfig> {
    let given_repo = match &ctx.global.repo {
        Some(_) => Some(ctx.open()?),
        None => None,
    };
    if args.file.config.is_file() {
        return Ok(FoundConfig {
            config: super::config::load_repositories(&args.file.config)?,
            file: Some(args.file.config.clone()),
            text: None,
            original: None,
            stored: None,
            repo: given_repo,
        });
    }
    let Some(repo) = given_repo else {
        bail!(
            "there is no {} here and no repository was given: run `lifeboat recover --repo URL` (the URL of a target that survived; the runbook names them)",
            args.file.config.display()
        );
    };
    let tag = lifeboat_agent::CONFIG_TAG;
    let mut stored: Vec<StoredSnapshot> = repo
        .list_snapshots()?
        .into_iter()
        .filter(|s| s.snapshot.tags.iter().any(|t| t == tag))
        .collect();
    stored.sort_by_key(|s| s.snapshot.time);
    let newest_before = stored
        .iter()
        .rposition(|s| timeline::at_or_before(s.snapshot.time, at));
    let Some(chosen) = newest_before.or(stored.len().checked_sub(1)) else {
        bail!(
            "{} holds no configuration (the agent stores lifeboat.toml in each target when it starts); give the file with --config",
            repo.location()
        );
    };
    let chosen = stored.swap_remove(chosen);
    let original =
        PathBuf::from(chosen.snapshot.paths.first().with_context(|| {
            format!("configuration snapshot {} names no path", chosen.id.short())
        })?);
    let index = repo.load_index()?;
    let text = read_stored_file(&repo, &index, &chosen, &original)?;
    let config = Config::load_text(&text, &original, Needs::Repositories)
        .map_err(|errors| crate::exit::Usage(errors.to_string()))?;
    Ok(FoundConfig {
        config,
        file: None,
        text: Some(text),
        original: Some(original),
        stored: Some(chosen),
        repo: Some(repo),
    })
}

/// The text of the file `path` in `snapshot`, read through a private scratch directory.
fn read_stored_file(
    repo: &Repository,
    index: &MasterIndex,
    snapshot: &StoredSnapshot,
    path: &Path,
) -> Result<String> {
    let points = timeline::restore_points(repo, index, path)?;
    let point = points
        .iter()
        .find(|p| p.snapshot == snapshot.id && p.segment.is_none())
        .with_context(|| {
            format!(
                "snapshot {} does not hold {}",
                snapshot.id.short(),
                escape_path(path)
            )
        })?;
    let scratch = tempfile::tempdir()?;
    let file = scratch.path().join("lifeboat.toml");
    timeline::restore_point(
        repo,
        index,
        &points,
        point,
        &file,
        &lifeboat_sources::NoProgress,
    )?;
    std::fs::read_to_string(&file)
        .with_context(|| format!("the stored {} is not text", escape_path(path)))
}

fn describe_config(found: &FoundConfig) -> String {
    match (&found.file, &found.stored, &found.original) {
        (Some(file), _, _) => format!("configuration: {}", file.display()),
        (None, Some(stored), Some(original)) => format!(
            "configuration: {} as stored by host {} at {} (snapshot {})",
            escape_path(original),
            stored.snapshot.host,
            stored
                .snapshot
                .time
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            stored.id.short()
        ),
        _ => "configuration: unknown".into(),
    }
}

/// The first target of `plan` (or `from`) whose repository opens.
fn open_plan_repository(
    ctx: &Context,
    config: &Config,
    plan: &lifeboat_config::Plan,
    from: Option<&str>,
) -> Result<(String, Repository)> {
    let names: Vec<&str> = match from {
        Some(name) => vec![name],
        None => plan.targets.iter().map(String::as_str).collect(),
    };
    let mut problems = Vec::new();
    for name in names {
        let target = config
            .target(name)
            .with_context(|| format!("no target {name} in the configuration"))?;
        match ctx.open_target(target) {
            Ok(repo) => return Ok((name.to_string(), repo)),
            Err(e) => problems.push(format!("{name}: {}", crate::exit::one_line(&e))),
        }
    }
    bail!(
        "no target of plan {} can be read: {}",
        plan.name,
        problems.join("; ")
    )
}

/// Where `original` (an absolute path on the lost host) goes: itself, or under `root`.
fn destination(root: Option<&Path>, original: &Path) -> PathBuf {
    match root {
        Some(root) => root.join(original.strip_prefix("/").unwrap_or(original)),
        None => original.to_path_buf(),
    }
}

/// Writes the configuration to `place` unless something is there; `true` if written.
fn place_config(text: &str, place: &Path) -> std::io::Result<bool> {
    if std::fs::symlink_metadata(place).is_ok() {
        return Ok(false);
    }
    if let Some(parent) = place.parent() {
        std::fs::create_dir_all(parent)?;
    }
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_private()
        .open(place)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(true)
}

/// `OpenOptions` that create a file only its owner can read: the configuration names
/// where every credential lives.
trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for std::fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// One source: what will be restored, from where, to where.
struct Step {
    name: String,
    target: String,
    repo: Repository,
    action: Action,
    checks: Vec<String>,
}

enum Action {
    /// A SQLite database or a single file: its newest restore point (stream segments
    /// included) at or before the time.
    File {
        original: PathBuf,
        dest: PathBuf,
        point: Box<timeline::RestorePoint>,
        points: Vec<timeline::RestorePoint>,
    },
    /// A directory: the subtree of the newest snapshot holding it.
    Tree {
        original: PathBuf,
        dest: PathBuf,
        snapshot: Box<StoredSnapshot>,
        include: PathBuf,
    },
    /// A database server's logical dump, into the databases of the configured URL.
    Dump {
        url: String,
        snapshot: Box<StoredSnapshot>,
    },
    /// What recover does not do itself, with the command that does.
    Manual(String),
}

impl Step {
    fn plan(
        repo: &Repository,
        target: &str,
        source: &lifeboat_config::Source,
        root: Option<&Path>,
        at: DateTime<Utc>,
    ) -> Result<Step> {
        let step = |action| Step {
            name: source.name.clone(),
            target: target.to_string(),
            repo: repo.clone(),
            action,
            checks: source.checks.clone(),
        };
        let url = match &source.location {
            SourceLocation::Command(_) => {
                return Ok(step(Action::Manual(format!(
                    "a command's output: `lifeboat snapshots --tag {}`, then `lifeboat restore SNAPSHOT --to-command ...`",
                    source_tag(&source.name)
                ))))
            }
            SourceLocation::Url(url) => url,
        };
        let snapshots = repo.list_snapshots()?;
        if let Some(parsed) = DatabaseUrl::parse(url) {
            let parsed = parsed?;
            let tag = source_tag(&source.name);
            let dump = snapshots
                .into_iter()
                .filter(|s| timeline::at_or_before(s.snapshot.time, at))
                .filter(|s| matches!(&s.snapshot.source, SnapshotSource::Database(d) if d.server == parsed.server()))
                .filter(|s| s.snapshot.tags.contains(&tag) || parsed.database().is_none())
                .max_by_key(|s| s.snapshot.time);
            return Ok(step(match dump {
                Some(snapshot) => Action::Dump {
                    url: url.clone(),
                    snapshot: Box::new(snapshot),
                },
                None => Action::Manual(format!(
                    "no logical dump of {} at or before that time; for a PostgreSQL cluster with archived WAL: `lifeboat pg restore --at TIME --target-dir DIR` on the new server",
                    parsed.redacted()
                )),
            }));
        }
        let original = timeline::source_path(url)?;
        let dest = destination(root, &original);
        let index = repo.load_index()?;
        let points: Vec<_> = timeline::restore_points(repo, &index, &original)?;
        if let Some(point) = points
            .iter()
            .rev()
            .find(|p| timeline::at_or_before(p.time, at))
            .cloned()
        {
            return Ok(step(Action::File {
                original,
                dest,
                point: Box::new(point),
                points,
            }));
        }
        let tag = source_tag(&source.name);
        let holding = snapshots
            .into_iter()
            .filter(|s| {
                timeline::at_or_before(s.snapshot.time, at)
                    && s.snapshot.source == SnapshotSource::Files
            })
            .filter_map(|s| {
                let include = s.snapshot.paths.iter().find_map(|p| {
                    let below = original.strip_prefix(p).ok()?;
                    Some(PathBuf::from(Path::new(p).file_name()?).join(below))
                })?;
                let tagged = s.snapshot.tags.contains(&tag);
                Some((tagged, s, include))
            })
            // The agent's snapshots of this source first, then the newest.
            .max_by_key(|(tagged, s, _)| (*tagged, s.snapshot.time));
        Ok(step(match holding {
            Some((_, snapshot, include)) => Action::Tree {
                original,
                dest,
                snapshot: Box::new(snapshot),
                include,
            },
            None => Action::Manual(format!(
                "no restore point of {} at or before that time in this repository",
                escape_path(&original)
            )),
        }))
    }

    fn describe(&self) -> String {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        match &self.action {
            Action::File { dest, point, .. } => format!(
                "  {}: {} as of {} ({} from {}) -> {}",
                self.name,
                if point.node.sqlite {
                    "SQLite database"
                } else {
                    "file"
                },
                time(&point.time),
                match &point.segment {
                    Some(s) => format!(
                        "snapshot {} + stream segments 1-{}",
                        point.snapshot.short(),
                        s.seq
                    ),
                    None => format!("snapshot {}", point.snapshot.short()),
                },
                self.target,
                escape_path(dest)
            ),
            Action::Tree { dest, snapshot, .. } => format!(
                "  {}: directory as of {} (snapshot {} from {}) -> {}",
                self.name,
                time(&snapshot.snapshot.time),
                snapshot.id.short(),
                self.target,
                escape_path(dest)
            ),
            Action::Dump { url, snapshot } => format!(
                "  {}: logical dump of {} as of {} (snapshot {} from {}) -> {}",
                self.name,
                match &snapshot.snapshot.source {
                    SnapshotSource::Database(d) => d
                        .databases
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => String::new(),
                },
                time(&snapshot.snapshot.time),
                snapshot.id.short(),
                self.target,
                lifeboat_sources::database_url::redact_text(url)
            ),
            Action::Manual(what) => format!("  {}: not restored by recover: {what}", self.name),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        match &self.action {
            Action::File {
                original,
                dest,
                point,
                ..
            } => json!({
                "source": self.name, "kind": if point.node.sqlite { "sqlite" } else { "file" },
                "from": self.target, "original": original, "destination": dest,
                "restore_point": time(&point.time), "snapshot": point.snapshot,
                "segment": point.segment.as_ref().map(|s| s.seq),
            }),
            Action::Tree {
                original,
                dest,
                snapshot,
                ..
            } => json!({
                "source": self.name, "kind": "directory", "from": self.target,
                "original": original, "destination": dest,
                "restore_point": time(&snapshot.snapshot.time), "snapshot": snapshot.id,
            }),
            Action::Dump { url, snapshot } => json!({
                "source": self.name, "kind": "database", "from": self.target,
                "destination": lifeboat_sources::database_url::redact_text(url),
                "restore_point": time(&snapshot.snapshot.time), "snapshot": snapshot.id,
            }),
            Action::Manual(what) => json!({"source": self.name, "kind": "manual", "todo": what}),
        }
    }

    /// Restores this source and checks it; a line saying what was done.
    fn apply(&self) -> Result<String> {
        match &self.action {
            Action::File {
                dest,
                point,
                points,
                ..
            } => {
                let index = self.repo.load_index()?;
                let checks = put_in_place(dest, |scratch| {
                    let file = scratch.join("file");
                    timeline::restore_point(
                        &self.repo,
                        &index,
                        points,
                        point,
                        &file,
                        &lifeboat_sources::NoProgress,
                    )?;
                    let checks = if point.node.sqlite {
                        lifeboat_sources::sqlite::check(&file)?;
                        run_sqlite_checks(&file, &self.checks)?
                    } else {
                        String::new()
                    };
                    Ok((file, checks))
                })?;
                Ok(format!("restored to {}{checks}", escape_path(dest)))
            }
            Action::Tree {
                dest,
                snapshot,
                include,
                ..
            } => {
                let index = self.repo.load_index()?;
                let stats = put_in_place(dest, |scratch| {
                    let stats = lifeboat_sources::restore::restore_tree(
                        &self.repo,
                        &index,
                        snapshot.snapshot.tree,
                        scratch,
                        &lifeboat_sources::restore::RestoreOptions {
                            include: vec![include.clone()],
                        },
                        &lifeboat_sources::NoProgress,
                    )?;
                    Ok((scratch.join(include), stats))
                })?;
                Ok(format!(
                    "restored to {} ({} files, {} dirs)",
                    escape_path(dest),
                    stats.files,
                    stats.dirs
                ))
            }
            Action::Dump { url, snapshot } => restore_dump(&self.repo, url, snapshot),
            Action::Manual(what) => bail!("{what}"),
        }
    }
}

/// Restores into a scratch directory beside `dest` (`fill` returns the restored path
/// inside it), then renames that into place: `dest` never holds half a restore, and a
/// `dest` that exists is never touched.
fn put_in_place<T>(dest: &Path, fill: impl FnOnce(&Path) -> Result<(PathBuf, T)>) -> Result<T> {
    if std::fs::symlink_metadata(dest).is_ok() {
        bail!(
            "{} exists; move it away (or recover under --root) and run again",
            escape_path(dest)
        );
    }
    let parent = dest
        .parent()
        .with_context(|| format!("{} has no parent directory", escape_path(dest)))?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", escape_path(parent)))?;
    let scratch = tempfile::Builder::new()
        .prefix(".lifeboat-recover-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", escape_path(parent)))?;
    let (restored, value) = fill(scratch.path())?;
    // A rename does not replace a directory that appeared meanwhile, and a file that
    // appeared is checked for just before (the window is the caller's own host).
    if std::fs::symlink_metadata(dest).is_ok() {
        bail!(
            "{} appeared while restoring; left as it is",
            escape_path(dest)
        );
    }
    std::fs::rename(&restored, dest)
        .with_context(|| format!("cannot move the restore into {}", escape_path(dest)))?;
    Ok(value)
}

/// The source's drill checks on a restored SQLite database; a summary for the report.
fn run_sqlite_checks(file: &Path, checks: &[String]) -> Result<String> {
    let db = rusqlite::Connection::open(file)?;
    for sql in checks {
        let value = db
            .query_row(sql, [], |row| row.get::<_, rusqlite::types::Value>(0))
            .with_context(|| format!("check {sql:?}"))?;
        if !lifeboat_ops::drill::truthy_sqlite(&value) {
            bail!("check {sql:?} is false on the restored database");
        }
    }
    Ok(format!(
        "; integrity_check and foreign_key_check passed{}",
        match checks.len() {
            0 => String::new(),
            n => format!(", {n} check(s) passed"),
        }
    ))
}

/// Each database of the dump into the server of `url` (the database it names, or each
/// database by its own name): created there, refused if it holds anything.
fn restore_dump(repo: &Repository, url: &str, snapshot: &StoredSnapshot) -> Result<String> {
    let SnapshotSource::Database(dump) = &snapshot.snapshot.source else {
        bail!("snapshot {} is not a database dump", snapshot.id.short());
    };
    let parsed = DatabaseUrl::parse(url).expect("a database URL")?;
    let index = repo.load_index()?;
    let restore = match dump.engine {
        lifeboat_repo::snapshot::Engine::Postgres => lifeboat_sources::postgres::logical::restore,
        lifeboat_repo::snapshot::Engine::Mysql => lifeboat_sources::mysql::restore,
    };
    let mut done = Vec::new();
    let wanted = parsed.database();
    for database in dump
        .databases
        .iter()
        .filter(|d| wanted.as_deref().is_none_or(|w| w == d.name))
    {
        let (dumped, node) = lifeboat_sources::dump::find_database(
            repo,
            &index,
            &snapshot.snapshot.tree,
            dump,
            Some(&database.name),
        )?;
        let into = parsed.with_database(&database.name);
        let restored = restore(
            repo,
            &index,
            &node,
            dumped,
            &into,
            false,
            &lifeboat_sources::NoProgress,
        )?;
        done.push(format!(
            "{} into {} ({} tables, {} rows, row counts match the dump)",
            dumped.name,
            into.redacted(),
            restored.tables,
            restored.rows
        ));
    }
    if done.is_empty() {
        bail!(
            "snapshot {} holds no database {}",
            snapshot.id.short(),
            wanted.unwrap_or_default()
        );
    }
    Ok(format!("restored {}", done.join("; ")))
}

/// What to start or fix once the data is back.
fn next_steps(
    config: &Config,
    found: &FoundConfig,
    plans: &[&lifeboat_config::Plan],
    root: Option<&Path>,
) -> Vec<String> {
    let config_path = match (&found.file, &found.original) {
        (Some(file), _) => file.display().to_string(),
        (None, Some(original)) => destination(root, original).display().to_string(),
        _ => "lifeboat.toml".into(),
    };
    let mut next = Vec::new();
    if root.is_some() {
        next.push(format!(
            "everything was restored under {}; move it into place (the configuration names the original paths) before starting the app",
            root.map(|r| r.display().to_string()).unwrap_or_default()
        ));
    }
    for target in &config.targets {
        if let Ok(lifeboat_storage::Location::Local(path)) =
            lifeboat_storage::Location::parse(&target.url)
        {
            if !path.join("config").is_file() {
                let survivor = config
                    .targets
                    .iter()
                    .find(|t| t.name != target.name)
                    .map(|t| t.name.as_str())
                    .unwrap_or("SURVIVING_TARGET");
                next.push(format!(
                    "target {} ({}) holds no repository on this host: `lifeboat init --repo {}` then `lifeboat copy --from {survivor} --to {}`, or drop it from the plan",
                    target.name,
                    path.display(),
                    path.display(),
                    target.name
                ));
            }
        }
    }
    next.push(format!(
        "start the agent to resume the schedules{}: `lifeboat agent --config {config_path}`",
        if plans.iter().any(|p| p.continuous) {
            " and continuous replication (a new generation starts from the restored database)"
        } else {
            ""
        }
    ));
    next.push(format!(
        "prove the new host: `lifeboat drill SOURCE --config {config_path}` and `lifeboat status --config {config_path}`"
    ));
    next
}
