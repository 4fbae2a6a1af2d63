//! Migration safety nets as a Knex project uses them (`examples/knex-migrations`):
//! `lifeboat-migrate knex migrate:latest` takes a pinned restore point of the database the
//! knexfile names, the real Knex CLI runs a migration that ruins every row and then
//! fails, and the one rollback command printed puts the data back, against SQLite (the
//! development environment) and the machine's PostgreSQL (production, DATABASE_URL).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::postgres::psql;
use common::{TestRepo, PASSWORD};

const PG: &str = "postgres://postgres@127.0.0.1:5432";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A copy of the example project (its node_modules linked) in a scratch directory.
fn knex_project() -> (tempfile::TempDir, PathBuf) {
    let example = root().join("examples/knex-migrations");
    assert!(
        example.join("node_modules/knex").exists(),
        "run `npm ci --prefix examples/knex-migrations` first (.ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    std::fs::create_dir_all(project.join("migrations")).unwrap();
    for file in ["knexfile.js", "package.json"] {
        std::fs::copy(example.join(file), project.join(file)).unwrap();
    }
    for entry in std::fs::read_dir(example.join("migrations")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            project.join("migrations").join(entry.file_name()),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink(example.join("node_modules"), project.join("node_modules")).unwrap();
    (dir, project)
}

/// A command in `project` as an npm script runs it: node_modules/.bin and the lifeboat
/// binary on PATH, the repository and its passphrase in the environment.
fn in_project(program: &str, project: &Path, repo: &TestRepo) -> Command {
    let lifeboat = PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"));
    let path = format!(
        "{}:{}:{}",
        project.join("node_modules/.bin").display(),
        lifeboat.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new(program);
    command
        .current_dir(project)
        .env("PATH", path)
        .env("LIFEBOAT_BINARY", &lifeboat)
        .env("LIFEBOAT_REPO", &repo.url)
        .env("LIFEBOAT_PASSWORD", PASSWORD)
        .env_remove("BREAK_MIGRATION")
        .env_remove("DATABASE_URL")
        .env_remove("NODE_ENV");
    command
}

fn migrate_safe(project: &Path, repo: &TestRepo, env: &[(&str, &str)]) -> Output {
    let mut command = in_project("node", project, repo);
    command
        .arg(root().join("npm/lifeboat/bin/lifeboat-migrate.js"))
        .args(["knex", "migrate:latest"])
        .envs(env.iter().copied());
    command.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The rollback lines printed after "To put the data back"; each is run as printed.
fn rollbacks(out: &Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (_, after) = stderr
        .split_once("To put the data back as it was just before it:\n")
        .unwrap_or_else(|| panic!("no rollback printed: {}", text(out)));
    after
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_string())
        .collect()
}

fn run_as_printed(line: &str, project: &Path, repo: &TestRepo, env: &[(&str, &str)]) {
    assert!(line.starts_with("lifeboat --repo "), "{line}");
    let out = in_project("sh", project, repo)
        .args(["-c", line])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{line}: {}", text(&out));
}

fn sqlite_rows(db: &Path) -> Vec<(String, Option<String>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, email FROM customers ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_failed_knex_migration_on_sqlite_is_rolled_back_by_the_printed_command() {
    let repo = TestRepo::local();
    let (_dir, project) = knex_project();
    let out = in_project("knex", &project, &repo)
        .args(["migrate:up"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let db = project.join("dev.sqlite3");
    let before = sqlite_rows(&db);
    assert_eq!(before.len(), 3);
    assert_eq!(
        before[0],
        ("Ada Lovelace".into(), Some("ada@example.com".into()))
    );

    let failed = migrate_safe(&project, &repo, &[("BREAK_MIGRATION", "1")]);
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(
        text(&failed).contains("cannot be derived"),
        "Knex's own error is shown: {}",
        text(&failed)
    );
    assert_eq!(
        sqlite_rows(&db)[0],
        ("ADA LOVELACE".into(), None),
        "the migration ruined rows"
    );
    let lines = rollbacks(&failed);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("--force"), "{lines:?}");
    // The restore point is pinned: retention never removes it.
    let pinned = repo.json(&["snapshots", "--tag", "before-run"]);
    assert_eq!(pinned.as_array().unwrap().len(), 1);
    assert_eq!(pinned[0]["pinned"], true);

    run_as_printed(&lines[0], &project, &repo, &[]);
    assert_eq!(sqlite_rows(&db), before, "the rows are back as they were");
    let applied: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM knex_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied, 1, "and so is Knex's record of what ran");

    // Fixed, the migration runs through; its restore point stays.
    let fixed = migrate_safe(&project, &repo, &[]);
    assert!(fixed.status.success(), "{}", text(&fixed));
    assert!(text(&fixed).contains("stays pinned"), "{}", text(&fixed));
    assert_eq!(
        repo.json(&["snapshots", "--tag", "before-run"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_failed_knex_migration_on_postgres_is_rolled_back_by_the_printed_command() {
    let repo = TestRepo::local();
    let (_dir, project) = knex_project();
    let name = format!("lifeboat_knex_{}", std::process::id());
    psql(
        &format!("{PG}/postgres"),
        &format!("DROP DATABASE IF EXISTS {name}"),
    );
    psql(
        &format!("{PG}/postgres"),
        &format!("CREATE DATABASE {name}"),
    );
    let url = format!("{PG}/{name}");
    let env = [("NODE_ENV", "production"), ("DATABASE_URL", url.as_str())];
    let out = in_project("knex", &project, &repo)
        .args(["migrate:up"])
        .envs(env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rows = || {
        psql(
            &url,
            "SELECT name || ' ' || coalesce(email, '-') FROM customers ORDER BY id",
        )
    };
    let before = rows();
    assert!(
        before.starts_with("Ada Lovelace ada@example.com"),
        "{before}"
    );

    let mut broken = env.to_vec();
    broken.push(("BREAK_MIGRATION", "1"));
    let failed = migrate_safe(&project, &repo, &broken);
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(
        rows().starts_with("ADA LOVELACE -"),
        "the migration ruined rows"
    );
    let lines = rollbacks(&failed);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(&format!("--into {url} --force")),
        "{lines:?}"
    );

    run_as_printed(&lines[0], &project, &repo, &[]);
    assert_eq!(rows(), before, "the rows are back as they were");
    assert_eq!(psql(&url, "SELECT count(*) FROM knex_migrations"), "1");
    psql(
        &format!("{PG}/postgres"),
        &format!("DROP DATABASE {name} WITH (FORCE)"),
    );
}

/// Prisma's own CLI cannot be installed on this machine (it downloads its schema engine
/// from binaries.prisma.sh at install and first run, which does not resolve here), so a
/// two-line `prisma` stand-in changes the database and fails. What is tested is
/// lifeboat-migrate's side of the recipe: DATABASE_URL read from .env and its relative
/// `file:` path read from the schema's directory, as Prisma reads it.
#[test]
fn prismas_file_url_in_env_names_the_database_beside_the_schema() {
    let repo = TestRepo::local();
    let (_dir, project) = knex_project();
    std::fs::create_dir_all(project.join("prisma")).unwrap();
    std::fs::write(project.join("prisma/schema.prisma"), "// the schema\n").unwrap();
    std::fs::write(
        project.join(".env"),
        "DATABASE_URL=\"file:./dev.db?connection_limit=1\"\n",
    )
    .unwrap();
    let db = project.join("prisma/dev.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, email TEXT);
         INSERT INTO customers(name, email) VALUES ('Ada Lovelace', 'ada@example.com');",
    )
    .unwrap();
    drop(conn);
    let before = sqlite_rows(&db);
    let bin = project.join("stand-in");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("prisma"),
        "#!/bin/sh\nsqlite3 prisma/dev.db \"UPDATE customers SET email = NULL\"\necho 'Error: P3018 migration failed' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("prisma"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut command = in_project("node", &project, &repo);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let lifeboat_dir = PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"));
    let failed = command
        .env(
            "PATH",
            format!("{}:{path}", lifeboat_dir.parent().unwrap().display()),
        )
        .arg(root().join("npm/lifeboat/bin/lifeboat-migrate.js"))
        .args(["prisma", "migrate", "deploy"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(text(&failed).contains("P3018"), "{}", text(&failed));
    assert_eq!(
        sqlite_rows(&db)[0].1,
        None,
        "the stand-in changed the database"
    );
    let lines = rollbacks(&failed);
    let prisma_dir = project.join("prisma").display().to_string();
    assert!(
        lines[0].contains(&format!("--target {prisma_dir} --force")),
        "{lines:?}"
    );
    run_as_printed(&lines[0], &project, &repo, &[]);
    assert_eq!(sqlite_rows(&db), before);
}
