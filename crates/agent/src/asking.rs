//! Use cases the API asks of a `lifeboat request` child: the typed request goes to its
//! standard input (never its arguments, which every user can read in the process list)
//! and its typed report comes back on its standard output, read strictly.

use std::path::PathBuf;

use lifeboat_config::Target;
use lifeboat_ops::report;
use lifeboat_ops::request::Request;
use serde::de::DeserializeOwned;

use crate::children::{Children, Finished};

pub struct Asker {
    pub exe: PathBuf,
    /// The configuration file, which names the sources and targets a request names.
    pub config_path: PathBuf,
    pub children: Children,
}

impl Asker {
    /// Runs `request` against `target` (none: the repositories lifeboat.toml names) and
    /// reads its report; the error is one line, the child's own when it failed.
    pub fn ask<R: DeserializeOwned>(
        &self,
        target: Option<&Target>,
        request: &Request,
        what: &str,
    ) -> Result<R, String> {
        match self.run(target, request) {
            Ok(done) if done.success => report::parse(what, &done.stdout),
            Ok(done) => Err(done.error),
            Err(e) => Err(format!("cannot start lifeboat: {e}")),
        }
    }

    /// Runs `request` and gives what the child printed and how it exited, for a use
    /// case whose report comes with a non-zero exit too (a backup saved with warnings).
    pub fn run(&self, target: Option<&Target>, request: &Request) -> std::io::Result<Finished> {
        let args = vec![
            "--json".to_string(),
            "--quiet".into(),
            "request".into(),
            "--config".into(),
            self.config_path.display().to_string(),
        ];
        let input = serde_json::to_vec(request).expect("requests serialize");
        self.children
            .run_with_input(&self.exe, target, &args, Some(input))
    }
}
