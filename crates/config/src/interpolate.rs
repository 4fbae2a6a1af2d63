//! `${VAR}` in string values, filled from the environment.

/// Why a string could not be interpolated. Messages name variables, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterpolateError {
    /// Byte offset of the offending `${` in the string.
    pub offset: usize,
    pub message: String,
    /// The reference was well formed but its variable is not set.
    pub unset: bool,
}

/// Replaces each `${NAME}` with `env(NAME)`; `$${` stands for a literal `${`, and a `$`
/// not followed by `{` is kept as it is (passwords contain dollars).
pub(crate) fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let offset = text.len() - rest.len() + dollar;
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err(InterpolateError {
                    offset,
                    message: "unterminated ${ (write $${ for a literal ${)".to_string(),
                    unset: false,
                });
            };
            let name = &tail[..end];
            if !is_variable_name(name) {
                return Err(InterpolateError {
                    offset,
                    message: format!(
                        "${{{name}}} is not a variable name (letters, digits and _, not starting with a digit)"
                    ),
                    unset: false,
                });
            }
            let Some(value) = env(name) else {
                return Err(InterpolateError {
                    offset,
                    message: format!("environment variable {name} is not set"),
                    unset: true,
                });
            };
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.example".into()),
            "PASSWORD" => Some("p$ss".into()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables() {
        assert_eq!(
            interpolate("postgres://app:${PASSWORD}@${HOST}/app", &env).unwrap(),
            "postgres://app:p$ss@db.example/app"
        );
        assert_eq!(interpolate("plain", &env).unwrap(), "plain");
        assert_eq!(interpolate("", &env).unwrap(), "");
    }

    #[test]
    fn double_dollar_is_a_literal_and_lone_dollars_stay() {
        assert_eq!(interpolate("$${HOST}", &env).unwrap(), "${HOST}");
        assert_eq!(interpolate("a$b$", &env).unwrap(), "a$b$");
        assert_eq!(interpolate("$$", &env).unwrap(), "$$");
        assert_eq!(interpolate("$$${HOST}", &env).unwrap(), "$${HOST}");
    }

    #[test]
    fn missing_variable_names_it_and_its_place() {
        let err = interpolate("https://${HOST}/${MISSING}", &env).unwrap_err();
        assert_eq!(err.offset, 16);
        assert_eq!(err.message, "environment variable MISSING is not set");
        assert!(err.unset);
        assert!(!err.message.contains("db.example"));
    }

    #[test]
    fn malformed_references_are_errors() {
        assert_eq!(interpolate("x${HOST", &env).unwrap_err().offset, 1);
        assert!(!interpolate("x${HOST", &env).unwrap_err().unset);
        assert!(interpolate("${}", &env)
            .unwrap_err()
            .message
            .contains("not a variable name"));
        assert!(interpolate("${1X}", &env).is_err());
        assert!(interpolate("${A-B}", &env).is_err());
    }
}
