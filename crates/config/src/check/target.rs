//! `[[target]]`: a repository and where its password comes from.

use std::path::PathBuf;

use super::Checker;
use crate::model::Target;
use crate::raw::RawTarget;
use crate::secret::Secret;

pub(super) fn check(c: &mut Checker<'_>, raw: &RawTarget) -> Option<Target> {
    let name = &raw.name.value;
    let url = c.non_empty(&raw.url, "url");
    // Outer None: not set; inner None: set but broken (already reported).
    let password = raw
        .password
        .as_ref()
        .map(|p| c.non_empty(p, "password").map(Secret::new));
    if let Some(file) = &raw.password_file {
        if file.value.is_empty() {
            c.error(&file.span, "password_file is empty");
        }
        if raw.password.is_some() {
            c.error(
                &file.span,
                format!("target {name:?} has both password and password_file; give one"),
            );
        }
    }
    let password = match password {
        Some(secret) => Some(secret?),
        None => None,
    };
    Some(Target {
        name: name.clone(),
        url: url?,
        password,
        password_file: raw
            .password_file
            .as_ref()
            .map(|file| PathBuf::from(&file.value)),
    })
}
