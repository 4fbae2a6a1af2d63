//! What a backup of paths leaves out, as restic's options say it: `--exclude` and
//! `--iexclude` patterns, `--exclude-if-present` marker files, `--one-file-system`.
//!
//! A pattern that starts with `/` is matched against the whole absolute path; any other
//! pattern against the path's tail, so `*.log` matches a name anywhere and `cache/tmp` a
//! `tmp` inside any `cache`. `*` and `?` stay within one name, `**` spans directories. An
//! excluded directory is not entered. Paths named on the command line are always backed up.

use std::ffi::OsString;
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::{Result, SourceError};

#[derive(Debug, Clone, Default)]
pub struct Selection {
    excludes: Option<GlobSet>,
    /// Matched against the lower-cased path.
    iexcludes: Option<GlobSet>,
    markers: Vec<OsString>,
    one_file_system: bool,
}

impl Selection {
    /// `excludes` and `iexcludes` are patterns (see the module); `markers` are file names
    /// whose presence excludes the directory holding them (`CACHEDIR.TAG`, `.nobackup`).
    pub fn new(
        excludes: &[String],
        iexcludes: &[String],
        markers: &[String],
        one_file_system: bool,
    ) -> Result<Selection> {
        for marker in markers {
            if marker.is_empty() || marker.contains('/') {
                return Err(SourceError::Invalid(format!(
                    "--exclude-if-present takes a file name, not {marker:?}"
                )));
            }
        }
        Ok(Selection {
            excludes: glob_set(excludes, false)?,
            iexcludes: glob_set(iexcludes, true)?,
            markers: markers.iter().map(OsString::from).collect(),
            one_file_system,
        })
    }

    /// Whether the entry at `path` (absolute) is left out by a pattern.
    pub fn excludes(&self, path: &Path) -> bool {
        if self.excludes.as_ref().is_some_and(|set| set.is_match(path)) {
            return true;
        }
        self.iexcludes.as_ref().is_some_and(|set| {
            let lower = path.to_string_lossy().to_lowercase();
            set.is_match(lower)
        })
    }

    /// The marker files whose presence excludes a directory.
    pub fn markers(&self) -> &[OsString] {
        &self.markers
    }

    pub fn one_file_system(&self) -> bool {
        self.one_file_system
    }
}

fn glob_set(patterns: &[String], fold_case: bool) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let trimmed = pattern.trim();
        let trimmed = trimmed
            .strip_suffix('/')
            .filter(|t| !t.is_empty())
            .unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(SourceError::Invalid("an empty exclude pattern".into()));
        }
        let anchored = if trimmed.starts_with('/') {
            trimmed.to_string()
        } else {
            format!("**/{trimmed}")
        };
        let text = if fold_case {
            anchored.to_lowercase()
        } else {
            anchored
        };
        let glob = GlobBuilder::new(&text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| {
                SourceError::Invalid(format!("cannot read the exclude pattern {pattern:?}: {e}"))
            })?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| SourceError::Invalid(format!("cannot use the exclude patterns: {e}")))
}

/// Patterns from an exclude file, one per line; blank lines and `#` comments are skipped.
pub fn read_pattern_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| SourceError::io(path, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(excludes: &[&str], iexcludes: &[&str]) -> Selection {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Selection::new(&owned(excludes), &owned(iexcludes), &[], false).unwrap()
    }

    #[test]
    fn patterns_match_names_anywhere_or_whole_paths_when_anchored() {
        let s = selection(
            &["*.log", "cache/tmp", "/srv/app/node_modules/"],
            &["*.BAK"],
        );
        for excluded in [
            "/srv/app/debug.log",
            "/srv/app/deep/er/x.log",
            "/srv/app/cache/tmp",
            "/a/cache/tmp",
            "/srv/app/node_modules",
            "/srv/app/old.bak",
            "/srv/app/OLD.Bak",
        ] {
            assert!(s.excludes(Path::new(excluded)), "{excluded}");
        }
        for kept in [
            "/srv/app/log",
            "/srv/app/x.log.gz",
            "/srv/app/tmp",
            "/srv/app/cache/tmp2",
            "/srv/other/node_modules/x",
            "/srv/app/x.LOG",
        ] {
            assert!(!s.excludes(Path::new(kept)), "{kept}");
        }
    }

    #[test]
    fn star_stays_in_one_name_and_double_star_spans_directories() {
        let s = selection(&["/srv/*/tmp", "/data/**/secret"], &[]);
        assert!(s.excludes(Path::new("/srv/app/tmp")));
        assert!(!s.excludes(Path::new("/srv/app/deeper/tmp")));
        assert!(s.excludes(Path::new("/data/secret")));
        assert!(s.excludes(Path::new("/data/a/b/secret")));
    }

    #[test]
    fn bad_patterns_and_markers_are_refused_with_their_text() {
        let err = Selection::new(&["[oops".into()], &[], &[], false).unwrap_err();
        assert!(err.to_string().contains("[oops"), "{err}");
        assert!(Selection::new(&[" ".into()], &[], &[], false).is_err());
        let err = Selection::new(&[], &[], &["a/b".into()], false).unwrap_err();
        assert!(err.to_string().contains("a/b"), "{err}");
    }
}
