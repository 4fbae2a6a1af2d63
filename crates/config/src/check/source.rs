//! `[[source]]`: exactly one of url and command.

use super::Checker;
use crate::model::{Source, SourceLocation};
use crate::raw::RawSource;

pub(super) fn check(c: &mut Checker<'_>, raw: &RawSource) -> Option<Source> {
    let name = &raw.name.value;
    let location = match (&raw.url, &raw.command) {
        (Some(url), None) => SourceLocation::Url(c.non_empty(url, "url")?),
        (None, Some(command)) => SourceLocation::Command(c.non_empty(command, "command")?),
        (Some(_), Some(command)) => {
            c.error(
                &command.span,
                format!("source {name:?} has both url and command; give one"),
            );
            return None;
        }
        (None, None) => {
            c.error(
                &raw.name.span,
                format!("source {name:?} has neither url nor command"),
            );
            return None;
        }
    };
    Some(Source {
        name: name.clone(),
        location,
        checks: raw.checks.clone(),
    })
}
