//! From the file as written to the validated [`Config`]: every rule that serde cannot
//! express, with every problem collected rather than the first.

mod agent;
mod alert;
mod plan;
mod source;
mod target;

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::error::{ConfigError, LineIndex};
use crate::interpolate::interpolate;
use crate::model::Config;
use crate::raw::RawConfig;
use crate::spanned::Spanned;
use crate::Needs;

/// Validates a parsed file and builds the model, or returns every problem found.
pub(crate) fn check(
    raw: RawConfig,
    index: &LineIndex<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    needs: Needs,
) -> Result<Config, Vec<ConfigError>> {
    let mut checker = Checker {
        index,
        env,
        errors: Vec::new(),
        needs,
        in_agent_section: false,
    };
    let c = &mut checker;
    c.unique_names("source", raw.source.iter().map(|s| &s.name));
    c.unique_names("target", raw.target.iter().map(|t| &t.name));
    c.unique_names("plan", raw.plan.iter().map(|p| &p.name));

    // Plans are checked against every declared name, valid or not, so that one broken
    // source is reported once rather than again by each plan that uses it.
    let source_names: Vec<&str> = raw.source.iter().map(|s| s.name.value.as_str()).collect();
    let target_names: Vec<&str> = raw.target.iter().map(|t| t.name.value.as_str()).collect();

    let sources = raw
        .source
        .iter()
        .filter_map(|s| source::check(c, s))
        .collect();
    let targets = raw
        .target
        .iter()
        .filter_map(|t| target::check(c, t))
        .collect();
    let plans = raw
        .plan
        .iter()
        .filter_map(|p| plan::check(c, p, &source_names, &target_names))
        .collect();
    c.in_agent_section = true;
    let agent = agent::check(c, raw.agent.as_ref());
    let alerts = raw
        .alert
        .iter()
        .filter_map(|a| alert::check(c, a))
        .collect();
    c.in_agent_section = false;

    if checker.errors.is_empty() {
        Ok(Config {
            sources,
            targets,
            plans,
            agent: agent.unwrap_or_default(),
            alerts,
        })
    } else {
        Err(checker.errors)
    }
}

/// Collects problems while the sections are turned into the model.
struct Checker<'a> {
    index: &'a LineIndex<'a>,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<ConfigError>,
    needs: Needs,
    /// Set while `[agent]` and `[[alert]]` are checked: values only the agent uses.
    in_agent_section: bool,
}

impl Checker<'_> {
    fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.errors.push(self.index.error(span, message));
    }

    /// Fills in `${VAR}`s, pointing an error at the reference itself when the string is
    /// written without escapes (so its bytes in the file are its bytes in memory).
    /// A value only the agent uses, whose variable is unset while the command does not
    /// need it, is left out (`None`) without an error: its section is then dropped.
    fn interpolate(&mut self, value: &Spanned<String>) -> Option<String> {
        match interpolate(&value.value, self.env) {
            Ok(text) => Some(text),
            Err(e) if e.unset && self.in_agent_section && self.needs == Needs::Repositories => None,
            Err(e) => {
                let start = self.offset_in_string(value, e.offset);
                self.error(&(start..start), e.message);
                None
            }
        }
    }

    fn offset_in_string(&self, value: &Spanned<String>, offset: usize) -> usize {
        let written = &self.index.text()[value.span.clone()];
        for quote in ["\"\"\"", "'''", "\"", "'"] {
            let inner = written
                .strip_prefix(quote)
                .and_then(|rest| rest.strip_suffix(quote));
            if inner == Some(value.value.as_str()) {
                return value.span.start + quote.len() + offset;
            }
        }
        value.span.start
    }

    /// Interpolates, then refuses an empty result (an unset-looking variable set to "").
    fn non_empty(&mut self, value: &Spanned<String>, what: &str) -> Option<String> {
        let text = self.interpolate(value)?;
        if text.trim().is_empty() {
            self.error(&value.span, format!("{what} is empty"));
            return None;
        }
        Some(text)
    }

    fn duration(&mut self, value: &Spanned<String>, what: &str) -> Option<Duration> {
        match parse_duration(&value.value) {
            Ok(duration) => Some(duration),
            Err(e) => {
                self.error(&value.span, format!("bad {what}: {e}"));
                None
            }
        }
    }

    fn unique_names<'n>(&mut self, kind: &str, names: impl Iterator<Item = &'n Spanned<String>>) {
        let mut first_line: HashMap<&str, usize> = HashMap::new();
        for name in names {
            if name.value.is_empty() {
                self.error(&name.span, format!("{kind} name is empty"));
                continue;
            }
            let line = self.index.position(name.span.start).0;
            if let Some(first) = first_line.get(name.value.as_str()) {
                self.error(
                    &name.span,
                    format!(
                        "duplicate {kind} name {:?} (first defined on line {first})",
                        name.value
                    ),
                );
            } else {
                first_line.insert(&name.value, line);
            }
        }
    }
}
