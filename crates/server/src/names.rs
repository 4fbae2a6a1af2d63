//! Which object names a client may use. Only names of the repository layout
//! (docs/FORMAT.md §2) pass: a known top-level kind, then safe components. Nothing can
//! reach `.tmp/`, a dot file or anything outside the repository.

pub use lifeboat_storage::REPOSITORY_DIRECTORIES as DIRECTORIES;

/// Longest name accepted (the longest real ones, stream segments, are under 200).
const MAX_NAME: usize = 512;

/// A component: ASCII letters, digits, `-`, `_` and `.`, not starting with a dot.
fn safe_component(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 255
        && !part.starts_with('.')
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks the name of one object: `config`, or `<kind>/<component>[/...]`.
pub fn check_object(name: &str) -> Result<(), String> {
    if name == "config" {
        return Ok(());
    }
    check_path(name, false)
}

/// Checks a directory to list: `<kind>` or `<kind>/<component>[/...]`.
pub fn check_directory(dir: &str) -> Result<(), String> {
    check_path(dir, true)
}

fn check_path(name: &str, directory: bool) -> Result<(), String> {
    if name.len() > MAX_NAME {
        return Err(format!("a name of {} bytes is too long", name.len()));
    }
    let mut parts = name.split('/');
    let top = parts.next().unwrap_or("");
    if !DIRECTORIES.contains(&top) {
        return Err(format!(
            "{:?} is not an object of a Lifeboat repository",
            printable(name)
        ));
    }
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() && !directory {
        return Err(format!("{top:?} is a directory, not an object"));
    }
    if let Some(bad) = rest.iter().find(|p| !safe_component(p)) {
        return Err(format!(
            "{:?} has an unsafe component {:?}",
            printable(name),
            printable(bad)
        ));
    }
    Ok(())
}

/// A name as it may appear in a log line or an answer: bounded, control characters out.
pub fn printable(name: &str) -> String {
    name.chars()
        .take(120)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_pass() {
        for name in [
            "config",
            "keys/0a1b",
            "data/ab/ab12",
            "index/ff",
            "snapshots/00",
            "locks/12",
            "streams/0123456789abcdef/fedcba9876543210/0000000001-1700000000000-t1_2-ab",
            "wal/7234/000000010000000000000001",
            "wal/7234/00000002.history",
            "drills/aa",
            "prune/bb",
            "damaged/cc",
        ] {
            assert_eq!(check_object(name), Ok(()), "{name}");
        }
        for dir in ["data", "locks", "streams/0123", "wal/7234"] {
            assert_eq!(check_directory(dir), Ok(()), "{dir}");
        }
    }

    #[test]
    fn unsafe_names_are_refused() {
        for name in [
            "",
            "/data/ab/x",
            "data",
            "data/",
            "data//x",
            "data/../config",
            "data/./x",
            "data/ab/..",
            ".tmp/123",
            "data/.hidden",
            "other/x",
            "configs",
            "config/x",
            "data/a b",
            "data/a\nb",
            "data/a\\b",
            "data/é",
        ] {
            assert!(check_object(name).is_err(), "{name:?} passed");
        }
        assert!(check_object(&format!("data/{}", "a".repeat(600))).is_err());
        for dir in ["", "/", "..", "data/..", ".tmp", "x"] {
            assert!(check_directory(dir).is_err(), "{dir:?} passed");
        }
        let err = check_object("data/a\nb").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
    }
}
