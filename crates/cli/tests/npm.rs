//! The npm packages: built from this repository's binary by `scripts/npm-pack.sh`,
//! installed into a fresh Node project from the tarballs alone (an empty npm cache, a
//! registry address where nothing listens, `--offline`), then used as a JavaScript
//! developer would: `npx lifeboat` on the command line, and the Node API with its
//! TypeScript types (`npm/test/`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::PASSWORD;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `npx --offline lifeboat ARGS` in `project`.
fn npx(project: &Path, repo: &Path, args: &[&str]) -> Output {
    Command::new("npx")
        .arg("--offline")
        .arg("lifeboat")
        .args(args)
        .current_dir(project)
        .env("LIFEBOAT_REPO", repo)
        .env("LIFEBOAT_PASSWORD", PASSWORD)
        .env("npm_config_cache", project.join(".npm-cache"))
        .env_remove("LIFEBOAT_BINARY")
        .output()
        .expect("npx runs")
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_tarballs_install_without_a_registry_and_work_from_npx_and_node() {
    let work = tempfile::tempdir().unwrap();
    let tarballs = work.path().join("tarballs");
    let packed = ok(
        Command::new("bash")
            .arg(root().join("scripts/npm-pack.sh"))
            .args(["--out".as_ref(), tarballs.as_os_str()])
            .args(["--binary", env!("CARGO_BIN_EXE_lifeboat")])
            .output()
            .unwrap(),
        "npm-pack.sh",
    );
    let version = env!("CARGO_PKG_VERSION");
    let launcher = tarballs.join(format!("lifeboat-{version}.tgz"));
    let platform = tarballs.join(format!("lifeboat-linux-x64-gnu-{version}.tgz"));
    assert!(launcher.exists() && platform.exists(), "{packed}");

    // A fresh project; npm may not reach any registry.
    let project = work.path().join("app");
    std::fs::create_dir_all(project.join("uploads")).unwrap();
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"app","version":"1.0.0","private":true,"type":"commonjs"}"#,
    )
    .unwrap();
    ok(
        Command::new("npm")
            .args(["install", "--offline", "--no-audit", "--no-fund"])
            .arg("--registry=http://127.0.0.1:9/")
            .arg(&launcher)
            .arg(&platform)
            .current_dir(&project)
            .env("npm_config_cache", project.join(".npm-cache"))
            .output()
            .unwrap(),
        "npm install from the tarballs",
    );
    let installed = project.join("node_modules/lifeboat-linux-x64-gnu/bin/lifeboat");
    assert!(installed.exists(), "the platform package holds the binary");
    let migrate = Command::new("npx")
        .args(["--offline", "lifeboat-migrate"])
        .current_dir(&project)
        .env("npm_config_cache", project.join(".npm-cache"))
        .output()
        .unwrap();
    assert_eq!(
        migrate.status.code(),
        Some(2),
        "lifeboat-migrate is a bin: {migrate:?}"
    );
    assert!(String::from_utf8_lossy(&migrate.stderr).contains("usage: lifeboat-migrate"));

    let repo = work.path().join("repo");
    let version_line = ok(
        npx(&project, &repo, &["--version"]),
        "npx lifeboat --version",
    );
    assert_eq!(version_line.trim(), format!("lifeboat {version}"));
    // The app's data: a SQLite database named in .env as Prisma writes it, and uploads.
    std::fs::write(project.join("uploads/photo.txt"), "v1").unwrap();
    let db = project.join("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO customers(name) VALUES ('Ada'), ('Grace');",
    )
    .unwrap();
    drop(conn);
    std::fs::write(project.join(".env"), "DATABASE_URL=\"file:./app.db\"\n").unwrap();

    // init --npm: the repository, lifeboat.toml beside package.json, npm scripts.
    let init = ok(
        npx(
            &project,
            &repo,
            &[
                "init",
                "--npm",
                "--kdf-memory-mib",
                "8",
                "--kdf-iterations",
                "1",
            ],
        ),
        "npx lifeboat init --npm",
    );
    assert!(init.contains("lifeboat.toml"), "{init}");
    assert!(
        init.contains("no Prisma, Drizzle, Knex or Sequelize"),
        "{init}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("package.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["scripts"]["backup"], "lifeboat backup --plan app");
    assert_eq!(manifest["name"], "app", "the rest of package.json stays");

    // `npm run backup` backs up the plan: the database from .env and the uploads.
    let backed_up = Command::new("npm")
        .args(["run", "--silent", "backup"])
        .current_dir(&project)
        .env("LIFEBOAT_PASSWORD", PASSWORD)
        .env_remove("LIFEBOAT_REPO")
        .env_remove("DATABASE_URL")
        .env("npm_config_cache", project.join(".npm-cache"))
        .output()
        .unwrap();
    let said = ok(backed_up, "npm run backup");
    assert!(
        said.contains("db to local:") && said.contains("uploads to local:"),
        "{said}"
    );
    // From a folder of the project, lifeboat.toml is found upwards.
    let status = Command::new("npx")
        .args(["--offline", "lifeboat", "--json", "status"])
        .current_dir(project.join("uploads"))
        .env("LIFEBOAT_PASSWORD", PASSWORD)
        .env_remove("DATABASE_URL")
        .env("npm_config_cache", project.join(".npm-cache"))
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_str(&ok(status, "lifeboat status")).unwrap();
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["restore_points"].as_array().unwrap().len(), 2);

    // A backup and a restore from the command line, in the project.
    ok(
        npx(&project, &repo, &["backup", "file:./app.db"]),
        "npx lifeboat backup",
    );
    ok(
        npx(&project, &repo, &["restore", "latest", "--target", "back"]),
        "npx lifeboat restore",
    );
    let back = rusqlite::Connection::open(project.join("back/app.db")).unwrap();
    let rows: i64 = back
        .query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);

    // The launcher passes the binary's exit code through.
    let refused = npx(&project, &repo, &["restore", "ffffffff", "--target", "x"]);
    assert!(!refused.status.success() && refused.status.code() != Some(0));

    // The Node API, against the same repository and the plan init --npm wrote.
    let api = root().join("npm/test/api.test.mjs");
    ok(
        Command::new("node")
            .arg(&api)
            .current_dir(&project)
            .env("LIFEBOAT_REPO", &repo)
            .env("LIFEBOAT_PASSWORD", PASSWORD)
            .env("npm_config_cache", project.join(".npm-cache"))
            .env_remove("LIFEBOAT_BINARY")
            .output()
            .unwrap(),
        "npm/test/api.test.mjs",
    );

    // Its types compile under --strict as an app would use them.
    let tsc = root().join("clients/typescript/node_modules/.bin/tsc");
    assert!(
        tsc.exists(),
        "run `npm ci --prefix clients/typescript` first (.ci/run does)"
    );
    std::fs::copy(
        root().join("npm/test/types.test.ts"),
        project.join("types.test.ts"),
    )
    .unwrap();
    ok(
        Command::new(&tsc)
            .args([
                "--noEmit",
                "--strict",
                "--module",
                "nodenext",
                "--moduleResolution",
                "nodenext",
                "--target",
                "es2022",
                "--lib",
                "es2022,dom",
                "types.test.ts",
            ])
            .current_dir(&project)
            .output()
            .unwrap(),
        "tsc on the package's types",
    );
}
