//! Reading a config: TOML, then unknown keys, then types, then the rules.

use std::path::Path;

use serde::Deserialize;
use toml::de::DeTable;

use crate::check::check;
use crate::error::{ConfigError, ConfigErrors, LineIndex};
use crate::keys::unknown_keys;
use crate::model::Config;
use crate::paths::resolve_relative;
use crate::raw::RawConfig;
use crate::Needs;

impl Config {
    /// Reads and validates the file at `path`, filling `${VAR}`s from the process
    /// environment (else from a `.env` file beside it, as Prisma, Next.js and Vite read
    /// theirs) and resolving relative paths against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Config::load_for(path, Needs::Everything)
    }

    /// [`Config::load`] for a command that needs only part of the file (see [`Needs`]).
    pub fn load_for(path: &Path, needs: Needs) -> Result<Config, ConfigErrors> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors::whole_file(&origin, format!("cannot read: {e}")))?;
        Config::load_text(&text, path, needs)
    }

    /// [`Config::load_for`] for the text of a file that lived at `path` (which need not
    /// exist now: a configuration read back from a repository): relative paths are
    /// resolved against `path`'s directory, as they were on the host that wrote it.
    pub fn load_text(text: &str, path: &Path, needs: Needs) -> Result<Config, ConfigErrors> {
        let origin = path.display().to_string();
        let dotenv = std::path::absolute(path)
            .ok()
            .and_then(|p| Some(dotenv_in(p.parent()?)))
            .unwrap_or_default();
        let env = |name: &str| {
            std::env::var(name)
                .ok()
                .or_else(|| dotenv.get(name).cloned())
        };
        let mut config = Config::parse_for(text, &origin, &env, needs)?;
        let absolute = std::path::absolute(path).map_err(|e| {
            ConfigErrors::whole_file(&origin, format!("cannot resolve its directory: {e}"))
        })?;
        let base = absolute.parent().unwrap_or(Path::new("/"));
        resolve_relative(&mut config, base);
        Ok(config)
    }

    /// Validates `text`. `origin` names the file in messages; `env` looks up `${VAR}`s.
    /// Relative paths are left as written (there is no file to be relative to).
    pub fn parse(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        Config::parse_for(text, origin, env, Needs::Everything)
    }

    /// [`Config::parse`] for a command that needs only part of the file.
    pub fn parse_for(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
        needs: Needs,
    ) -> Result<Config, ConfigErrors> {
        let index = LineIndex::new(text);
        let fail = |errors: Vec<ConfigError>| ConfigErrors::new(origin, errors);
        let root = DeTable::parse(text).map_err(|e| fail(vec![toml_error(&index, &e)]))?;
        let unknown = unknown_keys(root.get_ref(), &index);
        if !unknown.is_empty() {
            return Err(fail(unknown));
        }
        let raw = RawConfig::deserialize(toml::de::Deserializer::from(root))
            .map_err(|e| fail(vec![toml_error(&index, &e)]))?;
        check(raw, &index, env, needs).map_err(fail)
    }
}

fn toml_error(index: &LineIndex<'_>, error: &toml::de::Error) -> ConfigError {
    // Messages are one line in ours; toml's occasionally span several.
    let message = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    // serde speaks of fields; the file has keys.
    let message = match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        Some(key) => format!("missing required key {key:?}"),
        None => message,
    };
    match error.span() {
        Some(span) => index.error(&span, message),
        None => ConfigError {
            line: 0,
            column: 0,
            message,
        },
    }
}

/// The variables of the `.env` file in `dir`, as Node's tools write it; none when there is
/// no such file or it cannot be read (a variable then missing is named by the error that
/// needs it).
pub fn dotenv_in(dir: &Path) -> std::collections::HashMap<String, String> {
    match dotenvy::from_path_iter(dir.join(".env")) {
        Ok(vars) => vars.filter_map(Result::ok).collect(),
        Err(_) => Default::default(),
    }
}
