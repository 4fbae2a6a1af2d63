//! Loading from a file: relative paths mean "next to the file".

use std::path::{Path, PathBuf};

use lifeboat_config::{Config, SourceLocation};

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("lifeboat.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn relative_paths_are_resolved_against_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc").join("x");
    std::fs::create_dir_all(&etc).unwrap();
    let path = write(
        &etc,
        r#"
[[source]]
name = "app"
url = "sqlite:./data/app.db"
[[source]]
name = "uploads"
url = "./uploads"
[[source]]
name = "pg"
url = "postgres://app@db/app"
[[source]]
name = "cmd"
command = "cat ./x"
[[target]]
name = "local"
url = "backups"
password_file = "local.pass"
[[target]]
name = "offsite"
url = "s3://bucket/prefix"
[agent]
state = "./agent.db"
"#,
    );
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let base = etc.display();
    let url = |name: &str| config.source(name).unwrap().location.clone();
    assert_eq!(
        url("app"),
        SourceLocation::Url(format!("sqlite:{base}/data/app.db"))
    );
    assert_eq!(
        url("uploads"),
        SourceLocation::Url(format!("{base}/uploads"))
    );
    assert_eq!(
        url("pg"),
        SourceLocation::Url("postgres://app@db/app".into())
    );
    // A command runs in whatever directory the agent gives it; it is not a path.
    assert_eq!(url("cmd"), SourceLocation::Command("cat ./x".into()));
    let local = config.target("local").unwrap();
    assert_eq!(local.url, format!("{base}/backups"));
    assert_eq!(local.password_file, Some(etc.join("local.pass")));
    assert_eq!(config.target("offsite").unwrap().url, "s3://bucket/prefix");
    assert_eq!(config.agent.state, Some(etc.join("agent.db")));
}

#[test]
fn parse_leaves_relative_paths_alone() {
    let config = Config::parse(
        "[[source]]\nname = \"a\"\nurl = \"sqlite:./a.db\"\n",
        "x.toml",
        &|_| None,
    )
    .unwrap();
    assert_eq!(
        config.source("a").unwrap().location,
        SourceLocation::Url("sqlite:./a.db".into())
    );
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "[[plan]]\nname = \"p\"\ncontinuous = true\n");
    let message = Config::load(&path).unwrap_err().to_string();
    let origin = path.display().to_string();
    assert_eq!(
        message,
        format!(
            "{origin}:2:8: plan \"p\" has no sources; list at least one in sources = [...]\n\
             {origin}:2:8: plan \"p\" has no targets; list at least one in targets = [...]"
        )
    );
}

#[test]
fn an_unreadable_file_is_one_error_without_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let errors = Config::load(&path).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].column), (0, 0));
    let message = errors.to_string();
    assert!(
        message.starts_with(&format!("{}: cannot read: ", path.display())),
        "{message}"
    );
}

#[test]
fn variables_missing_from_the_environment_come_from_the_env_file_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    // Names no test process sets; the environment would win over the file.
    std::fs::write(
        dir.path().join(".env"),
        "# as Prisma writes it\nLIFEBOAT_TEST_DOTENV_URL=\"postgres://app:s3cret@db:5432/shop?schema=public\" # local\n",
    )
    .unwrap();
    let path = write(
        dir.path(),
        "[[source]]\nname = \"db\"\nurl = \"${LIFEBOAT_TEST_DOTENV_URL}\"\n",
    );
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.source("db").unwrap().location,
        SourceLocation::Url("postgres://app:s3cret@db:5432/shop?schema=public".into())
    );

    // Without the file, the variable is missing, and the error says which.
    std::fs::remove_file(dir.path().join(".env")).unwrap();
    let error = Config::load(&path).unwrap_err().to_string();
    assert!(error.contains("LIFEBOAT_TEST_DOTENV_URL"), "{error}");
}
