//! When a plan runs: `every 15m`, or a cron pattern evaluated in UTC.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use crate::duration::{format_duration, parse_duration, DurationError};

/// A pattern that has not fired within this long is taken to never fire (`0 0 31 2 *`);
/// long enough for leap-day patterns.
const NEVER_FIRES_HORIZON_DAYS: i64 = 5 * 366;

/// How far ahead, in firings and in time, the longest gap between firings is measured:
/// a year covers weekly, monthly and yearly shapes; the count bounds the cost of a
/// pattern that fires every second.
const GAP_SAMPLE_FIRINGS: usize = 10_000;
const GAP_SAMPLE_DAYS: i64 = 366;

/// A plan's schedule.
// A config holds a handful of schedules, built once: boxing the pattern would only make
// matching on it clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `every 15m`: a fixed interval (the agent chooses the anchor).
    Every(Duration),
    /// A cron pattern of 5 fields, or 6 with seconds first, or `@hourly`, `@daily`,
    /// `@weekly`, `@monthly`, `@yearly`; evaluated in UTC.
    Cron(Cron),
}

/// Why a schedule was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("bad interval in {text:?}: {source}")]
    Interval {
        text: String,
        #[source]
        source: DurationError,
    },
    #[error("{text:?} has {fields} fields; a cron pattern has 5 (minute hour day month weekday), or 6 with seconds first")]
    FieldCount { text: String, fields: usize },
    #[error("{text:?} is not a valid cron pattern: {reason}")]
    Cron { text: String, reason: String },
    #[error("{0:?} never fires")]
    NeverFires(String),
}

impl Schedule {
    /// Parses `every <duration>` or a cron pattern, refusing patterns that never fire.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        if let Some(interval) = text.strip_prefix("every ") {
            return parse_duration(interval.trim())
                .map(Schedule::Every)
                .map_err(|source| ScheduleError::Interval {
                    text: text.to_string(),
                    source,
                });
        }
        let fields = text.split_whitespace().count();
        if !text.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(ScheduleError::FieldCount {
                text: text.to_string(),
                fields,
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            // Years would make a 6-field pattern ambiguous.
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| ScheduleError::Cron {
                text: text.to_string(),
                reason: e.to_string(),
            })?;
        let now = Utc::now();
        let fires = cron
            .find_next_occurrence(&now, false)
            .is_ok_and(|next| next - now <= chrono::Duration::days(NEVER_FIRES_HORIZON_DAYS));
        if !fires {
            return Err(ScheduleError::NeverFires(text.to_string()));
        }
        Ok(Schedule::Cron(cron))
    }

    /// The first time the schedule fires strictly after `t`: `t + interval` for
    /// [`Schedule::Every`], the next matching second for [`Schedule::Cron`]. `None` past
    /// the representable range.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(interval) => {
                t.checked_add_signed(chrono::Duration::from_std(*interval).ok()?)
            }
            Schedule::Cron(cron) => cron.find_next_occurrence(&t, false).ok(),
        }
    }

    /// The longest wait between two firings from `from` on: the interval itself, or for
    /// a cron pattern the longest gap seen over the coming year (a weekday-only pattern
    /// has a weekend gap). What a backup's age can reach just before the next run.
    pub(crate) fn longest_gap(&self, from: DateTime<Utc>) -> Duration {
        let cron = match self {
            Schedule::Every(interval) => return *interval,
            Schedule::Cron(cron) => cron,
        };
        let end = from + chrono::Duration::days(GAP_SAMPLE_DAYS);
        let mut longest = chrono::Duration::zero();
        let mut previous = None;
        for next in cron.iter_after(from).take(GAP_SAMPLE_FIRINGS) {
            if let Some(previous) = previous {
                longest = longest.max(next - previous);
            }
            if next > end {
                break;
            }
            previous = Some(next);
        }
        longest.to_std().unwrap_or_default()
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(text)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(interval) => write!(f, "every {}", format_duration(*interval)),
            Schedule::Cron(cron) => f.write_str(cron.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn every_adds_the_interval() {
        let schedule = Schedule::parse("every 15m").unwrap();
        assert_eq!(schedule, Schedule::Every(Duration::from_secs(900)));
        let t = at(2026, 3, 1, 10, 7, 0);
        assert_eq!(schedule.next_after(t), Some(at(2026, 3, 1, 10, 22, 0)));
        assert_eq!(schedule.to_string(), "every 15m");
        assert_eq!(
            Schedule::parse("every 1h").unwrap(),
            Schedule::Every(Duration::from_secs(3600))
        );
        assert_eq!(
            Schedule::parse("every 30s").unwrap(),
            Schedule::Every(Duration::from_secs(30))
        );
    }

    #[test]
    fn every_rejects_zero_and_garbage() {
        assert!(matches!(
            Schedule::parse("every 0s"),
            Err(ScheduleError::Interval {
                source: DurationError::Zero(_),
                ..
            })
        ));
        assert!(matches!(
            Schedule::parse("every fortnight"),
            Err(ScheduleError::Interval { .. })
        ));
    }

    #[test]
    fn cron_five_fields_fires_on_the_minute() {
        let schedule = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(
            schedule.next_after(at(2026, 3, 1, 10, 7, 30)),
            Some(at(2026, 3, 1, 10, 15, 0))
        );
        // Strictly after: a time that matches moves on to the next firing.
        assert_eq!(
            schedule.next_after(at(2026, 3, 1, 10, 15, 0)),
            Some(at(2026, 3, 1, 10, 30, 0))
        );
        assert_eq!(schedule.to_string(), "*/15 * * * *");
    }

    #[test]
    fn cron_six_fields_has_seconds_first() {
        let schedule = Schedule::parse("30 0 * * * *").unwrap();
        assert_eq!(
            schedule.next_after(at(2026, 3, 1, 10, 7, 0)),
            Some(at(2026, 3, 1, 11, 0, 30))
        );
    }

    #[test]
    fn nicknames_are_accepted() {
        let hourly = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            hourly.next_after(at(2026, 3, 1, 10, 7, 0)),
            Some(at(2026, 3, 1, 11, 0, 0))
        );
        let daily = Schedule::parse("@daily").unwrap();
        assert_eq!(
            daily.next_after(at(2026, 3, 1, 10, 7, 0)),
            Some(at(2026, 3, 2, 0, 0, 0))
        );
    }

    #[test]
    fn impossible_patterns_are_rejected() {
        assert!(matches!(
            Schedule::parse("0 0 31 2 *"),
            Err(ScheduleError::NeverFires(_))
        ));
        assert!(matches!(
            Schedule::parse("61 * * * *"),
            Err(ScheduleError::Cron { .. })
        ));
        assert!(matches!(
            Schedule::parse("* * * *"),
            Err(ScheduleError::FieldCount { fields: 4, .. })
        ));
        assert!(matches!(
            Schedule::parse("0 0 0 1 1 * 2030"),
            Err(ScheduleError::FieldCount { fields: 7, .. })
        ));
        // Leap days fire, just rarely.
        assert!(Schedule::parse("0 0 29 2 *").is_ok());
    }

    #[test]
    fn longest_gap_sees_weekends() {
        let from = at(2026, 3, 2, 0, 0, 0);
        let gap = |text: &str| Schedule::parse(text).unwrap().longest_gap(from);
        assert_eq!(gap("every 15m"), Duration::from_secs(900));
        assert_eq!(gap("*/15 * * * *"), Duration::from_secs(900));
        assert_eq!(gap("0 2 * * 1-5"), Duration::from_secs(3 * 86400));
        assert_eq!(gap("@daily"), Duration::from_secs(86400));
    }
}
