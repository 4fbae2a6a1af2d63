//! `lifeboat dump SNAPSHOT PATH`: one file of a snapshot on standard output, as restic's
//! `dump` (`lifeboat dump latest /app/config.json | jq .`). A SQLite database comes out as
//! the checked file a restore would write.

use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use anyhow::{bail, Context as _, Result};
use lifeboat_repo::tree::{escape_path, Node, NodeType};
use lifeboat_sources::files::node_key;

use crate::args::DumpArgs;
use crate::context::Context;

pub fn run(ctx: &Context, args: &DumpArgs) -> Result<()> {
    let repo = ctx.open()?;
    let snapshot = repo.find_snapshot_matching(&args.snapshot, &args.filter.filter())?;
    let index = repo.load_index()?;
    let node = find(&repo, &index, snapshot.snapshot.tree, &args.path)?;
    match node.node_type {
        NodeType::File => {}
        NodeType::Dir => bail!(
            "{} is a directory; restore it with `lifeboat restore {} --include {} --target DIR`",
            escape_path(&args.path),
            snapshot.id.short(),
            escape_path(&args.path)
        ),
        _ => bail!(
            "{} is a symlink; `lifeboat ls` shows where it points",
            escape_path(&args.path)
        ),
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = if node.sqlite {
        // Pages are assembled and the database checked in a private scratch file first:
        // what comes out is what `restore` would put in place.
        let scratch = tempfile::Builder::new()
            .prefix("lifeboat-dump-")
            .tempdir()?;
        let file = scratch.path().join("db");
        lifeboat_sources::restore::restore_file(
            &repo,
            &index,
            &node,
            &file,
            &lifeboat_sources::NoProgress,
        )?;
        let mut reader = std::fs::File::open(&file)?;
        std::io::copy(&mut reader, &mut out).map(|_| ())
    } else {
        let mut result = Ok(());
        for id in &node.content {
            let data = repo.read_blob(&index, id)?;
            if let Err(e) = out.write_all(&data) {
                result = Err(e);
                break;
            }
        }
        result
    }
    .and_then(|_| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

/// The node at `path` in the tree `root` (`/app/a.txt` as `ls` prints it, or `app/a.txt`).
fn find(
    repo: &lifeboat_repo::Repository,
    index: &lifeboat_repo::index::MasterIndex,
    root: lifeboat_repo::Id,
    path: &Path,
) -> Result<Node> {
    let names: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        bail!("give the path of a file in the snapshot, as `lifeboat ls` prints it");
    }
    let mut tree_id = root;
    for (depth, name) in names.iter().enumerate() {
        let tree = repo.load_tree(index, &tree_id)?;
        let Some(node) = tree
            .nodes
            .into_iter()
            .find(|n| node_key(n) == name.as_bytes())
        else {
            bail!(
                "{} is not in this snapshot (`lifeboat ls` lists what is)",
                escape_path(path)
            );
        };
        if depth + 1 == names.len() {
            return Ok(node);
        }
        match node.subtree {
            Some(subtree) => tree_id = subtree,
            None => bail!(
                "{} is not in this snapshot (`lifeboat ls` lists what is)",
                escape_path(path)
            ),
        }
    }
    unreachable!("the loop returns at the last name")
}
