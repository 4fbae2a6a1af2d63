//! `init --npm`: a JavaScript project set up the way its developers expect. A
//! `lifeboat.toml` next to `package.json` (the database from `DATABASE_URL`, which may live
//! in `.env`; the uploads folder when there is one; the new repository as its target) and
//! npm scripts: `backup`, `backup:status`, and `db:migrate:safe` for the migration tool the
//! project depends on. What exists is never overwritten.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

/// What `init --npm` did to a project.
#[derive(Debug, Clone, Serialize)]
pub struct NpmSetup {
    pub project: PathBuf,
    /// `lifeboat.toml` was written (it did not exist).
    pub wrote_config: bool,
    /// Scripts added to package.json, as (name, command).
    pub scripts_added: Vec<(String, String)>,
    /// Scripts left as they were because package.json had them already.
    pub scripts_kept: Vec<String>,
    /// What the developer may still have to do.
    pub notes: Vec<String>,
}

/// The directory of the nearest package.json at or above `cwd`.
pub fn project_dir(cwd: &Path) -> Result<PathBuf> {
    cwd.ancestors()
        .find(|dir| dir.join("package.json").is_file())
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "no package.json in {} or above: run it in the project (or `npm init` first)",
                cwd.display()
            )
        })
}

/// The migration tools whose `db:migrate:safe` script is known, in order of preference:
/// (package, script).
const MIGRATORS: [(&str, &str); 4] = [
    ("prisma", "lifeboat-migrate prisma migrate deploy"),
    ("drizzle-kit", "lifeboat-migrate drizzle-kit migrate"),
    ("knex", "lifeboat-migrate knex migrate:latest"),
    ("sequelize-cli", "lifeboat-migrate sequelize db:migrate"),
];

/// Sets up `project` to back up to the repository at `location`.
pub fn set_up(project: &Path, location: &str) -> Result<NpmSetup> {
    let manifest_path = project.join("package.json");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let mut manifest: Json = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", manifest_path.display()))?;
    let Json::Object(fields) = &mut manifest else {
        bail!("{} is not a JSON object", manifest_path.display());
    };
    let mut setup = NpmSetup {
        project: project.to_path_buf(),
        wrote_config: false,
        scripts_added: Vec::new(),
        scripts_kept: Vec::new(),
        notes: Vec::new(),
    };

    let config_path = project.join("lifeboat.toml");
    let uploads = ["uploads", "public/uploads"]
        .into_iter()
        .find(|dir| project.join(dir).is_dir());
    if config_path.exists() {
        setup
            .notes
            .push("lifeboat.toml exists already; it was left as it was".into());
    } else {
        std::fs::write(&config_path, config_text(location, uploads))
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        setup.wrote_config = true;
    }
    if std::env::var_os("DATABASE_URL").is_none()
        && !lifeboat_config::dotenv_in(project).contains_key("DATABASE_URL")
    {
        setup.notes.push(
            "DATABASE_URL is not set here nor in .env: the plan's database source reads it".into(),
        );
    }

    let dependencies: Vec<String> = ["dependencies", "devDependencies"]
        .iter()
        .filter_map(|key| match field(fields, key) {
            Some(Json::Object(deps)) => Some(deps.iter().map(|(name, _)| name.clone())),
            _ => None,
        })
        .flatten()
        .collect();
    let mut wanted = vec![
        (
            "backup".to_string(),
            "lifeboat backup --plan app".to_string(),
        ),
        ("backup:status".to_string(), "lifeboat status".to_string()),
    ];
    match MIGRATORS
        .iter()
        .find(|(package, _)| dependencies.iter().any(|d| d == package))
    {
        Some((_, script)) => wanted.push(("db:migrate:safe".into(), script.to_string())),
        None => setup.notes.push(
            "no Prisma, Drizzle, Knex or Sequelize dependency found: no db:migrate:safe script \
             (wrap any migration command with `lifeboat-migrate --source URL -- COMMAND`)"
                .into(),
        ),
    }
    if field(fields, "scripts").is_none() {
        fields.push(("scripts".into(), Json::Object(Vec::new())));
    }
    let Some(Json::Object(scripts)) = field_mut(fields, "scripts") else {
        bail!("{}: \"scripts\" is not an object", manifest_path.display());
    };
    for (name, command) in wanted {
        if scripts.iter().any(|(existing, _)| *existing == name) {
            setup.scripts_kept.push(name);
        } else {
            scripts.push((name.clone(), Json::String(command.clone())));
            setup.scripts_added.push((name, command));
        }
    }
    if !setup.scripts_added.is_empty() {
        let indent = indent_of(&text);
        let mut out = String::new();
        manifest.write(&mut out, &indent, 0);
        out.push('\n');
        std::fs::write(&manifest_path, out)
            .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    }
    Ok(setup)
}

fn config_text(location: &str, uploads: Option<&str>) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let mut text = String::from(
        "# Written by `lifeboat init --npm`; see `lifeboat config --help` for every key.\n\
         # The database is DATABASE_URL, from the environment or .env beside this file.\n\
         [[source]]\nname = \"db\"\nurl = \"${DATABASE_URL}\"\n",
    );
    let mut sources = vec!["\"db\""];
    if let Some(dir) = uploads {
        text.push_str(&format!(
            "\n[[source]]\nname = \"uploads\"\nurl = {}\n",
            quote(&format!("./{dir}"))
        ));
        sources.push("\"uploads\"");
    }
    text.push_str(&format!(
        "\n[[target]]\nname = \"local\"\nurl = {}\n\
         \n[[plan]]\nname = \"app\"\nsources = [{}]\ntargets = [\"local\"]\n\
         schedule = \"every 1h\"\nrpo = \"2h\"\n",
        quote(location),
        sources.join(", ")
    ));
    text
}

/// The indentation package.json uses (npm keeps a file's own), two spaces by default.
fn indent_of(text: &str) -> String {
    text.lines()
        .skip(1)
        .map(|line| &line[..line.len() - line.trim_start().len()])
        .find(|indent| !indent.is_empty())
        .unwrap_or("  ")
        .to_string()
}

fn field<'a>(fields: &'a [(String, Json)], name: &str) -> Option<&'a Json> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn field_mut<'a>(fields: &'a mut [(String, Json)], name: &str) -> Option<&'a mut Json> {
    fields.iter_mut().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// JSON that keeps its keys in the order they were written, so that editing
/// package.json changes only what was added.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(v)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("not a JSON number"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::String(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                Ok(Json::Object(fields))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Json {
    /// As `JSON.stringify(value, null, indent)` writes it.
    fn write(&self, out: &mut String, indent: &str, depth: usize) {
        let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
        let pad = |depth: usize| indent.repeat(depth);
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::String(s) => out.push_str(&quote(s)),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Array(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    item.write(out, indent, depth + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push(']');
            }
            Json::Object(fields) => {
                out.push_str("{\n");
                for (i, (key, value)) in fields.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    out.push_str(&quote(key));
                    out.push_str(": ");
                    value.write(out, indent, depth + 1);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push('}');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_json_keeps_its_order_and_only_gains_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let original = "{\n    \"name\": \"shop\",\n    \"version\": \"1.0.0\",\n    \"scripts\": {\n        \"start\": \"node server.js\",\n        \"backup\": \"./my-backup.sh\"\n    },\n    \"dependencies\": {\n        \"zod\": \"^3\",\n        \"knex\": \"^3.1.0\"\n    },\n    \"files\": [],\n    \"nested\": {\"z\": 1, \"a\": [1.5, true, null]}\n}\n";
        std::fs::write(dir.path().join("package.json"), original).unwrap();
        std::fs::create_dir(dir.path().join("uploads")).unwrap();
        let setup = set_up(dir.path(), "/var/backups/shop").unwrap();
        assert!(setup.wrote_config);
        assert_eq!(
            setup.scripts_kept,
            ["backup"],
            "a script of the same name stays"
        );
        let added: Vec<&str> = setup
            .scripts_added
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(added, ["backup:status", "db:migrate:safe"]);
        let written = std::fs::read_to_string(dir.path().join("package.json")).unwrap();
        assert_eq!(
            written,
            "{\n    \"name\": \"shop\",\n    \"version\": \"1.0.0\",\n    \"scripts\": {\n        \"start\": \"node server.js\",\n        \"backup\": \"./my-backup.sh\",\n        \"backup:status\": \"lifeboat status\",\n        \"db:migrate:safe\": \"lifeboat-migrate knex migrate:latest\"\n    },\n    \"dependencies\": {\n        \"zod\": \"^3\",\n        \"knex\": \"^3.1.0\"\n    },\n    \"files\": [],\n    \"nested\": {\n        \"z\": 1,\n        \"a\": [\n            1.5,\n            true,\n            null\n        ]\n    }\n}\n"
        );
        let config = lifeboat_config::Config::parse(
            &std::fs::read_to_string(dir.path().join("lifeboat.toml")).unwrap(),
            "lifeboat.toml",
            &|name| (name == "DATABASE_URL").then(|| "postgres://app@db/shop".to_string()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.plan("app").unwrap().sources, ["db", "uploads"]);
        assert_eq!(config.target("local").unwrap().url, "/var/backups/shop");

        // A second run changes nothing.
        let again = set_up(dir.path(), "/elsewhere").unwrap();
        assert!(!again.wrote_config && again.scripts_added.is_empty());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("package.json")).unwrap(),
            written
        );
    }

    #[test]
    fn a_project_is_found_upwards_and_its_absence_is_said() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        let deep = dir.path().join("src/routes");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(project_dir(&deep).unwrap(), dir.path());
        let error = project_dir(Path::new("/proc/self"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no package.json"), "{error}");
    }
}
