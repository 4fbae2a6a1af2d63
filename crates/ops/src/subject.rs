//! A source as the use cases that take one see it: its name, what was backed up, the
//! checks a drill runs on it, and the repository that holds it. The front ends find it
//! (the CLI from lifeboat.toml or a path with `--repo`).

use lifeboat_repo::Repository;

pub struct Subject {
    /// The source's name in the configuration, or the path/URL as given.
    pub name: String,
    /// What was backed up: a path, or a `sqlite:`/`postgres://`/`mysql://` URL.
    pub location: String,
    /// The source's drill checks (none without a configuration).
    pub checks: Vec<String>,
    pub repo: Repository,
}
