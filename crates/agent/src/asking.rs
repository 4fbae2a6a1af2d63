//! Use cases the API asks of a `lifeboat request` child: the typed request goes to its
//! standard input (never its arguments, which every user can read in the process list)
//! and its typed report comes back on its standard output, read strictly.

use std::path::PathBuf;

use lifeboat_config::Target;
use lifeboat_ops::report;
use lifeboat_ops::request::Request;
use serde::de::DeserializeOwned;

use crate::children::Children;

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
        let args = vec![
            "request".to_string(),
            "--config".into(),
            self.config_path.display().to_string(),
        ];
        let input = serde_json::to_vec(request).expect("requests serialize");
        match self
            .children
            .run_with_input(&self.exe, target, &args, &[], Some(input))
        {
            Ok(done) if done.success => report::parse(what, &done.stdout),
            Ok(done) => Err(done.error),
            Err(e) => Err(format!("cannot start lifeboat: {e}")),
        }
    }
}
