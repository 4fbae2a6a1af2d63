//! `[[source]]`: exactly one of url and command.

use super::Checker;
use crate::model::{FileSelection, Source, SourceLocation};
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
    let select = FileSelection {
        exclude: raw.exclude.clone(),
        exclude_if_present: raw.exclude_if_present.clone(),
        one_file_system: raw.one_file_system,
    };
    let is_path = match &location {
        SourceLocation::Url(url) => !url.contains("://") || url.starts_with("file://"),
        SourceLocation::Command(_) => false,
    };
    if !select.is_empty() && !is_path {
        c.error(
            &raw.name.span,
            format!(
                "source {name:?}: exclude, exclude_if_present and one_file_system apply to files and directories, not to a database server or a command"
            ),
        );
        return None;
    }
    if let Some(bad) = select
        .exclude
        .iter()
        .chain(&select.exclude_if_present)
        .find(|p| p.trim().is_empty())
    {
        c.error(
            &raw.name.span,
            format!("source {name:?}: an empty pattern or name ({bad:?}) in exclude"),
        );
        return None;
    }
    Some(Source {
        name: name.clone(),
        location,
        checks: raw.checks.clone(),
        select,
    })
}
