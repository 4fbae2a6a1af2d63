//! When a plan runs: after a restart, a missed run happens once, not once per missed slot.

use chrono::{DateTime, Utc};
use lifeboat_config::Schedule;

/// The next time a plan is due, given the slot its last run was scheduled for. A plan
/// that never ran is due now; one whose next slot has passed (the agent was down) is
/// due now, and the run that follows is counted from then.
pub fn next_due(
    schedule: &Schedule,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match last {
        None => Some(now),
        Some(last) => schedule.next_after(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn a_plan_that_never_ran_is_due_now() {
        let every = Schedule::from_str("every 15m").unwrap();
        let now = at("2026-11-26T10:00:00Z");
        assert_eq!(next_due(&every, None, now), Some(now));
    }

    #[test]
    fn intervals_count_from_the_last_run() {
        let every = Schedule::from_str("every 15m").unwrap();
        let now = at("2026-11-26T10:05:00Z");
        let last = at("2026-11-26T10:00:00Z");
        assert_eq!(
            next_due(&every, Some(last), now),
            Some(at("2026-11-26T10:15:00Z"))
        );
    }

    #[test]
    fn missed_slots_make_one_run_not_many() {
        let cron = Schedule::from_str("*/15 * * * *").unwrap();
        let last = at("2026-11-26T06:00:00Z");
        let now = at("2026-11-26T10:07:00Z");
        // Sixteen slots were missed; the plan is due once (the earliest missed slot is in
        // the past, so it runs now), and after that run at 10:07 the next is 10:15.
        let due = next_due(&cron, Some(last), now).unwrap();
        assert!(due <= now);
        assert_eq!(
            next_due(&cron, Some(now), now),
            Some(at("2026-11-26T10:15:00Z"))
        );
    }
}
