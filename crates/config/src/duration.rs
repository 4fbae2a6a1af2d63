//! Durations as people write them in a config file: `30s`, `15m`, `1h30m`, `7d`, `2w`.

use std::time::Duration;

/// Units from largest to smallest; a duration names each at most once, in this order.
const UNITS: [(char, u64); 5] = [
    ('w', 7 * 24 * 3600),
    ('d', 24 * 3600),
    ('h', 3600),
    ('m', 60),
    ('s', 1),
];

/// Why a duration could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration; write a number and a unit, like 15m")]
    Empty,
    #[error("{0:?} is not a duration; write numbers with units, like 1h30m")]
    Malformed(String),
    #[error("unknown unit {unit:?} in {text:?}; use w, d, h, m or s")]
    UnknownUnit { text: String, unit: String },
    #[error(
        "{0:?} repeats a unit or lists units out of order; write them largest first, like 1h30m"
    )]
    UnitOrder(String),
    #[error("{0:?} is too long")]
    Overflow(String),
    #[error("a duration of zero ({0:?}) is not allowed")]
    Zero(String),
}

/// Parses a positive duration made of whole `w`, `d`, `h`, `m` and `s` parts, largest
/// first (`1h30m`, never `30m1h`, so a repeated or misplaced unit is caught as a typo).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let malformed = || DurationError::Malformed(text.to_string());
    let overflow = || DurationError::Overflow(text.to_string());
    let mut rest = text;
    let mut total: u64 = 0;
    // Index into UNITS of the next unit allowed: enforces largest-first, each once.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(malformed());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| overflow())?;
        rest = &rest[digits..];
        let letters = rest.len() - rest.trim_start_matches(|c: char| c.is_alphabetic()).len();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let mut chars = unit.chars();
        let (Some(symbol), None) = (chars.next(), chars.next()) else {
            return Err(if unit.is_empty() {
                malformed()
            } else {
                DurationError::UnknownUnit {
                    text: text.to_string(),
                    unit: unit.to_string(),
                }
            });
        };
        let Some(position) = UNITS.iter().position(|&(s, _)| s == symbol) else {
            return Err(DurationError::UnknownUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            });
        };
        if position < next_unit {
            return Err(DurationError::UnitOrder(text.to_string()));
        }
        next_unit = position + 1;
        let seconds = number.checked_mul(UNITS[position].1).ok_or_else(overflow)?;
        total = total.checked_add(seconds).ok_or_else(overflow)?;
    }
    if total == 0 {
        return Err(DurationError::Zero(text.to_string()));
    }
    Ok(Duration::from_secs(total))
}

/// Writes a duration the way [`parse_duration`] reads it, largest units first; fractions
/// of a second are dropped (config durations are whole seconds).
pub fn format_duration(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    if seconds == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (symbol, size) in UNITS {
        if seconds >= size {
            out.push_str(&format!("{}{symbol}", seconds / size));
            seconds %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn accepts_each_unit_and_combinations() {
        assert_eq!(parse_duration("30s"), Ok(secs(30)));
        assert_eq!(parse_duration("15m"), Ok(secs(900)));
        assert_eq!(parse_duration("1h"), Ok(secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(secs(7 * 86400)));
        assert_eq!(parse_duration("2w"), Ok(secs(14 * 86400)));
        assert_eq!(parse_duration("1w2d3h4m5s"), Ok(secs(788645)));
        assert_eq!(parse_duration("0h30m"), Ok(secs(1800)));
        assert_eq!(parse_duration("90m"), Ok(secs(5400)));
    }

    #[test]
    fn rejects_zero_empty_unknown_units_and_overflow() {
        assert_eq!(parse_duration("0s"), Err(DurationError::Zero("0s".into())));
        assert_eq!(
            parse_duration("0h0m"),
            Err(DurationError::Zero("0h0m".into()))
        );
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("15ms"),
            Err(DurationError::UnknownUnit { unit, .. }) if unit == "ms"
        ));
        assert!(matches!(
            parse_duration("3y"),
            Err(DurationError::UnknownUnit { unit, .. }) if unit == "y"
        ));
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::Overflow("99999999999999999999s".into()))
        );
        assert_eq!(
            parse_duration("30500568904944w"),
            Err(DurationError::Overflow("30500568904944w".into()))
        );
        assert_eq!(
            parse_duration("18446744073709551615s1s").unwrap_err(),
            DurationError::UnitOrder("18446744073709551615s1s".into())
        );
        assert_eq!(
            parse_duration("2562047788015215h1m"),
            Ok(secs(2562047788015215 * 3600 + 60))
        );
        // Each part fits but the sum does not.
        assert_eq!(
            parse_duration("30500568904943w1d"),
            Err(DurationError::Overflow("30500568904943w1d".into()))
        );
    }

    #[test]
    fn rejects_malformed_text() {
        for text in ["15", "m", "1h 30m", " 1h", "1.5h", "-1h", "h1", "1h30"] {
            assert!(parse_duration(text).is_err(), "{text:?} was accepted");
        }
        assert_eq!(
            parse_duration("30m1h"),
            Err(DurationError::UnitOrder("30m1h".into()))
        );
        assert_eq!(
            parse_duration("1m1m"),
            Err(DurationError::UnitOrder("1m1m".into()))
        );
    }

    #[test]
    fn formats_largest_units_first() {
        assert_eq!(format_duration(secs(5400)), "1h30m");
        assert_eq!(format_duration(secs(14 * 86400)), "2w");
        assert_eq!(format_duration(secs(61)), "1m1s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s");
    }

    proptest! {
        #[test]
        fn format_then_parse_roundtrips(seconds in 1u64..=u64::MAX) {
            let duration = secs(seconds);
            prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }

        #[test]
        fn parts_add_up(parts in proptest::collection::vec(proptest::option::of(0u64..10_000), 5)) {
            let mut text = String::new();
            let mut expected = 0;
            for ((symbol, size), part) in UNITS.iter().zip(&parts) {
                if let Some(n) = part {
                    text.push_str(&format!("{n}{symbol}"));
                    expected += n * size;
                }
            }
            let parsed = parse_duration(&text);
            if text.is_empty() {
                prop_assert_eq!(parsed, Err(DurationError::Empty));
            } else if expected == 0 {
                prop_assert_eq!(parsed, Err(DurationError::Zero(text)));
            } else {
                prop_assert_eq!(parsed, Ok(secs(expected)));
            }
        }
    }
}
