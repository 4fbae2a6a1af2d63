//! Errors that point at a line and column of the configuration file.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file.
///
/// `line` and `column` are 1-based (the column counts characters, not bytes) and locate
/// the offending value. Both are 0 for a problem with the file as a whole, such as one
/// that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every problem found in one configuration file, in the order they appear in it.
///
/// Displays as one `origin:line:column: message` line per problem (`origin: message` for
/// a problem with the whole file), the shape compilers use, so editors can jump to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    origin: String,
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn new(origin: &str, mut errors: Vec<ConfigError>) -> Self {
        // Stable, so problems on one value keep the order they were found in.
        errors.sort_by_key(|e| (e.line, e.column));
        ConfigErrors {
            origin: origin.to_string(),
            errors,
        }
    }

    /// A problem with the file as a whole.
    pub(crate) fn whole_file(origin: &str, message: String) -> Self {
        ConfigErrors::new(
            origin,
            vec![ConfigError {
                line: 0,
                column: 0,
                message,
            }],
        )
    }

    /// The file name the messages refer to.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The problems, in file order (never empty).
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }
}

impl std::ops::Deref for ConfigErrors {
    type Target = [ConfigError];

    fn deref(&self) -> &[ConfigError] {
        &self.errors
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if e.line == 0 {
                write!(f, "{}: {}", self.origin, e.message)?;
            } else {
                write!(f, "{}:{}:{}: {}", self.origin, e.line, e.column, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Turns byte offsets into 1-based lines and character columns.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, line_starts }
    }

    /// The line and column of byte `offset` (clamped to the text).
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        // A span never starts inside a character, but an offset from elsewhere might.
        let column = self.text[start..]
            .char_indices()
            .take_while(|&(i, _)| start + i < offset)
            .count();
        (line + 1, column + 1)
    }

    pub fn error(&self, span: &Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.position(span.start);
        ConfigError {
            line,
            column,
            message: message.into(),
        }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let index = LineIndex::new("a = 1\nbé = \"x\"\n");
        assert_eq!(index.position(0), (1, 1));
        assert_eq!(index.position(4), (1, 5));
        assert_eq!(index.position(6), (2, 1));
        // "é" is two bytes but one column.
        assert_eq!(index.position(11), (2, 5));
        assert_eq!(index.position(999), (3, 1));
    }

    #[test]
    fn display_is_one_line_per_error_in_file_order() {
        let errors = ConfigErrors::new(
            "lifeboat.toml",
            vec![
                ConfigError {
                    line: 9,
                    column: 2,
                    message: "second".into(),
                },
                ConfigError {
                    line: 3,
                    column: 7,
                    message: "first".into(),
                },
            ],
        );
        assert_eq!(
            errors.to_string(),
            "lifeboat.toml:3:7: first\nlifeboat.toml:9:2: second"
        );
        let whole = ConfigErrors::whole_file("x.toml", "cannot read".into());
        assert_eq!(whole.to_string(), "x.toml: cannot read");
    }
}
