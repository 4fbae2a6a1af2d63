//! Command output as a source: `backup --stdin-from-command "CMD" --name NAME` stores
//! a command's standard output as one file; restore writes it to a file or pipes it into
//! another command's standard input.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use lifeboat_repo::index::MasterIndex;
use lifeboat_repo::session::{StoredContent, WriteSession};
use lifeboat_repo::tree::{Node, NodeType, Tree};
use lifeboat_repo::{Id, Repository};

use crate::{Progress, Result, SourceError};

/// Runs `command` with `sh -c`, stores its stdout as the file `name` and returns the root
/// tree and the number of bytes. A command that exits non-zero fails the backup (its
/// output may be incomplete), so no snapshot is written for it.
pub fn backup_command(
    session: &WriteSession,
    command: &str,
    name: &str,
    progress: &dyn Progress,
) -> Result<(Id, u64)> {
    // The tree rules: a restore puts the stream at `target/name`, so the name must be one
    // plain path component.
    if let Err(problem) = lifeboat_repo::tree::check_name(name.as_bytes()) {
        return Err(SourceError::Invalid(format!(
            "--name {}: {}",
            lifeboat_repo::tree::escape_name(name.as_bytes()),
            problem.trim_start_matches("tree is not valid: ")
        )));
    }
    let mut child = crate::child_env::user_command("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| SourceError::Invalid(format!("cannot start {command:?}: {e}")))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stored = session.store_reader(stdout, &format!("output of {command:?}"), |n| {
        progress.bytes(n)
    });
    let status = child
        .wait()
        .map_err(|e| SourceError::Invalid(format!("waiting for {command:?}: {e}")))?;
    let stored = stored?;
    if !status.success() {
        return Err(SourceError::Invalid(format!(
            "{command:?} failed ({status}); no snapshot was written"
        )));
    }
    let size = stored.size;
    let root = session.store_tree(&Tree {
        nodes: vec![file_node(name, stored)],
    })?;
    Ok((root, size))
}

/// A stream stored as one private file in a snapshot tree, dated now.
pub fn file_node(name: &str, stored: StoredContent) -> Node {
    Node {
        mode: 0o600,
        mtime: chrono::Utc::now().timestamp(),
        size: stored.size,
        content: stored.ids,
        ..Node::new(name, NodeType::File)
    }
}

/// The single file node of a command snapshot's root tree.
pub fn stream_node(repo: &Repository, index: &MasterIndex, root: &Id) -> Result<Node> {
    let tree = repo.load_tree(index, root)?;
    match tree.nodes.as_slice() {
        [node] if node.node_type == NodeType::File => Ok(node.clone()),
        _ => Err(SourceError::Invalid(
            "this snapshot does not hold a single stream".into(),
        )),
    }
}

/// Writes the stream to `out`, blob by blob, checking each.
pub fn write_stream(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    out: &mut dyn Write,
    what: &str,
    progress: &dyn Progress,
) -> Result<()> {
    for id in &node.content {
        let data = repo.read_blob(index, id)?;
        out.write_all(&data).map_err(|e| SourceError::io(what, e))?;
        progress.bytes(data.len() as u64);
    }
    out.flush().map_err(|e| SourceError::io(what, e))
}

/// Restores the stream into a new file at `target` (written beside it, then renamed, so
/// a failed restore leaves no partial file under the final name; both are reached from a
/// handle on the directory, by one name each, never through a symlink).
pub fn restore_to_file(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    target: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    crate::restore::write_then_rename(target, |file| {
        write_stream(
            repo,
            index,
            node,
            file,
            &lifeboat_repo::tree::escape_path(target),
            progress,
        )
    })
}

/// Pipes the stream into `command`'s stdin (`sh -c`); fails if the command fails.
pub fn restore_to_command(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    command: &str,
    progress: &dyn Progress,
) -> Result<()> {
    let mut child = crate::child_env::user_command("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| SourceError::Invalid(format!("cannot start {command:?}: {e}")))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = write_stream(
        repo,
        index,
        node,
        &mut stdin,
        &format!("stdin of {command:?}"),
        progress,
    );
    drop(stdin);
    let status = child
        .wait()
        .map_err(|e| SourceError::Invalid(format!("waiting for {command:?}: {e}")))?;
    written?;
    if !status.success() {
        return Err(SourceError::Invalid(format!(
            "{command:?} failed ({status})"
        )));
    }
    Ok(())
}
