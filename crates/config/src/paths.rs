//! Relative paths in a config file mean "next to the file", whatever the working
//! directory of the process that loads it (the agent runs from /).

use std::path::{Component, Path, PathBuf};

use crate::model::{Config, SourceLocation};

/// Rewrites relative paths in source urls, target urls, `password_file` and the agent's
/// `state` against `base`, the config file's (absolute) directory.
pub(crate) fn resolve_relative(config: &mut Config, base: &Path) {
    for source in &mut config.sources {
        if let SourceLocation::Url(url) = &mut source.location {
            *url = resolve_url(url, base);
        }
    }
    for target in &mut config.targets {
        target.url = resolve_url(&target.url, base);
        if let Some(file) = &mut target.password_file {
            *file = join(base, file);
        }
    }
    if let Some(state) = &mut config.agent.state {
        *state = join(base, state);
    }
}

/// `sqlite:`/`file:` keep their prefix and query; other URLs with a scheme (`postgres://`,
/// `s3://`, `file:///abs`) are left as they are; anything else is a path.
fn resolve_url(url: &str, base: &Path) -> String {
    for prefix in ["sqlite:", "file:"] {
        if let Some(rest) = url.strip_prefix(prefix) {
            // `sqlite:///abs` and `file:///abs` are absolute already.
            if rest.starts_with("//") {
                return url.to_string();
            }
            let (path, query) = match rest.split_once('?') {
                Some((path, query)) => (path, format!("?{query}")),
                None => (rest, String::new()),
            };
            return format!("{prefix}{}{query}", join(base, Path::new(path)).display());
        }
    }
    if has_scheme(url) {
        return url.to_string();
    }
    join(base, Path::new(url)).display().to_string()
}

fn has_scheme(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| {
        let mut chars = scheme.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

/// `base/path` without `.` components; `..` stays, since removing it is wrong across
/// symlinks.
fn join(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    base.join(path)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(url: &str) -> String {
        resolve_url(url, Path::new("/etc/x"))
    }

    #[test]
    fn sqlite_and_file_urls_keep_their_prefix() {
        assert_eq!(resolve("sqlite:./data/app.db"), "sqlite:/etc/x/data/app.db");
        assert_eq!(resolve("sqlite:app.db"), "sqlite:/etc/x/app.db");
        assert_eq!(
            resolve("file:./dev.db?mode=ro"),
            "file:/etc/x/dev.db?mode=ro"
        );
        assert_eq!(resolve("sqlite:/var/app.db"), "sqlite:/var/app.db");
        assert_eq!(resolve("sqlite:///var/app.db"), "sqlite:///var/app.db");
    }

    #[test]
    fn urls_with_a_scheme_are_untouched() {
        for url in [
            "postgres://app@db/app",
            "mysql://root@localhost/shop",
            "s3://bucket/prefix",
            "file:///srv/repo",
        ] {
            assert_eq!(resolve(url), url);
        }
    }

    #[test]
    fn paths_are_joined_to_the_config_directory() {
        assert_eq!(resolve("./uploads"), "/etc/x/uploads");
        assert_eq!(resolve("uploads/img"), "/etc/x/uploads/img");
        assert_eq!(resolve("../shared"), "/etc/x/../shared");
        assert_eq!(resolve("/var/backups"), "/var/backups");
        // A colon without `//` is part of a file name, not a scheme.
        assert_eq!(resolve("backups:2024"), "/etc/x/backups:2024");
    }
}
