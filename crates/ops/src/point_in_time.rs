//! A point in time as a user names it, parsed once for every use case that takes one:
//! `latest`, `random` (a drill's pick), an RFC 3339 time, a time relative to now
//! (`-10m`), `tx:N` (right after the replicated transaction N, as `timeline` lists
//! them), a PostgreSQL LSN (`0/3000028`) or, for PostgreSQL recovery, the name of a
//! restore point. Each use case then says which of these it can reach.

use std::fmt;

use chrono::{DateTime, Utc};
use lifeboat_sources::postgres::recovery::RecoveryTarget;
use lifeboat_sources::postgres::wal::{format_lsn, parse_lsn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointInTime {
    Latest,
    /// Any restore point, chosen at random (drills).
    Random,
    At(DateTime<Utc>),
    Transaction(u64),
    /// A position in a PostgreSQL cluster's WAL.
    Lsn(u64),
    /// A restore point made with `pg_create_restore_point(name)`.
    RestorePoint(String),
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
        if text == "random" {
            return Ok(PointInTime::Random);
        }
        if let Some(lsn) = parse_lsn(text) {
            return Ok(PointInTime::Lsn(lsn));
        }
        lifeboat_sources::timeline::parse_time(text, now)
            .map(PointInTime::At)
            .map_err(|e| e.to_string())
    }

    /// As [`parse`](Self::parse), where any other text names a PostgreSQL restore point.
    pub fn parse_for_postgres(text: &str, now: DateTime<Utc>) -> PointInTime {
        Self::parse(text, now).unwrap_or_else(|_| PointInTime::RestorePoint(text.to_string()))
    }

    /// A moment a file or directory source restores to: `latest`, a time or `tx:N`.
    pub fn parse_for_restore(text: &str, now: DateTime<Utc>) -> Result<PointInTime, String> {
        match Self::parse(text, now)? {
            at @ (PointInTime::Latest | PointInTime::At(_) | PointInTime::Transaction(_)) => Ok(at),
            other => Err(format!(
                "a restore goes to latest, a time or tx:N, not {other}"
            )),
        }
    }

    /// The target PostgreSQL recovery replays to.
    pub fn recovery_target(&self) -> Result<RecoveryTarget, String> {
        Ok(match self {
            PointInTime::Latest => RecoveryTarget::Latest,
            PointInTime::At(time) => RecoveryTarget::Time(*time),
            PointInTime::Lsn(lsn) => RecoveryTarget::Lsn(*lsn),
            PointInTime::RestorePoint(name) => RecoveryTarget::Name(name.clone()),
            PointInTime::Random | PointInTime::Transaction(_) => {
                return Err(format!(
                    "PostgreSQL recovers to latest, a time, an LSN or a restore point's name, not {self}"
                ))
            }
        })
    }

    /// The instant a restore point must be at or before (`now` for the newest).
    pub fn instant(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            PointInTime::At(time) => *time,
            _ => now,
        }
    }
}

impl fmt::Display for PointInTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointInTime::Latest => f.write_str("latest"),
            PointInTime::At(time) => f.write_str(&lifeboat_sources::timeline::show_time(*time)),
            PointInTime::Transaction(n) => write!(f, "tx:{n}"),
            PointInTime::Random => f.write_str("random"),
            PointInTime::Lsn(lsn) => f.write_str(&format_lsn(*lsn)),
            PointInTime::RestorePoint(name) => write!(f, "restore point {name:?}"),
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
        assert_eq!(parse("random"), Ok(PointInTime::Random));
        assert_eq!(parse("0/3000028"), Ok(PointInTime::Lsn(0x3000028)));
        assert_eq!(
            PointInTime::parse_for_postgres("before-migration", now).recovery_target(),
            Ok(RecoveryTarget::Name("before-migration".into()))
        );
        assert!(PointInTime::parse_for_restore("random", now)
            .unwrap_err()
            .contains("latest, a time or tx:N"));
        assert!(PointInTime::parse_for_restore("0/3000028", now).is_err());
        assert!(PointInTime::Transaction(3).recovery_target().is_err());
    }
}
