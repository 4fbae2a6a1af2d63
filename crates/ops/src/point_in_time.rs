//! A point in time as a user names it, parsed once for every use case that takes one:
//! `latest`, an RFC 3339 time, a time relative to now (`-10m`), or `tx:N` (right after the
//! replicated transaction N, as `timeline` lists them).

use std::fmt;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointInTime {
    Latest,
    At(DateTime<Utc>),
    Transaction(u64),
}

impl PointInTime {
    /// Reads `text`, relative times counted from `now`; the error says what is accepted.
    pub fn parse(text: &str, now: DateTime<Utc>) -> Result<PointInTime, String> {
        let text = text.trim();
        if let Some(number) = text.strip_prefix("tx:") {
            return match number.parse::<u64>() {
                Ok(n) if n > 0 => Ok(PointInTime::Transaction(n)),
                _ => Err(format!(
                    "cannot read the transaction {text:?}: give tx:NUMBER, as `lifeboat timeline` lists them"
                )),
            };
        }
        if matches!(text, "latest" | "now") {
            return Ok(PointInTime::Latest);
        }
        lifeboat_sources::timeline::parse_time(text, now)
            .map(PointInTime::At)
            .map_err(|e| e.to_string())
    }

    /// The instant a restore point must be at or before (`now` for the newest).
    pub fn instant(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            PointInTime::At(time) => *time,
            PointInTime::Latest | PointInTime::Transaction(_) => now,
        }
    }
}

impl fmt::Display for PointInTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointInTime::Latest => f.write_str("latest"),
            PointInTime::At(time) => f.write_str(&lifeboat_sources::timeline::show_time(*time)),
            PointInTime::Transaction(n) => write!(f, "tx:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_reads_and_bad_ones_say_what_is_accepted() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let parse = |t| PointInTime::parse(t, now);
        assert_eq!(parse("latest"), Ok(PointInTime::Latest));
        assert_eq!(parse("tx:42"), Ok(PointInTime::Transaction(42)));
        assert_eq!(
            parse("-10m").unwrap().instant(now).to_rfc3339(),
            "2026-12-03T09:50:00+00:00"
        );
        assert_eq!(
            parse("2026-12-03T09:30:00.250Z").unwrap().to_string(),
            "2026-12-03T09:30:00.250Z"
        );
        assert!(parse("tx:0").unwrap_err().contains("tx:NUMBER"));
        assert!(parse("tx:x").is_err());
        assert!(parse("yesterday-ish").is_err());
    }
}
