//! Running the database's own client tools (`pg_dump`, `psql`, `mariadb-dump`, ...):
//! finding them, reading their versions, and turning their failures into one line.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use crate::{Result, SourceError};

/// A client tool found on this machine.
#[derive(Debug, Clone)]
pub struct Tool {
    pub path: PathBuf,
    /// The first line of `--version`, e.g. `pg_dump (PostgreSQL) 15.20 (Debian ...)`.
    pub version: String,
    pub major: u32,
}

impl Tool {
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.path);
        command.stdin(Stdio::null());
        command
    }
}

/// Reads `tool --version`; the major version is the first number after the tool's name.
pub fn probe(path: &Path) -> Option<Tool> {
    let output = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.lines().next()?.trim().to_string();
    let major = version
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .find(|part| part.chars().next().is_some_and(|c| c.is_ascii_digit()))?
        .split('.')
        .next()?
        .parse()
        .ok()?;
    Some(Tool {
        path: path.to_path_buf(),
        version,
        major,
    })
}

/// Every file called `name` in `PATH`, in order.
pub fn in_path(name: &str) -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}

/// Collects a child's standard error on a thread, so a chatty tool never blocks on a
/// full pipe, and keeps the end of it for the error message.
pub struct Stderr(JoinHandle<String>);

impl Stderr {
    pub fn capture(child: &mut Child) -> Stderr {
        let mut pipe = child.stderr.take().expect("stderr is piped");
        Stderr(std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            let text = String::from_utf8_lossy(&text).into_owned();
            // The end says why it failed; a runaway tool must not fill memory.
            match text.char_indices().rev().nth(16 * 1024) {
                Some((cut, _)) => text[cut..].to_string(),
                None => text,
            }
        }))
    }

    pub fn text(self) -> String {
        self.0.join().unwrap_or_default()
    }
}

/// The lines of a tool's error output that say what went wrong, on one line.
pub fn reason(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with("HINT:") && !l.starts_with("DETAIL:"))
        .collect();
    let wanted = lines
        .iter()
        .rev()
        .find(|l| l.contains("error") || l.contains("ERROR") || l.contains("FATAL"))
        .or(lines.last())
        .copied()
        .unwrap_or("no error output");
    let mut line = wanted.to_string();
    for prefix in ["psql: error: ", "pg_dump: error: ", "pg_dumpall: error: "] {
        if let Some(rest) = line.strip_prefix(prefix) {
            line = rest.to_string();
        }
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs a tool to completion and returns its standard output; a failure is an error
/// that names `what` and says why.
pub fn output(command: Command, what: &str) -> Result<String> {
    output_fed(command, None, what)
}

/// [`output`] with `input` written to the tool's standard input (on a thread of its own,
/// so a tool that answers before it has read everything cannot deadlock us).
pub fn output_fed(mut command: Command, input: Option<Vec<u8>>, what: &str) -> Result<String> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command
        .spawn()
        .map_err(|e| SourceError::Invalid(format!("{what}: cannot start: {e}")))?;
    let stderr = Stderr::capture(&mut child);
    let feeder = input.map(|input| {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        std::thread::spawn(move || {
            use std::io::Write;
            // A tool that stops early closes its end; its exit status says why.
            let _ = stdin.write_all(&input);
        })
    });
    let mut stdout = String::new();
    let read = child
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_string(&mut stdout);
    let status = child
        .wait()
        .map_err(|e| SourceError::Invalid(format!("{what}: {e}")))?;
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let stderr = stderr.text();
    if !status.success() {
        return Err(SourceError::Invalid(format!("{what}: {}", reason(&stderr))));
    }
    read.map_err(|e| SourceError::Invalid(format!("{what}: {e}")))?;
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_that_says_why() {
        let stderr = "psql: error: connection to server at \"127.0.0.1\", port 5432 failed: \
                      FATAL:  password authentication failed for user \"bob\"\n";
        assert_eq!(
            reason(stderr),
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL: password \
             authentication failed for user \"bob\""
        );
        assert_eq!(reason(""), "no error output");
    }
}
