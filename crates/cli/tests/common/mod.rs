//! Shared helpers for end-to-end tests: run the real `lifeboat` binary against a real
//! repository (a local directory, or Garage S3 when the test sets one up).
#![allow(dead_code)]

pub mod browser;
pub mod concurrent;
pub mod garage_cluster;
pub mod http;
pub mod mariadb;
pub mod paused;
pub mod postgres;
pub mod server;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PASSWORD: &str = "correct horse battery staple";

/// Records that the running test did not run its checks, for want of something this
/// machine lacks (root, a tmpfs mount): said on stderr, and appended to the file named by
/// `LIFEBOAT_TEST_SKIPS`, which `scripts/test.sh` counts, so a skip is never a pass.
pub fn skip(reason: &str) {
    eprintln!("skipped: {reason}");
    let Some(file) = std::env::var_os("LIFEBOAT_TEST_SKIPS") else {
        return;
    };
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
        .map(|stem| {
            stem.rsplit_once('-')
                .map_or(stem.clone(), |(name, _)| name.to_string())
        })
        .unwrap_or_default();
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let line = format!("{binary}::{test}: {}\n", reason.replace('\n', " "));
    use std::io::Write as _;
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!(
            "cannot record the skip in {}: {e}",
            Path::new(&file).display()
        );
    }
}

/// The shell commands of a runbook's section `heading`, block by block (tests run them as
/// printed).
pub fn runbook_blocks(runbook: &str, heading: &str) -> Vec<String> {
    let start = runbook
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in the runbook:\n{runbook}"));
    let section = &runbook[start + heading.len()..];
    let section = &section[..section.find("\n### ").unwrap_or(section.len())];
    section
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap().to_string())
        .collect()
}

/// Asserts that a finished command succeeded; returns its stdout.
pub fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a `lifeboat.toml` with one source `data` (at `source_url`), one target `vault`
/// (at `target_url`) and an hourly plan `p` between them.
pub fn write_one_plan_config(path: &Path, source_url: &str, target_url: &str) {
    std::fs::write(
        path,
        format!(
            "[[source]]\nname = \"data\"\nurl = \"{source_url}\"\n[[target]]\nname = \"vault\"\nurl = \"{target_url}\"\n\
             [[plan]]\nname = \"p\"\nsources = [\"data\"]\ntargets = [\"vault\"]\nschedule = \"every 1h\"\n"
        ),
    )
    .expect("write lifeboat.toml");
}

pub fn lifeboat_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"))
}

/// A scratch directory and a repository URL; commands get the repo and passphrase
/// through the environment, as users pass them.
pub struct TestRepo {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub extra_env: Vec<(String, String)>,
}

impl TestRepo {
    /// A fresh local repository, initialised with cheap KDF settings.
    pub fn local() -> TestRepo {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = dir.path().join("repo").display().to_string();
        let repo = TestRepo {
            dir,
            url,
            extra_env: Vec::new(),
        };
        repo.init();
        repo
    }

    /// A repository at `url` (not yet initialised).
    pub fn at(url: &str, extra_env: Vec<(String, String)>) -> TestRepo {
        TestRepo {
            dir: tempfile::tempdir().expect("tempdir"),
            url: url.to_string(),
            extra_env,
        }
    }

    pub fn init(&self) {
        self.ok(&["init", "--kdf-memory-mib", "8", "--kdf-iterations", "1"]);
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn repo_dir(&self) -> PathBuf {
        PathBuf::from(&self.url)
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(lifeboat_bin());
        cmd.env("LIFEBOAT_REPO", &self.url)
            .env("LIFEBOAT_PASSWORD", PASSWORD)
            .env("LIFEBOAT_CACHE_DIR", self.dir.path().join("cache"))
            .env_remove("LIFEBOAT_PASSWORD_FILE")
            .env_remove("LIFEBOAT_LOG");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run lifeboat")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lifeboat {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs and asserts failure with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "lifeboat {args:?} should exit {code}:\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!stderr.contains("panicked"), "panic: {stderr}");
        stderr
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).expect("valid json")
    }

    /// Backs up `paths` and returns the snapshot id.
    pub fn backup(&self, paths: &[&Path]) -> String {
        let mut args = vec!["backup".to_string()];
        args.extend(paths.iter().map(|p| p.display().to_string()));
        args.push("--json".into());
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let out: serde_json::Value = serde_json::from_str(&self.ok(&refs)).expect("json");
        out["id"].as_str().expect("id").to_string()
    }

    pub fn snapshot_ids(&self) -> Vec<String> {
        self.json(&["snapshots"])
            .as_array()
            .expect("array")
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_string())
            .collect()
    }

    /// Restores `snapshot` into a new directory and returns it.
    pub fn restore(&self, snapshot: &str, name: &str) -> PathBuf {
        let target = self.path(name);
        self.ok(&["restore", snapshot, "--target", target.to_str().unwrap()]);
        target
    }
}

/// What a tree holds, path by path: type, permission bits, size, content hash, link target.
pub fn digest(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, path: &Path, out: &mut BTreeMap<String, String>) {
    let meta = std::fs::symlink_metadata(path).expect("metadata");
    let rel = path.strip_prefix(root).unwrap().display().to_string();
    let mode = meta.mode() & 0o7777;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).unwrap();
        out.insert(rel, format!("link {}", target.display()));
    } else if meta.is_dir() {
        out.insert(rel, format!("dir {mode:o}"));
        for entry in std::fs::read_dir(path).unwrap() {
            walk(root, &entry.unwrap().path(), out);
        }
    } else {
        let bytes = std::fs::read(path).unwrap();
        out.insert(
            rel,
            format!(
                "file {mode:o} {} {} mtime={}",
                bytes.len(),
                blake3::hash(&bytes).to_hex(),
                meta.mtime()
            ),
        );
    }
}

/// Deterministic pseudo-random bytes (xorshift), so tests are reproducible.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Total bytes of every file below `dir`. A file that goes while it is measured (a
/// server writing beside it renames its temporary files) is not counted.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("{}: {e}", entry.path().display()),
            };
            total += if meta.is_dir() {
                dir_size(&entry.path())
            } else {
                meta.len()
            };
        }
    }
    total
}

/// For databases whose every transaction adds +x and -x to `ledger(amount)` and bumps
/// `counter(n)`: checks integrity and that no transaction was torn (sum 0, rows 2n), and
/// returns n.
pub fn ledger_counter(path: &Path) -> i64 {
    let db = rusqlite::Connection::open(path).unwrap();
    assert_integrity(path);
    let (rows, sum): (i64, i64) = db
        .query_row(
            "SELECT count(*), coalesce(sum(amount), 0) FROM ledger",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let n: i64 = db
        .query_row("SELECT n FROM counter", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, 0, "half a transaction was captured");
    assert_eq!(rows, 2 * n, "rows and counter disagree: a torn state");
    n
}

/// `PRAGMA integrity_check` and `foreign_key_check` both clean.
pub fn assert_integrity(path: &Path) {
    let db = rusqlite::Connection::open(path).unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "{}", path.display());
    let violations: i64 = db
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(violations, 0, "{}: foreign key violations", path.display());
}

/// Every file under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Whether the tests run as root (ownership, other users, mounts need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Writes `len` pseudo-random bytes (from `seed`) to `path`, creating its directory.
pub fn write_pseudo_random(path: &Path, len: usize, seed: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, pseudo_random(len, seed)).unwrap();
}
