//! A restore treats both its target directory and the repository as hostile (issue 15,
//! items 1-5): nothing is written, chowned or chmodded outside the target, whatever
//! symlinks the web app's user planted in it or whatever trees a repository holds; files
//! stay private until the restore is done; names print escaped.
//!
//! These run as root, as CI does (a restore as root is the dangerous one); the web app's
//! user is `nobody` (65534).

mod common;

use std::fs;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{is_root, succeeded, TestRepo, PASSWORD};
use lifeboat_repo::pack::BlobKind;
use lifeboat_repo::session::WriteSession;
use lifeboat_repo::tree::{Node, NodeType, Tree};
use lifeboat_repo::{Id, Repository};

const NOBODY: u32 = 65534;

/// These tests need root (to restore ownership and to act as another user).
macro_rules! require_root {
    () => {
        if !is_root() {
            common::skip("needs root, as CI runs it");
            return;
        }
    };
}

/// A repository in a scratch directory that `nobody` may traverse (as a web app's user
/// can reach its own files).
fn repo() -> TestRepo {
    let repo = TestRepo::local();
    fs::set_permissions(repo.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    repo
}

/// Runs `sh -c script` as `nobody`.
fn as_nobody(script: &str) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .output()
        .expect("run setpriv")
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn owner(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().uid()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `app/` with `uploads/avatars/a.png` owned by the web app's user, backed up and
/// restored to `t1`, as in the issue. Returns the target.
fn restored_app(repo: &TestRepo) -> PathBuf {
    let app = repo.path("src/app");
    fs::create_dir_all(app.join("uploads/avatars")).unwrap();
    fs::write(app.join("index.js"), b"console.log(1)").unwrap();
    fs::write(app.join("uploads/avatars/a.png"), b"avatar").unwrap();
    for path in ["uploads", "uploads/avatars", "uploads/avatars/a.png"] {
        chown(app.join(path), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    fs::set_permissions(
        app.join("uploads/avatars"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    repo.backup(&[&app]);
    let t1 = repo.path("t1");
    repo.ok(&["restore", "latest", "--target", t1.to_str().unwrap()]);
    assert_eq!(owner(&t1.join("app/uploads/avatars")), NOBODY);
    t1
}

/// A root-owned directory outside the target with one private file in it.
fn outside(repo: &TestRepo) -> PathBuf {
    let outside = repo.path("outside");
    fs::create_dir(&outside).unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(outside.join("precious"), b"root's secret").unwrap();
    fs::set_permissions(outside.join("precious"), fs::Permissions::from_mode(0o600)).unwrap();
    outside
}

fn assert_outside_untouched(outside: &Path) {
    assert_eq!(
        names(outside),
        ["precious"],
        "something was written outside"
    );
    assert_eq!(owner(outside), 0, "the outside directory was chowned");
    assert_eq!(mode(outside), 0o755, "the outside directory was chmodded");
    let precious = outside.join("precious");
    assert_eq!(fs::read(&precious).unwrap(), b"root's secret");
    assert_eq!(owner(&precious), 0, "the outside file was chowned");
    assert_eq!(mode(&precious), 0o600, "the outside file was chmodded");
}

#[test]
fn a_symlink_planted_at_a_directory_is_replaced_not_followed() {
    require_root!();
    let repo = repo();
    let t1 = restored_app(&repo);
    let outside = outside(&repo);
    let avatars = t1.join("app/uploads/avatars");
    let planted = as_nobody(&format!(
        "rm -rf '{0}' && ln -s '{1}' '{0}'",
        avatars.display(),
        outside.display()
    ));
    succeeded(&planted);
    assert!(fs::symlink_metadata(&avatars)
        .unwrap()
        .file_type()
        .is_symlink());

    repo.ok(&[
        "restore",
        "latest",
        "--target",
        t1.to_str().unwrap(),
        "--force",
    ]);

    assert_outside_untouched(&outside);
    let meta = fs::symlink_metadata(&avatars).unwrap();
    assert!(meta.is_dir(), "the link was not replaced by a directory");
    assert_eq!(meta.uid(), NOBODY);
    assert_eq!(fs::read(avatars.join("a.png")).unwrap(), b"avatar");
    assert_eq!(owner(&avatars.join("a.png")), NOBODY);
}

#[test]
fn a_symlink_planted_at_a_file_is_replaced_not_followed() {
    require_root!();
    let repo = repo();
    let t1 = restored_app(&repo);
    let outside = outside(&repo);
    let avatar = t1.join("app/uploads/avatars/a.png");
    succeeded(&as_nobody(&format!(
        "rm -f '{0}' && ln -s '{1}/precious' '{0}'",
        avatar.display(),
        outside.display()
    )));

    repo.ok(&[
        "restore",
        "latest",
        "--target",
        t1.to_str().unwrap(),
        "--force",
    ]);

    assert_outside_untouched(&outside);
    let meta = fs::symlink_metadata(&avatar).unwrap();
    assert!(meta.is_file(), "the link was not replaced by a file");
    assert_eq!(fs::read(&avatar).unwrap(), b"avatar");
    assert_eq!(meta.uid(), NOBODY);
}

/// Writes hostile objects into a repository with its key, as an attacker holding the key
/// (or a buggy writer) could: trees that break the tree rules, snapshots pointing at them.
struct Forge {
    repo: Repository,
    session: WriteSession,
}

impl Forge {
    fn open(test: &TestRepo) -> Forge {
        let storage = lifeboat_storage::Storage::open(&test.url).unwrap();
        let repo = Repository::open(storage, PASSWORD.as_bytes()).unwrap();
        let session = WriteSession::start(&repo, "forge").unwrap();
        Forge { repo, session }
    }

    /// Stores `nodes` as a tree blob as given: unsorted, duplicated, anything.
    fn tree(&self, nodes: Vec<Node>) -> Id {
        self.session
            .store_blob(BlobKind::Tree, Tree { nodes }.to_bytes())
            .unwrap()
    }

    fn data(&self, bytes: &[u8]) -> Id {
        self.session
            .store_blob(BlobKind::Data, bytes.to_vec())
            .unwrap()
    }

    /// Stores a snapshot like `template` (an id prefix) but with root tree `root`, newer
    /// than every other; returns its id.
    fn snapshot(self, template: &str, root: Id) -> String {
        let mut snapshot = self.repo.find_snapshot(template).unwrap().snapshot;
        snapshot.tree = root;
        snapshot.time = chrono::Utc::now() + chrono::Duration::seconds(5);
        let finished = self.session.finish().unwrap();
        finished.save_snapshot(&snapshot).unwrap().to_hex()
    }
}

fn node(name: &str, node_type: NodeType, mode: u32) -> Node {
    Node {
        mode,
        mtime: 1_700_000_000,
        ..Node::new(name, node_type)
    }
}

#[test]
fn a_tree_with_a_directory_and_a_symlink_of_one_name_is_refused() {
    require_root!();
    let repo = repo();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    let template = repo.backup(&[&src]);
    let outside = outside(&repo);
    // `d/precious` (mode 0666) and a symlink `d` to the outside directory: restored in
    // that order, metadata applied through the link would open up root's file.
    let forge = Forge::open(&repo);
    let inner = forge.tree(vec![node("precious", NodeType::File, 0o666)]);
    let root = forge.tree(vec![
        Node {
            subtree: Some(inner),
            ..node("d", NodeType::Dir, 0o777)
        },
        Node {
            target: Some(outside.display().to_string()),
            ..node("d", NodeType::Symlink, 0o777)
        },
    ]);
    let hostile = forge.snapshot(&template, root);

    let target = repo.path("t");
    let stderr = repo.fails(
        &["restore", &hostile, "--target", target.to_str().unwrap()],
        1,
    );
    assert!(stderr.contains("\"d\" appears twice"), "{stderr}");
    assert_outside_untouched(&outside);
    // Refused before anything was written.
    assert!(!target.exists() || names(&target).is_empty());

    let out = repo.run(&["verify"]);
    assert_eq!(out.status.code(), Some(3), "verify must report the tree");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("\"d\" appears twice"), "{report}");
}

#[test]
fn unsorted_and_unsafe_names_are_refused_by_restore_and_verify() {
    require_root!();
    let repo = repo();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    let template = repo.backup(&[&src]);
    for (nodes, problem) in [
        (
            vec![
                node("b", NodeType::File, 0o644),
                node("a", NodeType::File, 0o644),
            ],
            "names are not sorted (\"b\" before \"a\")",
        ),
        (
            vec![node("..", NodeType::Dir, 0o755)],
            "the name \"..\" is not a file name",
        ),
        (
            vec![
                node("\u{1b}[31mred", NodeType::File, 0o644),
                node("\u{1}x", NodeType::File, 0o644),
            ],
            "names are not sorted (\"\\x1b[31mred\" before \"\\x01x\")",
        ),
    ] {
        let target = repo.path("t");
        let _ = fs::remove_dir_all(&target);
        let forge = Forge::open(&repo);
        let root = forge.tree(nodes);
        let hostile = forge.snapshot(&template, root);
        let stderr = repo.fails(
            &["restore", &hostile, "--target", target.to_str().unwrap()],
            1,
        );
        assert!(stderr.contains(problem), "{stderr}");
        assert!(!stderr.contains('\u{1b}'), "raw escape in {stderr:?}");
        let out = repo.run(&["verify"]);
        assert_eq!(out.status.code(), Some(3), "verify must refuse: {problem}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(problem));
        // Only this case's snapshot in the next round.
        fs::remove_file(repo.repo_dir().join("snapshots").join(&hostile)).unwrap();
    }
}

#[test]
fn command_snapshot_names_cannot_leave_the_target() {
    require_root!();
    let repo = repo();
    for name in ["../x", "/abs", ".."] {
        let stderr = repo.fails(
            &["backup", "--stdin-from-command", "echo hi", "--name", name],
            1,
        );
        assert!(stderr.contains("--name"), "{name}: {stderr}");
    }
    assert!(repo.snapshot_ids().is_empty());
    let template = {
        repo.ok(&[
            "backup",
            "--stdin-from-command",
            "echo stream",
            "--name",
            "ok.txt",
        ]);
        repo.snapshot_ids().pop().unwrap()
    };
    let escaped = repo.path("escaped");
    let abs = escaped.display().to_string();
    for name in ["../escaped", abs.as_str()] {
        let forge = Forge::open(&repo);
        let blob = forge.data(b"stream\n");
        let root = forge.tree(vec![Node {
            size: 7,
            content: vec![blob],
            ..node(name, NodeType::File, 0o600)
        }]);
        let hostile = forge.snapshot(&template, root);
        let target = repo.path("t");
        fs::create_dir_all(&target).unwrap();
        let stderr = repo.fails(
            &["restore", &hostile, "--target", target.to_str().unwrap()],
            1,
        );
        assert!(stderr.contains("not valid"), "{name}: {stderr}");
        assert!(
            !escaped.exists(),
            "{name}: the stream was written outside the target"
        );
        assert!(names(&target).is_empty());
    }
}

#[test]
fn restored_files_stay_private_until_the_restore_ends() {
    require_root!();
    let repo = repo();
    let app = repo.path("src/app");
    fs::create_dir_all(app.join("private")).unwrap();
    fs::write(app.join("public.txt"), b"everyone may read this, later").unwrap();
    fs::write(app.join("private/secret.txt"), b"only root").unwrap();
    fs::set_permissions(&app, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(app.join("public.txt"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(app.join("private"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(
        app.join("private/secret.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    repo.backup(&[&app]);

    let target = repo.path("t");
    let pause = repo.path("pause");
    let mut child = repo
        .command()
        .args(["restore", "latest", "--target", target.to_str().unwrap()])
        .env(
            "LIFEBOAT_PAUSE_AT",
            format!("restore-filled:{}", pause.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reached = PathBuf::from(format!("{}.reached", pause.display()));
    // Wait for the pause point, or for the restore to end without reaching it.
    while !reached.exists() {
        if child.try_wait().unwrap().is_some() {
            panic!("the restore ended without pausing after writing the files");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Every file is written now, none is open to others yet.
    for (path, want) in [
        ("app", 0o700),
        ("app/private", 0o700),
        ("app/public.txt", 0o600),
        ("app/private/secret.txt", 0o600),
    ] {
        assert_eq!(mode(&target.join(path)), want, "{path} during the restore");
    }
    let peek = as_nobody(&format!(
        "cat '{0}/app/public.txt' '{0}/app/private/secret.txt'",
        target.display()
    ));
    assert!(
        !peek.status.success(),
        "another user read a file being restored"
    );
    assert!(peek.stdout.is_empty());

    fs::write(format!("{}.go", pause.display()), b"").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&target.join("app")), 0o755);
    assert_eq!(mode(&target.join("app/public.txt")), 0o644);
    assert_eq!(mode(&target.join("app/private/secret.txt")), 0o600);
    succeeded(&as_nobody(&format!(
        "cat '{}/app/public.txt'",
        target.display()
    )));
}

#[test]
fn ls_and_errors_print_names_escaped() {
    let repo = repo();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("\u{1b}[31mred"), b"x").unwrap();
    fs::write(src.join("two\nlines"), b"y").unwrap();
    symlink("\u{1b}[2Jclear", src.join("link")).unwrap();
    repo.backup(&[&src]);
    let listing = repo.ok(&["ls", "latest"]);
    assert!(!listing.contains('\u{1b}'), "raw escape in {listing:?}");
    assert!(listing.contains("/src/\\x1b[31mred"), "{listing}");
    assert!(listing.contains("/src/two\\nlines"), "{listing}");
    assert!(listing.contains("-> \\x1b[2Jclear"), "{listing}");
    // One line per entry: the root directory and its three entries.
    assert_eq!(listing.lines().count(), 4, "{listing}");
}
