//! Retention policies, as restic defines them: which snapshots of one group (one host's
//! backups of the same paths) a `forget` keeps. Pinned snapshots are always kept.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// How many of each kind of snapshot to keep. A snapshot is kept if any rule keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    /// Keep every snapshot this close to the group's newest one.
    pub within: Option<chrono::Duration>,
    /// Keep every snapshot carrying one of these tags.
    pub tags: Vec<String>,
}

impl KeepPolicy {
    /// The rules that keep the newest snapshot of each of the N newest time buckets.
    pub fn bucket_rules(&self) -> [(&'static str, u32); 5] {
        [
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
    }

    /// A policy that keeps nothing would forget everything: refused by callers.
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within.is_none()
            && self.tags.is_empty()
    }
}

/// What the policy needs to know of a snapshot.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub time: DateTime<Utc>,
    pub pinned: bool,
    pub tags: Vec<String>,
}

/// The bucket rules: a snapshot is kept by a rule when it is the newest of its bucket,
/// for the `count` newest buckets.
pub fn bucket(rule: &str, t: &DateTime<Utc>) -> i64 {
    let day = t.date_naive();
    match rule {
        "hourly" => (day.num_days_from_ce() as i64) * 24 + t.hour() as i64,
        "daily" => day.num_days_from_ce() as i64,
        "weekly" => {
            let week = day.iso_week();
            week.year() as i64 * 100 + week.week() as i64
        }
        "monthly" => t.year() as i64 * 100 + t.month() as i64,
        "yearly" => t.year() as i64,
        _ => unreachable!("unknown rule {rule}"),
    }
}

/// For each candidate (any order), whether it is kept and by which rules.
pub fn decide(policy: &KeepPolicy, candidates: &[Candidate]) -> Vec<Vec<&'static str>> {
    let mut reasons: Vec<Vec<&'static str>> = vec![Vec::new(); candidates.len()];
    // Newest first; ties keep their given order.
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|a, b| candidates[*b].time.cmp(&candidates[*a].time));
    for (i, c) in candidates.iter().enumerate() {
        if c.pinned {
            reasons[i].push("pinned");
        }
        if c.tags.iter().any(|t| policy.tags.contains(t)) {
            reasons[i].push("tag");
        }
    }
    for (rank, &i) in order.iter().enumerate() {
        if rank < policy.last as usize {
            reasons[i].push("last");
        }
    }
    if let (Some(within), Some(&newest)) = (policy.within, order.first()) {
        let since = candidates[newest].time - within;
        for (i, c) in candidates.iter().enumerate() {
            if c.time >= since {
                reasons[i].push("within");
            }
        }
    }
    for (rule, count) in policy.bucket_rules() {
        let mut left = count;
        let mut last_bucket = None;
        for &i in &order {
            if left == 0 {
                break;
            }
            let b = bucket(rule, &candidates[i].time);
            if last_bucket != Some(b) {
                reasons[i].push(rule);
                last_bucket = Some(b);
                left -= 1;
            }
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// The reference: per rule, group by bucket, take the `count` newest buckets, and in
    /// each the newest snapshot.
    fn reference(policy: &KeepPolicy, c: &[Candidate]) -> BTreeSet<usize> {
        let mut kept = BTreeSet::new();
        for (i, s) in c.iter().enumerate() {
            if s.pinned || s.tags.iter().any(|t| policy.tags.contains(t)) {
                kept.insert(i);
            }
        }
        let newest_first = |a: &usize, b: &usize| c[*b].time.cmp(&c[*a].time).then(a.cmp(b));
        let mut all: Vec<usize> = (0..c.len()).collect();
        all.sort_by(newest_first);
        kept.extend(all.iter().take(policy.last as usize));
        if let Some(within) = policy.within {
            if let Some(newest) = c.iter().map(|s| s.time).max() {
                kept.extend((0..c.len()).filter(|i| c[*i].time >= newest - within));
            }
        }
        for (rule, count) in policy.bucket_rules() {
            let mut buckets: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for (i, s) in c.iter().enumerate() {
                buckets.entry(bucket(rule, &s.time)).or_default().push(i);
            }
            for (_, mut members) in buckets.into_iter().rev().take(count as usize) {
                members.sort_by(newest_first);
                kept.insert(members[0]);
            }
        }
        kept
    }

    fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
        proptest::collection::vec(
            (
                0i64..3 * 366 * 24 * 60,
                any::<bool>(),
                proptest::option::of("[ab]"),
            ),
            0..40,
        )
        .prop_map(|raw| {
            raw.into_iter()
                .map(|(minutes, pinned, tag)| Candidate {
                    time: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
                        + chrono::Duration::minutes(minutes),
                    pinned: pinned && minutes % 7 == 0,
                    tags: tag.into_iter().collect(),
                })
                .collect()
        })
    }

    fn policies() -> impl Strategy<Value = KeepPolicy> {
        (
            0u32..4,
            0u32..5,
            0u32..5,
            0u32..4,
            0u32..4,
            0u32..3,
            proptest::option::of(0i64..2000),
            any::<bool>(),
        )
            .prop_map(
                |(last, hourly, daily, weekly, monthly, yearly, within, tag)| KeepPolicy {
                    last,
                    hourly,
                    daily,
                    weekly,
                    monthly,
                    yearly,
                    within: within.map(chrono::Duration::hours),
                    tags: if tag { vec!["a".into()] } else { vec![] },
                },
            )
    }

    proptest! {
        #[test]
        fn decisions_match_the_reference_model(policy in policies(), c in candidates()) {
            let decided: BTreeSet<usize> = decide(&policy, &c)
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.is_empty())
                .map(|(i, _)| i)
                .collect();
            prop_assert_eq!(&decided, &reference(&policy, &c));
            for (i, s) in c.iter().enumerate() {
                if s.pinned {
                    prop_assert!(decided.contains(&i), "a pinned snapshot was forgotten");
                }
            }
        }
    }

    #[test]
    fn a_week_of_hourly_backups() {
        let start = Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap();
        let c: Vec<Candidate> = (0..7 * 24)
            .map(|h| Candidate {
                time: start + chrono::Duration::hours(h),
                pinned: false,
                tags: vec![],
            })
            .collect();
        let policy = KeepPolicy {
            last: 2,
            daily: 3,
            ..Default::default()
        };
        let kept: Vec<usize> = decide(&policy, &c)
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.is_empty())
            .map(|(i, _)| i)
            .collect();
        // The two newest, and the last of each of the three newest days.
        assert_eq!(
            kept,
            vec![4 * 24 + 23, 5 * 24 + 23, 6 * 24 + 22, 6 * 24 + 23]
        );
    }
}
